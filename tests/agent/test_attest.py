"""``osiris-agent attest``: the clinic's attestation, made by the real CLI from a real agent's
state (enrolled against the REAL osiris-server, one cycle flushed and witnessed), and read back
with ``osiris_core.trust.open_attestation`` — the function the auditor's verifier uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from osiris_agent.state import StateDB
from osiris_core import note
from osiris_core.evidence import GENESIS_HASH, bundle_hash
from osiris_core.keys import Verifier, load_private_key
from osiris_core.trust import TrustRoots, fingerprint, open_attestation
from tests.e2e.conftest import enroll_agent, seed_site

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris_agent.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_attestation_names_pinned_keys_chain_head_and_cosigned_checkpoint(
    central, tmp_path
) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        r = a.cycle()
        assert r.reachable and a.outbox.depth() == 0, r.errors
        seq, head = a.outbox.head()
        last = a.outbox.envelopes()[-1]["bundle"]
        size = a.witness.size
        # The agent is still running (its connection open) while a technician attests; and a
        # writer holds state.db's write lock meanwhile: attest only reads, so neither stops it.
        blocker = StateDB.open_dir(state)
        blocker.conn.execute("BEGIN IMMEDIATE")
        try:
            out = tmp_path / "attestation.json"
            p = _cli("attest", "--out", str(out), "--config", str(state / "agent.toml"))
        finally:
            blocker.conn.execute("ROLLBACK")
            blocker.close()
        assert p.returncode == 0, p.stderr
    finally:
        a.close()

    env = json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    att = open_attestation(env)
    pins = json.loads((state / "pins.json").read_text())
    signing = load_private_key(state / "appliance.key")
    cosign = load_private_key(state / "cosign.key")
    doc = env["attestation"]
    assert doc["schema"] == "osiris.attestation/1"
    assert (att.appliance_id, att.site_id) == (pins["appliance_id"], pins["site_id"])
    assert att.appliance_id == site.appliance_id and att.site_id == site.id
    assert doc["signing_vkey"] == signing.vkey and doc["cosign_vkey"] == cosign.vkey
    assert doc["log_vkey"] == pins["log_vkey"] == central.log_verifier().vkey
    assert doc["order_vkey"] == pins["order_vkey"]
    assert doc["key_history"] == [] and [e.first_seq for e in att.epochs] == [1]
    assert doc["chain_head"] == {"seq": seq, "hash": head} and head == bundle_hash(last)
    assert seq >= 1 and doc["agent_version"]
    # the newest verified checkpoint, signed by the log key and cosigned by this appliance now
    cp = doc["cosigned_checkpoint"]
    cosign_v = Verifier.from_vkey(cosign.vkey)
    opened = note.open_note(cp, [central.log_verifier(), cosign_v])
    assert central.log_verifier().name in opened.verified
    assert cosign_v.name in opened.verified and cosign_v.name in opened.timestamps
    assert note.Checkpoint.parse(opened.text).size == size
    # the verifier's trust roots take it as-is
    roots = TrustRoots()
    roots.add_attestation(att, str(out))
    assert roots.appliances[att.appliance_id].head_seq == seq
    # the phone summary: id, site and the fingerprints of the signing, cosigning and log keys
    for want in (
        pins["appliance_id"], pins["site_id"], fingerprint(signing.vkey),
        fingerprint(cosign.vkey), fingerprint(pins["log_vkey"]),
    ):  # fmt: skip
        assert want in p.stderr


def test_attestation_before_any_evidence_has_genesis_head_and_no_checkpoint(
    central, tmp_path
) -> None:
    """Enrolled, never ran (no state.db yet): the attestation still names the keys."""
    from osiris_agent.enroll import enroll

    site = seed_site(central)
    code = central.api("POST", "/provisions", {"site_id": site.id})["code"]
    state = tmp_path / "state"
    enroll(central.url, code, state, lab=True)
    out = tmp_path / "a.json"
    p = _cli("attest", "--out", str(out), "--state", str(state))
    assert p.returncode == 0, p.stderr
    att = open_attestation(json.loads(out.read_text()))
    assert (att.head_seq, att.head_hash) == (0, GENESIS_HASH)
    assert att.cosigned_checkpoint is None
    assert not (state / "state.db").exists(), "attest must not create agent state"


def test_attest_unenrolled_dir_is_one_line_exit_2(tmp_path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    p = _cli("attest", "--out", str(tmp_path / "a.json"), "--state", str(empty))
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "enroll" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "a.json").exists()


def test_attest_unreadable_key_is_one_line_exit_2(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    enroll_agent(central, site, state).close()
    os.chmod(state / "appliance.key", 0o644)  # a key others could read is refused
    p = _cli("attest", "--out", str(tmp_path / "a.json"), "--state", str(state))
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "chmod 600" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
