"""The Orders tab: this appliance's orders and their results; n queues a runbook run (a
disruptive one, or one bound to the maintenance window, asks first)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...columns import ORDER_BUNDLE, ORDERS, cols
from ...widgets.modals import ConfirmModal, FormModal, JsonModal
from ...widgets.table import KeyedTable
from .credentials import CredentialsTab
from .runbooks import RunbooksTab
from .tab import ApplianceContext, ApplianceTab

# `osiris order list`'s columns, except: an order that runs no runbook shows its kind there.
SHOWN = cols(
    "orders (console)",
    ORDERS["status"],
    replace(ORDERS["runbook"], get=lambda o: (o.params or {}).get("runbook_id", o.kind)),
    ORDERS["host"],
    ORDERS["created"],
    replace(ORDERS["outcome"], header="RESULT"),
    ORDER_BUNDLE,
)


class OrdersTab(ApplianceTab):
    TITLE = "Orders"
    TAB_ID = "orders"
    POLLED = True
    BINDINGS = [Binding("n", "new_order", "New order", id="detail.new_order")]
    MUTATIONS = frozenset({"new_order"})

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.orders: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(SHOWN.keyed(), id="order-table")

    def fetch(self, client: Any) -> list[Any]:
        return client.orders(self.ctx.appliance.id, 100)

    def show(self, data: list[Any]) -> None:
        self.orders = {o.id: o for o in data}
        self.query_one("#order-table", KeyedTable).sync({o.id: SHOWN.cells(o) for o in data})

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        o = self.orders.get(event.row_key.value or "")
        if o is not None:
            self.app.push_screen(JsonModal(f"order {o.id}", o.as_json()))

    def action_new_order(self) -> None:
        if not self.mutation_allowed():
            return
        ctx = self.ctx
        runbooks = self.screen.query_one(RunbooksTab).runbooks
        creds = self.screen.query_one(CredentialsTab).creds
        # What the server accepts as a target (osiris_server/api/targets.py): a host the site
        # has a credential for, or the appliance itself — not every host id a check once named.
        hosts = sorted({c.host_id for c in creds.values()} | {ctx.appliance.id})
        rbs = sorted(r for r, s in runbooks.items() if s.enabled) or sorted(ctx.catalog)
        if not hosts or not rbs:
            self.notify("no hosts or runbooks known for this appliance yet", severity="warning")
            return
        fields = [("runbook_id", "runbook", "select", rbs), ("host_id", "host", "select", hosts)]

        def done(v: dict[str, Any] | None) -> None:
            if not v or not v.get("runbook_id") or not v.get("host_id"):
                return
            rb = ctx.catalog.get(v["runbook_id"])
            if rb is not None and (rb.disruptive or rb.requires_maintenance_window):

                def ok(yes: bool | None) -> None:
                    if yes:
                        self.queue_order(v["runbook_id"], v["host_id"])

                self.app.push_screen(
                    ConfirmModal(
                        f"Run disruptive runbook {v['runbook_id']}?",
                        [
                            ("site", ctx.site_id),
                            ("appliance", ctx.appliance.hostname),
                            ("host", v["host_id"]),
                            ("action", f"run {v['runbook_id']}"),
                        ],
                        "Impact: may restart services or reboot; deferred to the maintenance "
                        "window unless allowed",
                    ),  # fmt: skip
                    ok,
                )
            else:
                self.queue_order(v["runbook_id"], v["host_id"])

        self.app.push_screen(FormModal(f"Queue an order on {ctx.appliance.hostname}", fields), done)

    @work(thread=True, group="mutation")
    def queue_order(self, runbook_id: str, host_id: str) -> None:
        what = f"POST order run_runbook {runbook_id} on {host_id}"
        try:
            o = self.ctx.client.create_order(
                self.ctx.appliance.id, "run_runbook", {"runbook_id": runbook_id, "host_id": host_id}
            )
        except Exception as e:  # noqa: BLE001 - a refusal's message says what to type instead
            self.record(what, worker_error(e), False)
            return
        self.record(what, f"queued {o.id} ({o.status})")
        self.ctx.load_main()
