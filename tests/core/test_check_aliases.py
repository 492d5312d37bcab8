"""A check id signed into evidence is never renamed: its old id stays a catalogue alias, and every
reader of evidence (the verifier, packets, drift reports) counts a bundle signed under the alias
once, under the check's current id.

Today's catalogue has no renamed check, so these tests load a deliberate test catalogue: a copy
of the real one in which ``windows_firewall`` was once ``fw_profiles`` and
``appliance_decommission`` was once ``appliance_retired``. The bundles are really signed, with
the old ids inside the signature.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from osiris_core.catalog import Catalog, check_aliases, load_catalog, load_from
from osiris_core.controls import controls_for
from osiris_core.packet import Summary, build_packet, month_period, verify_packet
from osiris_core.report import build_report
from osiris_core.synth import SynthExport, make_export
from osiris_core.trust import TrustRoots, load_trust_item
from osiris_core.verify import verify_export
from osiris_tui.drift import drift_rows

CATALOG_DIR = Path(str(resources.files("osiris_core.catalog")))
OCT = month_period("2026-10")


@pytest.fixture(scope="module")
def historic(tmp_path_factory) -> Catalog:
    root = tmp_path_factory.mktemp("catalog") / "catalog"
    shutil.copytree(CATALOG_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    checks = root / "checks.toml"
    text = checks.read_text()
    for cid, old in (
        ("windows_firewall", "fw_profiles"),
        ("appliance_decommission", "appliance_retired"),
    ):
        line = f'id = "{cid}"\n'
        assert text.count(line) == 1
        text = text.replace(line, f'{line}aliases = ["{old}"]\n')
    checks.write_text(text)
    return load_from(root)


def test_the_test_catalogue_differs_from_the_real_one_only_by_its_aliases(historic) -> None:
    real = load_catalog()
    assert set(historic.checks) == set(real.checks)
    assert dict(historic.aliases) == {
        "fw_profiles": "windows_firewall",
        "appliance_retired": "appliance_decommission",
    }
    assert dict(check_aliases()) == dict(real.aliases)  # what readers use by default
    # The packaged catalogue's aliases never shadow a current id.
    assert not set(real.aliases) & set(real.checks)


def test_controls_for_answers_an_alias_with_its_checks_citations() -> None:
    """Against the packaged catalogue: an alias it lists answers like its check; today it lists
    none, so a made-up former id is refused like any unknown id."""
    for alias, cid in load_catalog().aliases.items():
        assert controls_for(alias) == controls_for(cid)
    with pytest.raises(KeyError):
        controls_for("fw_profiles")


def test_verifier_passes_an_alias_bundle_and_judges_its_chain_under_the_check(
    historic, tmp_path
) -> None:
    ex = make_export(8, 2, last_check="fw_profiles")
    folder = ex.write(tmp_path / "export")
    signed = {e["bundle"]["check"] for e in ex.envelopes}
    assert signed == {"windows_firewall", "fw_profiles"}  # the old id is inside the signature
    report = verify_export(folder, aliases=historic.aliases, workers=1)
    assert report.ok(), [f.line() for f in report.findings]
    assert {c["last_check"] for c in report.chains.values()} == {"windows_firewall"}
    # A reader that does not know the alias still passes it and keeps the id as signed.
    plain = verify_export(folder, aliases={}, workers=1)
    assert plain.ok()
    assert {c["last_check"] for c in plain.chains.values()} == {"fw_profiles"}


def _trust(ex: SynthExport) -> TrustRoots:
    roots = TrustRoots()
    for app in ex.appliances:
        load_trust_item(ex.attestation(app), f"attestation {app}", roots)
    return roots


def test_packet_closes_a_chain_with_a_decommission_bundle_signed_under_its_old_id(
    historic, tmp_path
) -> None:
    """Each appliance's last bundle is a decommission signed as ``appliance_retired``: folded,
    it closes the chain (no end boundary needed); unfolded, the chain would be open."""
    start = datetime(2026, 10, 2, tzinfo=UTC)
    ex = make_export(20, 2, start=start, step_s=3600, last_check="appliance_retired")
    export = ex.write(tmp_path / "export")
    out = tmp_path / "p.zip"
    manifest = build_packet(
        export, out, site_id="site-001", period=OCT, month="2026-10", aliases=historic.aliases
    )
    assert all(a["decommissioned"] for a in manifest["appliances"].values())
    # Per-control counts come from each bundle's signed controls: every bundle counted once.
    assert {sum(c.values()) for c in manifest["controls"].values()} == {20}
    assert manifest["bundles"] == 20
    report = verify_packet(out, trust=_trust(ex), workers=1, aliases=historic.aliases)
    assert report.ok(strict=True), [f.line() for f in report.findings]
    unfolded = verify_packet(out, trust=_trust(ex), workers=1, aliases={})
    assert "E_END_BOUNDARY" in {f.code for f in unfolded.failures}


def _bundle(seq: int, check: str, outcome: str, controls: list[str]) -> dict[str, Any]:
    return {
        "appliance_id": "app-1", "site_id": "site-001", "seq": seq, "host_id": "dc01",
        "finished_at": f"2026-10-0{seq}T10:00:00.000Z", "check": check, "outcome": outcome,
        "controls": controls, "ruleset_hash": None, "policy_version": "1",
    }  # fmt: skip


def test_packet_report_lists_an_alias_bundle_under_the_check(historic) -> None:
    cites = list(historic.checks["windows_firewall"].controls)
    s = Summary(OCT, aliases=historic.aliases)
    s.add(_bundle(1, "fw_profiles", "alert", cites))
    s.add(_bundle(2, "windows_firewall", "failed", cites))
    s.finish()
    assert [e["check"] for e in s.exceptions] == ["windows_firewall", "windows_firewall"]
    assert {c: sum(v.values()) for c, v in s.controls.items()} == {c: 2 for c in cites}
    bundles = [
        {**_bundle(i, check, outcome, cites), "tier": "monitor",
         "started_at": f"2026-10-0{i}T10:00:00.000Z"}
        for i, check, outcome in ((1, "fw_profiles", "alert"), (2, "windows_firewall", "failed"))
    ]  # fmt: skip
    report = build_report(
        bundles=bundles, period=OCT, month="2026-10", site_id="site-001", population=[],
        appliances=["app-1"], checkpoint_note="o\n2\nr\n\n", checkpoint_size=2,
        tool_version="0", aliases=historic.aliases,
    )  # fmt: skip
    # one episode under the current id: the old id opened it, the new id's failure is in it
    [exc] = report["exceptions"]
    assert exc["check"] == "windows_firewall" and exc["opened_by"]["seq"] == 1
    assert "fw_profiles" not in str(report)


def test_drift_report_keeps_one_row_across_the_rename(historic) -> None:
    """Drift observed under the old id, healed under the new one: one row, one episode."""

    def row(seq: int, check: str, outcome: str, tier: str = "monitor") -> dict[str, Any]:
        bundle = {"seq": seq, "host_id": "dc01", "check": check, "outcome": outcome,
                  "tier": tier, "finished_at": f"2026-10-01T10:0{seq}:00.000Z"}  # fmt: skip
        return {"seq": seq, "envelope": {"bundle": bundle}}

    evidence = [row(1, "fw_profiles", "compliant"), row(2, "fw_profiles", "alert"),
                row(3, "windows_firewall", "healed", "L1")]  # fmt: skip
    [only] = drift_rows(evidence, aliases=historic.aliases)
    assert (only.check, only.state, only.bundles, only.attempts) == (
        "windows_firewall", "compliant", 3, 1,
    )  # fmt: skip
    assert only.drift_since == "2026-10-01T10:02:00.000Z" and only.resolved_by == "L1"
    # Unfolded (a catalogue without the alias), the same evidence splits into two rows.
    assert {r.check for r in drift_rows(evidence, aliases={})} == {
        "fw_profiles",
        "windows_firewall",
    }


def test_docs_list_the_former_ids(historic) -> None:
    from osiris_core.catalog.id_scheme import id_scheme_section

    text = "\n".join(id_scheme_section(historic))
    assert "`fw_profiles` → `windows_firewall`" in text
    assert "`appliance_retired` → `appliance_decommission`" in text
    assert "lists no alias" in "\n".join(id_scheme_section(load_catalog()))
