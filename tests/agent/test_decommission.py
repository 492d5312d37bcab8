"""``osiris-agent decommission``: one signed bundle closes the chain, the outbox is flushed to
the REAL osiris-server, and nothing more is ever signed (``record`` refused, ``run``/``once``
exit 2, a running agent stops by itself). Without ``--yes`` nothing happens."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from osiris_agent.config import load_config
from osiris_agent.cycle import DECOMMISSION_CHECK, Agent
from osiris_agent.outbox import Decommissioned
from osiris_agent.state import StateDB
from osiris_core.controls import controls_for
from osiris_core.evidence import bundle_hash, verify_envelope
from osiris_core.keys import Verifier
from tests.agent.fixtures_agent import good_clock
from tests.e2e.conftest import bundles, enroll_agent, seed_site

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris_agent.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_decommission_closes_the_chain_and_nothing_more_is_signed(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    cfg = str(state / "agent.toml")
    a = enroll_agent(central, site, state)
    try:
        assert a.cycle().reachable
        central.stop()  # evidence queued while the server is down is flushed by decommission
        a.cycle()
        queued = a.outbox.depth()
        assert queued > 0
        central.start()
        seq_before = a.outbox.head()[0]

        # Without --yes: the impact is explained and nothing is done.
        p = _cli("decommission", "--config", cfg)
        assert p.returncode == 2 and "--yes" in p.stderr and "closes" in p.stderr, p.stderr
        assert a.outbox.head()[0] == seq_before and a.decommissioned is None

        p = _cli("decommission", "--config", cfg, "--yes")
        assert p.returncode == 0, p.stderr
        assert f"chain closed at seq {seq_before + 1}" in p.stdout, p.stdout

        last = a.outbox.envelopes()[-1]
        b = last["bundle"]
        assert b["seq"] == seq_before + 1 and b["check"] == DECOMMISSION_CHECK
        assert (b["tier"], b["outcome"], b["host_id"]) == ("monitor", "compliant", a.appliance_id)
        assert b["action_taken"] == "appliance decommissioned: evidence chain closed"
        assert b["controls"] == list(controls_for(DECOMMISSION_CHECK))
        v = Verifier.from_vkey(a.signer.vkey)
        verify_envelope(last, {v.key_id_hex: v})
        assert a.decommissioned == b["seq"] and a.db.get("decommissioned") == str(b["seq"])
        # flushed: the server has every bundle, the closing one last
        assert a.outbox.depth() == 0
        on_server = central.evidence(site.id)
        assert bundle_hash(b) in {e["bundle_hash"] for e in on_server}
        assert max(e["seq"] for e in on_server) == b["seq"]

        # Nothing more: record() refuses (in this process, which was running all along) ...
        n = len(bundles(a))
        assert a.record(host_id=a.appliance_id, check="timesync", outcome="compliant") is None
        with pytest.raises(Decommissioned):
            a.outbox.record(a.signer, a.appliance_id, host_id=a.appliance_id, check="timesync",
                            site_id=a.site_id, outcome="compliant")  # fmt: skip
        r = a.cycle()
        assert any("decommissioned" in e for e in r.errors) and r.recorded == 0
        assert len(bundles(a)) == n
    finally:
        a.close()

    # ... and the commands refuse to start.
    for cmd in ("once", "run"):
        p = _cli(cmd, "--config", cfg)
        assert p.returncode == 2 and "decommissioned" in p.stderr, (cmd, p.stderr)
        assert "Traceback" not in p.stderr
    p = _cli("rotate-key", "--config", cfg)
    assert p.returncode == 2 and "decommissioned" in p.stderr
    # Re-running is harmless: already closed, just flushed again.
    p = _cli("decommission", "--config", cfg, "--yes")
    assert p.returncode == 0 and "already decommissioned" in p.stdout
    db = StateDB.open_dir(state)
    try:
        assert db.get("chain_seq") == str(seq_before + 1)
    finally:
        db.close()
    # The attestation still works (the auditor needs it most now): its head is the closing bundle.
    out = tmp_path / "att.json"
    p = _cli("attest", "--out", str(out), "--config", cfg)
    assert p.returncode == 0 and f"seq {seq_before + 1}" in p.stderr


def test_a_running_agent_stops_when_decommissioned(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    enroll_agent(central, site, state).close()
    agent = Agent(load_config(state / "agent.toml"), measure_clock=good_clock, scan_self=False)
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while agent.outbox.head()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        p = _cli("decommission", "--config", str(state / "agent.toml"), "--yes")
        assert p.returncode == 0, p.stderr
        t.join(15)
        assert not t.is_alive(), "the running agent did not stop after the decommission"
        closing = agent.outbox.envelopes()[-1]["bundle"]
        assert closing["check"] == DECOMMISSION_CHECK
    finally:
        stop.set()
        t.join(5)
        agent.close()


def test_unreachable_server_keeps_the_closing_bundle_queued_exit_3(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    enroll_agent(central, site, state).close()
    central.stop()
    p = _cli("decommission", "--config", str(state / "agent.toml"), "--yes")
    assert p.returncode == 3 and "still queued" in p.stderr, p.stderr
    central.start()
    p = _cli("decommission", "--config", str(state / "agent.toml"), "--yes")
    assert p.returncode == 0 and "already decommissioned" in p.stdout, p.stderr
    on_server = central.evidence(site.id)
    assert [e["check"] for e in on_server].count(DECOMMISSION_CHECK) == 1
    assert max(on_server, key=lambda e: e["seq"])["check"] == DECOMMISSION_CHECK
