"""``osiris-agent rotate-key`` end to end against the REAL osiris-server: the server accepts the
statement, the key files move, a running agent picks the new key up by itself, no bundle at or
past ``effective_seq`` is signed with the old key (also while another process records bundles
in a loop), every bundle is accepted by the server, and the attestation's key history binds
each bundle to the key that signed it. Unreachable → exit 3 and refused → exit 1, nothing
changed; an interrupted rotation the server already recorded is resumed."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from osiris_agent.config import AgentConfig, load_config, to_toml
from osiris_agent.cycle import Agent, CycleReport
from osiris_agent.state import StateDB
from osiris_core.evidence import bundle_hash, verify_envelope
from osiris_core.keys import load_private_key
from osiris_core.trust import open_attestation
from tests.agent.fixtures_agent import good_clock
from tests.e2e.conftest import enroll_agent, seed_site

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris_agent.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state.iterdir()) if "key" in p.name}


def _meta(state: Path) -> dict[str, Any]:
    db = StateDB.open_dir(state)
    try:
        return {
            "head": (db.get("chain_seq"), db.get("chain_head")),
            "history": db.get_json("key_history"),
            "signing_vkey": db.get("signing_vkey"),
            "evidence": db.conn.execute("SELECT COUNT(*) FROM evidence").fetchone()[0],
        }
    finally:
        db.close()


def _attest(state: Path, tmp: Path) -> Any:
    out = tmp / f"att-{os.urandom(3).hex()}.json"
    p = _cli("attest", "--out", str(out), "--state", str(state))
    assert p.returncode == 0, p.stderr
    return open_attestation(json.loads(out.read_text()))


def _key_for(att: Any, seq: int) -> Any:
    for e in att.epochs:
        if e.first_seq <= seq and (e.last_seq is None or seq <= e.last_seq):
            return e.verifier
    raise AssertionError(f"no key epoch covers seq {seq}")


def _every_bundle_signed_by_its_epoch_key(agent: Agent, att: Any) -> None:
    envs = agent.outbox.envelopes()
    assert [e["bundle"]["seq"] for e in envs] == list(range(1, len(envs) + 1))
    for env in envs:
        v = _key_for(att, env["bundle"]["seq"])
        verify_envelope(env, {v.key_id_hex: v})


def test_rotation_end_to_end_with_a_running_agent(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        assert a.cycle().reachable and a.outbox.depth() == 0
        old = load_private_key(state / "appliance.key")
        seq_before = a.outbox.head()[0]

        p = _cli("rotate-key", "--config", str(state / "agent.toml"))
        assert p.returncode == 0, p.stderr
        assert "rotation 1" in p.stdout and f"seq {seq_before + 2}" in p.stdout, p.stdout

        # Files: the new key in place, the old one retired (0600), nothing pending.
        new = load_private_key(state / "appliance.key")
        retired = state / "appliance.key.retired-1"
        assert new.vkey != old.vkey and new.name == old.name
        assert load_private_key(retired).vkey == old.vkey
        assert stat.S_IMODE(retired.stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "appliance.key").stat().st_mode) == 0o600
        assert not (state / "appliance.key.new").exists()
        assert not (state / "appliance.key.rotation").exists()
        meta = _meta(state)
        assert meta["signing_vkey"] == new.vkey and len(meta["history"]) == 1
        stmt = meta["history"][0]["rotation"]
        assert stmt["old_vkey"] == old.vkey and stmt["new_vkey"] == new.vkey
        assert stmt["effective_seq"] == seq_before + 2

        # The announcement: the old key's last bundle, inside the chain.
        ann = a.outbox.envelopes()[-1]["bundle"]
        assert ann["seq"] == seq_before + 1 and ann["check"] == "evidence_pipeline"
        assert f"from seq {seq_before + 2}" in ann["action_taken"]

        # The agent that was running all along still holds the old key in memory: its next
        # bundle is signed with the new one, and the server accepts everything.
        assert a.signer.vkey == old.vkey
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        assert a.signer.vkey == new.vkey
        assert a.outbox.depth() == 0, a.outbox.list_entries()
        att = _attest(state, tmp_path)
        assert [(e.first_seq, e.last_seq) for e in att.epochs] == [
            (1, seq_before + 1), (seq_before + 2, None)
        ]  # fmt: skip
        assert att.signing.vkey == new.vkey
        _every_bundle_signed_by_its_epoch_key(a, att)
        on_server = {e["bundle_hash"] for e in central.evidence(site.id)}
        assert {bundle_hash(e["bundle"]) for e in a.outbox.envelopes()} <= on_server

        # A second rotation moves on from the first.
        p = _cli("rotate-key", "--config", str(state / "agent.toml"))
        assert p.returncode == 0, p.stderr
        assert "rotation 2" in p.stdout
        assert load_private_key(state / "appliance.key.retired-2").vkey == new.vkey
        assert a.cycle().reachable and a.outbox.depth() == 0
        att = _attest(state, tmp_path)
        assert len(att.epochs) == 3
        _every_bundle_signed_by_its_epoch_key(a, att)
    finally:
        a.close()


def test_rotation_while_another_process_records_in_a_loop(central, tmp_path) -> None:
    """The rotation holds the outbox's write lock: a recorder racing it never signs with the
    old key at or past effective_seq."""
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    a.close()
    cfg = load_config(state / "agent.toml")
    recorder = Agent(cfg, measure_clock=good_clock, scan_self=False)
    stop = threading.Event()
    count = [0]

    def record() -> None:
        while not stop.is_set():
            env = recorder.record(host_id=recorder.appliance_id, check="timesync",
                                  outcome="compliant", action_taken=f"tick {count[0]}")  # fmt: skip
            assert env is not None
            count[0] += 1

    t = threading.Thread(target=record, daemon=True)
    t.start()
    try:
        while count[0] < 20:
            threading.Event().wait(0.01)
        p = _cli("rotate-key", "--config", str(state / "agent.toml"))
        assert p.returncode == 0, p.stderr
        at_rotation = count[0]
        while count[0] < at_rotation + 20:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        t.join(30)
    try:
        att = _attest(state, tmp_path)
        assert len(att.epochs) == 2
        _every_bundle_signed_by_its_epoch_key(recorder, att)
        assert any(e["bundle"]["seq"] >= att.epochs[1].first_seq
                   for e in recorder.outbox.envelopes())  # fmt: skip
        recorder.flush(CycleReport())
        assert recorder.outbox.depth() == 0, recorder.outbox.list_entries()[:3]
    finally:
        recorder.close()


def test_unreachable_server_exits_3_and_changes_nothing(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        a.cycle()
    finally:
        a.close()
    before_files, before_meta = _files(state), _meta(state)
    central.stop()
    p = _cli("rotate-key", "--config", str(state / "agent.toml"))
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "nothing changed" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert _files(state) == before_files and _meta(state) == before_meta


def test_refused_rotation_exits_1_with_the_servers_message(central, tmp_path) -> None:
    """A state restored from a backup taken before a rotation: its old key is no longer the
    appliance's key at the server, which refuses (409); nothing changes locally."""
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        a.cycle()
    finally:
        a.close()
    backup = tmp_path / "backup"
    shutil.copytree(state, backup)
    assert _cli("rotate-key", "--config", str(state / "agent.toml")).returncode == 0
    cfg = load_config(backup / "agent.toml").to_dict()
    cfg["agent"].update(state_dir=str(backup), key_file=str(backup / "appliance.key"),
                        cosign_key_file=str(backup / "cosign.key"),
                        token_file=str(backup / "token"))  # fmt: skip
    (backup / "agent.toml").write_text(to_toml(AgentConfig.from_dict(cfg)))
    before_files, before_meta = _files(backup), _meta(backup)
    p = _cli("rotate-key", "--config", str(backup / "agent.toml"))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "current signing key" in p.stderr and "nothing changed" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert _files(backup) == before_files and _meta(backup) == before_meta


