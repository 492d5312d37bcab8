"""The Drift tab: per (host, check), the state replayed from the evidence chain.

The rows come from the Evidence tab's chain window and the last check-in (the appliance), so the
screen calls :meth:`DriftTab.render_drift` when either changes. With the screen's poll it loads
one thing itself, the site's credential hosts: a host whose credential was deleted leaves the
view (its history stays in the evidence). A check that could not run reads ``! error`` and why
(``auth refused``, ``unreachable``, ``timeout``), its OBSERVED the transport's own words; one
not re-checked for ``records.STALE_INTERVALS`` intervals reads ``◌ stale``.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult

from ...fmt import cell, status_cell
from ...transport import AuthRefused, UsageError
from ...widgets.modals import JsonModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab, ago

COLUMNS = [("host", "HOST"), ("check", "CHECK"), ("status", "STATUS"), ("since", "SINCE"),
           ("heal", "HEALING"), ("observed", "OBSERVED")]  # fmt: skip


def state_cell(d: Any) -> Text:
    """Glyph + word (+ why, for an error); a stale result is ``◌ stale`` (``◐`` is an
    appliance's own stale)."""
    if d.state == "stale":
        return Text("◌ stale", style="yellow")
    out = status_cell(d.state)
    if d.state == "error" and d.reason:
        from ...drift import reason_text

        out.append(f" {reason_text(d.reason)}")
    return out


class DriftTab(ApplianceTab):
    TITLE = "Drift"
    TAB_ID = "drift"
    POLLED = True  # the site's credential hosts, with the screen's poll

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.drift: dict[str, Any] = {}
        self.hosts: set[str] | None = None  # None: not known (yet), nothing is hidden
        self._last: tuple[list[dict[str, Any]], int] | None = None

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="drift-table")

    def fetch(self, client: Any) -> set[str] | None:
        """In the poll's worker: the hosts that still have a credential at the site."""
        try:
            return {c.host_id for c in client.credentials(self.ctx.site_id)}
        except (AuthRefused, UsageError):  # not allowed to list them: hide nothing, not fail
            return None

    def show(self, data: Any) -> None:
        self.hosts = data
        if self._last is not None:
            self.render_drift(*self._last)

    def render_drift(self, evidence: list[dict[str, Any]], window_start: int) -> None:
        """Per (host, check) from the evidence chain (see osiris_tui/drift.py); the last
        check-in fills in pairs no bundle names yet, errors and stale results."""
        from ...drift import HEALING_TIERS, drift_rows, observed_text

        self._last = (evidence, window_start)
        now = self.app.clock()  # type: ignore[attr-defined]
        hosts = None if self.hosts is None else self.hosts | {self.ctx.appliance.id}
        rows_in = drift_rows(
            evidence, self.ctx.appliance.checks, window_start_seq=window_start, hosts=hosts,
            now=now,
        )  # fmt: skip
        self.drift = {f"{d.host_id}\0{d.check}": d for d in rows_in}
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
            if d.state == "error":
                obs = d.detail or "-"
            else:
                obs = "-" if d.source == "checkin" else observed_text(d)
            rows[key] = [
                cell(d.host_id),
                cell(d.check),
                state_cell(d),
                cell(since or "-"),
                cell(heal, "yellow" if d.state != "compliant" and d.attempts else ""),
                cell(obs, "dim" if d.state == "compliant" else ""),
            ]
        self.query_one("#drift-table", KeyedTable).sync(rows)

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        d = self.drift.get(event.row_key.value or "")
        if d is not None:
            self.app.push_screen(JsonModal(f"drift {d.host_id} {d.check}", d.as_json()))
