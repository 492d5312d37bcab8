"""The Runbooks tab: each runbook's state on this appliance, and who set it; space / s toggle
it at appliance / site scope (disabling asks first: it names what loses remediation)."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...fmt import cell, status_cell
from ...widgets.modals import ConfirmModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab

# Not columns.RUNBOOKS: the console shows the state as a coloured status word, the catalogue's
# severity among the flags, and the name last (the CLI's `runbook list` prints them differently).
COLUMNS = [("id", "RUNBOOK"), ("state", "STATE"), ("by", "SET BY"), ("flags", "FLAGS"),
           ("name", "NAME")]  # fmt: skip


class RunbooksTab(ApplianceTab):
    TITLE = "Runbooks"
    TAB_ID = "runbooks"
    POLLED = True
    BINDINGS = [
        Binding("space", "toggle_appliance", "Toggle (appliance)", id="detail.toggle"),
        Binding("s", "toggle_site", "Toggle (site)", id="detail.toggle_site"),
    ]
    MUTATIONS = frozenset({"toggle_appliance", "toggle_site"})

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.runbooks: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="rb-table")

    def fetch(self, client: Any) -> list[Any]:
        return client.appliance_runbooks(self.ctx.appliance.id)

    def show(self, data: list[Any]) -> None:
        self.runbooks = {r.id: r for r in data}
        rows = {}
        for r in data:
            rb = self.ctx.catalog.get(r.id)
            flags = []
            if rb is not None:
                if rb.disruptive:
                    flags.append("disruptive")
                if rb.requires_maintenance_window:
                    flags.append("window")
                flags.append(rb.severity)
            by = (
                "appliance"
                if r.appliance is not None
                else "site"
                if r.site is not None
                else "default"
            )
            rows[r.id] = [
                cell(r.id),
                status_cell("on" if r.enabled else "off"),
                cell(by, "dim" if by == "default" else "bold"),
                cell(" ".join(flags), "yellow" if "disruptive" in flags else ""),
                cell(getattr(rb, "name", "")),
            ]
        self.query_one("#rb-table", KeyedTable).sync(rows)

    def action_toggle_appliance(self) -> None:
        self._toggle("appliance")

    def action_toggle_site(self) -> None:
        self._toggle("site")

    def _toggle(self, scope: str) -> None:
        if not self.mutation_allowed():
            return
        rb_id = self.query_one("#rb-table", KeyedTable).cursor_key()
        if rb_id is None or rb_id not in self.runbooks:
            return
        ctx = self.ctx
        new = not self.runbooks[rb_id].enabled
        target = ctx.appliance.id if scope == "appliance" else ctx.site_id

        def go(ok: bool | None) -> None:
            if ok:
                self.set_runbook(scope, target, rb_id, new)

        if new:
            go(True)
            return
        rb = ctx.catalog.get(rb_id)
        self.app.push_screen(
            ConfirmModal(
                f"Disable runbook {rb_id}?",
                [
                    ("site", ctx.site.name if ctx.site else ctx.site_id),
                    ("appliance", ctx.appliance.hostname if scope == "appliance" else "all"),
                    ("action", f"disable {rb_id} at {scope} scope"),
                    ("runbook", getattr(rb, "name", rb_id)),
                ],
                "Impact: drift this runbook heals will be reported but no longer fixed"
                + (f"; controls {', '.join(rb.controls)} lose automatic remediation" if rb else ""),
            ),
            go,
        )

    @work(thread=True, group="mutation")
    def set_runbook(self, scope: str, target: str, rb_id: str, value: bool) -> None:
        what = f"PUT runbooks {scope}={target} {{{rb_id}: {str(value).lower()}}}"
        try:
            if scope == "site":
                self.ctx.client.set_site_runbooks(target, {rb_id: value})
            else:
                self.ctx.client.set_appliance_runbooks(target, {rb_id: value})
        except Exception as e:  # noqa: BLE001
            self.record(what, worker_error(e), False)
            return
        self.record(what, f"{rb_id} {'on' if value else 'off'}")
        self.ctx.load_main()
