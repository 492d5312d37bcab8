"""Monthly packet (osiris_core.packet): build from a real signed export, verify, tamper, fail.

The export is produced by osiris_core.synth (real Ed25519 keys, a real Merkle log, real proofs);
the manifest is signed with the same log key the checkpoints use, exactly as the server does.
Each tampering test changes one thing in the zip and expects its stable code.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer
from osiris_core.note import sign_note
from osiris_core.packet import (
    PacketError,
    build_packet,
    manifest_note_text,
    month_period,
    verify_packet,
)
from osiris_core.synth import ORIGIN, make_export
from osiris_core.verify import UnusableInput

SITE, MONTH = "site-001", "2026-10"


def test_month_period_bounds() -> None:
    assert month_period("2026-10") == ("2026-10-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z")
    assert month_period("2026-12") == ("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z")
    for bad in ("2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", ""):
        with pytest.raises(SchemaError):
            month_period(bad)


def test_note_text_is_not_a_checkpoint_and_rejects_bad_input() -> None:
    h = "ab" * 32
    assert manifest_note_text(SITE, MONTH, h) == f"osiris-packet-manifest\n{SITE}\n{MONTH}\n{h}\n"
    with pytest.raises(SchemaError):
        manifest_note_text(SITE, MONTH, "AB" * 32)
    with pytest.raises(SchemaError):
        manifest_note_text("a\nb", MONTH, h)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Signer, dict, object]:
    tmp = tmp_path_factory.mktemp("pkt")
    log = Signer.generate(ORIGIN)
    ex = make_export(30, 3, start=datetime(2026, 10, 31, 23, 59, 0, tzinfo=UTC), log_signer=log)
    # 30 bundles one second apart from 23:59:00: all still inside October
    export = ex.write(tmp / "export")

    def sign(h: str) -> str:
        return sign_note(manifest_note_text(SITE, MONTH, h), [log])

    out = tmp / "p.zip"
    manifest = build_packet(export, out, site_id=SITE, month=MONTH, sign=sign)
    return out, log, manifest, ex


def _rewrite(src: Path, dst: Path, change) -> Path:  # noqa: ANN001
    """Copy the zip, letting `change(files)` edit the {name: bytes} mapping first."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    change(files)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def _codes(path: Path, **kw) -> set[str]:
    return {f.code for f in verify_packet(path, workers=1, **kw).failures}


def test_good_packet_verifies_and_manifest_matches_bundles(built) -> None:
    out, log, manifest, ex = built
    report = verify_packet(out, workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings]
    assert report.bundles == 30
    assert {f.code for f in report.findings if f.level == "PASS"} == {
        "E_MANIFEST",
        "E_MANIFEST_SIG",
    }
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        m = canonical.loads_canonical(z.read("manifest.json"))
        report_md = z.read("report.md").decode()
        lines = z.read("bundles.jsonl").splitlines()
    assert {"manifest.json", "manifest.sig", "keys.json", "bundles.jsonl", "checkpoint"} <= names
    assert {"report.md", "verify/README"} <= names
    assert sum(n.startswith("proofs/") for n in names) == 30
    assert m == manifest and m["bundles"] == 30
    assert {f["path"] for f in m["files"]} == names - {"manifest.json", "manifest.sig"}
    # per-control counts recomputed independently from the bundles in the zip
    expected: dict[str, dict[str, int]] = {}
    for line in lines:
        b = json.loads(line)["bundle"]
        for c in b["controls"]:
            expected.setdefault(c, {}).setdefault(b["outcome"], 0)
            expected[c][b["outcome"]] += 1
    assert m["controls"] == expected
    assert m["appliances"]["app-000"] == {"bundles": 10, "seq_first": 1, "seq_last": 10}
    for cit, counts in expected.items():
        row = next(r for r in report_md.splitlines() if r.startswith(f"| {cit} |"))
        assert "evidenced" in row and str(counts["compliant"]) in row
    assert "None: no bundle this month" in report_md


def test_tampered_bundle_fails_manifest_and_signature(built, tmp_path) -> None:
    out = built[0]

    def change(files: dict[str, bytes]) -> None:
        files["bundles.jsonl"] = files["bundles.jsonl"].replace(b"app-000-dc01", b"app-000-dc02", 1)

    codes = _codes(_rewrite(out, tmp_path / "t.zip", change))
    assert {"E_MANIFEST", "E_SIG"} <= codes


def test_tampered_manifest_fails_its_signature(built, tmp_path) -> None:
    out = built[0]

    def change(files: dict[str, bytes]) -> None:
        m = json.loads(files["manifest.json"])
        m["tool_version"] = "9.9.9"
        files["manifest.json"] = canonical.dumps(m)

    assert _codes(_rewrite(out, tmp_path / "t.zip", change)) == {"E_MANIFEST_SIG"}


