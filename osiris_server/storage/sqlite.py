"""The embedded engine: one SQLite file, thread-local readers, one writer path.

Why this shape:
* **WAL** lets every request thread read its own snapshot while one writer commits; readers
  never block the writer and vice versa.
* **One writer path** (a lock around a single connection, ``BEGIN IMMEDIATE``) so no two
  transactions race for the write lock and surface as ``database is locked`` mid-request.
  ``BEGIN IMMEDIATE`` is also SQLite's write lock across processes (gunicorn workers sharing
  one data directory), which is the engine interface's one-writer guarantee.
* ``synchronous=FULL``: a committed audit row or order survives power loss, not only a crash.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from osiris_core import sqlite
from osiris_server.storage.base import Engine, StorageUnavailable, Tx


class SqliteTx(Tx):
    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cur = self.conn.execute(sql, tuple(params))
        row = cur.fetchone()
        if row is None:
            return None
        return {d[0]: v for d, v in zip(cur.description, row, strict=True)}

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return row[0] if row is not None else None

    def script(self, sql: str) -> None:
        """Several statements (DDL); SQLite only — callers check ``dialect``."""
        for stmt in sql.split(";"):
            if stmt.strip():
                self.conn.execute(stmt)


class SqliteEngine(Engine):
    """``setup(tx)`` runs once at open inside the first write transaction (migrations)."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        setup: Callable[[SqliteEngine], None] | None = None,
        foreign_keys: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self._fk = foreign_keys
        try:
            self._writer_conn = self._connect()
            mode = self._writer_conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open {self.path}: {exc}") from None
        if str(mode).lower() != "wal":
            self._writer_conn.close()
            raise StorageUnavailable(f"database {self.path} cannot use WAL mode (got {mode})")
        self._wlock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._rlock = threading.Lock()
        self.closed = False
        if setup is not None:
            try:
                with self._wlock:
                    setup(self)
            except BaseException:
                self._writer_conn.close()
                raise

    def _connect(self, *, query_only: bool = False) -> sqlite3.Connection:
        return sqlite.connect(self.path, query_only=query_only, wal=False, foreign_keys=self._fk)

    def describe(self) -> str:
        return str(self.path)

    # ---- reads
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.closed:
                raise StorageUnavailable("the database is closed")
            conn = self._connect(query_only=True)
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

    def read_tx(self) -> SqliteTx:
        """A handle on this thread's reader (one snapshot per statement), for stores whose
        read helpers take a ``Tx`` (the log's tree walks)."""
        return SqliteTx(self._reader())

    # ---- writes
    @contextmanager
    def write(self) -> Iterator[SqliteTx]:
        with self._wlock:
            if self.closed:
                raise StorageUnavailable("the database is closed")
            conn = self._writer_conn
            if conn.in_transaction:  # nested use inside one request: join the outer tx
                yield SqliteTx(conn)
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ---- lifecycle
    def backup(self, dest: str | Path) -> None:
        """Online, consistent copy (SQLite backup API): readers and writers keep going."""
        # a fresh file in the backup's temp folder: no WAL, so the copy is one self-contained file
        target = sqlite.connect(dest, wal=False)
        try:
            src = self._connect()
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
