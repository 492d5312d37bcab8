"""The audit log (admins and auditors), newest first, paged on the server."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..app import Banner, CommandBar, from_worker, worker_error
from ..fmt import cell
from ..widgets.modals import JsonModal
from ..widgets.table import KeyedTable


class AuditScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="audit.back"),
        Binding("r", "refresh", "Refresh", id="audit.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(Text(" Audit log (newest first)", style="bold"), id="title")
        yield KeyedTable(
            [("at", "AT"), ("actor", "ACTOR"), ("action", "ACTION"), ("target", "TARGET"),
             ("site", "SITE"), ("detail", "DETAIL")],
            id="audit-table",
        )  # fmt: skip
        yield CommandBar(placeholder=":command")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.query_one("#audit-table").focus()
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="audit")
    def load(self) -> None:
        try:
            rows = self.app.client.audit(limit=500)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001
            from_worker(self.app, self.app.api_result, False, worker_error(e))
            return
        from_worker(self.app, self.apply, rows)

    def apply(self, rows: list[Any]) -> None:
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.entries = {str(a.id): a for a in rows}
        order = sorted(self.entries, key=lambda k: -int(k))
        self.query_one("#audit-table", KeyedTable).sync(
            {
                str(a.id): [
                    cell(a.at),
                    cell(a.actor),
                    cell(a.action, "bold"),
                    cell(a.target),
                    cell(a.site_id or "-"),
                    cell(json.dumps(a.detail, sort_keys=True) if a.detail else ""),
                ]
                for a in rows
            },
            order,
        )

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        a = self.entries.get(event.row_key.value or "")
        if a is not None:
            self.app.push_screen(JsonModal(f"audit #{a.id}", a.as_json()))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()
