"""report.json semantics (osiris_core/report.py): per-control status from real signed evidence.

Every packet here is built from bundles signed one by one (tests/core/report_clinic.py) and
verified strictly against the appliance's attestation. The hostile party is the builder: a
report.json edited to read better than the evidence (E_REPORT), hosts it would rather not show
(population.missing), a lapsed acceptance presented as cover, markup in a host id.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.packet import build_packet, month_period, verify_packet
from tests.core.report_clinic import APP, NIXOS, SITE, WINDOWS, Clinic, days_of

MONTH = "2026-11"
NOV = month_period(MONTH)
DAYS = days_of(MONTH)
ENC = "164.312(a)(2)(iv)"  # Encryption: windows_bitlocker on ws01, encryption on the appliance
REVIEW = "164.308(a)(1)(ii)(D)"
WS = [{"host_id": "ws01", "platform": "windows", "source": "site target"}]
HOSTILE = '<script>alert("x")</script>\x1b[31m\x07evil&co'


def packet(clinic: Clinic, tmp: Path, population: list[dict[str, Any]] = WS, **kw: Any):
    clinic.close(MONTH)
    out = tmp / "p.zip"
    build_packet(clinic.export(tmp / "export"), out, site_id=SITE, period=NOV, month=MONTH,
                 population_expected=population, **kw)  # fmt: skip
    report = verify_packet(out, trust=clinic.trust(), workers=1)
    assert report.ok(strict=True), [f.line() for f in report.findings if f.level != "PASS"]
    assert "E_REPORT" in {f.code for f in report.findings if f.level == "PASS"}
    return out, canonical.loads_canonical(zipfile.ZipFile(out).read("report.json"))


def control(report: dict[str, Any], cit: str) -> dict[str, Any]:
    return next(c for c in report["controls"] if c["citation"] == cit)


def hosts() -> dict[str, list[str]]:
    return {"ws01": WINDOWS, APP: NIXOS}


def test_every_host_every_day_is_met(tmp_path) -> None:
    c = Clinic()
    c.month(MONTH, hosts())
    _out, r = packet(c, tmp_path)
    assert r["schema"] == "osiris.packet-report/1" and r["period"]["days"] == DAYS
    enc = control(r, ENC)
    assert enc["status"] == "met", enc["why"]
    assert enc["checks"] == ["encryption", "windows_bitlocker"]
    assert enc["expected_cells"] == enc["evidenced_cells"] == 2 * 30
    assert r["population"]["missing"] == [] and r["exceptions"] == []
    assert {row[0] for row in r["heatmap"]["cells"]} == {"ok"}
    # a control no check observes is never a pass
    risk = control(r, "164.308(a)(1)(ii)(A)")
    assert risk["status"] == "not_evidenced" and "no check observes" in risk["why"]
    assert control(r, REVIEW)["status"] == "not_evidenced"


SHAPE = {
    "": {"schema", "site_id", "site_name", "partner", "period", "tool_version", "checkpoint",
         "population", "controls", "exceptions", "healing", "incidents", "heatmap", "reviews",
         "policy", "retention", "verify_command"},
    "period": {"start", "end", "month", "days"},
    "checkpoint": {"size", "sha256", "tsa"},
    "population": {"expected", "with_evidence", "missing", "note"},
    "controls": {"citation", "title", "required", "family", "status", "why", "checks",
                 "expected_cells", "evidenced_cells", "missing", "unresolved", "daily"},
    "exceptions": {"id", "host_id", "check", "opened_at", "closed_at", "time_to_fix_s",
                   "opened_by", "closed_by", "status", "owner", "accepted", "incident_id"},
    "healing": {"by_tier", "healed", "failed", "escalated", "median_time_to_remediate_s"},
    "heatmap": {"hosts", "days", "cells"},
    "reviews": {"reviewer", "reviewed_at", "month", "note", "appliance_id", "seq"},
    "policy": {"ruleset_hashes", "policy_versions"},
}  # fmt: skip


def test_report_has_the_shared_shape(tmp_path) -> None:
    """The keys docs/evidence-format.md and the renderers rely on (osiris.packet-report/1)."""
    c = Clinic()

    def day(d: str) -> None:
        if d == DAYS[1]:
            c.add("ws01", "windows_bitlocker", "alert", f"{d}T10:00:00.000Z")
            post = {"reviewer": "r", "reviewed_at": f"{d}T11:00:00.000Z", "month": "2026-10",
                    "note": "", "packet_sha256": None}  # fmt: skip
            c.statement("activity_review", post, f"{d}T11:00:00.000Z")
            c.add(
                "ws01",
                "windows_bitlocker",
                "escalated",
                f"{d}T12:00:00.000Z",
                tier="L3",
                post_state={"incident": {"kind": "drift_unresolved", "severity": "high"}},
            )
            c.add("ws01", "windows_bitlocker", "healed", f"{d}T13:00:00.000Z", tier="L2")

    c.month(MONTH, hosts(), on_day=day)
    _out, r = packet(c, tmp_path)
    assert set(r) == SHAPE[""]
    for key, want in SHAPE.items():
        if key:
            items = r[key] if isinstance(r[key], list) else [r[key]]
            assert items and all(set(x) == want for x in items), key
    assert set(r["healing"]["by_tier"]) == {"L1", "L2", "L3", "order"}
    [inc] = r["incidents"]
    assert inc["severity"] == "high" and set(inc) == {
        "id",
        "host_id",
        "check",
        "severity",
        "at",
        "appliance_id",
        "seq",
    }
    [e] = r["exceptions"]
    assert e["incident_id"] == inc["id"] and e["status"] == "healed"
    assert e["owner"] == "Osiris (L2)" and e["time_to_fix_s"] == 3 * 3600
    cells = {x for row in r["heatmap"]["cells"] for x in row}
    assert cells <= {"ok", "finding", "healed", "missing"} and "healed" in cells


def test_a_host_missing_three_days_is_partially_met_with_exactly_those_days(tmp_path) -> None:
    c = Clinic()
    gone = {DAYS[4], DAYS[5], DAYS[17]}
    c.month(MONTH, hosts(), skip={"ws01": gone})
    _out, r = packet(c, tmp_path)
    enc = control(r, ENC)
    assert enc["status"] == "partially_met"
    assert enc["missing"] == [
        {"host_id": "ws01", "check": "windows_bitlocker", "days": sorted(gone)}
    ]
    assert enc["evidenced_cells"] == 60 - 3
    row = r["heatmap"]["cells"][r["heatmap"]["hosts"].index("ws01")]
    assert [d for d, cell in zip(DAYS, row, strict=True) if cell == "missing"] == sorted(gone)


def test_a_target_with_no_evidence_fails_every_control_it_applies_to(tmp_path) -> None:
    c = Clinic()
    c.month(MONTH, hosts())
    pop = WS + [{"host_id": "ws02", "platform": "windows", "source": "site target"}]
    _out, r = packet(c, tmp_path, pop)
    assert r["population"]["missing"] == ["ws02"]
    assert "ws02" not in r["population"]["with_evidence"]
    for cit in (ENC, "164.312(a)(1)", "164.312(b)"):
        ctl = control(r, cit)
        assert ctl["status"] == "partially_met", (cit, ctl["why"])
        assert all(m["days"] == DAYS for m in ctl["missing"] if m["host_id"] == "ws02")
        assert any(m["host_id"] == "ws02" for m in ctl["missing"])
    assert set(r["heatmap"]["cells"][r["heatmap"]["hosts"].index("ws02")]) == {"missing"}


def test_a_healed_finding_links_its_heal_bundle(tmp_path) -> None:
    c = Clinic()
    seqs: dict[str, int] = {}

    def day(d: str) -> None:
        if d == DAYS[9]:
            seqs["open"] = c.add("ws01", "windows_bitlocker", "alert", f"{d}T10:00:00.000Z")
            seqs["heal"] = c.add("ws01", "windows_bitlocker", "healed", f"{d}T10:04:30.000Z",
                                 tier="L1", started_at=f"{d}T10:04:00.000Z")  # fmt: skip

    c.month(MONTH, hosts(), on_day=day)
    _out, r = packet(c, tmp_path)
    [e] = r["exceptions"]
    assert e["status"] == "healed" and e["owner"] == "Osiris (L1)"
    assert e["opened_by"] == {"appliance_id": APP, "seq": seqs["open"], "outcome": "alert",
                              "tier": "monitor"}  # fmt: skip
    assert e["closed_by"]["seq"] == seqs["heal"] and e["closed_by"]["outcome"] == "healed"
    assert e["time_to_fix_s"] == 270 and e["closed_at"] == f"{DAYS[9]}T10:04:30.000Z"
    assert control(r, ENC)["status"] == "met" and control(r, ENC)["unresolved"] == []
    assert r["healing"]["by_tier"]["L1"] == 1 and r["healing"]["healed"] == 1
    assert r["healing"]["median_time_to_remediate_s"] == 270
    assert r["heatmap"]["cells"][r["heatmap"]["hosts"].index("ws01")][9] == "healed"


def _unhealed(c: Clinic, extra=None) -> dict[str, int]:  # noqa: ANN001
    seqs: dict[str, int] = {}

    def day(d: str) -> None:
        if d == DAYS[19]:
            seqs["open"] = c.add("ws01", "windows_bitlocker", "alert", f"{d}T10:00:00.000Z")
        if extra is not None:
            extra(d)

    c.month(MONTH, hosts(), drift={"ws01": (DAYS[19], {"windows_bitlocker": "drift"})},
            on_day=day)  # fmt: skip
    return seqs


def test_an_unhealed_finding_is_not_met_and_listed_unresolved(tmp_path) -> None:
    c = Clinic()
    seqs = _unhealed(c)
    _out, r = packet(c, tmp_path)
    [e] = r["exceptions"]
    assert e["status"] == "open" and e["closed_by"] is None and e["time_to_fix_s"] is None
    assert e["id"] == f"exc-{APP}-{seqs['open']}"
    enc = control(r, ENC)
    assert enc["status"] == "not_met" and enc["unresolved"] == [e["id"]]
    # controls the finding's check does not map to are untouched by it
    assert control(r, "164.312(b)")["status"] == "met"


def _acceptance(c: Clinic, until: str):  # noqa: ANN202
    def extra(d: str) -> None:
        if d == DAYS[20]:
            post = {"by": "J. Rivera", "reason": "vendor imaging conflicts until v12",
                    "until": until, "host_id": "ws01", "check": "windows_bitlocker",
                    "exception_opened_at": None}  # fmt: skip
            c.statement("risk_acceptance", post, f"{d}T12:00:00.000Z")

    return extra


def test_an_accepted_exception_is_met(tmp_path) -> None:
    c = Clinic()
    _unhealed(c, _acceptance(c, "2027-01-31T00:00:00.000Z"))
    _out, r = packet(c, tmp_path)
    [e] = r["exceptions"]
    assert e["status"] == "accepted" and e["owner"] == "J. Rivera"
    assert e["accepted"]["until"] == "2027-01-31T00:00:00.000Z"
    assert e["accepted"]["appliance_id"] == APP
    enc = control(r, ENC)
    assert enc["status"] == "met" and enc["unresolved"] == []


def test_an_acceptance_lapsed_before_the_period_end_covers_nothing(tmp_path) -> None:
    c = Clinic()
    _unhealed(c, _acceptance(c, "2026-11-25T00:00:00.000Z"))
    _out, r = packet(c, tmp_path)
    [e] = r["exceptions"]
    assert e["status"] == "open" and e["accepted"] is None
    assert control(r, ENC)["status"] == "not_met"


@pytest.mark.parametrize(("reviewed", "status"), [("2026-10", "met"), ("2026-11", "met"),
                                                  ("2026-08", "not_evidenced")])  # fmt: skip
def test_activity_review_needs_a_signed_review_of_this_or_last_month(
    tmp_path, reviewed, status
) -> None:
    c = Clinic()

    def day(d: str) -> None:
        if d == DAYS[2]:
            post = {
                "reviewer": "J. Rivera",
                "reviewed_at": f"{d}T09:00:00.000Z",
                "month": reviewed,
                "note": "read the October packet",
                "packet_sha256": None,
            }
            c.statement("activity_review", post, f"{d}T09:00:01.000Z")  # fmt: skip

    c.month(MONTH, hosts(), on_day=day)
    _out, r = packet(c, tmp_path)
    assert control(r, REVIEW)["status"] == status
    [rev] = r["reviews"]
    assert rev["reviewer"] == "J. Rivera" and rev["month"] == reviewed and rev["seq"] > 0


def _rewrite(src: Path, dst: Path, change) -> Path:  # noqa: ANN001
    """Edit files in a packet and rebuild its manifest's file list to match (integrity holds)."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    change(files)
    m = canonical.loads(files["manifest.json"])
    m["files"] = [f for f in m["files"] if f["path"] in files]
    for f in m["files"]:
        f["sha256"] = hashlib.sha256(files[f["path"]]).hexdigest()
        f["size"] = len(files[f["path"]])
    files["manifest.json"] = canonical.dumps(m)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def test_a_report_edited_to_read_better_fails_e_report(tmp_path) -> None:
    c = Clinic()
    c.month(MONTH, hosts(), skip={"ws01": {DAYS[3]}})
    out, r = packet(c, tmp_path)
    assert control(r, ENC)["status"] == "partially_met"

    def promote(files: dict[str, bytes]) -> None:
        rep = canonical.loads(files["report.json"])
        for ctl in rep["controls"]:
            if ctl["status"] == "partially_met":
                ctl["status"], ctl["missing"] = "met", []
        files["report.json"] = canonical.dumps(rep)

    def hide_host(files: dict[str, bytes]) -> None:  # drop the silent host from the population
        m = canonical.loads(files["manifest.json"])
        m["population"] = []
        files["manifest.json"] = canonical.dumps(m)

    def blank_platform(files: dict[str, bytes]) -> None:  # and rebuild a matching report
        m = canonical.loads(files["manifest.json"])
        m["population"] = [{**p, "platform": None} for p in m["population"]]
        files["manifest.json"] = canonical.dumps(m)
        from osiris_core.packet import report_of, unpack

        folder = tmp_path / "blank"
        unpack(out, folder)
        files["report.json"] = canonical.dumps(report_of(folder, m, None))

    blanked = _rewrite(out, tmp_path / "blanked.zip", blank_platform)
    rep = verify_packet(blanked, trust=c.trust(), workers=1)
    assert rep.ok(strict=True)  # a consistent rewrite of an unsigned label passes, but…
    r2 = canonical.loads(zipfile.ZipFile(blanked).read("report.json"))
    assert control(r2, ENC)["status"] == "partially_met"  # …ws01 is still judged as Windows
    assert control(r2, ENC)["missing"] == control(r, ENC)["missing"]

    for change in (promote, hide_host):
        bad = _rewrite(out, tmp_path / f"{change.__name__}.zip", change)
        rep = verify_packet(bad, trust=c.trust(), workers=1)
        assert {f.code for f in rep.failures} == {"E_REPORT"}, change.__name__
    # no report at all is no pass either
    gone = tmp_path / "gone.zip"
    _rewrite(out, gone, lambda files: files.pop("report.json"))
    rep = verify_packet(gone, trust=c.trust(), workers=1)
    assert "E_REPORT" in {f.code for f in rep.failures}


