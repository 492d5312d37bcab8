"""The agent's one store: versioned migrations, in-place upgrade of today's three files, crash
mid-migration, and refusing a state dir a newer agent wrote (issue 14 item 5).

The "old" state dir is built with the DDL the released code used (copied here on purpose: a
released schema never changes, so the copy is the fixture) — ``state.db`` at meta
``schema_version`` 1, ``scan.db`` and ``heal.db`` beside it, as the agent before issue 14 left
them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from osiris_agent.healing.l1 import RuleMemory
from osiris_agent.migrations import LATEST, MIGRATIONS, StateTooNew
from osiris_agent.outbox import Outbox
from osiris_agent.scanner import Scanner
from osiris_agent.state import StateDB
from osiris_core.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]

# -- the released (pre-issue-14) schemas, verbatim ------------------------------------------------
OLD_STATE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (seq INTEGER PRIMARY KEY, bundle_hash TEXT NOT NULL UNIQUE,
    envelope BLOB NOT NULL, host_id TEXT NOT NULL, check_id TEXT NOT NULL, outcome TEXT NOT NULL,
    created_at TEXT NOT NULL, log_index INTEGER, receipt TEXT, acked_at TEXT);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY REFERENCES evidence(seq),
    size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending', last_error TEXT);
CREATE TABLE IF NOT EXISTS seen_orders (order_id TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deferred_orders (order_id TEXT PRIMARY KEY, envelope TEXT NOT NULL,
    expires_at TEXT NOT NULL, deferred_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (host_id TEXT NOT NULL, check_id TEXT NOT NULL,
    status TEXT NOT NULL, since TEXT NOT NULL, observed TEXT NOT NULL, expected TEXT NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (host_id, check_id));
CREATE TABLE IF NOT EXISTS incidents (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    severity TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL,
    created_at TEXT NOT NULL, sent_at TEXT);
"""
OLD_SCAN = """
CREATE TABLE IF NOT EXISTS scan_check (
    host_id TEXT NOT NULL, check_id TEXT NOT NULL, last_run REAL NOT NULL,
    PRIMARY KEY (host_id, check_id));
CREATE TABLE IF NOT EXISTS scan_state (
    host_id TEXT NOT NULL, runbook_id TEXT NOT NULL, check_id TEXT NOT NULL,
    status TEXT NOT NULL, since TEXT NOT NULL, last_seen TEXT NOT NULL,
    PRIMARY KEY (host_id, runbook_id));
CREATE TABLE IF NOT EXISTS scan_snapshot (host_id TEXT PRIMARY KEY, last REAL NOT NULL);
"""
OLD_HEAL = (
    "CREATE TABLE IF NOT EXISTS heal_memory (name TEXT NOT NULL, host_id TEXT NOT NULL,"
    " runbook_id TEXT NOT NULL, last_ts REAL NOT NULL, attempts INTEGER NOT NULL,"
    " PRIMARY KEY (name, host_id, runbook_id))"
)
T = "2026-01-02T03:04:05.000Z"
RULE = "L1-WIN-FIREWALL-001"


def make_old_state_dir(d: Path) -> None:
    """A state dir exactly as the released agent leaves it (three files, meta version 1)."""
    d.mkdir(parents=True, exist_ok=True)
    st = sqlite3.connect(d / "state.db")
    st.executescript(OLD_STATE)
    st.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "1"), ("chain_seq", "2"), ("chain_head", "h2"),
         ("outbox_entries", "1"), ("outbox_bytes", "5"), ("witness_size", "7")],
    )  # fmt: skip
    st.executemany(
        "INSERT INTO evidence(seq, bundle_hash, envelope, host_id, check_id, outcome, created_at,"
        " log_index, receipt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1, "h1", b"{}", "dc01", "windows_firewall", "alert", T, 0, "r1"),
         (2, "h2", b"{1234}", "dc01", "windows_firewall", "healed", T, None, None)],
    )  # fmt: skip
    st.execute("INSERT INTO outbox(seq, size) VALUES (2, 5)")
    st.execute("INSERT INTO seen_orders VALUES ('ord-1', ?)", (T,))
    st.execute("INSERT INTO deferred_orders VALUES ('ord-2', '{}', ?, ?)", (T, T))
    st.commit()
    st.close()
    sc = sqlite3.connect(d / "scan.db")
    sc.executescript(OLD_SCAN)
    sc.execute("INSERT INTO scan_check VALUES ('dc01', 'windows_firewall', 1700000000.5)")
    sc.execute(
        "INSERT INTO scan_state VALUES ('dc01', 'RB-WIN-FIREWALL-001', 'windows_firewall',"
        " 'drift', ?, ?)", (T, T),
    )  # fmt: skip
    sc.execute("INSERT INTO scan_snapshot VALUES ('dc01', 1700000000.0)")
    sc.commit()
    sc.close()
    he = sqlite3.connect(d / "heal.db")
    he.execute(OLD_HEAL)
    he.execute("INSERT INTO heal_memory VALUES (?, 'dc01', 'RB-WIN-FIREWALL-001', 1700000001.0, 2)",
               (RULE,))  # fmt: skip
    he.commit()
    he.close()


