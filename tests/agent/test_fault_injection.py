"""Fault injection (issue 14 item 5): kill the real agent at every commit of a cycle that finds
drift and heals it, and show that no drift is ever left without its bundle.

The agent is the real ``osiris-agent once`` in a subprocess, against the real ``osiris-server``
over loopback and a real Linux host (the lab sshd over a sandbox root), run under
``tests/agent/crashpoint.py``, which ``os._exit(137)``s just before or just after the k-th
SQLite commit of the process — i.e. between every pair of writes. One undisturbed run counts the
cycle's commits (K); then for every k in 1..K, before and after: drift is injected, the agent is
killed at k, restarted normally to completion, and the store and the server are checked:

* every scan-state transition is a bundle: per (host, runbook) the detect bundles chain
  (each one's ``pre_state.status`` is the previous one's ``post_state.status``), and the last
  one says what ``scan_state`` says — a state that moved without its bundle breaks this;
* the chain is unbroken (seq 1..n, each ``prev_hash`` the hash of the one before);
* the healer's memory of the drifted runbook exists exactly when its L1 bundle was recorded;
* after the flush, the server holds every bundle exactly once (no gap, no duplicate leaf) and
  nothing acknowledged before was lost.

The cycle is kept small so K stays near 20: before every run only the drifted check is made due
(``scan_check.last_run``: 0 for it, tomorrow for the others — the baseline run observed them
all) and, before a trial, the heal memory is cleared (``DELETE FROM heal_memory``), so each trial
heals again instead of waiting out the L1 rule's cooldown — every trial is the same cycle. Only
those two schedule tables are touched by the test, never the chain, the outbox or scan_state.
After each trial one more normal cycle sees the healed host compliant again (the heal runs after
the scan), so every trial's cycle records a compliant → drift transition — and the test checks
it was recorded exactly once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osiris_core.agent_state import read_agent_state
from osiris_core.catalog import load_catalog
from osiris_core.evidence import GENESIS_HASH, bundle_hash
from osiris_lab.linux import LabSshd, LinuxSandbox
from tests.agent.fixtures_agent import Sntp
from tests.e2e.conftest import Central, enroll_agent, seed_site

ROOT = Path(__file__).resolve().parents[2]
HOST = "lin-1"
DRIFT = ("root_login", "LIN-SSH-001")
CHECK = load_catalog().runbook(DRIFT[1]).check


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _once(cfg: Path, spec: str | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["-m", "tests.agent.crashpoint", spec] if spec else ["-m", "osiris_agent.cli"]
    return subprocess.run(
        [sys.executable, *pre, "once", "--config", str(cfg)], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture()
def lab(tmp_path) -> Iterator[tuple[LinuxSandbox, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed: apt-get install -y openssh-server")
    box = LinuxSandbox(tmp_path / "root").build()
    with LabSshd(tmp_path / "sshd", box) as sshd:
        yield box, sshd


def _read(state: Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str], set[str]]:
    """(bundles in chain order, scan_state status per (host, runbook), acknowledged hashes)."""
    db = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True)
    try:
        envs = [json.loads(r[0]) for r in db.execute("SELECT envelope FROM evidence ORDER BY seq")]
        scan = {(h, rb): s for h, rb, s in db.execute(
            "SELECT host_id, runbook_id, status FROM scan_state")}  # fmt: skip
        acked = {
            r[0] for r in db.execute("SELECT bundle_hash FROM evidence WHERE receipt IS NOT NULL")
        }
    finally:
        db.close()
    return [e["bundle"] for e in envs], scan, acked


def _drifts(state: Path) -> int:
    """How many detect bundles recorded the drifted runbook going compliant → drift."""
    return sum(
        1 for b in _read(state)[0]
        if b["tier"] == "monitor" and b.get("runbook_id") == DRIFT[1]
        and b["post_state"]["status"] == "drift"
        and (b.get("pre_state") or {}).get("status") == "compliant"
    )  # fmt: skip


def _heal_fact(state: Path) -> tuple[int, bool]:
    """(L1 bundles for the drifted runbook, whether an L1 firing of it is remembered)."""
    bundles = _read(state)[0]
    n = sum(1 for b in bundles if b["tier"] == "L1" and b.get("runbook_id") == DRIFT[1])
    db = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True)
    try:
        fired = db.execute(
            "SELECT COUNT(*) FROM heal_memory WHERE host_id = ? AND runbook_id = ?"
            " AND name NOT IN ('L2', 'L3')", (HOST, DRIFT[1]),
        ).fetchone()[0]  # fmt: skip
    finally:
        db.close()
    return n, bool(fired)


def _observe(state: Path, cfg: Path, tag: str) -> None:
    """One more normal cycle, so the store sees the healed host compliant again (the heal
    runs after the scan): the next trial's cycle then has a transition to record."""
    _due(state)
    obs = _once(cfg)
    assert obs.returncode == 0, (tag, obs.stderr[-800:])
    assert _read(state)[1][(HOST, DRIFT[1])] == "compliant", f"{tag}: not seen healed"


