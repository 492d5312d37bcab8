"""Provisioning: create claim codes (with their QR code) and list pending / claimed ones."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..app import Banner, CommandBar, from_worker, worker_error
from ..fmt import cell, safe, status_cell
from ..qr import render_half_blocks
from ..widgets.modals import FormModal
from ..widgets.table import KeyedTable


class ProvisionScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="prov.back"),
        Binding("c", "create", "Create code", id="prov.create"),
        Binding("r", "refresh", "Refresh", id="prov.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.site_ids: list[str] = []
        self.last_code: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(Text(" Provisioning: claim codes", style="bold"), id="title")
        yield Static("", id="code")
        yield KeyedTable(
            [("state", "STATE"), ("site", "SITE"), ("id", "ID"), ("created", "CREATED"),
             ("expires", "EXPIRES"), ("appliance", "APPLIANCE")],
            id="prov-table",
        )  # fmt: skip
        yield CommandBar(placeholder=":command")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.query_one("#code").display = False
        self.query_one("#prov-table").focus()
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "create" and self.app.read_only:  # type: ignore[attr-defined]
            return None
        return True

    @work(thread=True, exclusive=True, group="provision")
    def load(self) -> None:
        c = self.app.client  # type: ignore[attr-defined]
        try:
            provs = c.provisions()
            sites = [s.id for s in c.sites()]
        except Exception as e:  # noqa: BLE001
            from_worker(self.app, self.app.api_result, False, worker_error(e))
            return
        from_worker(self.app, self.apply, provs, sites)

    def apply(self, provs: list[Any], sites: list[str]) -> None:
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.site_ids = sites
        self.query_one("#prov-table", KeyedTable).sync(
            {
                p.id: [
                    status_cell(p.state),
                    cell(p.site_id),
                    cell(p.id, "dim"),
                    cell(p.created_at),
                    cell(p.expires_at),
                    cell(p.appliance_id or "-"),
                ]
                for p in provs
            }
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_create(self) -> None:
        if not self.app.mutation_allowed() or not self.site_ids:  # type: ignore[attr-defined]
            return

        def done(v: dict[str, Any] | None) -> None:
            if v and v.get("site_id"):
                self.create(v["site_id"])

        self.app.push_screen(
            FormModal("New claim code", [("site_id", "site", "select", self.site_ids)]), done
        )

    @work(thread=True, group="mutation")
    def create(self, site_id: str) -> None:
        what = f"POST provisions site={site_id}"
        try:
            out = self.app.client.create_provision(site_id)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)
            return
        self.app.call_from_thread(self.app.record, what, f"created {out['id']}")
        self.app.call_from_thread(self.show_code, out)
        self.load()

    def show_code(self, out: dict[str, Any]) -> None:
        self.last_code = out
        box = self.query_one("#code", Static)
        box.display = True
        box.update(
            Text.assemble(
                (f" claim code {safe(out['code'])}", "bold reverse"),
                f"  site {safe(out['site_id'])}  expires {safe(out['expires_at'])}\n",
                render_half_blocks(out["code"]),
            )
        )
