"""The data layer without Textual, the local state reader on a real agent StateDB, the QR
encoder against published reference values, and the safe-text rules."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osiris_tui import fmt, local, qr


def test_data_layer_does_not_import_textual() -> None:
    code = (
        "import sys, osiris_tui.client, osiris_tui.local, osiris_tui.pull, osiris_tui.fmt, "
        "osiris_tui.qr, osiris_tui.drift, osiris_tui.columns, osiris_tui.cli; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


APP = "app-0042"
SITE = "site-7"


def _keys() -> dict[str, Any]:
    """Fixed-seed keys (Ed25519 is deterministic), so the snapshot's fingerprints are stable."""
    from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name

    name = appliance_key_name(APP)
    return {
        "old": Signer(name, bytes([1]) * 32),
        "signing": Signer(name, bytes([2]) * 32),
        "cosign": Signer(name, bytes([3]) * 32, KEY_TYPE_COSIGNATURE),
        "log": Signer("cc.example/osiris/log", bytes([4]) * 32),
        "order": Signer("cc.example/osiris/orders", bytes([5]) * 32),
    }


def _agent_state(tmp: Path) -> Path:
    """A state dir written by the agent's own StateDB (the real schema, real WAL file), with
    the pins an enrolment writes and the trust facts an agent that rotated its key once keeps."""
    from osiris_agent.state import StateDB
    from osiris_core import note
    from osiris_core.trust import make_rotation

    k = _keys()
    pins = {"appliance_id": APP, "site_id": SITE, "log_vkey": k["log"].vkey,
            "order_vkey": k["order"].vkey, "server_url": "https://cc.example"}  # fmt: skip
    (tmp / "pins.json").write_text(json.dumps(pins))
    rotation = make_rotation(k["old"], k["signing"], appliance_id=APP, site_id=SITE,
                             effective_seq=2, at="2026-01-01T00:00:00.000Z")  # fmt: skip
    cp = note.sign_note(note.Checkpoint(k["log"].name, 2, bytes(32)).body(), [k["log"]])
    db = StateDB.open_dir(tmp)
    with db.tx():
        db.set("chain_seq", "3")
        db.set("chain_head", "sha256:" + "ab" * 32)
        db.set("signing_vkey", k["signing"].vkey)
        db.set("cosign_vkey", k["cosign"].vkey)
        db.set_json("key_history", [rotation])
        db.set("witness_checkpoint", cp)
        db.set("witness_size", "2")
        db.set_json("policy", {"policy_version": "12", "ruleset_hash": "sha256:" + "cd" * 32})
        db.set_json("last_checkin", {"at": "2026-01-02T03:04:05.000Z", "ok": False})
        # the agent's own records (osiris_agent/checkin.py): the last success an hour before
        # the snapshots' frozen clock, the latest attempt refused
        db.set("last_checkin_ok_at", "2025-12-31T23:00:00.000Z")
        db.set_json("last_contact", {"at": "2026-01-02T03:04:05.000Z", "reachable": False,
                                     "error": "connection refused"})  # fmt: skip
        db.set_result("dc01", "firewall", "drift", {"enabled": False}, {"enabled": True},
                      "2026-01-01T00:00:00.000Z")  # fmt: skip
        db.set_result("dc01", "bitlocker", "compliant", {}, {}, "2026-01-01T00:00:00.000Z")
        for seq in (1, 2, 3):
            env = {"bundle": {"seq": seq, "x": "\x1b[31m"}, "sig": {}}
            db.conn.execute(
                "INSERT INTO evidence(seq, bundle_hash, envelope, host_id, check_id, outcome,"
                " created_at, log_index, receipt) VALUES(?,?,?,?,?,?,?,?,?)",
                (seq, f"sha256:{seq:064x}", json.dumps(env).encode(), "dc01", "firewall",
                 "healed", "2026-01-01T00:00:00.000Z", seq if seq < 3 else None,
                 "proof" if seq < 3 else None),
            )  # fmt: skip
        db.conn.execute("INSERT INTO outbox(seq, size) VALUES(3, 100)")
    db.close()
    return tmp


def test_local_state_reads_agent_db_read_only(tmp_path) -> None:
    d = _agent_state(tmp_path)
    before = (d / "state.db").read_bytes()
    st = local.read_state(d)
    assert st.chain_seq == 3 and st.chain_head.startswith("sha256:abab")
    assert st.outbox_depth == 1
    assert st.last_receipt["seq"] == 2
    # the latest attempt failed; "last check-in" is the last success, not that attempt
    assert st.server_reachable is False and st.last_attempt == "2026-01-02T03:04:05.000Z"
    assert st.last_checkin == "2025-12-31T23:00:00.000Z" and st.last_error == "connection refused"
    assert [r.status for r in st.results] == ["compliant", "drift"] and st.drift_count == 1
    assert [e.seq for e in st.evidence] == [3, 2, 1] and not st.evidence[0].acked
    assert local.envelope(d, 2)["bundle"]["seq"] == 2
    assert (d / "state.db").read_bytes() == before
    # the connection really is read-only
    conn = local._connect_ro(d / "state.db")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM evidence")
    conn.close()


