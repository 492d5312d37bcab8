"""The HIPAA control list, and the check -> controls map read from the one catalogue.

The map is stored once (``controls = [...]`` in checks.toml); these tests pin what it says and
that ``controls_for`` answers from it, so there is no second copy to keep equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from osiris_core import controls
from osiris_core.catalog import load_catalog
from osiris_core.controls import CONTROLS, Control, check_controls, controls_for
from osiris_core.errors import OsirisError, SchemaError

# The check ids the catalogue (osiris_core/catalog) uses; one set of ids everywhere.
CATALOGUE_CHECK_IDS = {
    "timesync",
    "patching",
    "av_edr",
    "backup",
    "logging",
    "firewall",
    "encryption",
    "accounts",
    "nixos_generation",
    "windows_defender",
    "windows_firewall",
    "windows_password_policy",
    "windows_bitlocker",
    "windows_audit_policy",
    "windows_updates",
    "windows_services",
    "linux_ssh",
    "linux_firewall",
    "linux_patching",
    "linux_audit",
    "linux_accounts",
    "linux_timesync",
    "linux_logging",
    "linux_permissions",
    "evidence_pipeline",
    "disk_space",
    "windows_network",
    "appliance_decommission",
    "policy",
    "policy_change",
    "activity_review",
    "risk_acceptance",
    "egress_allowlist",
}

CITATION_RE = re.compile(r"^164\.(308|310|312|316)(\([0-9a-zA-Z]+\))+$")


def test_every_catalogue_check_is_mapped_and_nothing_else() -> None:
    assert set(check_controls()) == CATALOGUE_CHECK_IDS


def test_controls_for_answers_from_the_catalogue() -> None:
    checks = load_catalog().checks
    assert set(check_controls()) == set(checks)
    for cid, chk in checks.items():
        assert controls_for(cid) == chk.controls == check_controls()[cid], cid


@pytest.mark.parametrize("check_id", sorted(CATALOGUE_CHECK_IDS))
def test_every_mapped_citation_exists(check_id: str) -> None:
    cites = controls_for(check_id)
    assert cites, f"{check_id} maps to no control"
    assert len(set(cites)) == len(cites), f"{check_id} lists a citation twice"
    for c in cites:
        assert c in CONTROLS, f"{check_id} cites {c}, which CONTROLS does not define"


def test_controls_are_well_formed() -> None:
    for key, control in CONTROLS.items():
        assert isinstance(control, Control)
        assert key == control.citation
        assert CITATION_RE.match(key), key
        assert control.title and control.title == control.title.strip()
        assert isinstance(control.required, bool)


# (citation, required) as labelled R / A in reference/hipaa.md.
KNOWN_FLAGS = [
    ("164.308(a)(1)(ii)(D)", True),
    ("164.312(b)", True),
    ("164.312(c)(2)", False),
    ("164.316(b)(2)(i)", True),
    ("164.308(a)(7)(ii)(A)", True),
    ("164.308(a)(7)(ii)(B)", True),
    ("164.308(a)(7)(ii)(C)", True),
    ("164.308(a)(7)(ii)(D)", False),
    ("164.308(a)(7)(ii)(E)", False),
    ("164.312(a)(2)(iv)", False),
    ("164.312(e)(2)(i)", False),
    ("164.312(e)(2)(ii)", False),
    ("164.308(a)(5)(ii)(B)", False),
    ("164.308(a)(5)(ii)(C)", False),
    ("164.308(a)(5)(ii)(D)", False),
    ("164.312(a)(2)(i)", True),
    ("164.312(a)(2)(iii)", False),
    ("164.312(d)", True),
]


@pytest.mark.parametrize(("citation", "required"), KNOWN_FLAGS)
def test_required_flags_match_the_rule(citation: str, required: bool) -> None:
    assert CONTROLS[citation].required is required


def test_every_citation_named_in_hipaa_reference_is_defined() -> None:
    # All 308/310/312/316 citations that reference/hipaa.md names, written out in full.
    named = [
        "164.308(a)(1)(ii)(A)",
        "164.308(a)(1)(ii)(B)",
        "164.308(a)(1)(ii)(D)",
        "164.308(a)(2)",
        "164.308(a)(3)(ii)(C)",
        "164.308(a)(4)",
        "164.308(a)(5)(ii)(B)",
        "164.308(a)(5)(ii)(C)",
        "164.308(a)(5)(ii)(D)",
        "164.308(a)(6)(ii)",
        "164.308(a)(7)(ii)(A)",
        "164.308(a)(7)(ii)(B)",
        "164.308(a)(7)(ii)(C)",
        "164.308(a)(7)(ii)(D)",
        "164.308(a)(7)(ii)(E)",
        "164.308(a)(8)",
        "164.310(d)(2)(iv)",
        "164.312(a)(1)",
        "164.312(a)(2)(i)",
        "164.312(a)(2)(iii)",
        "164.312(a)(2)(iv)",
        "164.312(b)",
        "164.312(c)(1)",
        "164.312(c)(2)",
        "164.312(d)",
        "164.312(e)(1)",
        "164.312(e)(2)(i)",
        "164.312(e)(2)(ii)",
        "164.316(a)",
        "164.316(b)(1)(ii)",
        "164.316(b)(2)(i)",
    ]
    missing = [c for c in named if c not in CONTROLS]
    assert not missing


def test_reference_table_mappings_are_kept() -> None:
    # The check -> citation table of reference/hipaa.md, for the generic checks.
    assert set(controls_for("backup")) >= {
        "164.308(a)(7)(ii)(A)",
        "164.308(a)(7)(ii)(B)",
        "164.308(a)(7)(ii)(D)",
        "164.310(d)(2)(iv)",
        "164.312(c)(1)",
    }
    assert "164.312(b)" in controls_for("logging")
    assert "164.312(b)" in controls_for("timesync")
    assert "164.308(a)(5)(ii)(B)" in controls_for("av_edr")
    assert "164.312(a)(2)(iv)" in controls_for("encryption")
    assert "164.316(b)(2)(i)" in controls_for("evidence_pipeline")


def test_os_variants_share_their_generic_checks_controls() -> None:
    pairs = [
        ("windows_updates", "patching"),
        ("linux_patching", "patching"),
        ("windows_defender", "av_edr"),
        ("windows_firewall", "firewall"),
        ("linux_firewall", "firewall"),
        ("linux_timesync", "timesync"),
        ("linux_logging", "logging"),
    ]
    for variant, generic in pairs:
        assert controls_for(variant) == controls_for(generic), variant
    # linux_accounts observes other things than accounts (UID 0 and password ageing vs lockout
    # and the directory), so each cites what it observes; both stay within access control.
    assert "164.312(a)(1)" in controls_for("linux_accounts")
    assert "164.312(a)(1)" in controls_for("accounts")


# Citations an issue-17 audit found over-claimed, and what a check must OBSERVE to cite them:
# a detect script of the check must read one of these settings (case-insensitive substrings).
NEEDS_OBSERVATION = {
    # Automatic logoff: the screen-lock / idle-logoff setting itself.
    "164.312(a)(2)(iii)": (
        "screensavetimeout",
        "inactivitytimeoutsecs",
        "tmout",
        "idle-delay",
        "lock-delay",
        "idle_logoff",
        "screen_lock",
    ),
    # Termination procedures: accounts of departed / disabled / stale users.
    "164.308(a)(3)(ii)(C)": (
        "lastlogon",
        "stale_accounts",
        "disabled_accounts",
        "accountexpires",
        "departed",
    ),
    # Risk analysis: an assessment of threats and vulnerabilities to ePHI, not a patch scan.
    "164.308(a)(1)(ii)(A)": ("risk_analysis", "risk_assessment", "threat_model"),
}


def _detect_text(check_id: str) -> str:
    cat = load_catalog()
    out = []
    for rb in cat.runbooks.values():
        if rb.check == check_id:
            for f in sorted(rb.directory.iterdir(), key=lambda f: f.name):
                if f.name.startswith("detect"):
                    out.append(f.read_text("utf-8"))
    return "\n".join(out).lower()


@pytest.mark.parametrize("citation", sorted(NEEDS_OBSERVATION))
def test_over_claimed_citations_need_what_they_need(citation: str) -> None:
    for cid, cites in check_controls().items():
        if citation in cites:
            text = _detect_text(cid)
            needed = NEEDS_OBSERVATION[citation]
            assert any(n in text for n in needed), (
                f"{cid} cites {citation} but no detect script of it reads any of {needed}"
            )


def test_patching_and_lockout_no_longer_claim_what_they_do_not_show() -> None:
    # The issue-17 report: "Automatic logoff", "Termination procedures" and "Risk analysis"
    # were shown as evidenced by lockout and patch checks.
    for cid in ("patching", "windows_updates", "linux_patching"):
        assert "164.308(a)(1)(ii)(A)" not in controls_for(cid), cid
    for cid in ("accounts", "linux_accounts"):
        assert "164.312(a)(2)(iii)" not in controls_for(cid), cid
        assert "164.308(a)(3)(ii)(C)" not in controls_for(cid), cid


def test_every_mapping_carries_its_reason_in_the_catalogue() -> None:
    # Each citation of a multi-line controls list has a `# reason` beside it.
    text = (Path(controls.__file__).parent / "catalog" / "checks.toml").read_text("utf-8")
    for line in text.splitlines():
        s = line.strip()
        if s.startswith('"164.'):
            assert "  # " in s and len(s.split("  # ", 1)[1]) > 10, line


@pytest.mark.parametrize("bad", ["", "ntp_sync", "PATCHING", "patching ", "firewall_baseline"])
def test_unknown_check_raises_schema_error(bad: str) -> None:
    with pytest.raises(SchemaError) as info:
        controls_for(bad)
    assert info.value.code == "E_SCHEMA"
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, OsirisError)
    assert bad in str(info.value) or repr(bad) in str(info.value)


def test_unhashable_check_id_is_a_schema_error_not_a_type_error() -> None:
    with pytest.raises(controls.UnknownCheckError):
        controls_for(["patching"])  # type: ignore[arg-type]
