"""One check pipeline: the appliance's time-sync check is a catalogue entry the scanner judges
(``fact = "appliance.clock"``), not a Python check beside the catalogue (issue 12 item 4)."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import pytest

import osiris_core.catalog
from osiris_agent import facts, ntp
from osiris_agent.hosts.base import Target
from osiris_agent.scanner import Scanner
from osiris_core.catalog import load_catalog, load_from
from osiris_core.catalog.model import FACTS
from osiris_core.controls import controls_for
from osiris_core.errors import SchemaError

APPLIANCE = "app-1"


class Sink:
    """Collects what the scanner signs (the agent's sink signs; here we only read the fields)."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        self.bundles.append(fields)
        return f"h{len(self.bundles)}"


def _no_transport(host_id: str) -> Any:
    raise AssertionError(f"a fact is judged without reaching a host ({host_id})")


def _verdict(ok: bool, offset: int | None, answered: int, asked: int = 3) -> ntp.ClockVerdict:
    samples = [ntp.NtpSample(f"s{i}", offset or 0, 1, 2, i < answered) for i in range(asked)]
    return ntp.ClockVerdict(ok, offset, 500, samples, "sntp:s0", f"reason {ok} {offset}")


def test_no_second_pipeline_remains() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("osiris_agent.checks")
    assert not (Path(facts.__file__).parent / "checks").exists()
    # Every fact the catalogue may name has exactly one judge, and the catalogue uses it.
    assert set(facts.JUDGES) == set(FACTS)
    cat = load_catalog()
    assert {c.id: c.fact for c in cat.checks.values() if c.fact} == {"timesync": "appliance.clock"}


def test_the_scanner_does_not_also_script_a_fact_judged_check_on_the_appliance() -> None:
    cat = load_catalog()
    scanner = Scanner(cat, _no_transport, Sink())
    own = scanner.runbooks_for(Target(host_id=APPLIANCE, kind="local", address="localhost"), None)
    assert "timesync" not in own and own, "other NixOS checks are still scanned"
    assert all(rb.id != "RB-NIX-TIME-001" for rbs in own.values() for rb in rbs)
    lin = scanner.runbooks_for(Target(host_id="lin-1", kind="ssh", address="10.0.0.9"), None)
    assert lin, "other hosts keep their scripts"
    win = scanner.runbooks_for(Target(host_id="dc01", kind="winrm", address="10.0.0.5"), None)
    assert "RB-WIN-SVC-004" in {rb.id for rb in win["timesync"]}  # timesync elsewhere: scripts
    scanner.close()


@pytest.mark.parametrize(
    ("verdict", "status", "outcome"),
    [
        (_verdict(True, 3, 3), "compliant", "compliant"),
        (_verdict(False, 900, 3), "drift", "alert"),  # offset beyond max_skew_ms
        (_verdict(False, None, 1), "error", "failed"),  # too few servers answered
        (None, "error", "failed"),  # not measured: never a pass
    ],
)
def test_timesync_evidence_comes_from_the_catalogue_entry(
    verdict: ntp.ClockVerdict | None, status: str, outcome: str
) -> None:
    sink = Sink()
    scanner = Scanner(load_catalog(), _no_transport, sink)
    [(check, v, finished)] = scanner.judge_facts(APPLIANCE, {"appliance.clock": verdict})
    scanner.close()
    assert (check, v.status) == ("timesync", status)
    [b] = sink.bundles
    assert b["check"] == "timesync" and b["host_id"] == APPLIANCE and b["tier"] == "monitor"
    assert b["outcome"] == outcome and b["controls"] == list(controls_for("timesync"))
    assert b["pre_state"] == {"observed": v.observed, "expected": v.expected}
    assert b["finished_at"] == finished and "runbook_id" not in b
    if verdict is None:
        assert v.observed == {"measured": False} and v.expected == {"ntp_ok": True}
    else:
        assert v.expected == {"ntp_ok": True, "max_abs_offset_ms": 500}
        assert v.observed["servers_asked"] == 3 and b["action_taken"] == verdict.reason


def test_only_filters_and_a_crashing_judge_is_an_error_not_a_dead_cycle() -> None:
    sink = Sink()
    scanner = Scanner(load_catalog(), _no_transport, sink)
    assert scanner.judge_facts(APPLIANCE, {}, only=["patching"]) == []
    [(_, v, _)] = scanner.judge_facts(APPLIANCE, {"appliance.clock": object()})
    scanner.close()
    assert v.status == "error" and v.detail == "check crashed"
    assert sink.bundles[0]["outcome"] == "failed"


def test_the_catalogue_refuses_an_unknown_fact(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(Path(osiris_core.catalog.__file__).parent, root)
    toml = root / "checks.toml"
    toml.write_text(toml.read_text().replace('"appliance.clock"', '"appliance.mood"'))
    with pytest.raises(SchemaError, match="fact must be one of"):
        load_from(root)
