"""The evidence index: which log leaf holds which appliance's bundle at which ``seq``.

The envelope bytes themselves live in the transparency log (one copy, the signed one); this
table only makes them findable and enforces per-appliance chain order with UNIQUE constraints.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer


def by_hash(db: Database | Writer, bundle_hash: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM evidence WHERE bundle_hash = ?", [bundle_hash])


def by_seq(db: Database | Writer, appliance_id: str, seq: int) -> dict[str, Any] | None:
    return db.one(
        "SELECT bundle_hash, prev_hash, log_index FROM evidence WHERE appliance_id = ? AND seq = ?",
        [appliance_id, seq],
    )


def insert(w: Writer, rows: list[dict[str, Any]]) -> None:
    """Idempotent: a row already present (same bundle hash) is left alone."""
    for r in rows:
        cols = ", ".join(r)
        marks = ", ".join("?" for _ in r)
        w.execute(
            f"INSERT INTO evidence ({cols}) VALUES ({marks}) ON CONFLICT (bundle_hash) DO NOTHING",
            list(r.values()),
        )


def query(
    db: Database, site_id: str, appliance_id: str | None, after_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM evidence WHERE site_id = ?"
    params: list[Any] = [site_id]
    if appliance_id is not None:
        sql += " AND appliance_id = ?"
        params.append(appliance_id)
    if after_seq is not None:
        sql += " AND seq > ?"
        params.append(after_seq)
    sql += " ORDER BY appliance_id, seq LIMIT ?"
    params.append(limit)
    return db.query(sql, params)


def drift_counts(db: Database, site_ids: list[str] | None) -> dict[str, int]:
    return {}


def max_seq(db: Database | Writer, appliance_id: str, below: int | None = None) -> int:
    """The highest accepted seq of the appliance (under ``below`` if given); 0 when none."""
    if below is None:
        m = db.scalar("SELECT MAX(seq) FROM evidence WHERE appliance_id = ?", [appliance_id])
    else:
        m = db.scalar(
            "SELECT MAX(seq) FROM evidence WHERE appliance_id = ? AND seq < ?",
            [appliance_id, below],
        )
    return int(m or 0)
