"""The selected individual's family: its ancestors back to generation 0 and its descendants."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt

MAX_DESCENDANTS = 300  # nodes drawn below the selected individual


class LineageTree(Tree[int]):
    """Rebuilt (``show``) when the selection or the family changes; small by construction."""

    DEFAULT_CSS = """
    LineageTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("lineage", id=id)
        self.show_root = True
        self.guide_depth = 3
        self.individual: int | None = None

    def label_for(self, state: RunState, i: int, *, selected: bool = False) -> Text:
        rec = state.individuals[i]
        text = Text()
        if selected:
            text.append("▶ ", style="bold cyan")
        text.append(f"#{i}", style="bold cyan" if selected else "bold")
        text.append(f" g{rec.generation} ", style="dim")
        text.append(fmt.fitness(rec.fitness), style="green" if rec.fitness is not None else "dim")
        if rec.rank is not None:
            text.append(f" r{rec.rank}", style="dim")
        text.append(f" {rec.fraction:.0%}", style="dim")
        if rec.won:
            text.append(" ★", style="yellow")
        if rec.mutations:
            text.append("  " + fmt.mutation_summary(rec.mutations), style="magenta")
        elif rec.parent is not None:
            text.append("  no mutation", style="dim")
        if state.is_extinct(i):
            text.append("  ✝ extinct", style="red")
            text.stylize("dim")
        return text

    def show(self, state: RunState, individual: int | None) -> None:
        self.individual = individual
        self.clear()
        if individual is None or individual not in state.individuals:
            self.root.set_label(Text("no individual yet", style="dim"))
            return
        path = state.lineage(individual)
        self.root.set_label(Text(f"lineage of #{individual}: {len(path)} generations back to "
                                 f"#{path[0]}, {len(state.descendants(individual))} descendants", style="bold"))
        node = self.root
        for i in path:
            is_sel = i == individual
            child = node.add(self.label_for(state, i, selected=is_sel), data=i, expand=True)
            if not is_sel:
                others = len(state.children.get(i, ())) - 1
                if others > 0:
                    child.add_leaf(Text(f"… {others} other {'child' if others == 1 else 'children'}",
                                        style="dim"))
            node = child
        self._add_descendants(state, node, individual)
        self.root.expand()
        self.call_after_refresh(self.move_cursor, node)

    def _add_descendants(self, state: RunState, node: TreeNode[int], individual: int) -> None:
        budget = MAX_DESCENDANTS
        frontier = [(node, individual)]
        while frontier and budget > 0:
            nxt = []
            for parent_node, i in frontier:
                kids = [k for k in state.children.get(i, ()) if k in state.individuals]
                kids.sort(key=lambda k: -(state.individuals[k].fitness or -1.0))
                for k in kids:
                    if budget <= 0:
                        parent_node.add_leaf(Text("… more", style="dim"))
                        break
                    budget -= 1
                    has_kids = bool(state.children.get(k))
                    child = parent_node.add(self.label_for(state, k), data=k, expand=True, allow_expand=has_kids)
                    nxt.append((child, k))
            frontier = nxt
