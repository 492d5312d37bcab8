"""Evidence packets (osiris_core.packet): completeness at both period edges, against trust roots.

Exports come from osiris_core.synth (real Ed25519 keys, a real Merkle log, real proofs). The
hostile party here is whoever builds the packet (the MSP): it can drop bundles and rebuild a
perfectly consistent manifest, or replace keys.json, but it cannot sign as an appliance. Every
such packet must fail with its own code.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from osiris_core import canonical, tlog
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer
from osiris_core.note import Checkpoint, add_signature_lines, cosign
from osiris_core.packet import (
    PacketError,
    build_packet,
    check_period,
    consistency_doc,
    month_period,
    verify_packet,
)
from osiris_core.synth import ORIGIN, SynthExport, make_export
from osiris_core.trust import TrustRoots, load_trust_item
from osiris_core.verify import DECOMMISSION_CHECK, UnusableInput

SITE, MONTH = "site-001", "2026-10"
OCT = month_period(MONTH)


def test_periods() -> None:
    assert month_period("2026-10") == ("2026-10-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z")
    assert month_period("2026-12") == ("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z")
    for bad in ("2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", ""):
        with pytest.raises(SchemaError):
            month_period(bad)
    with pytest.raises(SchemaError):
        check_period(("2026-10-02T00:00:00.000Z", "2026-10-01T00:00:00.000Z"))
    with pytest.raises(SchemaError):
        check_period(("2026-10-01", "2026-10-02T00:00:00.000Z"))


def pick(envelopes: list[dict[str, Any]], period: tuple[str, str]) -> list[dict[str, Any]]:
    """What `osiris packet build` pulls: per appliance, start boundary .. end boundary."""
    by_app: dict[str, list[dict[str, Any]]] = {}
    for e in envelopes:
        by_app.setdefault(e["bundle"]["appliance_id"], []).append(e)
    out = []
    for chain in by_app.values():
        before = [i for i, e in enumerate(chain) if e["bundle"]["finished_at"] < period[0]]
        i = before[-1] if before else 0
        while i < len(chain):
            out.append(chain[i])
            if chain[i]["bundle"]["finished_at"] >= period[1]:
                break
            i += 1
    return out


def trust_of(ex: SynthExport) -> TrustRoots:
    roots = TrustRoots()
    for app in ex.appliances:
        load_trust_item(ex.attestation(app), f"attestation {app}", roots)
    return roots


@pytest.fixture(scope="module")
def synth() -> SynthExport:
    # 90 bundles, 10 h apart, from 30 Sep: three appliances, each one bundle every 30 h, so
    # each has bundles before, inside and after October.
    return make_export(
        90, 3, start=datetime(2026, 9, 30, 23, 0, tzinfo=UTC), step_s=36000,
        cosign_at=datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip


def packet_of(
    ex: SynthExport, tmp: Path, envelopes: list[dict[str, Any]], name: str = "p", **kw: Any
) -> Path:
    export = ex.write(tmp / f"{name}-export", envelopes)
    out = tmp / f"{name}.zip"
    build_packet(export, out, site_id=SITE, period=OCT, month=MONTH, **kw)
    return out


def codes(path: Path, trust: TrustRoots | None, **kw: Any) -> set[str]:
    return {f.code for f in verify_packet(path, trust=trust, workers=1, **kw).failures}


@pytest.fixture(scope="module")
def good(synth, tmp_path_factory) -> Path:
    return packet_of(synth, tmp_path_factory.mktemp("pkt"), pick(synth.envelopes, OCT))


def test_good_packet_verifies_against_the_clinics_attestations(good, synth) -> None:
    report = verify_packet(good, trust=trust_of(synth), workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings]
    passes = {f.code for f in report.findings if f.level == "PASS"}
    assert {"E_MANIFEST", "E_COMPLETE"} <= passes
    assert {k["source"] for k in report.keys_used} == {f"attestation {a}" for a in synth.appliances}
    with zipfile.ZipFile(good) as z:
        m = canonical.loads_canonical(z.read("manifest.json"))
        names = set(z.namelist())
        report = canonical.loads_canonical(z.read("report.json"))
        bundles = [json.loads(x)["bundle"] for x in z.read("bundles.jsonl").splitlines()]
    assert "manifest.sig" not in names  # nothing signs a manifest: it proves nothing
    a0 = m["appliances"]["app-000"]
    mine = [b for b in bundles if b["appliance_id"] == "app-000"]
    assert mine[0]["finished_at"] < OCT[0] and mine[-1]["finished_at"] >= OCT[1]
    assert a0["start_boundary"] == mine[0]["seq"] and a0["end_boundary"] == mine[-1]["seq"]
    assert a0["in_period"] == sum(OCT[0] <= b["finished_at"] < OCT[1] for b in mine)
    # controls count the period's bundles only, never the boundaries
    expected: dict[str, dict[str, int]] = {}
    for b in bundles:
        if OCT[0] <= b["finished_at"] < OCT[1]:
            for c in b["controls"]:
                expected.setdefault(c, {}).setdefault(b["outcome"], 0)
                expected[c][b["outcome"]] += 1
    assert m["controls"] == expected
    assert "report.md" not in names and "report.json" in {f["path"] for f in m["files"]}
    # the synthetic appliances check only their dc01, never themselves: each appliance is an
    # expected host without evidence, dc01 is a host seen only in evidence
    pop = {p["host_id"]: p["source"] for p in report["population"]["expected"]}
    assert pop["app-000"] == "appliance" and pop["app-000-dc01"] == "evidence only"
    assert "app-000" in report["population"]["missing"]
    assert "app-000-dc01" in report["population"]["with_evidence"]
    assert {"E_MANIFEST", "E_COMPLETE", "E_REPORT"} <= passes


def verify_manifest(path: Path) -> dict[str, Any]:
    return canonical.loads_canonical(zipfile.ZipFile(path).read("manifest.json"))


def test_unpinned_packet_fails_strictly(good) -> None:
    report = verify_packet(good, workers=1)
    assert not report.failures
    assert {f.code for f in report.warnings} == {"W_UNPINNED"}
    assert not report.ok(strict=True)


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("start", "E_START_BOUNDARY"),  # start boundary and the first bundles dropped
        ("first", "E_GAP"),  # the first bundle of the month dropped, boundary kept
        ("middle", "E_GAP"),
        ("last10", "E_END_BOUNDARY"),  # the month's last bundles (its failures) and the end
        ("last-keep-end", "E_GAP"),  # the month's last bundles dropped, end boundary kept
    ],
)
def test_dropped_bundles_fail_even_with_a_rebuilt_manifest(synth, tmp_path, where, code) -> None:
    keep = pick(synth.envelopes, OCT)
    mine = [e for e in keep if e["bundle"]["appliance_id"] == "app-001"]
    drop: list[dict[str, Any]] = {
        "start": mine[:3],
        "first": mine[1:2],
        "middle": mine[10:12],
        "last10": mine[-10:],
        "last-keep-end": mine[-6:-1],
    }[where]
    ids = {id(e) for e in drop}
    # the MSP rebuilds a manifest that agrees with what it kept: integrity passes
    out = packet_of(synth, tmp_path, [e for e in keep if id(e) not in ids])
    got = codes(out, trust_of(synth))
    assert code in got and "E_MANIFEST" not in got


def test_a_whole_appliance_removed_is_caught_by_the_trust_roots(synth, tmp_path) -> None:
    keep = [e for e in pick(synth.envelopes, OCT) if e["bundle"]["appliance_id"] != "app-002"]
    export = synth.write(tmp_path / "export", keep)
    keys = json.loads((export / "keys.json").read_text())
    keys["appliances"] = [v for v in keys["appliances"] if "app-002" not in v]
    (export / "keys.json").write_text(json.dumps(keys))  # the MSP hides it from keys.json too
    build_packet(export, tmp_path / "p.zip", site_id=SITE, period=OCT, month=MONTH)
    assert codes(tmp_path / "p.zip", trust_of(synth)) == {"E_APPLIANCE_MISSING"}
    # …and keys.json naming it is enough on its own
    export2 = synth.write(tmp_path / "export2", keep)
    build_packet(export2, tmp_path / "p2.zip", site_id=SITE, period=OCT, month=MONTH)
    assert "E_APPLIANCE_MISSING" in codes(tmp_path / "p2.zip", None)


def test_silent_appliance_needs_a_decommission_bundle(tmp_path) -> None:
    start = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)
    silent = make_export(30, 2, start=start, step_s=36000)  # all ends ~ 13 Oct: silent after
    out = packet_of(silent, tmp_path, pick(silent.envelopes, OCT), "silent")
    assert codes(out, trust_of(silent)) == {"E_END_BOUNDARY"}
    closed = make_export(30, 2, start=start, step_s=36000, last_check=DECOMMISSION_CHECK)
    out = packet_of(closed, tmp_path, pick(closed.envelopes, OCT), "closed")
    report = verify_packet(out, trust=trust_of(closed), workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings]
    assert all(a["decommissioned"] for a in verify_manifest(out)["appliances"].values())


def test_hostile_msp_second_log_and_fabricated_appliances(synth, tmp_path) -> None:
    """A second server: fresh log key with the same origin, fabricated appliances with the
    same ids. Self-consistent, so it passes without trust roots — and fails with them."""
    fake = make_export(
        90, 3, start=datetime(2026, 9, 30, 23, 0, tzinfo=UTC), step_s=36000,
        log_signer=Signer.generate(ORIGIN), cosign_at=datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip
    out = packet_of(fake, tmp_path, pick(fake.envelopes, OCT), "fake")
    assert not verify_packet(out, workers=1).failures  # it only lacks pinned keys
    got = codes(out, trust_of(synth))
    assert {"E_LOG_UNTRUSTED", "E_KEY_UNTRUSTED"} <= got


def test_tampered_files_fail_the_manifest(good, synth, tmp_path) -> None:
    def rewrite(change) -> Path:  # noqa: ANN001
        with zipfile.ZipFile(good) as z:
            files = {n: z.read(n) for n in z.namelist()}
        change(files)
        dst = tmp_path / "t.zip"
        with zipfile.ZipFile(dst, "w") as z:
            for n, data in files.items():
                z.writestr(n, data)
        return dst

    def flip(files: dict[str, bytes]) -> None:
        files["bundles.jsonl"] = files["bundles.jsonl"].replace(b"app-000-dc01", b"app-000-dc02", 1)

    assert {"E_MANIFEST", "E_SIG"} <= codes(rewrite(flip), trust_of(synth))

    def extra(files: dict[str, bytes]) -> None:
        files["notes.txt"] = b"trust me\n"

    assert codes(rewrite(extra), trust_of(synth)) == {"E_MANIFEST"}

    def no_proof(files: dict[str, bytes]) -> None:
        del files[next(n for n in sorted(files) if n.startswith("proofs/"))]

    assert {"E_MANIFEST", "E_INCLUSION"} <= codes(rewrite(no_proof), trust_of(synth))


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


def test_build_refuses_other_sites_and_empty_exports(synth, tmp_path) -> None:
    export = synth.write(tmp_path / "e", pick(synth.envelopes, OCT))
    with pytest.raises(PacketError, match="other sites"):
        build_packet(export, tmp_path / "p.zip", site_id="site-002", period=OCT)
    empty = synth.write(tmp_path / "empty", [])
    with pytest.raises(PacketError, match="no bundles"):
        build_packet(empty, tmp_path / "p.zip", site_id=SITE, period=OCT)
    assert not (tmp_path / "p.zip").exists()


def _prefix_packet(ex: SynthExport, tmp: Path, size: int, period: tuple[str, str]) -> Path:
    """A packet proved against an older checkpoint of the same log (size `size`)."""
    note = ex.log.checkpoint(size)
    body = note.split("\n\n", 1)[0] + "\n"
    ts = int(datetime(2026, 11, 15, tzinfo=UTC).timestamp())
    note = add_signature_lines(note, [cosign(body, c, ts) for _, c in ex.appliances.values()])
    envs = [e for e in pick(ex.envelopes[:size], period)]
    proofs = {}
    from osiris_core.evidence import bundle_hash

    for i, e in enumerate(ex.envelopes[:size]):
        proofs[bundle_hash(e["bundle"])] = ex.log.proof(i, note)
    old = SynthExport(ex.log, ex.appliances, ex.envelopes, proofs, note)
    export = old.write(tmp / "prev-export", envs)
    out = tmp / "prev.zip"
    build_packet(export, out, site_id=SITE, period=period)
    return out


def test_consistency_with_the_previous_packet(synth, tmp_path) -> None:
    sep = ("2026-09-01T00:00:00.000Z", OCT[0])
    size = 6  # the log as it was on 2 October: covers each appliance's first bundle of October
    prev = _prefix_packet(synth, tmp_path, size, sep)
    prev_note = zipfile.ZipFile(prev).read("checkpoint").decode()
    full = len(synth.envelopes)
    proof = tlog.MerkleTree(synth.log.store).consistency_proof(size, full)
    doc = consistency_doc(prev_note, full, proof)
    out = packet_of(synth, tmp_path, pick(synth.envelopes, OCT), "oct", consistency=doc)
    trust = trust_of(synth)
    report = verify_packet(out, trust=trust, previous=prev, workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings]
    assert {"E_CONSISTENCY", "E_PREVIOUS"} <= {f.code for f in report.findings if f.level == "PASS"}
    # a forged proof (a fork) fails
    bad = consistency_doc(prev_note, full, [bytes(32)] * len(proof))
    forked = packet_of(synth, tmp_path, pick(synth.envelopes, OCT), "forked", consistency=bad)
    assert {"E_CONSISTENCY", "E_PREVIOUS"} <= codes(forked, trust, previous=prev)
    # a packet of another log is not this one's predecessor
    other = make_export(30, 3, start=datetime(2026, 9, 1, tzinfo=UTC), step_s=3600)
    unrelated = packet_of(other, tmp_path, pick(other.envelopes, sep), "unrelated")
    assert "E_PREVIOUS" in codes(out, trust, previous=unrelated)
    Checkpoint.parse(prev_note.split("\n\n", 1)[0] + "\n")
