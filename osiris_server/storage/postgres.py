"""The PostgreSQL engine (psycopg 3 + psycopg_pool): many server processes, one database.

* **SQL written once.** Stores write ``?`` parameters (SQLite's style); ``translate`` turns
  them into psycopg's ``%s`` outside string literals and doubles a literal ``%``. Results come
  back as plain dicts; ``NUMERIC`` results of ``SUM`` over integers come back as ``int``, and a
  Python ``bool`` parameter is sent as ``0``/``1`` because the schema keeps SQLite's INTEGER flags.
* **One writer across hosts.** Every write transaction first takes
  ``pg_advisory_xact_lock(lock_key)``; it is released by COMMIT or ROLLBACK — also when the
  session dies (a server killed -9 holds nothing). A thread lock in front of it keeps one
  process's threads from each pinning a pooled connection while they wait.
* **Schemas.** ``search_path`` picks the schema a store lives in (the log keeps its tables in
  ``osiris_log`` so that its ``meta``/``leaves`` never meet the index's names).
* **Faults.** A lost connection, a server shut down or a pool exhausted surfaces as
  ``StorageUnavailable`` (503) — the transaction was rolled back by PostgreSQL; the pool drops
  the broken connection and the next request opens a fresh one.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from osiris_server.storage.base import Engine, StorageUnavailable, Tx
from osiris_server.storage.url import redact_url

try:  # an optional dependency: `pip install osiris[postgresql]`
    import psycopg
    import psycopg_pool
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - exercised only where psycopg is missing
    psycopg = None  # type: ignore[assignment]
    psycopg_pool = None  # type: ignore[assignment]
    dict_row = None  # type: ignore[assignment]


# psycopg_pool logs each failed (re)connection attempt as a WARNING. Where nobody configured
# logging (the CLI, the server: they write their own JSON lines), Python's last-resort handler
# would print those as free text on stderr — several lines, and the URL's host — breaking the
# one-line errors and the JSON log. The failure itself reaches the caller as StorageUnavailable.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``?`` → ``%s`` and ``%`` → ``%%`` outside quoted literals and identifiers."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    for k, v in r.items():
        if isinstance(v, Decimal) and v == v.to_integral_value():
            r[k] = int(v)
        elif isinstance(v, memoryview):
            r[k] = bytes(v)
    return r


def _unavailable(exc: BaseException) -> StorageUnavailable:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageUnavailable(f"database unavailable: {msg[:200]}")


class PostgresTx(Tx):
    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.execute(translate(sql), _params(params))
        return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.conn.cursor() as cur:
            cur.executemany(translate(sql), [_params(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(translate(sql), _params(params))
        if cur.description is None:
            return []
        return [_row(r) for r in cur.fetchall()]


class PostgresEngine(Engine):
    """``setup(engine)`` runs once at open (migrations); ``lock_key`` names this store's writer."""

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        lock_key: int,
        search_path: str | None = None,
        setup: Callable[[PostgresEngine], None] | None = None,
        pool_size: int = 16,
        connect_timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        if psycopg is None:
            raise StorageUnavailable(
                "PostgreSQL support is not installed: pip install 'osiris[postgresql]'"
            )
        self.url = url
        self.lock_key = int(lock_key)
        self.search_path = search_path
        self.closed = False
        self._wlock = threading.RLock()
        self._local = threading.local()

        def configure(conn: Any) -> None:
            conn.row_factory = dict_row
            if search_path:  # the store's setup creates the schema, once, under its lock
                conn.execute(f"SET search_path TO {search_path}")

        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, pool_size),
            kwargs={"autocommit": True, "connect_timeout": int(connect_timeout_s)},
            configure=configure,
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=connect_timeout_s,
            open=False,
            name=f"osiris-{search_path or 'index'}",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise StorageUnavailable(
                f"cannot connect to {redact_url(url)}: {str(exc).strip()[:200]}"
            ) from None
        if setup is not None:
            try:
                setup(self)
            except BaseException:
                self._pool.close()
                raise

    def describe(self) -> str:
        return redact_url(self.url) + (f" (schema {self.search_path})" if self.search_path else "")

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if self.closed:
            raise StorageUnavailable("the database is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
            raise _unavailable(exc) from None

    # ---- reads
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        tx = getattr(self._local, "tx", None)
        if tx is not None:  # inside this thread's write: read its own uncommitted rows
            return tx.query(sql, params)
        with self._conn() as conn:
            cur = conn.execute(translate(sql), _params(params))
            if cur.description is None:
                return []
            return [_row(r) for r in cur.fetchall()]

    @contextmanager
    def reading(self) -> Iterator[PostgresTx]:
        """One pooled connection for a run of reads (the log's tree walks: O(log² n) point
        reads would otherwise each check a connection out of the pool)."""
        with self._conn() as conn:
            yield PostgresTx(conn)

    # ---- writes
    @contextmanager
    def write(self) -> Iterator[PostgresTx]:
        outer = getattr(self._local, "tx", None)
        if outer is not None:  # nested use inside one request: join the outer tx
            yield outer
            return
        with self._wlock, self._conn() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
                tx = PostgresTx(conn)
                self._local.tx = tx
                try:
                    yield tx
                finally:
                    self._local.tx = None

    # ---- lifecycle
    def backup(self, dest: str | Path) -> None:
        raise StorageUnavailable(
            "a PostgreSQL database is backed up with pg_dump (docs/server.md, 'Backup and restore')"
        )

    def close(self) -> None:
        with self._wlock:
            if self.closed:
                return
            self.closed = True
            self._pool.close()
