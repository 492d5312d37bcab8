"""The offline verifier against real exports: every tampering the issue names fails with its code.

One export is built by an *independent* writer in this file (stdlib + PyNaCl only, following
docs/evidence-format.md), so the verifier is not just checked against its own library.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nacl.signing
import pytest

from osiris_core import canonical
from osiris_core.evidence import bundle_hash, sign_bundle
from osiris_core.keys import Signer
from osiris_core.note import sign_note
from osiris_core.synth import ORIGIN, make_export
from osiris_core.trust import TrustRoots, load_trust_item
from osiris_core.verify import UnusableInput, verify_export


@pytest.fixture(scope="module")
def good_export(tmp_path_factory) -> tuple[Path, object]:
    ex = make_export(24, 3)
    out = tmp_path_factory.mktemp("exp") / "export"
    ex.write(out)
    return out, ex


@pytest.fixture
def export(good_export, tmp_path) -> Path:
    src, _ = good_export
    dst = tmp_path / "export"
    shutil.copytree(src, dst)
    return dst


def fail_codes(folder: Path, **kw) -> set[str]:
    report = verify_export(folder, workers=1, **kw)
    return {f.code for f in report.failures}


def lines(folder: Path) -> list[bytes]:
    return (folder / "bundles.jsonl").read_bytes().splitlines()


def write_lines(folder: Path, ls: list[bytes]) -> None:
    (folder / "bundles.jsonl").write_bytes(b"".join(x + b"\n" for x in ls))


def test_good_export_passes(export: Path, good_export) -> None:
    _, ex = good_export
    roots = TrustRoots()
    load_trust_item(ex.pins(), "pinned keys", roots)
    report = verify_export(export, workers=1, trust=roots)
    assert report.ok(strict=True), report.lines()
    assert {k["source"] for k in report.keys_used} == {"pinned keys"}
    # the same export with no trust roots passes only loosely: its keys vouch for themselves
    loose = verify_export(export, workers=1)
    assert loose.ok() and not loose.ok(strict=True)
    assert {f.code for f in loose.warnings} == {"W_UNPINNED"}
    assert report.bundles == 24
    assert report.passed["E_SIG"] == 24
    assert report.passed["E_INCLUSION"] == 24
    assert report.existed_by is not None


def test_parallel_and_serial_give_identical_reports(export: Path) -> None:
    ls = lines(export)
    ls[5], ls[6] = ls[6], ls[5]
    write_lines(export, ls)
    serial = verify_export(export, workers=1)
    parallel = verify_export(export, workers=2)
    assert serial.as_dict() == parallel.as_dict()


def test_flipped_byte_in_bundle_fails_signature(export: Path) -> None:
    ls = lines(export)
    ls[4] = ls[4].replace(b"-dc01", b"-dc02", 1)
    write_lines(export, ls)
    codes = fail_codes(export)
    assert "E_SIG" in codes


def test_removed_bundle_is_a_gap(export: Path) -> None:
    ls = lines(export)
    del ls[9]  # appliance 0's seq 4 (round-robin over 3 appliances)
    write_lines(export, ls)
    report = verify_export(export, workers=1)
    gaps = [f for f in report.failures if f.code == "E_GAP"]
    assert len(gaps) == 1
    assert "seq 4" in gaps[0].message


def test_swapped_bundles_break_the_chain(export: Path) -> None:
    ls = lines(export)
    ls[3], ls[6] = ls[6], ls[3]  # appliance 0's seq 2 and seq 3
    write_lines(export, ls)
    codes = fail_codes(export)
    assert "E_CHAIN" in codes or "E_GAP" in codes
    assert "E_CHAIN" in codes


def test_signature_by_unknown_key(export: Path, good_export) -> None:
    _, ex = good_export
    ls = lines(export)
    env = canonical.loads(ls[2])
    rogue = Signer.generate("osiris/appliance/" + env["bundle"]["appliance_id"])
    forged = sign_bundle(env["bundle"], rogue)
    ls[2] = canonical.dumps(forged)
    write_lines(export, ls)
    report = verify_export(export, workers=1)
    sig = [f for f in report.failures if f.code == "E_SIG"]
    assert sig and "unknown key" in sig[0].message


def test_proof_for_another_tree(export: Path, good_export) -> None:
    _, ex = good_export
    other = make_export(24, 3, log_signer=ex.log.signer)  # same log key, different entries
    env = canonical.loads(lines(export)[7])
    h = bundle_hash(env["bundle"]).removeprefix("sha256:")
    other_env = other.envelopes[7]
    (export / "proofs" / f"{h}.tlog-proof").write_text(
        other.proofs[bundle_hash(other_env["bundle"])]
    )
    assert "E_INCLUSION" in fail_codes(export)


def test_proof_with_wrong_index(export: Path) -> None:
    env = canonical.loads(lines(export)[7])
    path = export / "proofs" / f"{bundle_hash(env['bundle']).removeprefix('sha256:')}.tlog-proof"
    path.write_text(path.read_text().replace("index 7\n", "index 6\n"))
    assert "E_INCLUSION" in fail_codes(export)


def test_missing_proof(export: Path) -> None:
    env = canonical.loads(lines(export)[0])
    (
        export / "proofs" / f"{bundle_hash(env['bundle']).removeprefix('sha256:')}.tlog-proof"
    ).unlink()
    assert "E_INCLUSION" in fail_codes(export)


def test_checkpoint_signed_by_a_different_log_key(export: Path) -> None:
    impostor = Signer.generate(ORIGIN)  # same name, different key
    for path in [export / "checkpoint", *(export / "proofs").iterdir()]:
        text = path.read_text()
        if path.name == "checkpoint":
            body = text.split("\n\n", 1)[0] + "\n"
            path.write_text(sign_note(body, [impostor]))
        else:
            head, cp = text.split("\n\n", 1)
            body = cp.split("\n\n", 1)[0] + "\n"
            path.write_text(head + "\n\n" + sign_note(body, [impostor]))
    report = verify_export(export, workers=1)
    assert "E_CHECKPOINT_SIG" in {f.code for f in report.failures}
    assert "E_INCLUSION" not in report.passed


def test_duplicate_json_key(export: Path) -> None:
    ls = lines(export)
    ls[1] = ls[1].replace(b'"seq":', b'"seq":1,"seq":', 1)
    write_lines(export, ls)
    report = verify_export(export, workers=1)
    assert [f.code for f in report.failures][0] == "E_PARSE"
    assert "duplicate" in report.failures[0].message


def test_float_in_bundle(export: Path) -> None:
    ls = lines(export)
    ls[1] = ls[1].replace(b'"offset_ms":3', b'"offset_ms":3.0', 1)
    write_lines(export, ls)
    assert fail_codes(export) >= {"E_PARSE"}


def test_non_canonical_whitespace(export: Path) -> None:
    ls = lines(export)
    ls[1] = ls[1].replace(b'"seq":', b'"seq": ', 1)
    write_lines(export, ls)
    assert "E_NONCANONICAL" in fail_codes(export)


def test_schema_violation(export: Path) -> None:
    ls = lines(export)
    env = canonical.loads(ls[1])
    env["bundle"]["outcome"] = "fine"
    ls[1] = canonical.dumps(env)
    write_lines(export, ls)
    assert "E_SCHEMA" in fail_codes(export)


def test_bundle_finished_after_cosignature_time(tmp_path) -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 11, 1, tzinfo=UTC)
    # Cosigned 1 s after start: bundles finishing at start+0..1 s are fine, later ones claim a
    # time after the appliances vouched that the tree (holding them) already existed.
    ex = make_export(6, 1, start=start, cosign_at=start.replace(second=1))
    out = ex.write(tmp_path / "e")
    report = verify_export(out, workers=1, skew_s=0)
    skewed = [f.subject for f in report.failures if f.code == "E_TIME_SKEW"]
    assert skewed == ["app-000#3", "app-000#4", "app-000#5", "app-000#6"]
    assert verify_export(out, workers=1, skew_s=300).ok()


def test_no_cosignature_warns_and_strict_fails(tmp_path) -> None:
    out = make_export(5, 1, cosign_checkpoint=False).write(tmp_path / "e")
    report = verify_export(out, workers=1)
    assert report.ok() and not report.ok(strict=True)
    assert "W_NO_COSIG" in {f.code for f in report.warnings}


def test_unusable_inputs(tmp_path) -> None:
    with pytest.raises(UnusableInput):
        verify_export(tmp_path / "missing")
    (tmp_path / "e").mkdir()
    with pytest.raises(UnusableInput):
        verify_export(tmp_path / "e")
    (tmp_path / "e" / "keys.json").write_text("{not json")
    with pytest.raises(UnusableInput):
        verify_export(tmp_path / "e")


# ---------------------------------------------------------------- an independent writer


def _jcs(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return _path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_mth(leaves[:k])]


def _key(name: str, sk: nacl.signing.SigningKey, t: int) -> tuple[str, bytes]:
    pub = bytes(sk.verify_key)
    kid = hashlib.sha256(name.encode() + b"\n" + bytes([t]) + pub).digest()[:4]
    return f"{name}+{kid.hex()}+{_b64(bytes([t]) + pub)}", kid


def test_export_from_an_independent_writer_verifies(tmp_path) -> None:
    """Write an export from docs/evidence-format.md using only stdlib + PyNaCl; it must verify."""
    log_sk = nacl.signing.SigningKey.generate()
    log_name = "independent.example/osiris/log"
    log_vkey, log_kid = _key(log_name, log_sk, 1)
    app_name = "osiris/appliance/indep-1"
    app_sk = nacl.signing.SigningKey.generate()
    app_vkey, app_kid = _key(app_name, app_sk, 1)
    entries = []
    prev = "sha256:" + "0" * 64
    for seq in range(1, 6):
        bundle = {
            "schema": "osiris.evidence/1",
            "bundle_id": f"b-{seq}",
            "site_id": "s1",
            "appliance_id": "indep-1",
            "host_id": "h1",
            "seq": seq,
            "prev_hash": prev,
            "check": "firewall",
            "controls": ["164.312(e)(1)"],
            "outcome": "compliant",
            "tier": "monitor",
            "runbook_id": None,
            "order_id": None,
            "action_taken": None,
            "pre_state": None,
            "post_state": {"enabled": True},
            "rollback_available": False,
            "started_at": "2026-11-02T10:00:00.000Z",
            "finished_at": "2026-11-02T10:00:01.000Z",
            "policy_version": "1",
            "ruleset_hash": None,
            "nixos_revision": None,
            "derivation_digest": None,
            "agent_version": "other-impl/1",
            "deployment_mode": "direct",
            "reseller_id": None,
            "clock": {"ntp_ok": True, "offset_ms": -2, "source": "ntp"},
            "attachments": [],
        }
        sig = app_sk.sign(_jcs(bundle)).signature
        env = {
            "bundle": bundle,
            "sig": {"alg": "ed25519", "key_id": app_kid.hex(), "value": _b64(sig)},
        }
        entries.append(_jcs(env))
        prev = "sha256:" + hashlib.sha256(_jcs(bundle)).hexdigest()
    body = f"{log_name}\n{len(entries)}\n{_b64(_mth(entries))}\n"
    note = (
        body + "\n" + f"\u2014 {log_name} {_b64(log_kid + log_sk.sign(body.encode()).signature)}\n"
    )
    out = tmp_path / "indep"
    (out / "proofs").mkdir(parents=True)
    (out / "keys.json").write_text(json.dumps({"log": log_vkey, "appliances": [app_vkey]}))
    (out / "bundles.jsonl").write_bytes(b"".join(e + b"\n" for e in entries))
    (out / "checkpoint").write_text(note)
    for i, e in enumerate(entries):
        h = hashlib.sha256(_jcs(json.loads(e)["bundle"])).hexdigest()
        proof = "c2sp.org/tlog-proof@v1\n" + f"index {i}\n"
        proof += "".join(_b64(p) + "\n" for p in _path(i, entries)) + "\n" + note
        (out / "proofs" / f"{h}.tlog-proof").write_text(proof)
    report = verify_export(out, workers=1)
    assert report.ok(), report.lines()
    assert report.passed["E_SIG"] == 5 and report.passed["E_INCLUSION"] == 5


# ---------------------------------------------------------------- the CLI


def _cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if home is not None:
        env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "osiris_tui.cli", *args], capture_output=True, text=True, env=env
    )


def test_cli_exit_codes_and_output(export: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    ok = _cli("evidence", "verify", str(export))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("summary: 24 bundles, 0 failures")
    assert all(
        line.split(" ", 1)[0] in {"TRUST", "PASS", "WARN", "FAIL", "summary:"}
        for line in ok.stdout.splitlines()
    )
    assert "export only — untrusted" in ok.stdout
    js = _cli("evidence", "verify", "--json", str(export))
    report = json.loads(js.stdout)
    assert report["ok"] is True and report["bundles"] == 24
    ls = lines(export)
    del ls[3]
    write_lines(export, ls)
    bad = _cli("evidence", "verify", str(export))
    assert bad.returncode == 1
    assert any(line.startswith("FAIL E_GAP ") for line in bad.stdout.splitlines())
    missing = _cli("evidence", "verify", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("osiris: error:")
    assert "Traceback" not in missing.stderr
