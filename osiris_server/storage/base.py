"""The engine interface: reads, one serialised writer, group commit, backup.

Why one writer even on PostgreSQL: every store above this (the index in ``db/``, the
transparency log) was written for SQLite's guarantee that write transactions run one at a
time, and its read-check-write steps (a claim code used once, a seq accepted once, a checkpoint
over the committed tree) are correct because of it. The PostgreSQL engine keeps that guarantee
across processes and hosts with a transaction-scoped advisory lock taken first in every write
transaction (one lock key per store, so the log's writer never waits for the index's). Readers
never take it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from osiris_core.errors import UnreachableError


class StorageUnavailable(UnreachableError):
    """The database cannot be reached or dropped the connection mid-request (HTTP 503, exit
    3). Nothing of the failed transaction was committed; the next request reconnects."""

    code = "E_STORAGE"
    http_status = 503


class Tx(ABC):
    """The handle a write transaction gets: plain SQL (``?`` parameters), nothing else."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows changed."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    def insert(self, table: str, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))


class Engine(ABC):
    """Readers and one writer over one database (see the module docstring)."""

    dialect: str  # "sqlite" | "postgresql"
    closed: bool

    def __init__(self) -> None:
        self._gc_cond = threading.Condition()
        self._gc_queue: list[list[Any]] = []
        self._gc_busy = False

    # ---- reads (autocommit: each statement sees everything committed before it)
    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    # ---- writes
    @abstractmethod
    def write(self) -> AbstractContextManager[Tx]:
        """One write transaction, alone across every thread, process and host sharing the
        database; rolled back on any exception. Nested use in one thread joins the outer one."""

    def transact(self, fn: Callable[[Tx], Any]) -> Any:
        """``fn`` inside one write transaction; its result once committed."""
        with self.write() as tx:
            return fn(tx)

    def write_grouped(self, fn: Callable[[Tx], None]) -> None:
        """Run ``fn`` in a write transaction shared with other threads' concurrent calls
        (group commit), and return once that transaction is durable.

        Why: hot paths (audit rows for credential deliveries at check-in) must be on disk
        before the response leaves, but one commit per request serialises every check-in behind
        the disk. Callers that arrive while a commit is in flight queue up; the next leader
        commits the whole queue at once, so N concurrent requests share one commit. If the
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
            except StorageUnavailable as exc:  # the database is gone: no point retrying each
                for it in batch:
                    it[2] = exc
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

    # ---- lifecycle
    @abstractmethod
    def backup(self, dest: str | Path) -> None:
        """A consistent copy while readers and writers keep going (engine-specific form)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, fit to print (a path, or a URL without its password)."""
