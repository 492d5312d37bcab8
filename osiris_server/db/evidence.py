"""The evidence index: which log leaf holds which appliance's bundle at which ``seq``.

The envelope bytes themselves live in the transparency log (one copy, the signed one); this
table only makes them findable and enforces per-appliance chain order with UNIQUE constraints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osiris_server.db.engine import Database, Writer


def by_hash(db: Database | Writer, bundle_hash: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM evidence WHERE bundle_hash = ?", [bundle_hash])


def by_seq(db: Database | Writer, appliance_id: str, seq: int) -> dict[str, Any] | None:
    return db.one(
        "SELECT bundle_hash, prev_hash, log_index FROM evidence WHERE appliance_id = ? AND seq = ?",
        [appliance_id, seq],
    )


# Values per IN (...) list: far under SQLite's 32,766 bound and PostgreSQL's 65,535 parameters.
CHUNK = 500


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def by_hashes(db: Database | Writer, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``by_hash`` for many at once: {bundle_hash: row} of those indexed. One statement per
    ``CHUNK`` hashes (on PostgreSQL each statement is a round trip: a batch is one, not 100)."""
    out: dict[str, dict[str, Any]] = {}
    for part in _chunks(sorted(set(hashes))):
        marks = ", ".join("?" for _ in part)
        for r in db.query(f"SELECT * FROM evidence WHERE bundle_hash IN ({marks})", part):
            out[r["bundle_hash"]] = r
    return out


def by_seqs(
    db: Database | Writer, appliance_id: str, seqs: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """``by_seq`` for many seqs of one appliance: {seq: row} of those indexed (an IN list, not
    a range: a hostile batch naming seq 1 and seq 10^9 reads two rows, not the whole chain)."""
    out: dict[int, dict[str, Any]] = {}
    for part in _chunks(sorted(set(seqs))):
        marks = ", ".join("?" for _ in part)
        rows = db.query(
            "SELECT seq, bundle_hash, prev_hash, log_index FROM evidence"
            f" WHERE appliance_id = ? AND seq IN ({marks})",
            [appliance_id, *part],
        )
        for r in rows:
            out[int(r["seq"])] = r
    return out


def insert(w: Writer, rows: list[dict[str, Any]]) -> None:
    """Idempotent: a row already present (same bundle hash) is left alone. One
    ``executemany`` (psycopg pipelines it: one round trip for the batch, not one per row)."""
    if not rows:
        return
    cols = list(rows[0])
    marks = ", ".join("?" for _ in cols)
    w.executemany(
        f"INSERT INTO evidence ({', '.join(cols)}) VALUES ({marks})"
        " ON CONFLICT (bundle_hash) DO NOTHING",
        [[r[c] for c in cols] for r in rows],
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


def log_indices_since(db: Database, site_id: str, since: str) -> list[int]:
    """The log positions of a site's bundles that finished at or after ``since`` and whose body
    is stored (the portal's status; retention prunes only years-old bodies)."""
    rows = db.query(
        "SELECT log_index FROM evidence WHERE site_id = ? AND finished_at >= ?"
        " AND pruned_id IS NULL ORDER BY appliance_id, seq",
        [site_id, since],
    )
    return [int(r["log_index"]) for r in rows]
