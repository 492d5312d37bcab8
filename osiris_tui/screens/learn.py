"""Learned-rule candidates: what the server's `GET /learning/candidates` holds, read-only.

The server lists (check, runbook) pairs with their success record; it has no promotion call
yet, so this view offers none either — the title says so rather than showing a dead key.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..app import Banner, CommandBar, from_worker, worker_error
from ..fmt import cell, status_cell
from ..widgets.modals import JsonModal
from ..widgets.table import KeyedTable


class LearnScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="learn.back"),
        Binding("r", "refresh", "Refresh", id="learn.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(
            Text.assemble(
                (" Learning candidates", "bold"),
                ("  read-only: the server lists them; promotion is not in its API", "dim"),
            ),
            id="title",
        )
        yield KeyedTable(
            [("site", "SITE"), ("check", "CHECK"), ("runbook", "RUNBOOK"), ("ok", "OK"),
             ("failed", "FAILED"), ("rate", "RATE"), ("status", "STATUS"),
             ("updated", "UPDATED")],
            id="learn-table",
        )  # fmt: skip
        yield Static("", id="learn-empty")
        yield CommandBar(placeholder=":command")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.query_one("#learn-table").focus()
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="learn")
    def load(self) -> None:
        try:
            rows = self.app.client.learning_candidates()  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001
            from_worker(self.app, self.app.api_result, False, worker_error(e))
            return
        from_worker(self.app, self.apply, rows)

    def apply(self, rows: list[Any]) -> None:
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.rows = {c.id: c for c in rows}
        self.query_one("#learn-table", KeyedTable).sync(
            {
                c.id: [
                    cell(c.site_id or "-"),
                    cell(c.check_id),
                    cell(c.runbook_id),
                    cell(c.successes),
                    cell(c.failures, "red" if c.failures else ""),
                    cell(c.success_rate),
                    status_cell(c.status),
                    cell(c.updated_at),
                ]
                for c in rows
            }
        )
        self.query_one("#learn-empty", Static).update(
            "" if rows else Text(" The server has no candidates yet.", style="dim")
        )

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        c = self.rows.get(event.row_key.value or "")
        if c is not None:
            self.app.push_screen(JsonModal(f"candidate {c.id}", c.as_json()))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()