def _assert_consistent(state: Path, c: Central, site_id: str, acked_before: set[str], tag: str):
    bundles, scan, acked = _read(state)
    # the chain is unbroken
    prev = GENESIS_HASH
    for i, b in enumerate(bundles, 1):
        assert b["seq"] == i and b["prev_hash"] == prev, f"{tag}: chain broken at seq {i}"
        prev = bundle_hash(b)
    # every scan-state transition has its bundle, and the store agrees with the last one
    last: dict[tuple[str, str], str] = {}
    for b in bundles:
        if b["tier"] != "monitor" or not b.get("runbook_id") or b["host_id"] != HOST:
            continue
        key = (b["host_id"], b["runbook_id"])
        before = (b.get("pre_state") or {}).get("status")
        assert before == last.get(key, "unknown"), f"{tag}: {key} moved without a bundle"
        last[key] = b["post_state"]["status"]
    assert scan, f"{tag}: nothing scanned"
    for key, status in scan.items():
        assert last.get(key) == status, f"{tag}: {key} is {status} in the store, no bundle says so"
    # after the flush: every bundle on the server exactly once, nothing acknowledged lost
    assert not (acked_before - acked), f"{tag}: acknowledged bundles lost"
    assert acked == {bundle_hash(b) for b in bundles}, f"{tag}: not all acknowledged"
    rows = c.evidence(site_id)
    hashes = [r["bundle_hash"] for r in rows]
    assert len(hashes) == len(set(hashes)) == len(bundles), f"{tag}: missing or doubled"
    assert sorted(r["seq"] for r in rows) == list(range(1, len(bundles) + 1))
    assert c.api("GET", "/log/checkpoint")["size"] == len(bundles), f"{tag}: duplicate leaf"
    return acked


def _due(state: Path, forget_heals: bool = False) -> None:
    """Make the drifted check (only it) due now and, before a trial, forget the heal cooldown,
    so each trial's cycle detects and heals the same drift and nothing else."""
    db = sqlite3.connect(state / "state.db")
    try:
        db.execute(
            "UPDATE scan_check SET last_run = CASE WHEN check_id = ? THEN 0 ELSE ? END",
            (CHECK, time.time() + 86400),
        )
        if forget_heals:
            db.execute("DELETE FROM heal_memory")
        db.commit()
    finally:
        db.close()


