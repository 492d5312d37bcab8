"""The lease claim both alert queues share (``alert_queue``, ``alert_deliveries``).

Why one helper: the two tables are claimed the same way, and the subtle part — a plain read
first, then one conditional UPDATE per row inside one write transaction — must stay the same
in both. The read costs an idle queue (the common case, polled by every server process) no
write transaction; the UPDATE re-checks everything the read selected on (unclaimed or lease
run out, still due), so a stale read is harmless and exactly one claimer wins each row on
either engine (SQLite: one writer; PostgreSQL: the advisory writer lock, and the row lock's
re-check of the WHERE under READ COMMITTED). Each table keeps its own SQL: only the pattern
lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osiris_server.db.engine import Database, Writer


def claim(
    db: Database,
    due_sql: str,
    due_args: list[Any],
    update_sql: str,
    update_args: Callable[[dict[str, Any]], list[Any]],
    won: Callable[[Writer, dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Rows of ``due_sql`` that this claimer won: each one whose ``update_sql`` (the conditional
    claim, with ``update_args(row)``) changed a row, as ``won(w, row)`` reads it back."""
    due = db.query(due_sql, due_args)
    if not due:
        return []

    def run(w: Writer) -> list[dict[str, Any]]:
        return [won(w, row) for row in due if w.execute(update_sql, update_args(row))]

    return db.transact(run)
