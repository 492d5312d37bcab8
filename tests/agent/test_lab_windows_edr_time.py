"""RB-WIN-EDR-001 (third-party EDR presence, detect only) and RB-WIN-TIME-001 (clock offset from
the configured source) over the real path: the real ``render()`` output sent by the agent's
``WinrmTransport`` (real pywinrm) to the WS-Man lab server, answered by the Windows lab model
(osiris_lab/windows_edr.py, osiris_lab/windows_time.py), and judged by the baseline rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core.catalog import load_catalog, match_rules, render
from osiris_core.errors import SchemaError
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

CAT = load_catalog()
EDR = CAT.runbook("RB-WIN-EDR-001")
TIME = CAT.runbook("RB-WIN-TIME-001")


class Lab:
    """One lab host behind one WS-Man server; each call is a real pywinrm round trip."""

    def __init__(self, host: WindowsLabHost, tr: WinrmTransport) -> None:
        self.host, self.tr = host, tr

    def run(self, rb, phase: str, params: dict | None = None) -> tuple[int, dict]:
        script = render(rb, phase, rb.validate_params(params))
        r = self.tr.run_script(script, interpreter="powershell")
        return r.exit_code, json.loads(r.stdout)

    def rules(self, rb, res: dict) -> list[str]:
        hits = match_rules(CAT.rules, {"check": rb.check, "runbook_id": rb.id, **res})
        return [h.action for h in hits]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[WsmanLabServer, dict]]:
    slot: dict = {}
    with WsmanLabServer(handler=lambda script, stdin="": slot["host"].handle(script, stdin)) as s:
        yield s, slot


@pytest.fixture
def lab(server) -> Iterator[Lab]:
    srv, slot = server
    host = slot["host"] = WindowsLabHost(CAT)
    target = Target(
        host_id="dc01", kind="winrm", address="127.0.0.1", port=srv.port,
        username="Administrator", password=srv.password, lab=True, use_tls=False, auth="basic",
    )  # fmt: skip
    tr = WinrmTransport(target, backoff_s=0.01)
    try:
        yield Lab(host, tr)
    finally:
        tr.close()


# --- RB-WIN-EDR-001 ------------------------------------------------------------------------


def test_edr_default_host_is_onboarded_to_mde(lab: Lab) -> None:
    rc, res = lab.run(EDR, "detect")
    assert rc == 0 and res["status"] == "compliant"
    assert res["observed"] == {"installed": ["mde"], "running": ["mde"], "mde_onboarded": True,
                               "healthy": ["mde"]}  # fmt: skip
    assert set(res["observed"]) == set(EDR.observed_keys)
    assert lab.run(EDR, "detect", {"expected": "mde"})[1]["status"] == "compliant"
    rc, res = lab.run(EDR, "detect", {"expected": "falcon"})  # the site wants Falcon
    assert res["status"] == "drift" and lab.rules(EDR, res) == ["escalate"]


def test_edr_each_vendor_and_each_failure(lab: Lab) -> None:
    lab.host.inject("falcon_only")
    for want, status in (("any", "compliant"), ("falcon", "compliant"), ("mde", "drift"),
                         ("sentinelone", "drift")):  # fmt: skip
        assert lab.run(EDR, "detect", {"expected": want})[1]["status"] == status, want
    lab.host.inject("edr_stopped")
    rc, res = lab.run(EDR, "detect")
    assert rc == 0 and res["status"] == "drift"
    assert res["observed"]["installed"] == ["falcon"] and res["observed"]["healthy"] == []
    assert lab.rules(EDR, res) == ["escalate"]


def test_edr_sense_running_but_offboarded_is_not_protection(lab: Lab) -> None:
    lab.host.inject("mde_offboarded")
    rc, res = lab.run(EDR, "detect")
    assert res["status"] == "drift"
    assert res["observed"]["running"] == ["mde"] and res["observed"]["mde_onboarded"] is False
    assert res["observed"]["healthy"] == []
    lab.host.inject("edr_absent")
    rc, res = lab.run(EDR, "detect")
    assert res["status"] == "drift" and res["observed"]["installed"] == []
    assert lab.rules(EDR, res) == ["escalate"]


def test_edr_is_detect_only_and_its_choice_is_bounded(lab: Lab) -> None:
    assert EDR.phases == ("detect",)
    for bad in ("none", "off", "any;Stop-Service Sense", ""):
        with pytest.raises(SchemaError):
            EDR.validate_params({"expected": bad})
    # a remediate no catalogue ships is refused by the host before anything runs
    script = render(EDR, "detect").replace("phase=detect", "phase=remediate", 1)
    r = lab.tr.run_script(script, interpreter="powershell")
    assert r.exit_code == 1 and lab.host.log == []


# --- RB-WIN-TIME-001 -----------------------------------------------------------------------


def test_time_offset_drift_resync_verify(lab: Lab) -> None:
    rc, res = lab.run(TIME, "detect")
    assert rc == 0 and res["status"] == "compliant"
    assert res["observed"] == {"source": "time.clinic.example", "source_type": "NTP",
                               "reachable": True, "offset_ms": 12}  # fmt: skip
    lab.host.inject("clock_skewed")
    rc, res = lab.run(TIME, "detect")
    assert res["status"] == "drift" and res["observed"]["offset_ms"] == -90_000
    assert lab.rules(TIME, res) == ["run_runbook"]
    rc, done = lab.run(TIME, "remediate")
    assert rc == 0 and done["observed"]["changed"] is True
    rc, res = lab.run(TIME, "verify")
    assert res["status"] == "compliant" and abs(res["observed"]["offset_ms"]) <= 1000


def test_time_bound_is_tighter_only_within_reason(lab: Lab) -> None:
    assert lab.run(TIME, "detect", {"max_offset_ms": 50})[1]["status"] == "compliant"  # 12 ms
    lab.host.inject("clock_skewed")
    assert lab.run(TIME, "detect", {"max_offset_ms": 5000})[1]["status"] == "drift"
    for bad in (49, 5001, 10**9, -1):
        with pytest.raises(SchemaError):
            TIME.validate_params({"max_offset_ms": bad})


def test_time_beyond_w32time_limits_is_not_stepped_and_stays_drift(lab: Lab) -> None:
    """Windows refuses to correct a clock beyond MaxPos/NegPhaseCorrection; so does the lab, and
    the runbook never sets the clock itself: verify stays drift (the engine escalates)."""
    lab.host.inject("clock_far_off")
    rc, done = lab.run(TIME, "remediate")
    assert rc == 0
    rc, res = lab.run(TIME, "verify")
    assert res["status"] == "drift" and res["observed"]["offset_ms"] == 3 * 86_400_000


def test_time_unreachable_or_unset_source_escalates(lab: Lab) -> None:
    lab.host.inject("ntp_unreachable")
    rc, res = lab.run(TIME, "detect")
    assert res["status"] == "drift" and res["observed"]["reachable"] is False
    assert res["observed"]["offset_ms"] is None
    assert lab.rules(TIME, res) == ["escalate"]
    rc, out = lab.run(TIME, "remediate")
    assert rc == 1 and out["status"] == "error"
    lab.host.inject("ntp_unset")
    rc, res = lab.run(TIME, "detect")
    assert res["observed"]["source"] == "" and lab.rules(TIME, res) == ["escalate"]


def test_time_domain_member_measures_against_the_pdc(lab: Lab) -> None:
    lab.host.state["clock"] = {**lab.host.state.get("clock", {}), "type": "NT5DS",
                               "pdc": "PDC01.clinic.example", "ntp_server": "",
                               "reachable": True, "offset_ms": 7,
                               "max_phase_correction_s": 172800}  # fmt: skip
    rc, res = lab.run(TIME, "detect")
    assert res["observed"]["source"] == "PDC01.clinic.example" and res["status"] == "compliant"


def test_time_resync_needs_a_running_w32time(lab: Lab) -> None:
    lab.host.inject("clock_skewed")
    lab.host.inject("service_stopped:W32Time")
    rc, out = lab.run(TIME, "remediate")
    assert rc == 1 and "W32Time is not running" in out["observed"]["error"]


def test_time_scripts_read_no_w32tm_text() -> None:
    """The offset comes from an SNTP exchange and the source from the registry; w32tm is only
    asked to /resync, and only its exit code is read."""
    for phase in ("detect", "verify"):
        text = render(TIME, phase)
        assert "w32tm.exe" not in text.lower() and "UdpClient" in text
        assert "W32Time\\Parameters" in text
    fix = render(TIME, "remediate")
    assert "/resync" in fix and "$LASTEXITCODE" in fix and "/query" not in fix