def assert_everything_kept(d: Path) -> None:
    db = StateDB.open_dir(d)
    try:
        ob = Outbox(db)
        assert ob.head() == (2, "h2") and ob.depth() == 1 and ob.counters() == (1, 5)
        assert db.get("witness_size") == "7"
        assert [r[0] for r in db.conn.execute("SELECT order_id FROM seen_orders")] == ["ord-1"]
        assert db.conn.execute("SELECT COUNT(*) FROM deferred_orders").fetchone()[0] == 1
        # scan state and heal memory, read through their own classes on the one store
        sc = Scanner(load_catalog(), lambda h: None, None, db)  # type: ignore[arg-type]
        assert sc.states("dc01")["RB-WIN-FIREWALL-001"]["status"] == "drift"
        last = db.conn.execute("SELECT last_run FROM scan_check").fetchall()
        assert last == [(1700000000.5,)]
        assert RuleMemory(db).get(RULE, "dc01", "RB-WIN-FIREWALL-001") == (1700000001.0, 2)
        versions = [r[0] for r in db.conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in MIGRATIONS] and db.get("schema_version") == str(
            LATEST
        )
    finally:
        db.close()
    assert not (d / "scan.db").exists() and not (d / "heal.db").exists()
    assert (d / "scan.db.migrated").exists() and (d / "heal.db.migrated").exists()


def _crashing(spec: str, d: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.agent.crashpoint", spec, "--open-state", str(d)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_fresh_store_applies_every_migration_each_in_its_own_transaction(tmp_path) -> None:
    run = _crashing("count:0", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"COMMITS {len(MIGRATIONS)}" in run.stderr  # one transaction per migration
    db = StateDB.open_dir(tmp_path)
    try:
        rows = db.conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    finally:
        db.close()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["state.db"]


def test_todays_three_files_migrate_in_place_and_keep_everything(tmp_path) -> None:
    d = tmp_path / "state"
    make_old_state_dir(d)
    assert_everything_kept(d)
    assert_everything_kept(d)  # a second start changes nothing


@pytest.mark.parametrize("spec", ["before:1", "after:1"])
def test_a_crash_mid_migration_leaves_a_dir_that_migrates_cleanly(tmp_path, spec) -> None:
    """Killed just before the merge commits (nothing merged, old files intact) or just after
    it (merged, old files not yet renamed): the next start finishes the job, nothing doubled."""
    d = tmp_path / "state"
    make_old_state_dir(d)
    run = _crashing(spec, d)
    assert run.returncode == 137, run.stderr
    assert (d / "scan.db").exists() and (d / "heal.db").exists()  # renamed only after commit
    assert_everything_kept(d)


def test_a_state_dir_from_a_newer_agent_is_refused_untouched(tmp_path) -> None:
    d = tmp_path / "state"
    StateDB.open_dir(d).close()
    raw = sqlite3.connect(d / "state.db")
    raw.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', ?)", (LATEST + 1, T))
    raw.commit()
    raw.close()
    with pytest.raises(StateTooNew) as e:
        StateDB.open_dir(d)
    assert e.value.code == "E_STATE_SCHEMA" and f"version {LATEST + 1}" in str(e.value)
    (d / "pins.json").write_text(json.dumps(
        {"appliance_id": "a", "site_id": "s", "log_vkey": "x", "order_vkey": "y"}
    ))  # fmt: skip
    for args in (["status", "--state", str(d)], ["outbox", "list", "--state", str(d)]):
        run = subprocess.run(
            [sys.executable, "-m", "osiris_agent.cli", *args], cwd=ROOT, capture_output=True,
            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60,
        )  # fmt: skip
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "newer than this" in lines[0], run.stderr
        assert "Traceback" not in run.stderr
    raw = sqlite3.connect(d / "state.db")
    assert raw.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == LATEST + 1
    raw.close()