def test_hostile_host_ids_stay_data(tmp_path) -> None:
    c = Clinic()
    c.month(MONTH, hosts())
    pop = WS + [{"host_id": HOSTILE, "platform": "windows", "source": "site target"}]
    out, r = packet(c, tmp_path, pop)
    raw = zipfile.ZipFile(out).read("report.json")
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\\u001b" in raw
    assert HOSTILE in r["population"]["missing"] and HOSTILE in r["heatmap"]["hosts"]


def test_renderers_write_views_listed_in_the_manifest(tmp_path) -> None:
    c = Clinic()
    c.month(MONTH, hosts())
    seen: list[dict[str, Any]] = []

    def html(report: dict[str, Any]) -> bytes:
        seen.append(report)
        return b"<html>" + report["site_id"].encode() + b"</html>"

    out, r = packet(c, tmp_path, renderers={"report.html": html})
    assert seen == [r]
    m = canonical.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert "report.html" in {f["path"] for f in m["files"]}
    with pytest.raises(Exception, match="report"):
        build_packet(c.export(tmp_path / "e2"), tmp_path / "x.zip", site_id=SITE, period=NOV,
                     renderers={"../evil": html})  # fmt: skip
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    "bad",
    [
        "ws01",
        [{"host_id": "ws01"}],
        [{"host_id": "", "platform": "windows", "source": "t"}],
        [{"host_id": "a", "platform": "beos", "source": "t"}],
        WS + WS,
    ],
)
def test_bad_population_is_refused_and_writes_nothing(tmp_path, bad) -> None:
    c = Clinic()
    c.month(MONTH, {APP: NIXOS})
    c.close(MONTH)
    with pytest.raises(SchemaError):
        build_packet(c.export(tmp_path / "e"), tmp_path / "p.zip", site_id=SITE, period=NOV,
                     population_expected=bad)  # fmt: skip
    assert not (tmp_path / "p.zip").exists()


