"""Incidents: stored once per (appliance, host, kind) while open; repeats bump a counter."""

from __future__ import annotations

import time
from typing import Any

from osiris_core import severity
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import epoch, jdump, jload, new_id, next_feed_seq, now

# What an appliance may send: the one scale (osiris_core/severity.py), plus the old server words
# an appliance running an older agent still sends (normalised on the way in).
SEVERITIES = severity.SEVERITIES + tuple(severity.LEGACY)


def open_or_bump(
    w: Writer,
    site_id: str,
    appliance_id: str | None,
    host_id: str,
    kind: str,
    severity: str,
    summary: str,
    details: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """Returns (incident, new). A repeat of an open incident is not new (no second alert)."""
    existing = w.one(
        "SELECT id, count FROM incidents WHERE site_id = ? AND appliance_id IS NOT DISTINCT FROM ?"
        " AND host_id = ? AND kind = ? AND status = 'open'",
        [site_id, appliance_id, host_id, kind],
    )
    ts = now()
    if existing is not None:
        w.execute(
            "UPDATE incidents SET count = count + 1, last_seen = ?, summary = ?,"
            " details_json = ? WHERE id = ?",
            [ts, summary, jdump(details), existing["id"]],
        )
        return {"id": existing["id"], "count": existing["count"] + 1}, False
    row = {
        "id": new_id("inc"),
        "site_id": site_id,
        "appliance_id": appliance_id,
        "host_id": host_id,
        "kind": kind,
        "severity": severity,
        "summary": summary,
        "details_json": jdump(details),
        "status": "open",
        "count": 1,
        "first_seen": ts,
        "last_seen": ts,
        "first_seen_epoch": epoch(),
        "feed_seq": next_feed_seq(w, "incidents"),
    }
    w.insert("incidents", row)
    return {"id": row["id"], "count": 1}, True


def _out(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["details"] = jload(row.pop("details_json"), {})
    row.pop("first_seen_epoch", None)
    return row


def get(db: Database, incident_id: str) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM incidents WHERE id = ?", [incident_id])
    return _out(row) if row else None


def list_rows(
    db: Database, site_ids: list[str] | None, status: str | None, limit: int
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM incidents WHERE 1=1"
    params: list[Any] = []
    if site_ids is not None:
        if not site_ids:
            return []
        sql += f" AND site_id IN ({','.join('?' for _ in site_ids)})"
        params += site_ids
    if status:
        sql += " AND status = ?"
        params.append(status)
    sql += " ORDER BY last_seen DESC, id LIMIT ?"
    params.append(limit)
    return [_out(r) for r in db.query(sql, params)]


def resolve(w: Writer, incident_id: str, actor: str, note: str | None = None) -> bool:
    return (
        w.execute(
            "UPDATE incidents SET status = 'resolved', resolved_at = ?, resolved_by = ?,"
            " resolution_note = ? WHERE id = ? AND status = 'open'",
            [now(), actor, note, incident_id],
        )
        > 0
    )


def acknowledge(w: Writer, incident_id: str, actor: str) -> bool:
    """Mark an open incident seen by ``actor``; a second acknowledgement changes nothing (the
    first one says who looked first)."""
    return (
        w.execute(
            "UPDATE incidents SET acknowledged_at = ?, acknowledged_by = ?"
            " WHERE id = ? AND status = 'open' AND acknowledged_at IS NULL",
            [now(), actor, incident_id],
        )
        > 0
    )


def assign(w: Writer, incident_id: str, assignee: str | None) -> bool:
    """Set (or with ``None`` clear) who works on an open incident; False if nothing changed."""
    return (
        w.execute(
            "UPDATE incidents SET assignee = ? WHERE id = ? AND status = 'open'"
            " AND assignee IS DISTINCT FROM ?",
            [assignee, incident_id, assignee],
        )
        > 0
    )


def mark_alerted(db: Database, incident_id: str) -> None:
    with db.write() as w:
        w.execute("UPDATE incidents SET alerted_at = ? WHERE id = ?", [now(), incident_id])


def count_since(db: Database, site_ids: list[str] | None, seconds: int) -> int:
    sql = "SELECT COUNT(*) FROM incidents WHERE first_seen_epoch >= ?"
    params: list[Any] = [int(time.time()) - seconds]
    if site_ids is not None:
        if not site_ids:
            return 0
        sql += f" AND site_id IN ({','.join('?' for _ in site_ids)})"
        params += site_ids
    return int(db.scalar(sql, params) or 0)