def test_local_identity_shows_the_attestation_facts(tmp_path) -> None:
    """The Identity panel's rows are the attestation's facts, keys as fingerprints."""
    from osiris_core.trust import fingerprint

    d = _agent_state(tmp_path)
    k = _keys()
    st = local.read_state(d)
    rows = dict(st.identity())
    assert rows["appliance"] == APP and rows["site"] == SITE
    assert rows["signing key"] == fingerprint(k["signing"].vkey)
    assert rows["cosigning key"] == fingerprint(k["cosign"].vkey)
    assert rows["log key"] == fingerprint(k["log"].vkey)
    assert rows["order key"] == fingerprint(k["order"].vkey)
    assert rows["key history"] == "1 rotation(s)"
    assert rows["chain head"] == "seq 3 sha256:abababababababab…"
    assert rows["cosigned checkpoint"] == "size 2"
    assert rows["policy"].startswith("version 12, ruleset sha256:cdcd")
    assert "DECOMMISSIONED" not in rows
    assert st.decommissioned is None and st.key_rotations == 1


def test_local_identity_of_a_real_agent(tmp_path) -> None:
    """Against state written by the real agent (enrolled with the fake Central Command, one
    cycle, then decommissioned): the panel names its keys and the closed chain."""
    from osiris_agent.enroll import read_pins
    from osiris_core.trust import fingerprint
    from tests.agent.fixtures_agent import FakeCentral, make_agent

    with FakeCentral() as srv:
        a = make_agent(srv, tmp_path / "s")
        try:
            a.cycle()
            a.decommission()
            seq = a.outbox.head()[0]
            signing, cosign = a.signer.vkey, a.cosigner.vkey
        finally:
            a.close()
    pins = read_pins(tmp_path / "s")
    st = local.read_state(tmp_path / "s")
    rows = dict(st.identity())
    assert rows["signing key"] == fingerprint(signing)
    assert rows["cosigning key"] == fingerprint(cosign)
    assert rows["log key"] == fingerprint(pins["log_vkey"])
    assert rows["order key"] == fingerprint(pins["order_vkey"])
    assert rows["key history"] == "0 rotation(s)"
    assert rows["chain head"].startswith(f"seq {seq} sha256:")
    assert rows["cosigned checkpoint"] == f"size {st.witness_size}" and st.witness_size >= 1
    assert rows["DECOMMISSIONED"] == f"chain closed at seq {seq}"


def test_run_request_file(tmp_path) -> None:
    d = _agent_state(tmp_path)
    assert not local.read_state(d).run_requested
    p = local.request_run(d)
    assert p.name == "run-request" and json.loads(p.read_text())["by"]
    assert local.read_state(d).run_requested
    assert not list(d.glob(".run-request*"))


def test_local_state_errors(tmp_path) -> None:
    with pytest.raises(local.LocalStateError):
        local.read_state(tmp_path / "missing")
    with pytest.raises(local.LocalStateError):
        local.read_state(tmp_path)


def test_qr_reed_solomon_and_format_bits_match_the_standard() -> None:
    # ISO/IEC 18004 Annex I example ("01234567", 1-M) and the published format-bit table
    data = [32, 91, 11, 120, 209, 114, 220, 77, 67, 64, 236, 17, 236, 17, 236, 17]
    assert qr.rs_ecc(data, 10) == [196, 35, 39, 119, 235, 215, 231, 226, 93, 23]
    assert format(qr.format_bits(0), "015b") == "111011111000100"
    assert format(qr.format_bits(4), "015b") == "110011000101111"
    assert format(qr.format_bits(7), "015b") == "110100101110110"


def test_qr_symbol_structure_and_data_round_trip() -> None:
    text = b"ocl_" + b"A" * 27
    sym = qr.QR(text)
    assert sym.version == 2 and sym.size == 25
    m = sym.modules
    for x0, y0 in ((0, 0), (18, 0), (0, 18)):  # finder patterns: dark ring, light ring, core
        assert all(m[y0][x0 + i] for i in range(7)) and not m[y0 + 1][x0 + 1] and m[y0 + 3][x0 + 3]
    # read the data back: unmask and collect in placement order
    bits = []
    for x, y in sym.data_positions():
        bits.append(int(m[y][x] != qr._MASKS[sym.mask](x, y)))
    cw = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, 44 * 8, 8)]
    assert cw == qr.codewords(text, 2)
    assert cw[0] >> 4 == 0b0100 and ((cw[0] & 15) << 4 | cw[1] >> 4) == len(text)
    with pytest.raises(ValueError):
        qr.QR(b"x" * 200)


def test_safe_text_and_filters() -> None:
    assert fmt.safe("a\x1b[31mb\x07") == "a\\x1b[31mb\\x07"
    assert fmt.cell("[bold red]x[/]").plain == "[bold red]x[/]"
    terms, inv = fmt.parse_filter("!site=riv dc")
    assert inv and terms == [("site", "riv"), (None, "dc")]
    row = {"site": "riverside", "host": "dc01"}
    assert not fmt.matches(row, terms, inv)
    assert fmt.matches(row, *fmt.parse_filter("site=riv"))
    assert fmt.age(None) == "never" and fmt.age(59) == "59s" and fmt.age(3600) == "1h"
