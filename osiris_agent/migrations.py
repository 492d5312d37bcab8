"""The versions of ``state.db``: an ordered list of migrations, each applied in its own transaction.

Why versioned migrations (issue 14): the appliance's state used to be three SQLite files
(``state.db``, ``scan.db``, ``heal.db``) whose tables were created with ``CREATE TABLE IF NOT
EXISTS`` at every start. One file lets the scanner and the healer write their memory in the
same transaction as the evidence it produces; a numbered list lets an upgraded appliance move
its state forward exactly once, and lets an *older* agent refuse a state dir a newer one wrote
(one clear line, exit 2) instead of misreading it.

Rules: **never edit a released migration** — add the next one. A migration is a function of the
open connection inside ``BEGIN IMMEDIATE`` … ``COMMIT`` together with the row in
``schema_migrations`` that says it ran, so a crash leaves either the old version or the new one.
Migration 2 also merges the old ``scan.db`` and ``heal.db`` (attached before the
transaction, since SQLite cannot attach inside one); the old files are renamed ``*.migrated``
only after that commit, and a leftover file beside an already-migrated store is just renamed
(the store's copy is newer).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osiris_core.canonical import utc_now
from osiris_core.errors import ExitCode, OsirisError

# The old separate files migration 2 folds into state.db (context.py's SCAN_DB / HEAL_DB).
LEGACY_FILES = ("scan.db", "heal.db")


class StateTooNew(OsirisError):
    """``state.db`` was written by a newer agent: this one must not touch it."""

    code = "E_STATE_SCHEMA"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    seq         INTEGER PRIMARY KEY,
    bundle_hash TEXT NOT NULL UNIQUE,
    envelope    BLOB NOT NULL,
    host_id     TEXT NOT NULL,
    check_id    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    log_index   INTEGER,
    receipt     TEXT,
    acked_at    TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY REFERENCES evidence(seq),
    size       INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    state      TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS seen_orders (
    order_id   TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deferred_orders (
    order_id   TEXT PRIMARY KEY,
    envelope   TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    deferred_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    host_id    TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    status     TEXT NOT NULL,
    since      TEXT NOT NULL,
    observed   TEXT NOT NULL,
    expected   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (host_id, check_id)
);
CREATE TABLE IF NOT EXISTS incidents (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    summary    TEXT NOT NULL,
    details    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT
)
"""

# The scanner's and the healer's tables, exactly as scan.db and heal.db held them.
_V2 = """
CREATE TABLE IF NOT EXISTS scan_check (
    host_id TEXT NOT NULL, check_id TEXT NOT NULL, last_run REAL NOT NULL,
    PRIMARY KEY (host_id, check_id));
CREATE TABLE IF NOT EXISTS scan_state (
    host_id TEXT NOT NULL, runbook_id TEXT NOT NULL, check_id TEXT NOT NULL,
    status TEXT NOT NULL, since TEXT NOT NULL, last_seen TEXT NOT NULL,
    PRIMARY KEY (host_id, runbook_id));
CREATE TABLE IF NOT EXISTS scan_snapshot (host_id TEXT PRIMARY KEY, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heal_memory (name TEXT NOT NULL, host_id TEXT NOT NULL,
    runbook_id TEXT NOT NULL, last_ts REAL NOT NULL, attempts INTEGER NOT NULL,
    PRIMARY KEY (name, host_id, runbook_id))
"""

# table -> the legacy file that held it
_LEGACY_TABLES = {
    "scan_check": "scan",
    "scan_state": "scan",
    "scan_snapshot": "scan",
    "heal_memory": "heal",
}


def _script(conn: sqlite3.Connection, ddl: str) -> None:
    for stmt in ddl.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def _v1(conn: sqlite3.Connection) -> None:
    _script(conn, _V1)


def _v2(conn: sqlite3.Connection) -> None:
    _script(conn, _V2)
    attached = {r[1] for r in conn.execute("PRAGMA database_list").fetchall()}
    for table, schema in _LEGACY_TABLES.items():
        if schema not in attached:
            continue
        has = conn.execute(
            f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if has:  # the old file's rows win over nothing: the store has none of them yet
            conn.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM {schema}.{table}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "state, chain, outbox, orders, results, incidents", _v1),
    Migration(2, "scan state and heal memory join state.db (scan.db, heal.db merged)", _v2),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: sqlite3.Connection) -> int:
    """The newest migration applied (0: a new file; 1: a pre-migrations file with meta)."""
    tables = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    }
    if "schema_migrations" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        if row and row[0] is not None:
            return int(row[0])
    if "meta" in tables:  # written before this list existed: meta.schema_version was 1
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row and str(row[0]).isdigit() else 1
    return 0


def refuse_newer(version: int, path: Path | str) -> None:
    if version > LATEST:
        raise StateTooNew(
            f"{path} has state schema version {version}, newer than this agent knows "
            f"({LATEST}); upgrade the agent (the state was left untouched)"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring ``conn`` (the file at ``path``) to :data:`LATEST`; returns the version it had."""
    before = current_version(conn)
    refuse_newer(before, path)
    state_dir = path.parent if path.name != ":memory:" else None
    for m in MIGRATIONS:
        if m.version <= current_version(conn):
            continue
        legacy = _attach_legacy(conn, state_dir) if m.version == 2 else []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = current_version(conn)  # another process may have just migrated
                refuse_newer(done, path)
                if m.version > done:
                    m.apply(conn)
                    _record(conn, m)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            for schema in legacy:
                conn.execute(f"DETACH DATABASE {schema}")
    if state_dir is not None:
        _retire_legacy(state_dir)
    return before


def _record(conn: sqlite3.Connection, m: Migration) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    if m.version == 2:  # a pre-migrations file (meta.schema_version = 1) gets its row 1 too
        conn.execute(
            "INSERT OR IGNORE INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
            (1, MIGRATIONS[0].name, utc_now()),
        )
    conn.execute(
        "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
        (m.version, m.name, utc_now()),
    )
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(m.version),),
    )


def _attach_legacy(conn: sqlite3.Connection, state_dir: Path | None) -> list[str]:
    """Attach the old scan.db / heal.db (outside any transaction, as SQLite needs)."""
    out: list[str] = []
    if state_dir is None:
        return out
    for name in LEGACY_FILES:
        p = state_dir / name
        if p.exists() and p.stat().st_size > 0:
            schema = name.split(".")[0]
            # the plain path (the store's connection is not a URI one); nothing writes to it
            conn.execute("ATTACH DATABASE ? AS " + schema, (os.fspath(p),))
            out.append(schema)
    return out


def _retire_legacy(state_dir: Path) -> None:
    """After the merge committed: the old files become ``*.migrated`` (kept for a technician)."""
    for name in LEGACY_FILES:
        for suffix in ("", "-journal", "-wal", "-shm"):
            p = state_dir / (name + suffix)
            if p.exists():
                os.replace(p, state_dir / (name + suffix + ".migrated"))
