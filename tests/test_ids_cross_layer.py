"""One set of ids across the layers (lessons A5): every runbook id, rule id and check id that the
agent, the server, the console or the docs name must be defined by ``osiris_core.catalog``.

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
    assert {"timesync", "evidence_pipeline", "linux_ssh"} <= seen["check"]
    assert unknown_ids(files) == []


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
