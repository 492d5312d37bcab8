"""``LogStore``: the log's tables on one engine, reached only through functions.

Why the log hands functions instead of holding a connection: the proof in ``log.py`` needs
"read the committed tree, extend it, store it" to be ONE transaction under the one writer
lock. ``transact(fn)`` is exactly that on both engines (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: ``pg_advisory_xact_lock(LOG_LOCK_KEY)`` first in the transaction), committed —
durably — before it returns, rolled back if ``fn`` raises. Nothing else can write.

The DDL is written once with SQLite's types and translated per dialect (``BLOB`` → ``BYTEA``,
``INTEGER`` → ``BIGINT``: a log index outgrows int4 long before SQLite's 64-bit integers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from osiris_core.errors import OsirisError
from osiris_server.storage.base import Engine, Tx

T = TypeVar("T")

# The log's writer lock on PostgreSQL; the index has its own (db.engine.INDEX_LOCK_KEY), so an
# append never waits for an index write. "OSIRIS-L" as an int64.
LOG_LOCK_KEY = 0x4F53495249532D4C & 0x7FFFFFFFFFFFFFFF
LOG_SCHEMA = "osiris_log"  # the log's tables on PostgreSQL, apart from the index's names

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leaves (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL UNIQUE,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS hashes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cosigners (
    name TEXT NOT NULL,
    key_id BLOB NOT NULL,
    size INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    line TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (name, key_id)
);
CREATE INDEX IF NOT EXISTS cosigners_size ON cosigners (size)
"""


class LogError(OsirisError):
    """The log cannot do what was asked: bad entry, refused start, timeout, closed."""

    code = "E_LOG"


def schema_statements(dialect: str) -> list[str]:
    """The log's DDL for ``dialect`` ("sqlite" | "postgresql"), one statement per item."""
    text = _SCHEMA
    if dialect == "postgresql":
        text = re.sub(r"\bBLOB\b", "BYTEA", text)
        text = re.sub(r"\bINTEGER\b", "BIGINT", text)
    return [s.strip() for s in text.split(";") if s.strip()]


class LogStore:
    """One engine holding the log's tables; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        reading: Callable[[], AbstractContextManager[Tx]],
        has_table: Callable[[Tx, str], bool],
    ) -> None:
        self.engine = engine
        self._reading = reading
        self._has_table = has_table
        self.engine.transact(self._create)

    def _create(self, tx: Tx) -> None:
        for stmt in schema_statements(self.engine.dialect):
            tx.execute(stmt)

    @property
    def dialect(self) -> str:
        return self.engine.dialect

    @property
    def batch_reads(self) -> bool:
        """Whether a tree walk should fetch its nodes in one query (each read a round trip)."""
        return self.engine.dialect == "postgresql"

    def describe(self) -> str:
        """Where the log lives, fit for an error message (never a password)."""
        return self.engine.describe()

    def transact(self, fn: Callable[[Tx], T]) -> T:
        """``fn(tx)`` in ONE write transaction, alone across every process and host sharing
        the store; returns ``fn``'s result once committed — durably: on PostgreSQL the
        transaction sets ``synchronous_commit`` on for itself whatever the server's default —
        and rolls back if it raises."""
        if self.engine.dialect != "postgresql":
            return self.engine.transact(fn)

        def durable(tx: Tx) -> T:
            tx.execute("SET LOCAL synchronous_commit = on")
            return fn(tx)

        return self.engine.transact(durable)

    def reading(self) -> AbstractContextManager[Tx]:
        """A read handle for a run of reads (a tree walk): each statement sees everything
        committed before it. Not a transaction: the log reads only rows that never change."""
        return self._reading()

    def has_table(self, tx: Tx, name: str) -> bool:
        return self._has_table(tx, name)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
