"""Per-appliance critical sections that hold across threads, processes *and* hosts.

Evidence ingest checks a batch against the appliance's chain and signing key, appends it to the
log, then indexes it; a key rotation checks the highest accepted seq, then switches the key.
Each of those must run alone per appliance, or a bundle signed with the old key could slip in
beside a rotation that already declared that seq for the new key (and two bundles could claim
one seq). Several gunicorn workers may serve one data directory, and several ``osiris-server``
processes on several hosts may share one PostgreSQL database (docs/server.md), so a
``threading.Lock`` is not enough.

``ApplianceLocks`` stripes appliances over ``n`` locks. Each stripe is a ``threading.Lock``
(threads of this process) plus, for other processes:

* **SQLite data directory (one host):** a POSIX record lock on byte ``i`` of one lock file in
  the data directory. Record locks belong to the process, not the thread, which is why the
  thread lock is taken first: inside a process only one thread at a time holds a stripe's
  record lock. A process that dies (kill -9) drops its record locks with it.
* **PostgreSQL (any number of hosts):** the session-level advisory lock
  ``pg_advisory_lock(LOCK_NAMESPACE, i)`` on a connection held for the critical section (which
  spans several transactions — log append, then index — so a transaction-scoped lock would not
  cover it). The two-key form lives in a key space of its own, apart from the stores' one-key
  writer locks. A holder that dies ends its session and PostgreSQL drops the lock; a
  connection whose unlock failed is closed rather than returned to the pool still holding it.

Stripes are leaf locks: nothing takes a second stripe while holding one, so they cannot deadlock.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from osiris_server.storage.base import StorageUnavailable
from osiris_server.storage.url import is_postgres_url, redact_url

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one process only
    fcntl = None  # type: ignore[assignment]

LOCK_NAMESPACE = 0x4F534C4B  # "OSLK": the first key of pg_advisory_lock(int4, int4)


class _PgStripes:
    """The PostgreSQL half: a small pool of sessions, each holding one stripe at a time."""

    def __init__(self, url: str, size: int) -> None:
        import psycopg
        import psycopg_pool

        self._errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self._url = url
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=0,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=60.0,
            name="osiris-appliance-locks",
            open=True,
        )

    @contextmanager
    def hold(self, stripe: int) -> Iterator[None]:
        try:
            conn = self._pool.getconn()
        except self._errors as exc:
            raise StorageUnavailable(
                f"cannot take an appliance lock on {redact_url(self._url)}: {str(exc)[:200]}"
            ) from None
        try:
            try:
                conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, stripe))
            except self._errors as exc:
                conn.close()
                raise StorageUnavailable(
                    f"cannot take an appliance lock: {str(exc)[:200]}"
                ) from None
            try:
                yield
            finally:
                self._release(conn, stripe)
        finally:
            self._pool.putconn(conn)  # a closed connection is dropped by the pool, not reused

    def _release(self, conn: Any, stripe: int) -> None:
        try:
            row = conn.execute(
                "SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, stripe)
            ).fetchone()
            if row and row[0]:
                return
        except self._errors:
            pass
        conn.close()  # never hand a session that may still hold the lock back to the pool

    def close(self) -> None:
        self._pool.close()


class ApplianceLocks:
    """``with locks.hold(appliance_id): …`` — one holder per stripe across every process that
    opens the same ``path`` (SQLite) or, with ``db_url``, the same PostgreSQL database."""

    def __init__(self, path: Path | None, stripes: int = 64, db_url: str | None = None) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._fd: int | None = None
        self._pg: _PgStripes | None = None
        if db_url is not None and is_postgres_url(db_url):
            self._pg = _PgStripes(db_url, size=min(stripes, 8))
        elif path is not None and fcntl is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def _index(self, appliance_id: str) -> int:
        return zlib.crc32(appliance_id.encode("utf-8", "surrogatepass")) % len(self._locks)

    @contextmanager
    def hold(self, appliance_id: str) -> Iterator[None]:
        i = self._index(appliance_id)
        with self._locks[i]:
            if self._pg is not None:
                with self._pg.hold(i):
                    yield
                return
            fd = self._fd
            if fd is None:
                yield
                return
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, i, os.SEEK_SET)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, i, os.SEEK_SET)

    def close(self) -> None:
        """Close the lock file (or sessions) once no thread holds a stripe (waits a little)."""
        held = [lk for lk in self._locks if lk.acquire(timeout=5.0)]
        try:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
            pg, self._pg = self._pg, None
            if pg is not None:
                pg.close()
        finally:
            for lk in held:
                lk.release()
