"""One set of ids across the layers (lessons A5): every runbook id, rule id and check id that the
agent, the server, the console, the docs or the tests name must be defined by
``osiris_core.catalog`` (tests alone may use the deliberately fake ids of ``DELIBERATELY_FAKE``).

The old product's detector, evidence validator, L1 rules, HIPAA map and server each spelled the
same checks differently, so bundles failed validation and rules never matched. Here the source
and docs are scanned for ids and ``ids_in_use_check`` names the ones the catalogue lacks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from osiris_core.catalog import ids_in_use_check

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("osiris_agent", "osiris_server", "osiris_tui")
TESTS = ROOT / "tests"
# This file holds the scan's own regexes and bogus-id probes (test_the_scan_fails_on_a_bogus_id).
SCAN_ITSELF = Path(__file__).resolve()

# Ids the tests use on purpose although (because) the catalogue does not define them. Allowed in
# tests/ only: the production layers and the docs get no allow-list. Anything else a test names
# must be a catalogue id; a new fake id needs a line here saying why it is fake.
DELIBERATELY_FAKE: dict[tuple[str, str], str] = {
    # Refusals: an id the catalogue lacks must be refused, skipped or reported.
    ("runbook", "RB-WIN-NOPE-001"): "a signed site rule naming an unknown runbook is refused",
    ("runbook", "LIN-SSH-009"): "a catalogue rule naming an unknown runbook fails to load",
    ("runbook", "LIN-SVC-005"): "ids_in_use_check reports an id the catalogue lacks",
    ("runbook", "LIN-SVC-999"): "Catalog.runbook raises for an unknown id",
    ("rule", "L1-NOPE-001"): "ids_in_use_check reports a rule id the catalogue lacks",
    ("check", "ssh"): "a baseline rule naming an unknown check fails to load",
    ("check", "ssh_config"): "a test rule naming an unknown check is refused",
    ("check", "made_up"): "a risk acceptance for an unknown check is refused (E_NO_CHECK)",
    ("check", "windows_bitlockr"): "a misspelt check's risk acceptance: 400 with did-you-mean",
    ("runbook", "RB-NOPE-001"): "an unknown runbook's params: 404 (server), exit 2 (osiris)",
    ("runbook", "RB-GONE-001"): "params stored for a runbook the catalogue no longer has",
    ("runbook", "RB-NEW-001"): "a newer server's runbook: the agent skips its params",
    ("runbook", "RB-TIME-001"): (
        "a run_runbook order for a non-catalogue runbook is rejected (test_orders_agent); the "
        "fake server's default policy enables only it, so no catalogue runbook is enabled unless "
        "a test says so"
    ),
    ("runbook", "RB-X-001"): "a disruptive order is deferred by the window before any lookup",
    # Test-made catalogues and site rules: ids that exist only inside the test.
    ("runbook", "LIN-TEST-001"): "a runbook written into a temp catalogue",
    ("rule", "L1-TEST-001"): "a rule written into a temp rules file",
    ("rule", "L1-SITE-FW-001"): "a site rule signed with the order key (its own id by design)",
    ("rule", "L1-SITE-OK-001"): "a second site rule in the same signed set",
    ("check", "fw_profiles"): "a former id (alias) of windows_firewall in a test catalogue",
    # Display data frozen into the console's SVG snapshots (tests/tui/__snapshots__): the console
    # shows whatever id the server sends; renaming it means re-rendering those snapshots.
    ("runbook", "RB-WIN-FW-001"): "runbook id in tests/tui/fixtures.py (snapshot data)",
}

RUNBOOK_RE = re.compile(
    r"(?<![A-Za-z0-9-])((?:RB-[A-Z]+(?:-[A-Z]+)*|LIN-[A-Z]+)-\d{3})(?![A-Za-z0-9])"
)
RULE_RE = re.compile(
    r"(?<![A-Za-z0-9-])(L1-[A-Z]+(?:-[A-Z0-9]+)*-\d{3}(?:-[A-Z0-9]+)*)(?![A-Za-z0-9-])"
)
# Check ids where code uses them as evidence/rule/check data: check="x", "check": "x",
# check_id="x", controls_for("x"), id = "x" in a Check subclass, ClassVar id.
CHECK_RES = (
    re.compile(r"""\bcheck(?:_id)?\s*[=:]\s*["']([a-z][a-z0-9_]*)["']"""),
    re.compile(r"""["']check["']\s*:\s*["']([a-z][a-z0-9_]*)["']"""),
    re.compile(r"""\bcontrols_for\(\s*["']([a-z][a-z0-9_]*)["']"""),
    re.compile(r"""\bid\s*:\s*ClassVar\[str\]\s*=\s*["']([a-z][a-z0-9_]*)["']"""),
    re.compile(r"""^[A-Z_]*CHECK\s*=\s*["']([a-z][a-z0-9_]*)["']""", re.M),
)