@pytest.mark.timeout(900)
def test_kill_at_every_commit_of_a_drift_and_heal_cycle(central, lab, tmp_path) -> None:
    box, sshd = lab
    site = seed_site(central)
    central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": HOST, "kind": "ssh_key", "address": "127.0.0.1", "port": sshd.port,
        "username": sshd.user, "private_key": sshd.client_key,
        "host_key_fingerprints": [sshd.host_fingerprint],
    })  # fmt: skip
    ntp = Sntp()
    state = tmp_path / "state"
    a = enroll_agent(central, site, state, f'[agent]\nscan_interval_s = 5\n[ntp]\nservers = '
                     f'["{ntp.server}"]\nmin_good = 1\n')  # fmt: skip
    a.close()
    (cfg,) = state.glob("*.toml")
    try:
        # a first cycle observes everything (compliant); the measured one finds drift and heals
        base = _once(cfg)
        assert base.returncode == 0, base.stderr[-800:]
        acked = _assert_consistent(state, central, site.id, set(), "baseline")
        box.drift(DRIFT[0])
        _due(state, forget_heals=True)
        t0 = time.monotonic()
        counted = _once(cfg, "count:0")
        one_run = time.monotonic() - t0
        assert counted.returncode == 0, counted.stderr[-800:]
        k_max = int(counted.stderr.rsplit("COMMITS ", 1)[1].split()[0])
        bundles, _, _ = _read(state)
        assert any(b["outcome"] == "healed" and b["runbook_id"] == DRIFT[1] for b in bundles)
        acked = _assert_consistent(state, central, site.id, acked, "counted")
        _observe(state, cfg, "counted")
        drifts = _drifts(state)
        assert drifts == 1
        assert 5 <= k_max <= 60, f"the cycle makes {k_max} commits"
        crashed = 0
        for mode in ("before", "after"):
            for k in range(1, k_max + 1):
                tag = f"{mode}:{k}"
                box.drift(DRIFT[0])
                _due(state, forget_heals=True)
                l1_before, _ = _heal_fact(state)
                run = _once(cfg, tag)
                assert run.returncode in (0, 137), (tag, run.stderr[-800:])
                crashed += run.returncode == 137
                _due(state)
                again = _once(cfg)
                assert again.returncode == 0, (tag, again.stderr[-800:])
                acked = _assert_consistent(state, central, site.id, acked, tag)
                assert "PermitRootLogin no" in box.p("etc/ssh/sshd_config").read_text(), tag
                # this trial's drift is recorded exactly once (not lost, not doubled)
                n = _drifts(state)
                assert n == drifts + 1, f"{tag}: the drift was recorded {n - drifts} times"
                drifts = n
                # the healer's memory moved exactly when its bundle was recorded (one fact)
                l1, fired = _heal_fact(state)
                assert l1 - l1_before in (0, 1) and fired == (l1 > l1_before), (tag, l1, fired)
                _observe(state, cfg, tag)
                acked = _assert_consistent(state, central, site.id, acked, tag + " observed")
        assert crashed >= k_max, f"only {crashed} of {2 * k_max} runs were killed"
        # the read-only view names the scanner's and the healer's memory of this real host
        v = read_agent_state(state)
        assert {(s["host_id"], s["runbook_id"]) for s in v.scan_states} >= {(HOST, DRIFT[1])}
        assert any(m["host_id"] == HOST and m["runbook_id"] == DRIFT[1] for m in v.heal_memory)
        assert v.outbox_depth == 0 and v.chain_seq == len(_read(state)[0])
        print(f"\nfault injection: K={k_max} commits per cycle, one cycle {one_run:.1f} s, "
              f"{2 * k_max} kills")  # fmt: skip
    finally:
        ntp.close()


@pytest.mark.timeout(300)
def test_a_full_outbox_moves_no_scan_state_and_says_why(central, lab, tmp_path) -> None:
    """The bundle of a drift cannot be queued (outbox full, server down): the scan state does
    not move and the healer does not act, an ``outbox_full`` incident and ``status`` say why —
    and once the outbox drains the same drift is detected, recorded and healed."""
    from osiris_agent.cli import gather_status
    from osiris_agent.cycle import CycleReport

    box, sshd = lab
    site = seed_site(central)
    central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": HOST, "kind": "ssh_key", "address": "127.0.0.1", "port": sshd.port,
        "username": sshd.user, "private_key": sshd.client_key,
        "host_key_fingerprints": [sshd.host_fingerprint],
    })  # fmt: skip
    a = enroll_agent(central, site, tmp_path / "state", "[outbox]\nmax_entries = 100\n")
    try:
        assert a.cycle().reachable and a.outbox.depth() == 0
        assert a.scanner.states(HOST)[DRIFT[1]]["status"] == "compliant"
        central.stop()
        while a.outbox.depth() < 100:  # the server is gone; evidence piles up to the bound
            a.record(CycleReport(), host_id=a.appliance_id, check="timesync",
                     outcome="compliant", action_taken="filler")  # fmt: skip
        box.drift(DRIFT[0])
        seq = a.outbox.head()[0]
        r = a.cycle()
        assert not r.reachable and r.refused_full >= 1
        assert a.outbox.head()[0] == seq  # nothing signed
        assert a.scanner.states(HOST)[DRIFT[1]]["status"] == "compliant"  # did not move
        assert "PermitRootLogin no" not in box.p("etc/ssh/sshd_config").read_text()  # no heal
        kinds = [i["kind"] for i in a.db.unsent_incidents()]
        assert kinds.count("outbox_full") == 1
        st = gather_status(tmp_path / "state")
        assert st["evidence_refused_full"] >= 1 and st["queue_depth"] == 100
        central.start()
        for _ in range(3):  # the first cycle drains the queue (flush is last); then it records
            a.cycle()
            if a.scanner.states(HOST)[DRIFT[1]]["status"] != "compliant":
                break
        drift = [b for b in (e["bundle"] for e in a.outbox.envelopes())
                 if b["runbook_id"] == DRIFT[1] and b["tier"] == "monitor"]  # fmt: skip
        assert drift and drift[-1]["post_state"]["status"] == "drift"
        assert drift[-1]["pre_state"]["status"] == "compliant"
        a.cycle()
        assert "PermitRootLogin no" in box.p("etc/ssh/sshd_config").read_text()
    finally:
        a.close()
