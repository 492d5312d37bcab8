"""The agent as a witness, against a fake Central Command built from real osiris_core parts over
real HTTP on 127.0.0.1: honest receipts are acknowledged; a forked, rolled-back or badly signed
log is caught, nothing is acknowledged, an incident is raised and trust is withdrawn."""

from __future__ import annotations

import base64
import json

import pytest

from osiris_agent.cycle import CycleReport
from osiris_core import note as notes
from osiris_core.evidence import bundle_hash
from tests.agent.fixtures_agent import FakeCentral, make_agent


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def _burst(agent, n: int) -> None:
    for i in range(n):
        agent.record(host_id=agent.appliance_id, check="timesync", outcome="compliant",
                     action_taken=f"test {i}")  # fmt: skip


def test_honest_log_receipts_verify_and_cosignature_is_valid(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    _burst(a, 7)
    r = CycleReport()
    assert a.flush(r) and r.acked == 7 and a.outbox.depth() == 0
    assert a.witness.size == 7
    _burst(a, 3)
    r = CycleReport()
    a.flush(r)
    assert r.acked == 3 and a.witness.size == 10
    # Stored receipts are real tlog-proofs against a log-signed checkpoint.
    rows = a.db.conn.execute("SELECT receipt FROM evidence").fetchall()
    assert all(notes.TlogProof.parse(x[0]).index >= 0 for x in rows)
    # Check in: the cosignature over the newest verified checkpoint verifies with the
    # cosigning key the server registered at the claim.
    a.checkin(CycleReport())
    c = srv.state.cosignatures[-1]
    assert c["size"] == 10
    name, b64 = c["line"].removeprefix("— ").split(" ")
    body = notes.open_note(a.witness.checkpoint, [a.witness.log]).text
    ts = notes.verify_cosignature(body, name, base64.b64decode(b64), srv.state.cosigning)
    assert ts is not None
    # The evidence key cannot stand in for the cosigning key.
    assert srv.state.cosigning.public != srv.state.signing.public


@pytest.mark.parametrize("mode", ["fork", "rollback", "bad_sig", "bad_inclusion"])
def test_misbehaving_log_is_caught(srv, tmp_path, mode) -> None:
    a = make_agent(srv, tmp_path / "s")
    _burst(a, 4)
    a.flush(CycleReport())
    assert a.witness.size == 4 and a.witness.trusted
    srv.state.misbehave = mode
    _burst(a, 3)
    r = CycleReport()
    a.flush(r)
    assert r.acked == 0
    assert a.outbox.depth() == 3  # kept
    assert not a.witness.trusted
    assert a.witness.size == 4  # the suspect checkpoint was not stored
    assert any(i["kind"] == "log_inconsistent" for i in srv.state.incidents)
    # Trust stays withdrawn across a restart and even when the server behaves again.
    srv.state.misbehave = None
    a.close()
    b = make_agent(srv, tmp_path / "s")
    r = CycleReport()
    b.flush(r)
    assert r.acked == 0 and b.outbox.depth() == 3 and not b.witness.trusted
    assert b.witness.cosignatures(b.cosigner) == []  # never cosign a distrusted log


def test_witness_cli_status_and_reset_records_evidence(srv, tmp_path) -> None:
    """``osiris-agent witness status|reset``: reset refuses without --yes, then clears the
    distrust, keeps the verified checkpoint, and the reset itself is a signed bundle that
    reaches the server with the held-back evidence."""
    from click.testing import CliRunner

    from osiris_agent.cli import main
    from osiris_core.evidence import verify_envelope

    state = tmp_path / "s"
    a = make_agent(srv, state)
    _burst(a, 2)
    a.flush(CycleReport())
    srv.state.misbehave = "bad_sig"
    _burst(a, 2)
    a.flush(CycleReport())
    assert not a.witness.trusted and a.outbox.depth() == 2
    reason = a.witness.distrust_reason
    signer_vkey = a.signer.verifier()
    a.close()
    srv.state.misbehave = None
    cfg = str(state / "agent.toml")
    cli = CliRunner()

    r = cli.invoke(main, ["witness", "status", "--config", cfg])
    assert r.exit_code == 1 and "NOT TRUSTED" in r.output and "size 2" in r.output
    r = cli.invoke(main, ["witness", "status", "--config", cfg, "--json"])
    st = json.loads(r.output)
    assert st["trusted"] is False and st["distrust_reason"] == reason
    assert st["checkpoint_size"] == 2

    r = cli.invoke(main, ["witness", "reset", "--config", cfg])
    assert r.exit_code == 2 and "--yes" in r.output
    b = make_agent(srv, state)
    try:
        assert not b.witness.trusted and b.outbox.depth() == 2  # nothing happened
    finally:
        b.close()

    r = cli.invoke(main, ["witness", "reset", "--config", cfg, "--yes", "--note", "tech J.D."])
    assert r.exit_code == 0, r.output
    assert "keep the last verified checkpoint (size 2)" in r.output
    b = make_agent(srv, state)
    try:
        assert b.witness.trusted and b.witness.size == 2
        env = b.outbox.envelopes()[-1]
        verify_envelope(env, {signer_vkey.key_id_hex: signer_vkey})
        bundle = env["bundle"]
        assert bundle["check"] == "evidence_pipeline" and bundle["outcome"] == "alert"
        assert "reset by a technician" in bundle["action_taken"]
        assert "tech J.D." in bundle["action_taken"] and reason in bundle["action_taken"]
        assert bundle["pre_state"]["observed"]["trusted"] is False
        r2 = CycleReport()
        assert b.flush(r2) and r2.acked == 3 and b.outbox.depth() == 0
        assert bundle_hash(bundle) in {bundle_hash(e["bundle"]) for e in srv.envelopes()}
    finally:
        b.close()
    r = cli.invoke(main, ["witness", "reset", "--config", cfg, "--yes"])
    assert r.exit_code == 0 and "nothing to reset" in r.output
