"""The log on SQLite: ``DATA/log.db``, the same tables and file as before the store existed.

WAL + ``synchronous=FULL`` (``osiris_core.sqlite.connect``), so a committed append is on disk
before ``transact`` returns; ``BEGIN IMMEDIATE`` is SQLite's write lock across processes
sharing the file (gunicorn workers), which is the one-writer rule of ``log.py``'s proof.
Foreign keys stay off, as they always were here: the log's tables reference nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from osiris_server.logstore.base import LogStore
from osiris_server.storage.base import Tx
from osiris_server.storage.sqlite import SqliteEngine


def open_sqlite(path: Path) -> LogStore:
    engine = SqliteEngine(path, foreign_keys=False)

    @contextmanager
    def reading() -> Iterator[Tx]:
        yield engine.read_tx()  # this thread's query-only connection

    def has_table(tx: Tx, name: str) -> bool:
        row = tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name])
        return row is not None

    try:
        return LogStore(engine, reading, has_table)
    except BaseException:
        engine.close()
        raise
