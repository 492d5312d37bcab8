"""The WORM copy's SQL (osiris_server/worm.py): ``worm_objects`` rows and ``worm_state``.

``worm_objects`` has one row per content-addressed object key: ``pending`` once the pass has
decided to put it, ``uploaded`` (with the bucket's version id and retain-until) once S3 took
it. Inserting a key twice is a no-op (``ON CONFLICT DO NOTHING``), so two passes, or a pass
re-run after a kill, never queue an object twice. ``worm_state`` holds named values: the
retention high-water mark, the upload lease and the last pass.
"""

from __future__ import annotations

import json
from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now

HIGH_WATER = "retention_years_max"
LEASE = "upload_lease"
LAST_PASS = "last_pass"


def get_state(db: Database | Writer, name: str) -> str | None:
    v = db.scalar("SELECT value FROM worm_state WHERE name = ?", [name])
    return None if v is None else str(v)


def set_state(w: Writer, name: str, value: str) -> None:
    w.execute(
        "INSERT INTO worm_state (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name)"
        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [name, value, now()],
    )


def high_water(db: Database | Writer) -> int:
    v = get_state(db, HIGH_WATER)
    return int(v) if v else 0


def take_lease(w: Writer, holder: str, at: int, for_s: int) -> bool:
    """The upload lease if it is free, run out or already ours (one pass at a time)."""
    raw = get_state(w, LEASE)
    if raw:
        cur = json.loads(raw)
        if cur["holder"] != holder and int(cur["until"]) > at:
            return False
    set_state(w, LEASE, json.dumps({"holder": holder, "until": at + for_s}))
    return True


def drop_lease(w: Writer, holder: str) -> None:
    raw = get_state(w, LEASE)
    if raw and json.loads(raw)["holder"] == holder:
        set_state(w, LEASE, json.dumps({"holder": holder, "until": 0}))


def add_pending(w: Writer, row: dict[str, Any]) -> None:
    cols = ("key", "kind", "sha256", "bytes", "first_index", "last_index", "site_id")
    w.execute(
        f"INSERT INTO worm_objects ({', '.join(cols)}, state, created_at)"
        f" VALUES ({', '.join('?' for _ in cols)}, 'pending', ?) ON CONFLICT (key) DO NOTHING",
        [row.get(c) for c in cols] + [now()],
    )


def mark_uploaded(w: Writer, key: str, version_id: str | None, retain_until: str) -> None:
    w.execute(
        "UPDATE worm_objects SET state = 'uploaded', version_id = ?, retain_until = ?,"
        " uploaded_at = ? WHERE key = ?",
        [version_id, retain_until, now(), key],
    )


def pending(db: Database) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM worm_objects WHERE state = 'pending' ORDER BY created_at, key")


def keys_of(db: Database, kind: str) -> set[str]:
    return {r["key"] for r in db.query("SELECT key FROM worm_objects WHERE kind = ?", [kind])}


def last_leaf(db: Database) -> int:
    """The last log index a queued leaves object covers (-1: none yet)."""
    v = db.scalar("SELECT MAX(last_index) FROM worm_objects WHERE kind = 'leaves'")
    return -1 if v is None else int(v)


def summary(db: Database) -> list[dict[str, Any]]:
    return db.query(
        "SELECT kind, state, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes,"
        " MAX(uploaded_at) AS newest FROM worm_objects GROUP BY kind, state"
    )
