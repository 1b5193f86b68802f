"""Views that are not restyled when they gain or lose focus.

Textual applies the stylesheet again to a widget, its scrollbars and its descendants on every focus change,
whether or not a rule depends on focus: on a tab switch (one view blurred, one focused) that was 10-20 ms. The
views that take a tab's keys have no ``:focus`` styles; those with a cursor pick its focused or blurred look
when they draw it (Textual repaints a widget whose focus changed).
"""

from __future__ import annotations


class NoFocusRestyle:
    """Mix in before the Textual widget class."""

    def watch_has_focus(self, has_focus: bool) -> None:
        pass