def test_interrupted_rotation_the_server_recorded_is_resumed(central, tmp_path) -> None:
    """A crash after the server accepted the statement but before the local commit: the next
    rotate-key re-sends the same statement (the server answers it again) and completes."""
    from osiris_agent import keyring
    from osiris_agent.rotate import _statement

    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        a.cycle()
        seq = a.outbox.head()[0]
        old = a.signer
        # what rotate-key had written before it was killed: the new key and the statement
        stmt, new, resumed = _statement(
            state / "appliance.key", old, a.appliance_id, a.site_id, seq + 2
        )
        assert not resumed and keyring.pending_path(state / "appliance.key").exists()
        token = (state / "token").read_text().strip()
        r = httpx.post(central.url + "/api/v1/appliance/key-rotation", json={"rotation": stmt},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 200, r.text
        p = _cli("rotate-key", "--config", str(state / "agent.toml"))
        assert p.returncode == 0, p.stderr
        assert "resumed" in p.stdout
        assert load_private_key(state / "appliance.key").vkey == new.vkey
        assert _meta(state)["history"] == [stmt]
        assert a.cycle().reachable and a.outbox.depth() == 0, a.outbox.list_entries()
        _every_bundle_signed_by_its_epoch_key(a, _attest(state, tmp_path))
    finally:
        a.close()


def test_rotate_key_not_enrolled_is_exit_2(tmp_path) -> None:
    p = _cli("rotate-key", "--config", str(tmp_path / "missing.toml"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_agent_refuses_a_key_file_that_is_not_the_pinned_key(central, tmp_path) -> None:
    """Someone swaps appliance.key behind the agent's back: it refuses to start (exit 2)
    instead of signing the chain with a key no history names."""
    from osiris_core.keys import Signer, write_private_key

    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    name = a.signer.name
    a.close()
    write_private_key(state / "appliance.key", Signer.generate(name))
    p = _cli("once", "--config", str(state / "agent.toml"))
    assert p.returncode == 2 and "does not hold the signing key" in p.stderr, p.stderr
