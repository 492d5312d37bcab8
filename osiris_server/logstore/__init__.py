"""Where the transparency log keeps its tree: one ``LogStore`` over one storage engine.

``log.py`` holds the log's logic (sequencing, signing, proofs) and never sees a connection:
it hands its append + checkpoint to ``LogStore.transact(fn)`` (one read-write transaction, the
one writer across threads, processes and hosts) and reads through ``LogStore.reading()``.
Two engines: ``sqlite.open_sqlite`` (``DATA/log.db``, the embedded default, unchanged on disk)
and ``postgres.open_postgres`` (schema ``osiris_log`` of the index's PostgreSQL database, its
own advisory-lock key ``LOG_LOCK_KEY``).
"""

from __future__ import annotations

from pathlib import Path

from osiris_server.logstore.base import LOG_LOCK_KEY, LOG_SCHEMA, LogError, LogStore
from osiris_server.storage.url import is_postgres_url


def open_log_store(target: str | Path, url: str | None = None) -> LogStore:
    """The log store for ``url`` when it is a PostgreSQL URL (``target`` may be one too),
    else the SQLite file ``target``."""
    url = url or (str(target) if is_postgres_url(str(target)) else None)
    if url:
        from osiris_server.logstore.postgres import open_postgres

        return open_postgres(url)
    from osiris_server.logstore.sqlite import open_sqlite

    return open_sqlite(Path(target))


__all__ = ["LOG_LOCK_KEY", "LOG_SCHEMA", "LogError", "LogStore", "open_log_store"]
