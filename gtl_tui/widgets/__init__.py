"""The monitor's views, each drawing from the folded :class:`gtl_tui.state.RunState`: header, tab bar, fitness
chart, elite, population table, lineage tree, mutations, learngene and evaluations, event feed, key bar; ``vtable``
is the virtual table they share, ``fmt`` the number formats."""
