"""Opening an SQLite database, one way, for the server, the log, the agent and the console.

Seven call sites used to open SQLite each with their own idea of timeouts and pragmas; this is
the one place that decides, and a call that needs something else says so by argument (and why,
at the call). The policy:

* **Autocommit** (``isolation_level=None``): every caller runs its own ``BEGIN IMMEDIATE`` /
  ``COMMIT``, so Python's implicit transactions never hold a write lock behind our back.
* **``check_same_thread=False``**: our connections are shared under a lock (one writer) or
  kept per thread (readers); the check would only get in the way of that discipline.
* **Busy timeout** (``timeout_s``, default 30 s) both as the driver's timeout and as
  ``PRAGMA busy_timeout``, so a second process waits for a lock instead of failing at once.
* **WAL** (``wal=True``): readers see a snapshot while one writer commits. The mode is
  persistent in the file; a caller that must be sure (the transparency log) reads it back.
* **``synchronous=FULL``**: a committed row survives power loss, not only a crash.
* **``foreign_keys=ON``** unless the caller's schema predates it (the log says so).
* **Read-only** (``readonly=True``): opened through ``file:…?mode=ro`` with ``query_only``, so
  nothing written through this connection can change the file (the console and the agent's
  attestation look at a running agent's state without the means to damage it). A connection
  opened read-write but used only to read (a server reader thread) asks for ``query_only``.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

DEFAULT_TIMEOUT_S = 30.0


def connect(
    path: str | os.PathLike[str],
    *,
    readonly: bool = False,
    query_only: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    wal: bool = True,
    synchronous: str = "FULL",
    foreign_keys: bool = True,
) -> sqlite3.Connection:
    """An open connection with the pragmas above applied (see the module docstring)."""
    target = os.fspath(path)
    if readonly:
        conn = sqlite3.connect(
            f"file:{quote(target)}?mode=ro",
            uri=True,
            timeout=timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        conn = sqlite3.connect(
            target, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        if readonly or query_only:
            conn.execute("PRAGMA query_only = ON")
        if not readonly:
            if wal and not query_only:  # a reader must not be the one to change the file
                conn.execute("PRAGMA journal_mode = WAL")
            if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA: {synchronous}")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    except BaseException:
        conn.close()
        raise
    return conn


__all__ = ["DEFAULT_TIMEOUT_S", "connect"]
