"""Alert deliveries (migration 13): one row per (incident, route, event, escalation step).

States: ``pending`` (new) → ``sending`` (claimed with a lease) → ``sent``; a failure goes to
``retrying`` with ``next_attempt_at`` pushed out (exponential, capped), and after the last
attempt to ``dead``. The primary key of the fan-out is the UNIQUE (incident, route, event,
step): queueing the same alert twice — two servers seeing one SLA breach, an acknowledgement
sent again — inserts nothing the second time. Claiming works as ``alert_queue`` does: the
UPDATE succeeds only while the row is due and unleased, so one process wins each row on either
engine; ``finish`` only counts while the finisher still holds the lease.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db import lease
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now

STATES = ("pending", "sending", "sent", "retrying", "dead")
EVENTS = ("trigger", "escalate", "acknowledge", "resolve")
PUBLIC = (
    "d.id, d.incident_id, d.route_id, d.route_name, d.preset, d.event, d.step, d.state,"
    " d.attempts, d.next_attempt_at, d.last_error, d.created_epoch, d.sent_epoch, i.site_id"
)


def enqueue(w: Writer, incident_id: str, route: dict[str, Any], event: str, step: int, at: int):
    """Queue one delivery unless this (incident, route, event, step) is already queued."""
    have = w.scalar(
        "SELECT id FROM alert_deliveries WHERE incident_id = ? AND route_id = ? AND event = ?"
        " AND step = ?",
        [incident_id, route["id"], event, step],
    )
    if have is not None:
        return None
    row_id = new_id("dlv")
    w.insert(
        "alert_deliveries",
        {
            "id": row_id,
            "incident_id": incident_id,
            "route_id": route["id"],
            "route_name": route["name"],
            "preset": route["preset"],
            "event": event,
            "step": step,
            "state": "pending",
            "next_attempt_at": at,
            "created_epoch": at,
        },
    )
    return row_id


def triggered_routes(w: Writer | Database, incident_id: str) -> list[str]:
    """Routes that were sent (or are sending) an alert of this incident: who must hear of its
    acknowledgement or resolution."""
    rows = w.query(
        "SELECT DISTINCT route_id FROM alert_deliveries WHERE incident_id = ?"
        " AND event IN ('trigger', 'escalate')",
        [incident_id],
    )
    return [r["route_id"] for r in rows]


def claim(db: Database, claimer: str, at: int, lease_s: int, limit: int = 20):
    """Claim up to ``limit`` due deliveries for ``lease_s`` seconds; the rows this claimer won
    (the shared lease pattern, ``db/lease.py``)."""
    return lease.claim(
        db,
        "SELECT id FROM alert_deliveries WHERE state IN ('pending', 'retrying', 'sending')"
        " AND next_attempt_at <= ? AND claimed_until < ? ORDER BY next_attempt_at, id LIMIT ?",
        [at, at, limit],
        "UPDATE alert_deliveries SET state = 'sending', claimed_until = ?, claimed_by = ?,"
        " attempts = attempts + 1 WHERE id = ? AND state IN ('pending', 'retrying',"
        " 'sending') AND next_attempt_at <= ? AND claimed_until < ?",
        lambda row: [at + lease_s, claimer, row["id"], at, at],
        lambda w, row: w.one("SELECT * FROM alert_deliveries WHERE id = ?", [row["id"]]),
    )


def finish(
    db: Database, row_id: str, claimer: str, state: str, at: int, retry_at: int, error: str | None
) -> bool:
    """Record the outcome of one attempt (sent, retrying, dead) if ``claimer`` still holds it."""
    assert state in ("sent", "retrying", "dead")

    def run(w: Writer) -> bool:
        done = w.execute(
            "UPDATE alert_deliveries SET state = ?, sent_epoch = ?, next_attempt_at = ?,"
            " claimed_until = 0, last_error = ? WHERE id = ? AND claimed_by = ?"
            " AND state = 'sending'",
            [
                state,
                at if state == "sent" else None,
                retry_at,
                None if error is None else error[:300],
                row_id,
                claimer,
            ],
        )
        if done and state == "sent":
            w.execute(
                "UPDATE incidents SET alerted_at = ? WHERE id = (SELECT incident_id FROM"
                " alert_deliveries WHERE id = ?) AND alerted_at IS NULL",
                [now(), row_id],
            )
        return done > 0

    return db.transact(run)


def due_count(db: Database, at: int) -> int:
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM alert_deliveries WHERE state IN ('pending', 'retrying',"
            " 'sending') AND next_attempt_at <= ? AND claimed_until < ?",
            [at, at],
        )
        or 0
    )


def list_rows(
    db: Database,
    site_ids: list[str] | None,
    state: str | None,
    incident_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {PUBLIC} FROM alert_deliveries d JOIN incidents i ON i.id = d.incident_id"
        " WHERE 1=1"
    )
    params: list[Any] = []
    if site_ids is not None:
        if not site_ids:
            return []
        sql += f" AND i.site_id IN ({','.join('?' for _ in site_ids)})"
        params += site_ids
    if state:
        sql += " AND d.state = ?"
        params.append(state)
    if incident_id:
        sql += " AND d.incident_id = ?"
        params.append(incident_id)
    sql += " ORDER BY d.created_epoch DESC, d.id LIMIT ?"
    params.append(limit)
    return db.query(sql, params)