def sources() -> list[Path]:
    files: list[Path] = []
    for layer in LAYERS:
        files += sorted((ROOT / layer).rglob("*.py"))
    files += sorted((ROOT / "docs").glob("*.md"))
    return files


def files_of_tests() -> list[Path]:
    """Every Python file under tests/ (snapshots are SVG), except this scan's own file."""
    return [f for f in sorted(TESTS.rglob("*.py")) if f.resolve() != SCAN_ITSELF]


def ids_in(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"runbook": set(), "rule": set(), "check": set()}
    found["runbook"] |= set(RUNBOOK_RE.findall(text))
    found["rule"] |= set(RULE_RE.findall(text))
    for rx in CHECK_RES:
        found["check"] |= set(rx.findall(text))
    return found


def unknown_ids(files: list[Path]) -> list[str]:
    """``"<file>: <kind> <id>"`` for every id the catalogue does not define."""
    bad: list[str] = []
    for f in files:
        found = ids_in(f.read_text(encoding="utf-8"))
        for kind, ids in found.items():
            for i in sorted(ids_in_use_check(ids, kind)):
                bad.append(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {kind} {i}")
    return bad


def test_every_id_the_layers_use_is_in_the_catalogue() -> None:
    files = sources()
    assert len(files) > 30, "the scan found too few files to mean anything"
    seen = {"runbook": set(), "rule": set(), "check": set()}
    for f in files:
        for kind, ids in ids_in(f.read_text(encoding="utf-8")).items():
            seen[kind] |= ids
    # The scan really sees the ids the agent heals with (so an empty scan cannot pass).
    assert {"RB-WIN-FIREWALL-001", "RB-NIX-TIME-001"} <= seen["runbook"]
    # (timesync is no longer named in code: the catalogue's fact entry drives it, issue 12 item 4)
    assert {"policy", "evidence_pipeline", "linux_ssh"} <= seen["check"]
    assert unknown_ids(files) == []


def test_every_id_the_tests_use_is_in_the_catalogue_or_deliberately_fake() -> None:
    files = files_of_tests()
    assert len(files) > 100, "the scan found too few test files to mean anything"
    fake = {f"{kind} {i}" for kind, i in DELIBERATELY_FAKE}
    bad = [b for b in unknown_ids(files) if b.split(": ", 1)[1] not in fake]
    assert bad == [], "fix the id, or add it to DELIBERATELY_FAKE with the reason it is fake"


def test_the_allow_list_is_fake_and_used() -> None:
    """No entry names a catalogue id (it would hide nothing) or an id no test uses any more (a
    stale entry would quietly widen the list)."""
    used: set[tuple[str, str]] = set()
    for f in files_of_tests():
        for kind, ids in ids_in(f.read_text(encoding="utf-8")).items():
            used |= {(kind, i) for i in ids_in_use_check(ids, kind)}
    for kind, i in DELIBERATELY_FAKE:
        assert ids_in_use_check({i}, kind) == {i}, f"{kind} {i} is in the catalogue"
    assert set(DELIBERATELY_FAKE) <= used, sorted(set(DELIBERATELY_FAKE) - used)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('self.record(check="windows_firewal", outcome="alert")', "check windows_firewal"),
        ('{"check": "order", "tier": "order"}', "check order"),
        ("runbook_id = 'RB-WIN-FIREWALL-009'", "runbook RB-WIN-FIREWALL-009"),
        ("heal LIN-SSH-042 now", "runbook LIN-SSH-042"),
        ("rule L1-WIN-FIREWALL-099 fired", "rule L1-WIN-FIREWALL-099"),
        ('controls_for("av_health")', "check av_health"),
    ],
)
def test_the_scan_fails_on_a_bogus_id(tmp_path, snippet: str, expected: str) -> None:
    f = tmp_path / "layer.py"
    f.write_text(f"x = 1\n{snippet}\n")
    bad = unknown_ids([f])
    assert any(b.endswith(expected) for b in bad), bad


def test_known_ids_pass() -> None:
    text = 'check="windows_firewall" RB-WIN-FIREWALL-001 LIN-SSH-001 L1-WIN-FIREWALL-001'
    found = ids_in(text)
    assert found["runbook"] == {"RB-WIN-FIREWALL-001", "LIN-SSH-001"}
    assert found["rule"] == {"L1-WIN-FIREWALL-001"}
    assert all(not ids_in_use_check(v, k) for k, v in found.items())
