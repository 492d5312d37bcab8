"""The agent's durable state: one SQLite file (``state.db``) in WAL mode with ``synchronous=FULL``.

Its tables come from the versioned migrations in ``migrations.py`` (the scanner's scan state and
the healer's memory joined it from ``scan.db`` / ``heal.db`` in version 2).

Why one file and one connection: evidence must be committed to the chain *and* the outbox in a
single transaction before anything is sent (DESIGN §6, "nothing acknowledged is lost"). SQLite in
WAL mode with ``synchronous=FULL`` fsyncs the WAL on every commit, so once ``commit`` returns the
row survives kill -9 and power loss. Everything else the agent must remember across restarts —
the witness checkpoint, seen and deferred orders, last results, the last check-in, the scan
state and the heal memory — lives in the same file: a fact and its evidence commit in one
transaction, and a technician (``osiris-agent status``) and the on-appliance console read one
place (through ``osiris_core.agent_state``).

What is *never* stored here: credentials. Targets arrive at each check-in and stay in memory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from osiris_core import sqlite

from .migrations import LATEST as SCHEMA_VERSION
from .migrations import migrate

__all__ = ["SCHEMA_VERSION", "StateDB", "connect"]


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (and create) the state database with the durability settings the agent relies on."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite.connect(p)  # WAL, synchronous=FULL, foreign keys, 30 s busy timeout
    try:
        os.chmod(p, 0o600)
    except OSError:
        pass
    return conn


class StateDB:
    """A thin wrapper: schema, a transaction context manager and the ``meta`` key/value table."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self._after_commit: list[Callable[[], None]] = []
        try:
            migrate(self.conn, self.path)  # versioned, one transaction each (migrations.py)
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def open_dir(cls, state_dir: str | os.PathLike[str]) -> StateDB:
        return cls(Path(state_dir) / "state.db")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (fsync'd), rolled back on any exception."""
        if self.conn.in_transaction:
            yield self.conn  # nested: the outer transaction commits
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._after_commit.clear()
            raise
        self.conn.execute("COMMIT")
        hooks, self._after_commit = self._after_commit, []
        for fn in hooks:
            fn()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the current transaction commits (now, outside one): what leaves the
        appliance (a reseller copy of a bundle) must never describe a rolled-back write."""
        if self.conn.in_transaction:
            self._after_commit.append(fn)
        else:
            fn()

    # -- meta ---------------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    def get_json(self, key: str, default: Any = None) -> Any:
        v = self.get(key)
        return default if v is None else json.loads(v)

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, json.dumps(value, sort_keys=True))

    # -- incidents ----------------------------------------------------------------------------

    def add_incident(self, kind: str, severity: str, summary: str, details: dict[str, Any]) -> int:
        from osiris_core.canonical import utc_now

        cur = self.conn.execute(
            "INSERT INTO incidents(kind, severity, summary, details, created_at) "
            "VALUES(?, ?, ?, ?, ?)",
            (kind, severity, summary, json.dumps(details, sort_keys=True), utc_now()),
        )
        return int(cur.lastrowid or 0)

    def unsent_incidents(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, kind, severity, summary, details, created_at FROM incidents "
            "WHERE sent_at IS NULL ORDER BY id"
        ).fetchall()
        return [
            {
                "id": r[0],
                "kind": r[1],
                "severity": r[2],
                "summary": r[3],
                "details": json.loads(r[4]),
                "created_at": r[5],
            }
            for r in rows
        ]

    def mark_incident_sent(self, incident_id: int) -> None:
        from osiris_core.canonical import utc_now

        self.conn.execute("UPDATE incidents SET sent_at = ? WHERE id = ?", (utc_now(), incident_id))

    # -- last results -------------------------------------------------------------------------

    def set_result(
        self, host_id: str, check_id: str, status: str, observed: Any, expected: Any, now: str
    ) -> str:
        """Store a check's latest result; returns ``since`` (when the status last changed)."""
        row = self.conn.execute(
            "SELECT status, since FROM results WHERE host_id = ? AND check_id = ?",
            (host_id, check_id),
        ).fetchone()
        since = row[1] if row and row[0] == status else now
        self.conn.execute(
            "INSERT INTO results(host_id, check_id, status, since, observed, expected, updated_at)"
            " VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(host_id, check_id) DO UPDATE SET "
            "status = excluded.status, since = excluded.since, observed = excluded.observed, "
            "expected = excluded.expected, updated_at = excluded.updated_at",
            (
                host_id,
                check_id,
                status,
                since,
                json.dumps(observed, sort_keys=True),
                json.dumps(expected, sort_keys=True),
                now,
            ),
        )
        return since

    def results(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT host_id, check_id, status, since, observed, expected, updated_at "
            "FROM results ORDER BY host_id, check_id"
        ).fetchall()
        return [
            {
                "host_id": r[0],
                "check": r[1],
                "status": r[2],
                "since": r[3],
                "observed": json.loads(r[4]),
                "expected": json.loads(r[5]),
                "updated_at": r[6],
            }
            for r in rows
        ]
