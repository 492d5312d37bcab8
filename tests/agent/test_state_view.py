"""The read-only state view with named keys (``osiris_core.agent_state``, issue 14 item 5):
every key it names exists after a real cycle, ``osiris-agent status`` and ``osiris tui --local``
read the same values through it, and it cannot write."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from osiris_agent import migrations
from osiris_agent.cli import main
from osiris_core import agent_state
from osiris_core.agent_state import META, AgentStateError, read_agent_state
from osiris_tui import local
from tests.agent.fixtures_agent import FakeCentral, make_agent


@pytest.fixture()
def cycled(tmp_path):
    """A state dir after one real cycle against the fake Central Command."""
    with FakeCentral() as srv:
        a = make_agent(srv, tmp_path / "s")
        try:
            r = a.cycle()
            assert r.reachable and r.recorded >= 1
        finally:
            a.close()
    return tmp_path / "s"


def test_every_key_the_view_names_exists_after_a_real_cycle(cycled) -> None:
    v = read_agent_state(cycled)
    missing = sorted(k for k in META if k not in v.meta)
    assert not missing, f"the view names keys a real cycle does not write: {missing}"
    unnamed = sorted(k for k in v.meta if k not in META and k not in agent_state.META_IF)
    assert not unnamed, f"the agent writes keys the view does not name: {unnamed}"
    assert v.schema_version == migrations.LATEST == agent_state.KNOWN_SCHEMA
    assert v.last_checkin_ok_at and v.last_checkin and v.last_checkin["ok"] is True
    assert v.chain_seq >= 1 and v.chain_head and v.outbox_depth == 0 and v.last_receipt
    assert v.witness_size and v.witness_checkpoint and v.signing_vkey and v.cosign_vkey
    assert v.last_cycle and v.clock and v.clock["ntp_ok"] is True
    assert [(r["check"], r["status"]) for r in v.results] == [("timesync", "compliant")]
    assert v.evidence and v.evidence[0]["seq"] == v.chain_seq


def test_status_and_the_local_console_read_the_same_values(cycled) -> None:
    r = CliRunner().invoke(main, ["status", "--json", "--state", str(cycled)])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    con = local.read_state(cycled)
    v = read_agent_state(cycled)
    assert st["last_checkin"] == con.last_checkin == v.last_checkin_ok_at
    assert st["chain_head"] == {"seq": con.chain_seq, "hash": con.chain_head}
    assert st["queue_depth"] == con.outbox_depth == v.outbox_depth
    assert st["last_receipt"] == con.last_receipt == v.last_receipt
    assert st["witness"]["checkpoint_size"] == con.witness_size == v.witness_size
    assert (st["policy"] or {}).get("policy_version") == con.policy_version == v.policy_version
    assert st["server_reachable"] is True and con.server_reachable is True


def test_the_view_cannot_write(cycled) -> None:
    db = cycled / "state.db"
    before = db.read_bytes()
    read_agent_state(cycled)
    assert db.read_bytes() == before
    conn = agent_state.connect_readonly(db)
    try:
        writes = ("DELETE FROM evidence", "INSERT INTO meta VALUES ('x', 'y')",
                  "UPDATE scan_state SET status = 'compliant'", "CREATE TABLE t (x)")  # fmt: skip
        for stmt in writes:
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(stmt)
    finally:
        conn.close()
    assert db.read_bytes() == before


def test_the_view_refuses_a_newer_store_and_reads_an_older_one(tmp_path, cycled) -> None:
    raw = sqlite3.connect(cycled / "state.db")
    raw.execute("INSERT INTO schema_migrations VALUES (?, 'future', 'x')", (migrations.LATEST + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(AgentStateError, match="newer than this build"):
        read_agent_state(cycled)
    # a released (version 1) state dir, before the scan tables joined it: read, those parts empty
    old = tmp_path / "old"
    old.mkdir()
    raw = sqlite3.connect(old / "state.db")
    raw.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    raw.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('chain_seq', '4')")
    raw.commit()
    raw.close()
    v = read_agent_state(old)
    assert (v.schema_version, v.chain_seq, v.scan_states, v.heal_memory) == (1, 4, [], [])
