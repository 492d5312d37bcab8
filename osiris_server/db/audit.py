"""The audit log: who did what to which target, when. Never secrets (callers pass none)."""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jdump, jload, now


def record(
    w: Writer,
    actor: str,
    action: str,
    target: str,
    site_id: str | None = None,
    source: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row inside the caller's transaction, so the change and its record
    commit together or not at all."""
    w.insert(
        "audit",
        {
            "at": now(),
            "actor": actor,
            "action": action,
            "target": target,
            "site_id": site_id,
            "source": source,
            "detail_json": jdump(detail or {}),
        },
    )


def list_rows(
    db: Database,
    site_ids: list[str] | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM audit WHERE 1=1"
    params: list[Any] = []
    if site_ids is not None:
        if not site_ids:
            return []
        sql += f" AND site_id IN ({','.join('?' for _ in site_ids)})"
        params += site_ids
    if action:
        sql += " AND action = ?"
        params.append(action)
    if before_id is not None:
        sql += " AND id < ?"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    rows = db.query(sql, params)
    for r in rows:
        r["detail"] = jload(r.pop("detail_json"), {})
    return rows
