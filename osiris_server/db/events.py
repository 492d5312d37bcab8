"""Read queries behind ``GET /events``: what happened after a cursor, from tables that exist.

There is no events table. Every event is already recorded somewhere the server trusts: the
evidence index (drift, healing, escalations, order results — one row per signed bundle), the
incidents table (opened), and the appliances' check-in times (an appliance is offline from the
moment its last check-in is three intervals old). Each source has its own monotone position —
the log index, the incident's ``feed_seq``, the offline moment with the appliance's ``feed_seq``
as tie-break (migration 9: SQLite's rowid, which PostgreSQL has not, made portable) —
so a cursor is those positions and no event is reported twice or skipped.

Every query is bounded (``limit``; the evidence scan also by ``span`` log entries) and scoped by
``site_ids`` (None: every site, as ``api.common.visible_site_ids`` answers for MSP staff).
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database

# Log entries an evidence scan may step over per request: compliant monitor bundles are most
# of the log and are not events, so a cursor far behind advances in bounded steps.
SPAN = 50_000


def _sites(column: str, site_ids: list[str] | None, params: list[Any]) -> str:
    if site_ids is None:
        return ""
    params += site_ids
    return f" AND {column} IN ({','.join('?' for _ in site_ids)})"


def evidence_head(db: Database) -> int:
    """The highest log index in the evidence index; -1 while it is empty."""
    head = db.scalar("SELECT MAX(log_index) FROM evidence")
    return -1 if head is None else int(head)


def evidence_after(
    db: Database, site_ids: list[str] | None, after: int, upto: int, limit: int, newest: bool
) -> list[dict[str, Any]]:
    """Evidence rows that are events (anything but a compliant bundle; an order's result always)
    with ``after < log_index <= upto``, oldest first (``newest``: the newest ``limit``)."""
    params: list[Any] = [after, upto]
    sql = (
        "SELECT log_index, site_id, appliance_id, host_id, check_id, outcome, order_id,"
        " finished_at, received_at FROM evidence WHERE log_index > ? AND log_index <= ?"
        " AND (outcome <> 'compliant' OR order_id IS NOT NULL)"
    )
    sql += _sites("site_id", site_ids, params)
    sql += f" ORDER BY log_index {'DESC' if newest else 'ASC'} LIMIT ?"
    params.append(limit)
    rows = db.query(sql, params)
    return rows[::-1] if newest else rows


def incident_head(db: Database) -> int:
    return int(db.scalar("SELECT COALESCE(MAX(feed_seq), 0) FROM incidents") or 0)


def incidents_after(
    db: Database, site_ids: list[str] | None, after: int, upto: int, limit: int, newest: bool
) -> list[dict[str, Any]]:
    """Incidents opened with ``after < feed_seq <= upto`` (no summary: the feed carries no
    free text an appliance wrote)."""
    params: list[Any] = [after, upto]
    sql = (
        "SELECT feed_seq AS rid, id, site_id, appliance_id, host_id, kind, severity, first_seen"
        " FROM incidents WHERE feed_seq > ? AND feed_seq <= ?"
    )
    sql += _sites("site_id", site_ids, params)
    sql += f" ORDER BY feed_seq {'DESC' if newest else 'ASC'} LIMIT ?"
    params.append(limit)
    rows = db.query(sql, params)
    return rows[::-1] if newest else rows


def appliance_head(db: Database) -> int:
    return int(db.scalar("SELECT COALESCE(MAX(feed_seq), 0) FROM appliances") or 0)


def offline_between(
    db: Database,
    site_ids: list[str] | None,
    after: tuple[int, int],
    now: int,
    limit: int,
    newest: bool,
) -> list[dict[str, Any]]:
    """Appliances (not revoked, seen at least once) whose offline moment — last check-in plus
    three of their site's intervals — is after ``after`` (moment, feed_seq) and not after ``now``.
    An appliance that came back and went silent again has a new, later moment: reported again."""
    t, rid = after
    params: list[Any] = [now, t, t, rid]
    sql = (
        "SELECT * FROM (SELECT a.feed_seq AS rid, a.id, a.site_id, a.hostname, a.last_seen_epoch,"
        " a.last_seen_epoch + 3 * s.checkin_interval_s AS off_at"
        " FROM appliances a JOIN sites s ON s.id = a.site_id"
        " WHERE a.revoked_at IS NULL AND a.last_seen_epoch IS NOT NULL"
    )
    scope: list[Any] = []
    sql += _sites("a.site_id", site_ids, scope)
    sql += ") offline WHERE off_at <= ? AND (off_at > ? OR (off_at = ? AND rid > ?))"
    order = "DESC" if newest else "ASC"
    sql += f" ORDER BY off_at {order}, rid {order} LIMIT ?"
    rows = db.query(sql, [*scope, *params, limit])
    return rows[::-1] if newest else rows
