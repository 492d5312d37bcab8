"""Upgrading a database of every released schema version, on both engines.

For each released version v a database is built the way that release left it (``MIGRATIONS``
up to v, nothing after), seeded with representative rows of the tables v had, then opened with
today's code: it must come out at the newest version with every row intact and the API must
work on it (a real server over it lists the seeded site, appliance and incident). A database
newer than this binary is refused with one clear line, on both engines, also by the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from osiris_server import auth
from osiris_server.app import init_data
from osiris_server.db import open_database
from osiris_server.db.migrations import MIGRATIONS, SchemaTooNew, ddl, migrate
from osiris_server.storage import Engine
from osiris_server.storage.postgres import PostgresEngine
from osiris_server.storage.sqlite import SqliteEngine
from tests.server.conftest import start_server, stop_server

RELEASED = 8  # the newest schema version a release shipped (9: portable feed cursors)
TS = "2026-01-01T00:00:00Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("pg_cluster")  # skips (or fails, when required) without PG
    return str(request.param)


def _bare(kind: str, where: str) -> Engine:
    """An engine without migrations at open: the test decides the version."""
    if kind == "sqlite":
        return SqliteEngine(where)
    return PostgresEngine(where, lock_key=99)


def _seed(e: Engine, v: int, token: str) -> None:
    """Rows every table of version ``v`` would hold in a real deployment."""
    with e.write() as w:
        w.insert(
            "partners", {"id": "ptn_1", "name": "MSP", "contact_email": None, "created_at": TS}
        )
        w.insert(
            "sites",
            {
                "id": "site-old", "partner_id": "ptn_1", "name": "Old Clinic",
                "window_days": '["sat","sun"]', "window_start": "02:00", "window_duration_min": 120,
                "timezone": "UTC", "checkin_interval_s": 60, "created_at": TS,
            },
        )  # fmt: skip
        w.insert(
            "appliances",
            {
                "id": "app_old", "site_id": "site-old", "hostname": "box", "mac": None,
                "signing_vkey": "sk", "cosign_vkey": "ck", "agent_version": "0.1.0",
                "token_hash": "th", "created_at": TS, "last_seen_epoch": 2**33,
                "log_size_seen": 3,
            },
        )  # fmt: skip
        w.insert(
            "tokens",
            {
                "id": "tok_old", "kind": "operator", "token_hash": auth.token_hash(token),
                "role": "admin", "name": "old admin", "created_at": TS, "created_by": "init",
            },
        )  # fmt: skip
        w.insert(
            "incidents",
            {
                "id": "inc_old", "site_id": "site-old", "appliance_id": "app_old",
                "host_id": "dc01", "kind": "drift", "severity": "high", "summary": "s",
                "details_json": "{}", "status": "open", "count": 2, "first_seen": TS,
                "last_seen": TS, "first_seen_epoch": 1_700_000_000,
            },
        )  # fmt: skip
        w.insert(
            "evidence",
            {
                "bundle_hash": "bh1", "log_index": 0, "site_id": "site-old",
                "appliance_id": "app_old", "seq": 1, "prev_hash": "0" * 64, "host_id": "dc01",
                "check_id": "firewall", "outcome": "drift", "finished_at": TS,
                "received_at": TS,
            },
        )  # fmt: skip
        w.insert(
            "audit",
            {
                "at": TS,
                "actor": "init",
                "action": "server.init",
                "target": "x",
                "detail_json": "{}",
            },
        )
        if v < 6:  # dropped (and replaced by enroll_requests) in 6
            w.insert("mac_requests", {"mac": "aa", "status": "pending", "requested_at": TS})
        if v >= 2:
            w.insert("cache_gen", {"scope": "site:site-old", "gen": 4})
        if v >= 3:
            w.insert(
                "runbook_params",
                {
                    "scope": "site", "scope_id": "site-old", "runbook_id": "rb", "name": "p",
                    "value_json": "3", "updated_at": TS, "updated_by": "a",
                },
            )  # fmt: skip
        if v >= 5:
            w.insert(
                "appliance_key_rotations",
                {
                    "appliance_id": "app_old", "effective_seq": 10, "old_vkey": "o",
                    "new_vkey": "n", "statement": "{}", "received_at": TS,
                },
            )  # fmt: skip
        if v >= 7:
            w.insert(
                "trust_changes",
                {
                    "site_id": "site-old", "scope": "site", "scope_id": "site-old",
                    "runbook_id": "rb", "name": "p", "actor": "a", "at": TS,
                },
            )  # fmt: skip


COUNTS = {"partners": 1, "sites": 1, "appliances": 1, "tokens": 1, "incidents": 1, "evidence": 1}


@pytest.mark.parametrize("v", range(1, RELEASED + 1))
def test_a_database_of_every_released_version_upgrades(
    engine_kind: str, v: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    init_data(data, "mig.osiris/osiris/log")  # keys and server.toml; its index is replaced
    url = None
    if engine_kind == "sqlite":
        for p in data.glob("osiris.db*"):
            p.unlink()
        where = str(data / "osiris.db")
    else:
        url = where = request.getfixturevalue("pg_url")
    token = auth.new_token(auth.OPERATOR_PREFIX)
    old = _bare(engine_kind, where)
    try:
        assert migrate(old, upto=v) == v
        _seed(old, v, token)
    finally:
        old.close()

    new = open_database(data / "osiris.db", url)  # today's code
    try:
        assert new.scalar("SELECT MAX(version) FROM schema_version") == len(MIGRATIONS)
        for table, n in COUNTS.items():
            assert new.scalar(f"SELECT COUNT(*) FROM {table}") == n, table
        row = new.one("SELECT * FROM appliances WHERE id = 'app_old'")
        assert row is not None and row["last_seen_epoch"] == 2**33 and row["feed_seq"] == 1
        assert row["quarantined"] == 0  # the column added in 6 defaulted for the old row
        assert new.scalar("SELECT feed_seq FROM incidents WHERE id = 'inc_old'") == 1
        assert new.scalar("SELECT count FROM incidents WHERE id = 'inc_old'") == 2
        if v >= 5:
            assert new.scalar("SELECT COUNT(*) FROM appliance_key_rotations") == 1
    finally:
        new.close()

    app, srv, base = start_server(data, db_url=url)
    try:
        c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=20)
        sites = c.get("/api/v1/sites")
        assert sites.status_code == 200, sites.text
        assert [s["id"] for s in sites.json()["sites"]] == ["site-old"]
        apps = c.get("/api/v1/sites/site-old/appliances")
        assert apps.status_code == 200, apps.text
        assert [a["id"] for a in apps.json()["appliances"]] == ["app_old"]
        events = c.get("/api/v1/events", params={"limit": 50})
        assert events.status_code == 200, events.text
        assert "inc_old" in events.text  # the old incident is in the feed at its old position
        c.close()
    finally:
        stop_server(app, srv)


def _future(e: Engine) -> None:
    with e.write() as w:
        w.execute("INSERT INTO schema_version (version, applied_at) VALUES (9999, 'future')")


def test_a_schema_newer_than_the_binary_is_refused(
    engine_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if engine_kind == "postgresql" else None
    e = open_database(tmp_path / "osiris.db", url)
    _future(e)
    e.close()
    with pytest.raises(SchemaTooNew) as info:
        open_database(tmp_path / "osiris.db", url)
    msg = str(info.value)
    assert "9999" in msg and str(len(MIGRATIONS)) in msg and "\n" not in msg


def test_the_cli_refuses_a_too_new_postgresql_database_in_one_line(
    pg_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    init_data(data, "mig.osiris/osiris/log", pg_url)
    e = open_database(None, pg_url)
    _future(e)
    e.close()
    for args in (["token", "create", "--role", "admin"], ["vault", "rotate"]):
        p = subprocess.run(
            [sys.executable, "-m", "osiris_server.cli", *args, "--data", str(data)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert p.returncode == 2, p.stderr
        assert p.stderr.count("\n") == 1 and "newer than this osiris-server" in p.stderr


def test_every_step_has_a_postgresql_form() -> None:
    for n, steps in enumerate(MIGRATIONS, start=1):
        for step in steps:
            pg = ddl(step, "postgresql")
            assert " INTEGER" not in pg and "BLOB" not in pg, (n, pg)
            assert ddl(step, "sqlite") == (step["sqlite"] if isinstance(step, dict) else step)
    ids = [ddl(s, "postgresql") for s in MIGRATIONS[0] if "audit" in str(s)]
    assert any("GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in s for s in ids)
