"""Small helpers shared by the db modules: ids, times, JSON columns."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from osiris_core.canonical import utc_now


def new_id(prefix: str) -> str:
    """``<prefix>_<20 hex>``: 80 random bits, unguessable, safe in key names and URLs."""
    return f"{prefix}_{secrets.token_hex(10)}"


def now() -> str:
    return utc_now()


def epoch() -> int:
    return int(time.time())


def jdump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def jload(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    return json.loads(text)


def next_feed_seq(w: Any, table: str) -> int:
    """The next ``feed_seq`` of ``table`` (incidents, appliances: GET /events' positions).

    Why MAX + 1 and not a database sequence: it runs inside the store's one write transaction,
    so no two inserts can read the same maximum, on either engine; and a position is never
    handed out by a transaction that later rolls back (a sequence would leave holes, harmless,
    but this keeps SQLite's old rowid behaviour exactly)."""
    return int(w.scalar(f"SELECT COALESCE(MAX(feed_seq), 0) + 1 FROM {table}"))
