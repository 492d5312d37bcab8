"""One SQLite database behind one small interface: thread-local readers, one writer path.

Why this shape:
* **WAL** lets every request thread read its own snapshot while one writer commits; readers
  never block the writer and vice versa.
* **One writer path** (a lock around a single connection, ``BEGIN IMMEDIATE``) so no two
  transactions race for the write lock and surface as ``database is locked`` mid-request.
* **Portable SQL**: the modules beside this one use plain SQL (``?`` parameters, no
  ``INSERT OR REPLACE``, ``ON CONFLICT … DO NOTHING`` which PostgreSQL speaks too), so a later
  PostgreSQL engine only has to implement this class.
* ``synchronous=FULL``: a committed audit row or order survives power loss, not only a crash.
  The hot path (check-in heartbeats) is batched by ``HeartbeatBuffer`` so it does not pay an
  fsync per request.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from osiris_core import sqlite
from osiris_server.db.migrations import migrate


def _connect(path: Path, *, query_only: bool = False) -> sqlite3.Connection:
    return sqlite.connect(path, query_only=query_only)  # WAL, FULL, foreign keys, 30 s


class Database:
    """Readers per thread, one writer. Use ``query``/``one`` to read, ``write()`` to change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer_conn = _connect(self.path)
        self._writer = sqlite_utils.Database(self._writer_conn)
        self._writer.enable_wal()
        self._wlock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._rlock = threading.Lock()
        self.closed = False
        self._gc_cond = threading.Condition()
        self._gc_queue: list[list[Any]] = []
        self._gc_busy = False
        with self._wlock:
            migrate(self._writer_conn)

    # ---- reads
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, query_only=True)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._rlock:
                self._readers.append(conn)
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._reader().execute(sql, tuple(params))
        return [dict(r) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        row = self._reader().execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._reader().execute(sql, tuple(params)).fetchone()
        return row[0] if row is not None else None

    # ---- writes
    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One transaction on the single writer connection; rolled back on any exception."""
        with self._wlock:
            conn = self._writer_conn
            if conn.in_transaction:  # nested use inside one request: join the outer tx
                yield Writer(conn)
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Writer(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def write_grouped(self, fn: Callable[[Writer], None]) -> None:
        """Run ``fn`` in a write transaction shared with other threads' concurrent calls
        (group commit), and return once that transaction is durable.

        Why: hot paths (audit rows for credential deliveries at check-in) must be on disk
        before the response leaves, but one fsync per request serialises every check-in behind
        the disk. Callers that arrive while a commit is in flight queue up; the next leader
        commits the whole queue at once, so N concurrent requests share one fsync. If the
        shared transaction fails, each queued ``fn`` is retried alone, so one bad item cannot
        fail the others; its own exception is raised to its own caller.
        """
        item: list[Any] = [fn, False, None]  # fn, done, error
        with self._gc_cond:
            self._gc_queue.append(item)
            while not item[1] and self._gc_busy:
                self._gc_cond.wait()
            if item[1]:
                if item[2] is not None:
                    raise item[2]
                return
            self._gc_busy = True
            batch, self._gc_queue = self._gc_queue, []
        try:
            try:
                with self.write() as w:
                    for it in batch:
                        it[0](w)
            except Exception:  # noqa: BLE001 - retried one by one below, errors kept per item
                for it in batch:
                    try:
                        with self.write() as w:
                            it[0](w)
                    except Exception as exc:  # noqa: BLE001 - handed to its own caller
                        it[2] = exc
        finally:
            with self._gc_cond:
                for it in batch:
                    it[1] = True
                self._gc_busy = False
                self._gc_cond.notify_all()
        if item[2] is not None:
            raise item[2]

    def backup(self, dest: str | Path) -> None:
        """Online, consistent copy (SQLite backup API): readers and writers keep going."""
        # a fresh file in the backup's temp folder: no WAL, so the copy is one self-contained file
        target = sqlite.connect(dest, wal=False)
        try:
            src = _connect(self.path)
            try:
                src.backup(target)
            finally:
                src.close()
        finally:
            target.close()

    def close(self) -> None:
        with self._wlock:
            if self.closed:
                return
            self.closed = True
            with self._rlock:
                for c in self._readers:
                    try:
                        c.close()
                    except sqlite3.ProgrammingError:
                        pass  # created in another thread that still holds it; harmless
                self._readers.clear()
            self._writer_conn.close()


class Writer:
    """The handle a ``Database.write()`` block gets: plain SQL inside one transaction."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        return self.conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [tuple(r) for r in rows])

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cur = self.conn.execute(sql, tuple(params))
        row = cur.fetchone()
        if row is None:
            return None
        return {d[0]: v for d, v in zip(cur.description, row, strict=True)}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def insert(self, table: str, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))
