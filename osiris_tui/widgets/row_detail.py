"""The row detail: every column of a table row, whole (``i`` on any table).

Why: a table fits its screen by cutting long values (``…``) and hiding the least important
columns (``widgets.table``); the technician must still be able to read them, so every table
has this pane, including the ones whose enter opens nothing or opens something else.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class RowModal(ModalScreen[None]):
    """Header: value, one per line; values wrap instead of being cut; esc/q/i closes."""

    BINDINGS = [Binding("escape,q,i", "dismiss(None)", "Close", id="row.close")]

    def __init__(self, cells: list[tuple[str, Text]]) -> None:
        super().__init__()
        self.cells = cells

    def compose(self) -> ComposeResult:
        width = max((len(h) for h, _ in self.cells), default=0)
        with Vertical(id="dialog", classes="wide"):
            yield Label(Text("Row detail (esc closes)", style="bold"))
            with VerticalScroll():
                for header, value in self.cells:
                    line = Text.assemble((f"{header:>{width}}  ", "dim"), value.copy())
                    line.no_wrap, line.overflow = False, "fold"
                    yield Static(line, classes="row-detail")
