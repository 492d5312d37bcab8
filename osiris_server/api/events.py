"""``GET /events``: what just happened across every site the caller may see, in one cheap call.

Why: a technician watching the fleet needs "drift found, healed by L1, escalated, order done,
appliance offline" without the console fetching every appliance's evidence chain. The feed is
derived at request time from records the server already keeps (``db/events.py``): the evidence
index (plus each event bundle's ``tier`` and ``runbook_id``, read from its log entry — the index
does not hold them), incidents opened, and offline moments (last check-in + 3 intervals).

No payloads: no pre/post state, no incident summary, nothing an appliance wrote as free text —
ids, outcome words and times only, so the feed carries no PHI by construction.

Paging: ``since`` is the opaque ``cursor`` of the previous answer (four positions, one per
source); an answer holds at most ``limit`` events, oldest first, and ``more`` says another call
would return more at once. Without ``since`` the answer is the newest ``limit`` events and a
cursor at the head — a console's first call. Scope is exactly ``/incidents``'s: MSP staff every
site, a partner its own sites, a client token its one site; ``site`` narrows to one visible site.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from osiris_core import canonical, ids
from osiris_core.errors import OsirisError
from osiris_server.api.common import SITE_ID, read, site_for, visible_site_ids
from osiris_server.db import events as db_events
from osiris_server.db.util import epoch
from osiris_server.http import F, Request, Response, json_response

if TYPE_CHECKING:
    from osiris_server.app import App

DEFAULT_LIMIT = 200
CURSOR = F(
    "string",
    pattern=r"[0-9]{1,19}(\.[0-9]{1,19}){3}",
    max_len=80,
    description="the cursor of the previous answer; omit for the newest events",
)
QUERY = {
    "since": CURSOR,
    "site": SITE_ID,
    "limit": F("integer", minimum=1, maximum=1000, description=f"default {DEFAULT_LIMIT}"),
}
KINDS = (
    "drift",  # a check found drift (or a rule only alerted)
    "error",  # a check could not run
    "healed",  # L1/L2/L3 fixed it (tier says which)
    "heal_failed",  # healing ran and did not fix it (failed, reverted)
    "escalated",  # handed to a human (L2/L3)
    "deferred",  # healing waits for the maintenance window
    "order_done",  # an operator order's result (outcome says how it went)
    "refused",  # a bundle recording something refused or expired (a policy, an order)
    "incident",  # an incident opened
    "offline",  # an appliance's last check-in is three intervals old
)
EVENT = {
    "id": F("string", required=True, max_len=200, description="unique per event"),
    "kind": F("string", required=True, enum=KINDS),
    "at": F("string", required=True, description="server time the event happened or arrived"),
    "site_id": F.of(ids.SITE_ID, required=True),
    "appliance_id": F("string", required=True, nullable=True),
    "host_id": F("string", nullable=True),
    "check": F("string", nullable=True),
    "outcome": F("string", nullable=True),
    "tier": F("string", nullable=True),
    "runbook_id": F("string", nullable=True),
    "order_id": F("string", nullable=True),
    "incident_id": F("string", nullable=True),
    "severity": F("string", nullable=True),
}
RESPONSE = {
    "events": F("array", required=True, items=F("object", fields=EVENT)),
    "cursor": CURSOR,
    "more": F("boolean", required=True),
}


def evidence_kind(outcome: str, tier: str | None, order_id: str | None) -> str:
    """The event a bundle records (docs/evidence-format.md §4's outcomes, tiers)."""
    if order_id:
        return "order_done"
    if outcome == "healed":
        return "healed"
    if outcome == "escalated":
        return "escalated"
    if outcome == "failed":
        return "error" if tier in (None, "monitor") else "heal_failed"
    if outcome == "reverted":
        return "heal_failed"
    if outcome == "deferred":
        return "deferred"
    if outcome in ("rejected", "expired"):
        return "refused"
    return "drift"  # alert, and any outcome a newer agent adds


def _iso(epoch_s: int) -> str:
    return canonical.format_time(dt.datetime.fromtimestamp(epoch_s, dt.UTC))


def _blank(kind: str, at: str, site_id: str, appliance_id: str | None) -> dict[str, Any]:
    return {
        "kind": kind, "at": at, "site_id": site_id, "appliance_id": appliance_id,
        "host_id": None, "check": None, "outcome": None, "tier": None, "runbook_id": None,
        "order_id": None, "incident_id": None, "severity": None,
    }  # fmt: skip


def _bundle_facts(app: App, log_index: int) -> tuple[str | None, str | None]:
    """(tier, runbook_id) from the signed entry; (None, None) if it cannot be read."""
    try:
        b = canonical.loads(app.log.entry(log_index))["bundle"]
        return b.get("tier"), b.get("runbook_id")
    except (OsirisError, KeyError, TypeError, ValueError):
        return None, None


def _evidence_event(app: App, r: dict[str, Any]) -> dict[str, Any]:
    tier, runbook = _bundle_facts(app, r["log_index"])
    e = _blank(
        evidence_kind(r["outcome"], tier, r["order_id"]),
        r["received_at"],
        r["site_id"],
        r["appliance_id"],
    )
    e.update(
        id=f"ev:{r['log_index']}", host_id=r["host_id"], check=r["check_id"],
        outcome=r["outcome"], tier=tier, runbook_id=runbook, order_id=r["order_id"],
    )  # fmt: skip
    return e


def _incident_event(r: dict[str, Any]) -> dict[str, Any]:
    e = _blank("incident", r["first_seen"], r["site_id"], r["appliance_id"])
    e.update(
        id=f"inc:{r['id']}", host_id=r["host_id"], check=r["kind"], incident_id=r["id"],
        severity=r["severity"],
    )  # fmt: skip
    return e


def _offline_event(r: dict[str, Any]) -> dict[str, Any]:
    e = _blank("offline", _iso(r["off_at"]), r["site_id"], r["id"])
    e["id"] = f"off:{r['id']}:{r['off_at']}"
    return e


def list_events(app: App, req: Request) -> Response:
    q = req.params
    if "site" in q:
        site_for(app, req.principal, q["site"])
        sites: list[str] | None = [q["site"]]
    else:
        sites = visible_site_ids(app, req.principal)
    limit = q.get("limit", DEFAULT_LIMIT)
    app.heartbeats.flush()  # offline moments from exact check-in times
    db = app.db
    now = epoch()
    e_head = db_events.evidence_head(db) + 1  # the next log index the index will hold
    i_head = db_events.incident_head(db)
    a_head = db_events.appliance_head(db)
    newest = "since" not in q
    if newest:
        e_from, i_from, off_from = max(0, e_head - db_events.SPAN), 0, (0, 0)
    else:
        # clamped: 19 digits can exceed SQLite's integers; a cursor past a head self-corrects
        e_from, i_from, t, r = (min(int(x), 2**62) for x in q["since"].split("."))
        off_from = (min(t, now), r)
    e_upto = min(e_head, e_from + db_events.SPAN)  # exclusive
    if sites == []:
        ev_rows: list[dict[str, Any]] = []
        inc_rows: list[dict[str, Any]] = []
        off_rows: list[dict[str, Any]] = []
    else:
        ev_rows = db_events.evidence_after(db, sites, e_from - 1, e_upto - 1, limit, newest)
        inc_rows = db_events.incidents_after(db, sites, i_from, i_head, limit, newest)
        off_rows = db_events.offline_between(db, sites, off_from, now, limit, newest)
    # (at, source, position, row): one time order across the three sources
    # One time order across the three sources, each kept in its own position order (a merge,
    # not a sort): then what a page takes of a source is always a prefix of it, so the cursor
    # can move past it — even where two ingests were timed in the other order than logged.
    merged = list(
        heapq.merge(
            [(r["received_at"], 0, r["log_index"], r) for r in ev_rows],
            [(r["first_seen"], 1, r["rid"], r) for r in inc_rows],
            [(_iso(r["off_at"]), 2, (r["off_at"], r["rid"]), r) for r in off_rows],
            key=lambda m: (m[0], m[1]),
        )
    )
    taken = merged[-limit:] if newest else merged[:limit]
    if newest:  # a first call starts at the head whatever it showed
        cursor, more = (e_head, i_head, now, a_head), False
    else:
        taken, cursor, more = _advance(
            taken,
            ([m[2] for m in merged if m[1] == s] for s in range(3)),
            limit,
            (e_from, i_from, off_from),
            (e_upto, e_head, i_head, now, a_head),
        )
    out = []
    for _at, source, _pos, r in taken:
        if source == 0:
            out.append(_evidence_event(app, r))
        elif source == 1:
            out.append(_incident_event(r))
        else:
            out.append(_offline_event(r))
    return json_response({"events": out, "cursor": ".".join(str(x) for x in cursor), "more": more})


def _advance(
    taken: list[tuple[Any, int, Any, dict[str, Any]]],
    positions: Iterable[list[Any]],
    limit: int,
    start: tuple[int, int, tuple[int, int]],
    heads: tuple[int, int, int, int, int],
) -> tuple[list[tuple[Any, int, Any, dict[str, Any]]], tuple[int, int, int, int], bool]:
    """What to return and the next cursor. Per source, the cursor moves past the longest run of
    its rows, in position order, that were all taken (the merge makes that every taken row; the
    check keeps it true should the merge change: never skip a row to return a later one). A
    source whose rows were all taken, and which did not fill its own ``limit``, moves to the
    bound it was read up to."""
    e_upto, e_head, i_head, now, a_head = heads
    got = {(m[1], m[2]) for m in taken}
    ends: list[Any] = []
    done: list[bool] = []
    for source, pos in enumerate(positions):
        ordered = sorted(pos)
        n = 0
        while n < len(ordered) and (source, ordered[n]) in got:
            n += 1
        ends.append(ordered[n - 1] if n else None)
        done.append(n == len(ordered) and len(ordered) < limit)
    taken = [m for m in taken if ends[m[1]] is not None and m[2] <= ends[m[1]]]
    e = e_upto if done[0] else (ends[0] + 1 if ends[0] is not None else start[0])
    i = i_head if done[1] else (ends[1] if ends[1] is not None else start[1])
    off = (now, a_head) if done[2] else (ends[2] if ends[2] is not None else start[2])
    more = not all(done) or e < e_head
    return taken, (e, i, off[0], off[1]), more


ROUTES = [
    read(
        "GET",
        "/api/v1/events",
        list_events,
        query=QUERY,
        response=RESPONSE,
        summary="Fleet events after a cursor: drift, healing, escalations, order results, "
        "incidents opened, appliances gone offline (ids and words only, no payloads)",
        tag="events",
    ),
]
