"""Trust roots from outside the export (osiris_core.trust + the verifier + `osiris trust`).

The attacker is the MSP that produced the export: it controls keys.json, the log key and the
checkpoint, but not the appliance keys the clinic attested. Key history is bound to chain seqs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from osiris_core import canonical
from osiris_core.evidence import sign_bundle
from osiris_core.keys import Signer, appliance_key_name
from osiris_core.synth import ORIGIN, make_export
from osiris_core.trust import (
    AttestationError,
    TrustFileError,
    TrustRoots,
    fingerprint,
    load_trust_file,
    load_trust_item,
    make_attestation,
    make_rotation,
    open_attestation,
    open_rotation,
)
from osiris_core.verify import verify_export

START = datetime(2026, 11, 1, tzinfo=UTC)


def roots_of(*items) -> TrustRoots:  # noqa: ANN002
    r = TrustRoots()
    for i, item in enumerate(items):
        load_trust_item(item, f"root {i}", r)
    return r


def failures(folder: Path, trust: TrustRoots | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in verify_export(folder, trust=trust, workers=1).failures:
        out.setdefault(f.code, []).append(f.subject)
    return out


def test_rotation_statement_must_be_signed_by_the_old_key() -> None:
    old, new = (Signer.generate(appliance_key_name("a1")) for _ in range(2))
    st = make_rotation(
        old, new, appliance_id="a1", site_id="s1", effective_seq=9, at="2026-11-01T00:00:00.000Z"
    )
    assert open_rotation(st)["effective_seq"] == 9
    forged = dict(
        st,
        sig=make_rotation(
            new,
            old,
            appliance_id="a1",
            site_id="s1",
            effective_seq=9,
            at="2026-11-01T00:00:00.000Z",
        )["sig"],
    )
    with pytest.raises(AttestationError):
        open_rotation(forged)
    other = Signer.generate(appliance_key_name("a2"))
    with pytest.raises(AttestationError, match="named"):
        make_rotation(
            old,
            other,
            appliance_id="a1",
            site_id="s1",
            effective_seq=9,
            at="2026-11-01T00:00:00.000Z",
        )


def test_bundles_before_and_after_a_rotation_verify(tmp_path) -> None:
    ex = make_export(30, 2, start=START, rotate_at=6)
    folder = ex.write(tmp_path / "export")
    trust = roots_of(*(ex.attestation(a) for a in ex.appliances))
    report = verify_export(folder, trust=trust, workers=1)
    assert report.ok(strict=True), report.lines()
    used: dict[str, list[str]] = {}
    for k in report.keys_used:
        if k["role"] == "appliance":
            used.setdefault(k["name"], []).append(k["fingerprint"])
    # both keys of each appliance were used, the old one for seq 1..5, the new one after
    assert len(used[appliance_key_name("app-000")]) == 2
    # and the export's own claim of the history is followed too (untrusted, warned)
    loose = verify_export(folder, workers=1)
    assert loose.ok() and {f.code for f in loose.warnings} == {"W_UNPINNED"}


def test_old_key_after_the_rotation_fails(tmp_path) -> None:
    """The clinic rotated at seq 4, but the export holds seq 4..5 signed by the old key."""
    ex = make_export(20, 1, start=START)  # everything signed by the first key
    old = ex.appliances["app-000"][0]
    new = Signer.generate(old.name)
    rot = make_rotation(
        old,
        new,
        appliance_id="app-000",
        site_id="site-001",
        effective_seq=4,
        at="2026-11-01T00:00:03.000Z",
    )
    att = make_attestation(
        new, appliance_id="app-000", site_id="site-001",
        cosign_vkey=ex.appliances["app-000"][1].vkey, log_vkey=ex.log.signer.vkey,
        order_vkey=ex.log.signer.vkey, rotations=[rot],
        chain_head={"seq": 3, "hash": "sha256:" + "0" * 63 + "1"}, cosigned_checkpoint=None,
        attested_at=canonical.utc_now(), agent_version="0.1.0",
    )  # fmt: skip
    folder = ex.write(tmp_path / "export")
    got = failures(folder, roots_of(att))
    assert set(got) >= {"E_KEY_NOT_VALID_AT"}
    assert "app-000#4" in got["E_KEY_NOT_VALID_AT"] and "app-000#3" not in got["E_KEY_NOT_VALID_AT"]
    # the attested head (seq 3) is not the bundle in the export: a different chain
    assert got.get("E_ATTESTED_HEAD") == ["app-000#3"]


def test_hostile_export_with_a_fresh_log_key_fails_against_the_attestation(tmp_path) -> None:
    real = make_export(12, 2, start=START)
    fake = make_export(12, 2, start=START, log_signer=Signer.generate(ORIGIN))  # same ids
    folder = fake.write(tmp_path / "fake")
    assert verify_export(folder, workers=1).ok()  # self-consistent: passes when unpinned
    got = failures(folder, roots_of(*(real.attestation(a) for a in real.appliances)))
    assert {"E_LOG_UNTRUSTED", "E_KEY_UNTRUSTED"} <= set(got)
    # the log key alone (--log-key) already refutes the fake log
    got = failures(folder, roots_of({"log": real.log.signer.vkey}))
    assert "E_LOG_UNTRUSTED" in got


def test_fabricated_appliance_is_not_believed(tmp_path) -> None:
    ex = make_export(12, 2, start=START)
    folder = ex.write(tmp_path / "export")
    rogue = Signer.generate(appliance_key_name("app-999"))
    env = json.loads((folder / "bundles.jsonl").read_text().splitlines()[0])
    b = dict(env["bundle"], appliance_id="app-999")
    line = canonical.dumps(sign_bundle(b, rogue))
    with open(folder / "bundles.jsonl", "ab") as f:
        f.write(line + b"\n")
    got = failures(folder, roots_of(*(ex.attestation(a) for a in ex.appliances)))
    assert "app-999#1" in got["E_KEY_UNTRUSTED"]


def test_attestation_round_trip_and_tampering() -> None:
    ex = make_export(6, 1, start=START)
    att = ex.attestation("app-000")
    a = open_attestation(att)
    assert a.site_id == "site-001" and a.head_seq == 6 and a.log.vkey == ex.log.signer.vkey
    bad = json.loads(json.dumps(att))
    bad["attestation"]["log_vkey"] = Signer.generate(ORIGIN).vkey
    with pytest.raises(AttestationError, match="signature"):
        open_attestation(bad)
    assert len(fingerprint(a.signing.vkey)) == 19


def test_malformed_trust_files_are_usage_errors(tmp_path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(TrustFileError, match="junk.json"):
        load_trust_file(junk)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(TrustFileError, match="other.json"):
        load_trust_file(other)
    with pytest.raises(TrustFileError, match="nope.json"):
        load_trust_file(tmp_path / "nope.json")


# ---------------------------------------------------------------- the CLI


def cli(*args: str, cfg: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(cfg))
    return subprocess.run(
        [sys.executable, "-m", "osiris_tui.cli", *args], capture_output=True, text=True, env=env
    )


def test_cli_trust_flags_store_and_errors(tmp_path) -> None:
    cfg = tmp_path / "cfg"
    real = make_export(12, 2, start=START)
    folder = real.write(tmp_path / "export")
    atts = []
    for app in real.appliances:
        p = tmp_path / f"{app}.json"
        p.write_text(json.dumps(real.attestation(app)))
        atts.append(p)
    # unpinned: passes loosely, fails strictly
    assert cli("evidence", "verify", str(folder), cfg=cfg).returncode == 0
    r = cli("evidence", "verify", "--strict", str(folder), cfg=cfg)
    assert r.returncode == 1 and "W_UNPINNED" in r.stdout
    # --trust with the clinic's attestations: strict pass, TRUST lines name the source
    args = [a for p in atts for a in ("--trust", str(p))]
    r = cli("evidence", "verify", "--strict", *args, str(folder), cfg=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"from {atts[0]}" in r.stdout and "TRUST log" in r.stdout
    # --log-key with the wrong key: the folder fails (it used to be ignored)
    wrong = Signer.generate(ORIGIN).vkey
    r = cli("evidence", "verify", "--log-key", wrong, str(folder), cfg=cfg)
    assert r.returncode == 1 and "E_LOG_UNTRUSTED" in r.stdout
    # garbage key or trust file: usage error naming it, no traceback
    r = cli("evidence", "verify", "--log-key", "garbage", str(folder), cfg=cfg)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--log-key" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    r = cli("evidence", "verify", "--trust", str(bad), str(folder), cfg=cfg)
    assert r.returncode == 2 and "bad.json" in r.stderr and "Traceback" not in r.stderr
    # the trust store: add, list, verify with it, refuse a world-readable store, remove
    for p in atts:
        r = cli("trust", "add", str(p), cfg=cfg)
        assert r.returncode == 0, r.stderr
        assert fingerprint(real.appliances[p.stem][0].vkey) in r.stdout
    store = cfg / "osiris" / "trust.json"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    listed = [json.loads(x) for x in cli("trust", "list", "--json", cfg=cfg).stdout.splitlines()]
    assert {x["name"] for x in listed} == set(real.appliances)
    assert cli("evidence", "verify", "--strict", str(folder), cfg=cfg).returncode == 0
    store.chmod(0o644)
    r = cli("evidence", "verify", str(folder), cfg=cfg)
    assert r.returncode == 2 and "chmod 600" in r.stderr
    store.chmod(0o600)
    assert cli("trust", "remove", "app-000", cfg=cfg).returncode == 0
    assert cli("trust", "remove", "app-000", cfg=cfg).returncode == 2
    r = cli("evidence", "verify", "--strict", str(folder), cfg=cfg)
    assert r.returncode == 1 and "E_KEY_UNTRUSTED" in r.stdout  # app-000 no longer trusted


def test_a_log_fork_at_the_attested_size_is_caught(tmp_path) -> None:
    """The MSP shows the auditor a tree of the size the clinic cosigned, with another root."""
    real = make_export(12, 2, start=START)
    forked = make_export(12, 2, start=START, log_signer=real.log.signer)  # same key, other tree
    folder = forked.write(tmp_path / "forked")
    got = failures(folder, roots_of(*(real.attestation(a) for a in real.appliances)))
    assert got.get("E_LOG_FORK") == ["checkpoint"] * 2  # one per witnessing appliance
    # the honest export of the same size is not a fork
    honest = real.write(tmp_path / "honest")
    assert "E_LOG_FORK" not in failures(honest, roots_of(real.attestation("app-000")))