def test_manifest_signed_by_another_key(built, tmp_path) -> None:
    out = built[0]
    other = Signer.generate(ORIGIN)  # same name as the log key, different key

    def change(files: dict[str, bytes]) -> None:
        h = hashlib.sha256(files["manifest.json"]).hexdigest()
        files["manifest.sig"] = sign_note(manifest_note_text(SITE, MONTH, h), [other]).encode()

    assert _codes(_rewrite(out, tmp_path / "t.zip", change)) == {"E_MANIFEST_SIG"}


def test_signature_for_another_month_fails(built, tmp_path) -> None:
    out, log = built[0], built[1]

    def change(files: dict[str, bytes]) -> None:
        h = hashlib.sha256(files["manifest.json"]).hexdigest()
        files["manifest.sig"] = sign_note(manifest_note_text(SITE, "2026-09", h), [log]).encode()

    assert _codes(_rewrite(out, tmp_path / "t.zip", change)) == {"E_MANIFEST_SIG"}


def test_pinned_log_key_catches_a_replaced_keys_json(built, tmp_path) -> None:
    out, log = built[0], built[1]
    # the honest packet passes with the right pin and fails with another
    assert _codes(out, trusted_log_vkey=log.vkey) == set()
    assert _codes(out, trusted_log_vkey=Signer.generate(ORIGIN).vkey) == {"E_MANIFEST_SIG"}


def test_missing_proof(built, tmp_path) -> None:
    out = built[0]

    def change(files: dict[str, bytes]) -> None:
        del files[next(n for n in sorted(files) if n.startswith("proofs/"))]

    codes = _codes(_rewrite(out, tmp_path / "t.zip", change))
    assert {"E_MANIFEST", "E_INCLUSION"} <= codes


def test_unlisted_file_fails(built, tmp_path) -> None:
    out = built[0]

    def change(files: dict[str, bytes]) -> None:
        files["notes.txt"] = b"trust me\n"

    report = verify_packet(_rewrite(out, tmp_path / "t.zip", change), workers=1)
    assert {f.code for f in report.failures} == {"E_MANIFEST"}
    assert any(f.subject == "notes.txt" for f in report.failures)


def test_removed_bundle_line_is_caught(built, tmp_path) -> None:
    out = built[0]

    def change(files: dict[str, bytes]) -> None:
        lines = files["bundles.jsonl"].splitlines(keepends=True)
        files["bundles.jsonl"] = b"".join(lines[:-1])  # the month's last bundle dropped

    codes = _codes(_rewrite(out, tmp_path / "t.zip", change))
    assert "E_MANIFEST" in codes


def test_unsafe_zip_and_non_zip_are_unusable(tmp_path) -> None:
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape", b"x")
    with pytest.raises(UnusableInput):
        verify_packet(bad)
    assert not (tmp_path / "escape").exists()
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UnusableInput):
        verify_packet(junk)


def test_build_refuses_bundles_outside_the_month(tmp_path) -> None:
    log = Signer.generate(ORIGIN)
    ex = make_export(4, 1, start=datetime(2026, 10, 31, 23, 59, 58, tzinfo=UTC), log_signer=log)
    export = ex.write(tmp_path / "export")  # 2 in October, 2 in November
    with pytest.raises(PacketError, match="outside"):
        build_packet(export, tmp_path / "p.zip", site_id=SITE, month=MONTH, sign=lambda h: "")
    assert not (tmp_path / "p.zip").exists()


def test_mid_chain_start_is_expected_only_at_the_declared_seq(tmp_path) -> None:
    """A month starting at seq 3 passes without W_CHAIN_START (the manifest declares it)."""
    log = Signer.generate(ORIGIN)
    ex = make_export(6, 1, start=datetime(2026, 9, 30, 23, 59, 58, tzinfo=UTC), log_signer=log)
    full = ex.write(tmp_path / "full")
    lines = (full / "bundles.jsonl").read_bytes().splitlines(keepends=True)
    (full / "bundles.jsonl").write_bytes(b"".join(lines[2:]))  # keep the October ones
    out = build_packet(
        full,
        tmp_path / "p.zip",
        site_id=SITE,
        month=MONTH,
        sign=lambda h: sign_note(manifest_note_text(SITE, MONTH, h), [log]),
    )
    assert out["appliances"]["app-000"] == {"bundles": 4, "seq_first": 3, "seq_last": 6}
    report = verify_packet(tmp_path / "p.zip", workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings]
