"""Activity log: every mutation this console sent, and what came back."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Label

from ..fmt import cell
from ..widgets.footer import OsirisFooter, essential_bindings
from ..widgets.table import KeyedTable


class ActivityScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,L", "dismiss(None)", "Close", id="activity.close"),
        *essential_bindings(),  # a modal screen: the app's ?, : and q do not reach it
    ]

    def compose(self) -> ComposeResult:
        yield Label(Text(" Activity (this session's changes)", style="bold"))
        yield KeyedTable(
            [("at", "AT"), ("ok", "OK"), ("what", "SENT"), ("result", "RESULT")], id="activity"
        )
        yield OsirisFooter()

    def on_mount(self) -> None:
        rows = {}
        for i, a in enumerate(self.app.activity):  # type: ignore[attr-defined]
            rows[str(i)] = [
                cell(time.strftime("%H:%M:%S", time.gmtime(a.at))),
                cell("✓ ok" if a.ok else "✕ failed", "green" if a.ok else "bold red"),
                cell(a.what),
                cell(a.result),
            ]
        t = self.query_one(KeyedTable)
        t.sync(rows)
        t.focus()
