"""The packet store's rows (``packets``): one per packet zip, keyed by its sha256.

The file ``<data>/packets/<sha256>.zip`` is written before its row (osiris_server/packet_store.py),
so a row always has its file; a second upload of the same bytes finds the row and adds nothing.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer

COLS = "sha256, site_id, period_start, period_end, month, bytes, stored_at, stored_by"


def get(db: Database | Writer, sha256: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {COLS} FROM packets WHERE sha256 = ?", [sha256])


def insert_new(w: Writer, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless a packet with its sha256 is stored (another request just now);
    True when this call stored it."""
    if w.one("SELECT sha256 FROM packets WHERE sha256 = ?", [row["sha256"]]) is not None:
        return False
    w.insert("packets", row)
    return True


def for_site(db: Database, site_id: str, limit: int) -> list[dict[str, Any]]:
    return db.query(
        f"SELECT {COLS} FROM packets WHERE site_id = ? ORDER BY period_start DESC, sha256 LIMIT ?",
        [site_id, limit],
    )
