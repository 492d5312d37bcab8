"""SQL engines behind one interface: the index store (``db/``) and the log store sit on them.

``base.Engine`` is what a store sees: reads (``query``/``one``/``scalar``) and one serialised
write transaction at a time (``write()``, ``write_grouped``), each handing a ``Tx``. Two
engines implement it: ``sqlite.SqliteEngine`` (the embedded default, one file) and
``postgres.PostgresEngine`` (psycopg 3, any number of server processes on any number of hosts).
SQL is written once, with ``?`` parameters; the PostgreSQL engine translates it.
"""

from __future__ import annotations

from osiris_server.storage.base import Engine, StorageUnavailable, Tx
from osiris_server.storage.url import is_postgres_url, redact_url

__all__ = ["Engine", "StorageUnavailable", "Tx", "is_postgres_url", "redact_url"]
