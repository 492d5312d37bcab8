"""The engine interface's promises, held by both engines (``osiris_server/storage``).

Every test runs on a real SQLite file and on a real PostgreSQL database (the session's
``PgCluster``), whatever ``--db-engine`` says: the stores above (``db/``, the log) are written
once against these promises — rollback, nested writes joining, ONE writer across processes,
group commit, value round trips — so each must hold on each engine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from osiris_server.db.migrations import ddl
from osiris_server.storage import Engine, StorageUnavailable
from osiris_server.storage.postgres import PostgresEngine, translate
from osiris_server.storage.sqlite import SqliteEngine

LOCK_KEY = 4242


def _make(kind: str, where: str) -> Engine:
    if kind == "sqlite":
        return SqliteEngine(where)
    return PostgresEngine(where, lock_key=LOCK_KEY)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(engine kind, where): a SQLite file path or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "engine.db")
    return "postgresql", request.getfixturevalue("pg_url")


@pytest.fixture
def engine(target: tuple[str, str]) -> Iterator[Engine]:
    e = _make(*target)
    with e.write() as tx:
        tx.execute(ddl("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB)", e.dialect))
    yield e
    e.close()


def test_a_failed_write_leaves_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.write() as tx:
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["a", 1])
        assert tx.scalar("SELECT COUNT(*) FROM t") == 1  # visible inside
        raise RuntimeError("boom")
    assert engine.scalar("SELECT COUNT(*) FROM t") == 0
    # a statement error rolls back the whole transaction too, not only that statement
    with pytest.raises(Exception), engine.write() as tx:  # noqa: B017 - engine-specific class
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["b", 1])
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["b", 2])  # primary key taken
    assert engine.scalar("SELECT COUNT(*) FROM t") == 0
    with engine.write() as tx:  # and the writer is usable afterwards
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["c", 3])
    assert engine.query("SELECT k, n FROM t") == [{"k": "c", "n": 3}]


def test_a_nested_write_joins_the_outer_one(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.write() as outer:
        outer.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["outer", 1])
        with engine.write() as inner:
            assert inner.scalar("SELECT n FROM t WHERE k = ?", ["outer"]) == 1
            inner.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["inner", 2])
        # (the tx handle sees the transaction's rows; engine reads may not, on SQLite)
        assert outer.scalar("SELECT COUNT(*) FROM t") == 2
        raise RuntimeError("the outer fails after the inner finished")
    assert engine.scalar("SELECT COUNT(*) FROM t") == 0  # the inner rows went with it


COUNTER = textwrap.dedent(
    """
    import sys
    from osiris_server.storage.postgres import PostgresEngine
    from osiris_server.storage.sqlite import SqliteEngine
    kind, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    e = SqliteEngine(where) if kind == "sqlite" else PostgresEngine(where, lock_key=4242)
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    for _ in range(n):
        with e.write() as tx:  # read, then write what was read plus one: lost without the lock
            v = tx.scalar("SELECT n FROM t WHERE k = 'c'")
            tx.execute("UPDATE t SET n = ? WHERE k = 'c'", [v + 1])
    e.close()
    """
)


def test_one_writer_across_two_processes(engine: Engine, target: tuple[str, str]) -> None:
    with engine.write() as tx:
        tx.execute("INSERT INTO t (k, n) VALUES ('c', 0)")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, *target, "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=240) == 0
    assert engine.scalar("SELECT n FROM t WHERE k = 'c'") == 400


def test_group_commit_commits_everyone_and_fails_only_the_bad_item(engine: Engine) -> None:
    with engine.write() as tx:
        tx.execute("INSERT INTO t (k, n) VALUES ('taken', 0)")
    errors: dict[str, BaseException] = {}

    def one(k: str) -> None:
        try:
            engine.write_grouped(lambda tx: tx.execute("INSERT INTO t (k, n) VALUES (?, 1)", [k]))
        except Exception as exc:  # noqa: BLE001 - collected per caller
            errors[k] = exc

    keys = [f"k{i}" for i in range(40)] + ["taken"]
    threads = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert list(errors) == ["taken"]  # the duplicate's own caller gets its error
    assert engine.scalar("SELECT COUNT(*) FROM t WHERE n = 1") == 40


def test_values_round_trip(engine: Engine) -> None:
    big = 2**40 + 7  # an epoch in ms, a log size: beyond int4
    with engine.write() as tx:
        tx.execute("INSERT INTO t (k, n, b) VALUES (?, ?, ?)", ["big", big, b"\x00\xffraw"])
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["flag", True])
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["dec", 5])
    row = engine.one("SELECT n, b FROM t WHERE k = ?", ["big"])
    assert row == {"n": big, "b": b"\x00\xffraw"} and type(row["b"]) is bytes
    assert engine.scalar("SELECT n FROM t WHERE k = ?", ["flag"]) == 1  # a bool is stored as 1
    assert engine.scalar("SELECT k FROM t WHERE n = ?", [True]) == "flag"  # compared as 1
    total = engine.scalar("SELECT SUM(n) FROM t WHERE k IN ('flag', 'dec')")
    assert total == 6 and type(total) is int  # PostgreSQL's SUM is numeric: an int comes back
    assert not isinstance(engine.scalar("SELECT COUNT(*) FROM t"), Decimal)


def test_question_marks_and_percents_inside_literals(engine: Engine) -> None:
    got = engine.scalar("SELECT 'what?' || ? || '100%' || 'it''s ?%'", ["-"])
    assert got == "what?-100%it's ?%"
    with engine.write() as tx:
        tx.execute("INSERT INTO t (k, n) VALUES (?, ?)", ["50%?", 1])
    assert engine.scalar("SELECT n FROM t WHERE k LIKE '50%' AND n = ?", [1]) == 1


def test_translate_edge_cases() -> None:
    assert translate("SELECT ? FROM t WHERE a = ?") == "SELECT %s FROM t WHERE a = %s"
    assert translate("SELECT '?' , ?") == "SELECT '?' , %s"
    assert translate("WHERE k LIKE 'a%' AND n % 2 = ?") == "WHERE k LIKE 'a%%' AND n %% 2 = %s"
    assert translate("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"
    assert translate('SELECT "odd?col" FROM t') == 'SELECT "odd?col" FROM t'


def test_describe_and_errors_never_show_a_password(pg_cluster: Any, pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:Sup3rS3cret@")  # trust auth ignores it
    e = PostgresEngine(url, lock_key=LOCK_KEY)
    try:
        assert "Sup3rS3cret" not in e.describe() and "***" in e.describe()
    finally:
        e.close()
    dead = f"postgresql://osiris:Sup3rS3cret@127.0.0.1:{pg_cluster.port + 1}/nowhere"
    with pytest.raises(StorageUnavailable) as info:
        PostgresEngine(dead, lock_key=LOCK_KEY, connect_timeout_s=2)
    assert "Sup3rS3cret" not in str(info.value) and "***" in str(info.value)
