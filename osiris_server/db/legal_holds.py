"""Legal holds: one row per site while it is held (who, when, why); the audit keeps the history.

A hold is read and written inside the index's one write transaction, the same one a prune
decides in (``osiris_server.retention``), so a hold and a prune are ordered: a prune committed
before the hold finishes, nothing decided after it touches the held site.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now


def get(db: Database | Writer, site_id: str) -> dict[str, Any] | None:
    return db.one(
        "SELECT site_id, reason, held_by, held_at FROM legal_holds WHERE site_id = ?", [site_id]
    )


def all_rows(db: Database | Writer, site_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Every hold (``site_ids``: only those sites; None: all), oldest first."""
    sql = "SELECT site_id, reason, held_by, held_at FROM legal_holds"
    params: list[Any] = []
    if site_ids is not None:
        if not site_ids:
            return []
        sql += f" WHERE site_id IN ({','.join('?' for _ in site_ids)})"
        params += site_ids
    return db.query(sql + " ORDER BY held_at, site_id", params)


def held_sites(db: Database | Writer) -> set[str]:
    return {r["site_id"] for r in db.query("SELECT site_id FROM legal_holds")}


def place(w: Writer, site_id: str, reason: str, held_by: str) -> dict[str, Any]:
    row = {"site_id": site_id, "reason": reason, "held_by": held_by, "held_at": now()}
    w.insert("legal_holds", row)
    return row


def release(w: Writer, site_id: str) -> bool:
    return w.execute("DELETE FROM legal_holds WHERE site_id = ?", [site_id]) > 0
