"""The log on PostgreSQL: schema ``osiris_log`` of the index's database, lock ``LOG_LOCK_KEY``.

What ``log.py``'s proof needs from PostgreSQL, and where each comes from:

* **One writer across hosts.** ``PostgresEngine.write`` takes
  ``pg_advisory_xact_lock(LOG_LOCK_KEY)`` as the first statement of every write transaction;
  COMMIT or ROLLBACK releases it, and so does the end of the session (a server killed -9
  holds nothing).
* **The tree read under the lock is the committed tree.** At READ COMMITTED every statement
  takes a fresh snapshot, so each statement after the lock sees every transaction that
  committed before it — and the previous holder committed before its lock was released.
  REPEATABLE READ or SERIALIZABLE would freeze the snapshot at the lock statement itself,
  taken *before* the wait: a second appender would re-read a stale tree and reuse an index.
  ``open_postgres`` therefore refuses a database whose default isolation is not READ COMMITTED.
* **Acknowledged means durable.** COMMIT returns after the WAL is flushed unless
  ``synchronous_commit`` is off — a receipt for a leaf that a database crash can take back is
  the one thing the log must never hand out, so every log transaction sets it on for itself
  (``SET LOCAL``, whatever the server's default: the index may trade that for speed, the log
  may not).
"""

from __future__ import annotations

from osiris_server.logstore.base import LOG_LOCK_KEY, LOG_SCHEMA, LogError, LogStore
from osiris_server.storage.base import StorageUnavailable, Tx
from osiris_server.storage.url import redact_url


def _ensure_schema(url: str) -> None:
    """Create ``osiris_log`` once, under the log's lock: ``CREATE SCHEMA IF NOT EXISTS`` is
    not safe against itself, and several servers may open one new database at once."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK_KEY,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {LOG_SCHEMA}")
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageUnavailable(f"cannot connect to {redact_url(url)}: {first[:200]}") from None


def _check_settings(tx: Tx) -> None:
    iso = str(tx.scalar("SELECT current_setting('transaction_isolation')")).lower()
    if iso != "read committed":
        raise LogError(
            f"the log needs READ COMMITTED transactions, the database defaults to {iso!r} "
            "(default_transaction_isolation); refusing to start"
        )


def open_postgres(url: str, pool_size: int = 8) -> LogStore:
    try:
        from osiris_server.storage.postgres import PostgresEngine
    except ImportError:  # pragma: no cover - psycopg missing
        raise StorageUnavailable("PostgreSQL support is not installed") from None
    _ensure_schema(url)
    engine = PostgresEngine(url, lock_key=LOG_LOCK_KEY, search_path=LOG_SCHEMA, pool_size=pool_size)

    def has_table(tx: Tx, name: str) -> bool:
        row = tx.one(
            "SELECT 1 FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name = ?",
            [name],
        )
        return row is not None

    try:
        engine.transact(_check_settings)
        return LogStore(engine, engine.reading, has_table)
    except BaseException:
        engine.close()
        raise
