"""The Incidents tab: the site's incidents that concern this appliance (or no appliance), who
acknowledged them and who owns them; a acknowledges, s assigns (to a person, or empty to
clear), x or R resolves with an optional note. Each asks first, naming the incident and what
the change does; the server audits all three."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...client import Incident, UsageError
from ...columns import INCIDENTS, Column, cols
from ...widgets.forms import Field, FormFlow, FormScreen
from ...widgets.modals import ConfirmModal
from ...widgets.table import KeyedTable
from .tab import ApplianceTab


def owner(i: Incident) -> str:
    """Who has it: the assignee, else who acknowledged it, else nothing."""
    if i.assignee:
        return i.assignee
    return f"ack {i.acknowledged_by}" if i.acknowledged_at else ""


SHOWN = cols(
    "incidents (console)",
    *INCIDENTS.pick("sev", "status", "host", "kind", "count", count="N"),
    Column("owner", "OWNER", owner, style=lambda i: "" if i.assignee else "dim"),
    INCIDENTS["summary"],
)
# The server's grammar for an assignee (osiris_server/api/incidents.py ASSIGNEE): checked here
# too so a typo is refused in the form, not after a round trip.
ASSIGNEE_MAX = 64


def check_assignee(values: dict[str, Any]) -> str | None:
    who = (values.get("assignee") or "").strip()
    if not who:
        return None
    if len(who) > ASSIGNEE_MAX or not (who[0].isascii() and who[0].isalnum()):
        raise UsageError("an assignee is a name or e-mail address (letters first, ≤ 64)")
    if any(not (c.isascii() and (c.isalnum() or c in " ._@+'-")) for c in who):
        raise UsageError("an assignee may use letters, digits, space and . _ @ + ' - only")
    return who


def check_note(values: dict[str, Any]) -> str | None:
    note = (values.get("note") or "").strip()
    if len(note) > 1024:
        raise UsageError("a resolution note is at most 1024 characters")
    return note or None


class IncidentsTab(ApplianceTab):
    TITLE = "Incidents"
    TAB_ID = "incidents"
    POLLED = True
    BINDINGS = [
        Binding("a", "ack", "Ack", id="detail.inc_ack"),
        Binding("s", "assign", "Assign", id="detail.inc_assign"),
        Binding("x,R", "resolve", "Resolve", id="detail.inc_resolve"),
    ]
    MUTATIONS = frozenset({"ack", "assign", "resolve"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.incidents: dict[str, Incident] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(SHOWN.keyed(), id="inc-table")

    def fetch(self, client: Any) -> list[Any]:
        return list(client.incidents(site_id=self.ctx.site_id, limit=500))

    def show(self, data: list[Any]) -> None:
        mine = [i for i in data if i.appliance_id in (None, self.ctx.appliance.id)]
        self.incidents = {i.id: i for i in mine}
        self.query_one("#inc-table", KeyedTable).sync({i.id: SHOWN.cells(i) for i in mine})

    def _open_incident(self) -> Incident | None:
        if not self.mutation_allowed():
            return None
        key = self.query_one("#inc-table", KeyedTable).cursor_key()
        inc = self.incidents.get(key) if key else None
        if inc is not None and inc.status != "open":
            self.app.notify(f"incident {inc.id} is already resolved", severity="warning")
            return None
        return inc

    def _lines(self, inc: Incident, action: str) -> list[tuple[str, str]]:
        ctx = self.ctx
        return [
            ("site", ctx.site.name if ctx.site else ctx.site_id),
            ("host", inc.host_id),
            ("incident", f"{inc.id} {inc.severity} {inc.kind}"),
            ("summary", inc.summary),
            ("action", action),
        ]

    def action_ack(self) -> None:
        inc = self._open_incident()
        if inc is None:
            return

        def go(yes: bool | None) -> None:
            if yes:
                self.incident_call(None, "ack", inc.id, None, {})

        self.app.push_screen(
            ConfirmModal(
                f"Acknowledge incident {inc.id}?",
                self._lines(inc, "acknowledge"),
                "Impact: the incident stays open; the team sees who is on it (audited)",
            ),
            go,
        )

    def action_assign(self) -> None:
        inc = self._open_incident()
        if inc is None:
            return
        fields = [Field("assignee", "assign to (name or e-mail; empty clears)",
                        value=inc.assignee or "")]  # fmt: skip

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            intro = [f"{inc.id} {inc.kind} on {inc.host_id}: now "
                     f"{inc.assignee or 'unassigned'}"]  # fmt: skip
            return FormScreen(f"Assign incident {inc.id}", fields, check_assignee, intro,
                              values, error)  # fmt: skip

        def confirm(who: str | None) -> ConfirmModal:
            old = inc.assignee or "unassigned"
            return ConfirmModal(
                f"Assign incident {inc.id}?",
                self._lines(inc, f"assign {old} → {who or 'unassigned'}"),
                f"Impact: {who} owns this open incident (audited)"
                if who
                else "Impact: nobody owns this open incident any more (audited)",
            )

        flow: FormFlow

        def send(who: str | None, values: dict[str, Any]) -> None:
            self.incident_call(flow, "assign", inc.id, who, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()

    def action_resolve(self) -> None:
        inc = self._open_incident()
        if inc is None:
            return
        fields = [Field("note", "resolution note (optional: what was done)")]

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            return FormScreen(f"Resolve incident {inc.id}", fields, check_note, None,
                              values, error)  # fmt: skip

        def confirm(note: str | None) -> ConfirmModal:
            lines = self._lines(inc, "resolve")
            if note:
                lines.append(("note", note))
            return ConfirmModal(
                f"Resolve incident {inc.id}?",
                lines,
                "Impact: the incident closes; if the appliance reports it again a new one "
                "opens (audited)",
            )

        flow: FormFlow

        def send(note: str | None, values: dict[str, Any]) -> None:
            self.incident_call(flow, "resolve", inc.id, note, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()

    @work(thread=True, group="mutation")
    def incident_call(
        self,
        flow: FormFlow | None,
        op: str,
        incident_id: str,
        arg: str | None,
        values: dict[str, Any],
    ) -> None:
        client = self.ctx.client
        what = f"{op} incident {incident_id}" + (f" {arg!r}" if arg else "")
        try:
            if op == "ack":
                res = client.acknowledge_incident(incident_id)
                result = f"acknowledged by {res.acknowledged_by}"
            elif op == "assign":
                res = client.assign_incident(incident_id, arg)
                result = f"assigned to {res.assignee or 'nobody'}"
            else:
                res = client.resolve_incident(incident_id, arg)
                result = f"{res.status} by {res.resolved_by}"
        except Exception as e:  # noqa: BLE001
            msg = worker_error(e)
            self.record(what, msg, False)
            if flow is not None:
                flow.refused(values, msg)
            return
        self.record(what, result)
        self.ctx.load_main()
