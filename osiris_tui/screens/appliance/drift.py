"""The Drift tab: per (host, check), the state replayed from the evidence chain.

It loads nothing itself: the rows come from the Evidence tab's chain window and the last
check-in (the appliance), so the screen calls :meth:`DriftTab.render_drift` when either changes.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from ...fmt import cell, status_cell
from ...widgets.modals import JsonModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab, ago

COLUMNS = [("host", "HOST"), ("check", "CHECK"), ("status", "STATUS"), ("since", "SINCE"),
           ("heal", "HEALING"), ("observed", "OBSERVED")]  # fmt: skip


class DriftTab(ApplianceTab):
    TITLE = "Drift"
    TAB_ID = "drift"

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.drift: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="drift-table")

    def render_drift(self, evidence: list[dict[str, Any]], window_start: int) -> None:
        """Per (host, check) from the evidence chain (see osiris_tui/drift.py); the last
        check-in fills in pairs no bundle names yet."""
        from ...drift import HEALING_TIERS, drift_rows, observed_text

        now = self.app.clock()  # type: ignore[attr-defined]
        self.drift = {
            f"{d.host_id}\0{d.check}": d
            for d in drift_rows(evidence, self.ctx.appliance.checks, window_start_seq=window_start)
        }
        rows = {}
        for key, d in self.drift.items():
            since = ago(now, d.since)
            if since and not d.since_exact:
                since = "≥" + since
            if d.state == "compliant" and d.resolved_by in HEALING_TIERS:
                heal = f"{d.resolved_by} healed after {d.attempts}"
            elif d.state == "compliant" and d.resolved_at:
                heal = f"cleared, {d.attempts} tries"
            elif d.drift_since is not None and d.state != "compliant":
                heal = f"{d.attempts} in {ago(now, d.drift_since) or '?'}"
            else:
                heal = "-"
            obs = "-" if d.source == "checkin" else observed_text(d)
            rows[key] = [
                cell(d.host_id),
                cell(d.check),
                status_cell(d.state),
                cell(since or "-"),
                cell(heal, "yellow" if d.state != "compliant" and d.attempts else ""),
                cell(obs, "dim" if d.state == "compliant" else ""),
            ]
        self.query_one("#drift-table", KeyedTable).sync(rows)

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        d = self.drift.get(event.row_key.value or "")
        if d is not None:
            self.app.push_screen(JsonModal(f"drift {d.host_id} {d.check}", d.as_json()))
