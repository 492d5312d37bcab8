"""SQLite opened one way (osiris_core.sqlite.connect), and nowhere else."""

from __future__ import annotations

import ast
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from osiris_core import sqlite

ROOT = Path(__file__).resolve().parents[2]


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_the_default_pragmas(tmp_path) -> None:
    conn = sqlite.connect(tmp_path / "a.db")
    try:
        assert _pragma(conn, "journal_mode") == "wal"
        assert _pragma(conn, "synchronous") == 2  # FULL
        assert _pragma(conn, "foreign_keys") == 1
        assert _pragma(conn, "busy_timeout") == 30000
        assert _pragma(conn, "query_only") == 0
        assert conn.isolation_level is None  # autocommit: callers run their own BEGIN
    finally:
        conn.close()


def test_a_caller_can_keep_its_own_settings(tmp_path) -> None:
    conn = sqlite.connect(tmp_path / "b.db", wal=False, foreign_keys=False, timeout_s=5.0)
    try:
        assert _pragma(conn, "journal_mode") == "delete"
        assert _pragma(conn, "foreign_keys") == 0
        assert _pragma(conn, "busy_timeout") == 5000
    finally:
        conn.close()
    with pytest.raises(ValueError):
        sqlite.connect(tmp_path / "c.db", synchronous="FULL; DROP TABLE x")


def test_connections_can_be_shared_between_threads(tmp_path) -> None:
    conn = sqlite.connect(tmp_path / "t.db")
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(conn.execute("SELECT 1").fetchone()[0]))
    t.start()
    t.join()
    conn.close()
    assert out == [1]


def _seeded(path: Path) -> None:
    w = sqlite.connect(path)
    w.execute("CREATE TABLE t (x INTEGER)")
    w.execute("INSERT INTO t VALUES (1)")
    w.close()


def test_readonly_refuses_writes_and_reads(tmp_path) -> None:
    db = tmp_path / "state db"  # a space: the URI must be quoted
    _seeded(db)
    ro = sqlite.connect(db, readonly=True)
    try:
        assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
        with pytest.raises(sqlite3.OperationalError):
            ro.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(sqlite3.OperationalError):
            ro.execute("PRAGMA query_only = OFF")
            ro.execute("INSERT INTO t VALUES (3)")
    finally:
        ro.close()
    check = sqlite.connect(db)
    assert check.execute("SELECT x FROM t").fetchall() == [(1,)]
    check.close()


def test_readonly_does_not_create_a_missing_database(tmp_path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        sqlite.connect(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_a_query_only_reader_cannot_write(tmp_path) -> None:
    db = tmp_path / "r.db"
    _seeded(db)
    r = sqlite.connect(db, query_only=True)
    try:
        with pytest.raises(sqlite3.OperationalError):
            r.execute("DELETE FROM t")
    finally:
        r.close()


def test_the_busy_timeout_waits_for_the_other_writer(tmp_path) -> None:
    db = tmp_path / "busy.db"
    _seeded(db)
    holder = sqlite.connect(db)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite.connect(db, timeout_s=5.0)
    released = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    released.start()
    try:
        t0 = time.monotonic()
        waiter.execute("BEGIN IMMEDIATE")  # blocks until the holder commits, then succeeds
        waited = time.monotonic() - t0
        waiter.execute("COMMIT")
    finally:
        released.join()
        holder.close()
        waiter.close()
    assert 0.3 < waited < 4.0


def test_a_short_busy_timeout_gives_up(tmp_path) -> None:
    db = tmp_path / "busy2.db"
    _seeded(db)
    holder = sqlite.connect(db)
    holder.execute("BEGIN IMMEDIATE")
    impatient = sqlite.connect(db, timeout_s=0.2)
    try:
        t0 = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            impatient.execute("BEGIN IMMEDIATE")
        assert time.monotonic() - t0 >= 0.15
    finally:
        holder.execute("COMMIT")
        holder.close()
        impatient.close()


# ---------------------------------------------------------------- and nowhere else

PACKAGES = ("osiris_core", "osiris_agent", "osiris_server", "osiris_tui")


def _calls_sqlite3_connect(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr == "connect" and isinstance(f.value, ast.Name) and f.value.id == "sqlite3":
                return True
        if isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            if any(a.name == "connect" for a in node.names):
                return True
    return False


def test_production_opens_sqlite_only_through_osiris_core_sqlite() -> None:
    offenders = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel != "osiris_core/sqlite.py" and _calls_sqlite3_connect(
                ast.parse(path.read_text("utf-8"))
            ):
                offenders.append(rel)
    assert offenders == [], f"{offenders}: open SQLite with osiris_core.sqlite.connect"


def test_the_scan_sees_a_direct_connect() -> None:
    assert _calls_sqlite3_connect(ast.parse("import sqlite3\nsqlite3.connect('x')\n"))
    assert _calls_sqlite3_connect(ast.parse("from sqlite3 import connect\n"))
    assert not _calls_sqlite3_connect(ast.parse("from osiris_core import sqlite\n"))
