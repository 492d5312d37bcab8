"""The Incidents tab: the site's incidents that concern this appliance (or no appliance)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from ...columns import INCIDENTS
from ...widgets.table import KeyedTable
from .tab import ApplianceTab

SHOWN = INCIDENTS.pick("sev", "status", "host", "kind", "count", "summary", count="N")


class IncidentsTab(ApplianceTab):
    TITLE = "Incidents"
    TAB_ID = "incidents"
    POLLED = True

    def compose(self) -> ComposeResult:
        yield KeyedTable(SHOWN.keyed(), id="inc-table")

    def fetch(self, client: Any) -> list[Any]:
        return list(client.incidents(site_id=self.ctx.site_id, limit=500))

    def show(self, data: list[Any]) -> None:
        mine = [i for i in data if i.appliance_id in (None, self.ctx.appliance.id)]
        self.query_one("#inc-table", KeyedTable).sync({i.id: SHOWN.cells(i) for i in mine})