def test_a_checkpoint_token_is_carried_and_an_unreadable_one_names_no_time(tmp_path) -> None:
    """checkpoint.tsr travels with the checkpoint; report.checkpoint.tsa comes only from a token
    osiris_core.timestamp can read (the TSA's own checks are E_TSA's), never from the builder."""
    c = Clinic()
    c.month(MONTH, {APP: NIXOS})
    c.close(MONTH)
    export = c.export(tmp_path / "export")
    (export / "checkpoint.tsr").write_bytes(b"\x30\x03junk")
    out = tmp_path / "p.zip"
    build_packet(export, out, site_id=SITE, period=NOV, month=MONTH)
    with zipfile.ZipFile(out) as z:
        assert z.read("checkpoint.tsr") == b"\x30\x03junk"
        m = canonical.loads(z.read("manifest.json"))
        r = canonical.loads(z.read("report.json"))
    assert "checkpoint.tsr" in {f["path"] for f in m["files"]}
    assert r["checkpoint"]["tsa"] is None
    body = (export / "checkpoint").read_text().split("\n\n", 1)[0] + "\n"
    assert r["checkpoint"]["sha256"] == hashlib.sha256(body.encode()).hexdigest()
    assert "E_REPORT" not in {f.code for f in verify_packet(out, trust=c.trust()).failures}
