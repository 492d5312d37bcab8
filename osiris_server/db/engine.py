"""The index store's entry: which engine holds ``db/``'s tables, opened and migrated.

``open_database(cfg)`` is the one place the index is opened: the embedded SQLite file
``DATA/osiris.db`` when the configuration names no database, else the PostgreSQL database of
``cfg.db_url`` (public schema). Either way the migrations (``migrations.py``) run at open, under
the engine's one writer, so two servers starting together migrate once.

``Database`` and ``Writer`` stay importable as the interface types the ~40 call sites in
``db/`` and ``api/`` name: they *are* ``storage.Engine`` and ``storage.Tx``. SQL above this
line is written once, with ``?`` parameters, in the subset both engines speak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osiris_server.db.migrations import migrate
from osiris_server.storage.base import Engine, Tx
from osiris_server.storage.url import is_postgres_url

Database = Engine
Writer = Tx

# The advisory-lock key of the index's one writer on PostgreSQL (the log has its own, so an
# append never waits for an index write). Any fixed int64 will do; this one spells "OSIRIS-I".
INDEX_LOCK_KEY = 0x4F53495249532D49 & 0x7FFFFFFFFFFFFFFF


def open_database(target: Any, url: str | None = None) -> Engine:
    """The index over ``target`` — a ``ServerConfig`` (its ``db_url``, else its ``db_path``) or
    a SQLite file path — or over ``url`` when given (a ``postgresql://`` URL wins)."""
    url = url or getattr(target, "db_url", None)
    if url:
        if not is_postgres_url(url):
            raise ValueError("open_database: url must be a postgresql:// URL")
        from osiris_server.storage.postgres import PostgresEngine

        return PostgresEngine(url, lock_key=INDEX_LOCK_KEY, setup=migrate)
    from osiris_server.storage.sqlite import SqliteEngine

    return SqliteEngine(Path(getattr(target, "db_path", target)), setup=migrate)


__all__ = ["INDEX_LOCK_KEY", "Database", "Writer", "open_database"]
