"""Test-only wrapper: run ``osiris-agent`` (or a snippet) and die with ``os._exit(137)`` at the
k-th SQLite commit of the process — just BEFORE it (the transaction is lost) or just AFTER it
(it is durable, nothing after it ran). Used by the fault-injection and migration tests; never
imported by production code.

Usage: ``python -m tests.agent.crashpoint <before|after|count>:<k> <osiris-agent args…>``.
``--open-state DIR`` instead of agent arguments only opens (so migrates) a state dir.
``count:0`` runs to completion and prints ``COMMITS <n>`` on stderr (how many commits the
run made, so a test can crash at every one of them).

How: ``osiris_core.sqlite.connect`` is wrapped so every connection it opens is a thin proxy
whose ``execute("COMMIT")`` counts. Every write transaction in the agent ends in exactly that
statement (``StateDB.tx`` and the migrations), so "between every pair of writes" is "at every
commit, before and after".
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

from osiris_core import sqlite as core_sqlite

_count = 0


class _Counting:
    """A connection whose COMMITs are counted (everything else is the real connection)."""

    def __init__(self, conn: sqlite3.Connection, mode: str, k: int) -> None:
        self._conn = conn
        self._mode = mode
        self._k = k

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        global _count
        if not sql.lstrip().upper().startswith("COMMIT"):
            return self._conn.execute(sql, *args)
        _count += 1
        if self._mode == "before" and _count == self._k:
            os._exit(137)
        cur = self._conn.execute(sql, *args)
        if self._mode == "after" and _count == self._k:
            os._exit(137)
        return cur


def install(mode: str, k: int) -> None:
    real = core_sqlite.connect

    def connect(*a: Any, **kw: Any) -> Any:
        return _Counting(real(*a, **kw), mode, k)

    core_sqlite.connect = connect  # type: ignore[assignment]


def _report() -> None:
    sys.stderr.write(f"\nCOMMITS {_count}\n")
    sys.stderr.flush()


def main() -> None:
    spec, *argv = sys.argv[1:]
    mode, _, k = spec.partition(":")
    install(mode, int(k or 0))
    import atexit

    atexit.register(_report)
    if argv and argv[0] == "--open-state":  # just open (and migrate) a state dir
        from osiris_agent.state import StateDB

        StateDB.open_dir(argv[1]).close()
        return
    from osiris_agent.cli import main as agent_main

    sys.argv = ["osiris-agent", *argv]
    agent_main()


if __name__ == "__main__":
    main()
