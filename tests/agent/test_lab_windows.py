"""The Windows lab host answers every Windows runbook from its state, and refuses other scripts.

Scripts are the real ``render()`` output; the round trips at the bottom go through the real
pywinrm client and the WS-Man lab server.
"""

from __future__ import annotations

import json

import pytest

from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core.catalog import load_catalog, render
from osiris_core.catalog.bounds import TrustContext
from osiris_lab.windows import FAULTS, WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

CAT = load_catalog()
WIN = sorted(r for r, rb in CAT.runbooks.items() if rb.platform == "windows")

# runbook -> (fault that makes it drift, params the site would set)
DRIFT = {
    "RB-WIN-AD-001": ("replication_failures", {}),
    "RB-WIN-AD-002": ("secure_channel_broken", {}),
    "RB-WIN-AV-001": ("defender_stopped", {}),
    "RB-WIN-BACKUP-001": ("backup_stale", {}),
    "RB-WIN-ENCRYPTION-001": ("bitlocker_off", {}),
    "RB-WIN-FIREWALL-001": ("firewall_off", {}),
    "RB-WIN-LOGGING-001": ("eventlog_small", {}),
    "RB-WIN-NET-001": ("dns_wrong", {"dns_servers": "10.0.0.10,10.0.0.11"}),
    "RB-WIN-NET-002": ("nic_down", {}),
    "RB-WIN-NET-003": ("public_profile", {}),
    "RB-WIN-NET-004": ("netbios_on", {}),
    "RB-WIN-PATCH-001": ("updates_overdue", {}),
    "RB-WIN-SEC-001": ("inbound_allow", {}),
    "RB-WIN-SEC-002": ("audit_policy_gone", {}),
    "RB-WIN-SEC-003": ("lockout_off", {}),
    "RB-WIN-SEC-004": ("password_policy_weak", {}),
    "RB-WIN-SEC-005": ("bitlocker_suspended", {}),
    "RB-WIN-SEC-006": ("defender_off", {}),
    "RB-WIN-STG-001": ("disk_full", {}),
    "RB-WIN-STG-002": ("shadow_copies_gone", {}),
    "RB-WIN-STG-003": ("volume_unhealthy", {}),
    "RB-WIN-SVC-001": ("service_stopped:DNS", {}),
    "RB-WIN-SVC-002": ("service_stopped:DHCPServer", {}),
    "RB-WIN-SVC-003": ("spooler_on_dc", {}),
    "RB-WIN-SVC-004": ("w32time_local", {}),
    "RB-WIN-UPD-001": ("wu_disabled", {}),
    "RB-WIN-UPD-002": ("wsus_wrong", {"wsus_server": "http://wsus.clinic.example:8530"}),
}


# The site's allow-lists for the trust-redirecting values above (only an admin edits them).
SITE_ALLOW = TrustContext(
    {
        "RB-WIN-NET-001": {"dns_servers": ("10.0.0.10", "10.0.0.11")},
        "RB-WIN-UPD-002": {"wsus_server": ("http://wsus.clinic.example:8530",)},
    }
)


# what the agent sends a remediate on stdin (RB-WIN-ENCRYPTION-001's escrow steps: the lab's
# default host is domain joined, so "protect" backs the key up to AD DS and enables)
STDIN = {"RB-WIN-ENCRYPTION-001": '{"step": "protect"}'}


def _run(host: WindowsLabHost, rid: str, phase: str, params: dict | None = None):
    rb = CAT.runbook(rid)
    script = render(rb, phase, rb.validate_params(params, SITE_ALLOW))
    rc, out, err = host.handle(script, STDIN.get(rid, "") if phase == "remediate" else "")
    return rc, (json.loads(out) if out.strip() else None), err


def test_every_windows_runbook_is_modelled() -> None:
    assert len(WIN) == 27
    assert sorted(DRIFT) == WIN


@pytest.mark.parametrize("rid", WIN)
def test_drift_remediate_verify(rid: str) -> None:
    fault, params = DRIFT[rid]
    host = WindowsLabHost(CAT)
    rc, res, _ = _run(host, rid, "detect", params)
    assert rc == 0 and res["status"] == "compliant", res
    assert set(res["observed"]) == set(CAT.runbook(rid).observed_keys)
    host.inject(fault)
    rc, res, _ = _run(host, rid, "detect", params)
    assert rc == 0 and res["status"] == "drift", res
    assert set(res["observed"]) == set(CAT.runbook(rid).observed_keys)
    rc, res, _ = _run(host, rid, "remediate", params)
    assert rc == 0 and res["status"] == "compliant" and res["observed"]["changed"] is True
    rc, res, _ = _run(host, rid, "verify", params)
    assert rc == 0 and res["status"] == "compliant", res
    assert host.phases_run() == [
        (rid, "detect"),
        (rid, "detect"),
        (rid, "remediate"),
        (rid, "verify"),
    ]


def test_bitlocker_is_never_enabled_without_an_escrow_step() -> None:
    """RB-WIN-ENCRYPTION-001's remediate run without the agent's step (or told to enable a
    protector nobody escrowed) encrypts nothing."""
    rid = "RB-WIN-ENCRYPTION-001"
    script = render(CAT.runbook(rid), "remediate")
    for stdin in ("", '{"step": "enable", "protector_id": "{00000000-0000-0000-0000-000000000000}"'
                  ', "escrow_ref": "esc_x"}', '{"step": "enable"}'):  # fmt: skip
        host = WindowsLabHost(CAT)
        host.inject("bitlocker_off")
        rc, out, _ = host.handle(script, stdin)
        assert rc == 1 and json.loads(out)["status"] == "error", stdin
        assert host.state["bitlocker"]["C:"]["volume_status"] == "FullyDecrypted"


def test_arbitrary_and_tampered_scripts_are_refused() -> None:
    host = WindowsLabHost(CAT)
    rc, out, err = host.handle("Get-Process; Remove-Item C:\\ -Recurse")
    assert rc == 1 and out == "" and "not a catalogue script" in err
    good = render(CAT.runbook("RB-WIN-FIREWALL-001"), "remediate")
    rc, _, err = host.handle(good + "Stop-Computer -Force\n")
    assert rc == 1 and "differs" in err
    forged = good.replace("sha256=", "sha256=0", 1)[:-1]
    rc, _, err = host.handle(forged)
    assert rc == 1
    assert host.log == []  # nothing ran


def test_faults_fail_and_break() -> None:
    host = WindowsLabHost(CAT)
    host.inject("firewall_off")
    host.fail_next("RB-WIN-FIREWALL-001", "remediate")
    rc, res, _ = _run(host, "RB-WIN-FIREWALL-001", "remediate")
    assert rc == 1 and res["status"] == "error" and "injected" in res["observed"]["error"]
    host.break_next("RB-WIN-FIREWALL-001")
    rc, res, _ = _run(host, "RB-WIN-FIREWALL-001", "remediate")
    assert rc == 0
    assert _run(host, "RB-WIN-FIREWALL-001", "verify")[1]["status"] == "drift"
    with pytest.raises(KeyError):
        host.inject("no_such_fault")
    assert "firewall_off" in FAULTS


def test_params_change_the_verdict() -> None:
    host = WindowsLabHost(CAT)
    # the default host has 14-char passwords; a policy asking for 14 passes, one for 8 passes
    _, res, _ = _run(host, "RB-WIN-SEC-004", "detect", {"max_password_age_days": 30})
    assert res["status"] == "drift" and res["observed"]["max_password_age_days"] == "60"
    _run(host, "RB-WIN-SEC-004", "remediate", {"max_password_age_days": 30})
    _, res, _ = _run(host, "RB-WIN-SEC-004", "verify", {"max_password_age_days": 30})
    assert res["status"] == "compliant" and res["observed"]["max_password_age_days"] == "30"


def test_round_trip_through_pywinrm() -> None:
    host = WindowsLabHost(CAT)
    with WsmanLabServer(handler=host) as server:
        target = Target(
            host_id="dc01", kind="winrm", address="127.0.0.1", port=server.port,
            username="Administrator", password=server.password, lab=True, use_tls=False,
            auth="basic",
        )  # fmt: skip
        tr = WinrmTransport(target, backoff_s=0.01)
        try:
            host.inject("firewall_off")
            rb = CAT.runbook("RB-WIN-FIREWALL-001")
            r = tr.run_script(render(rb, "detect"), interpreter="powershell")
            assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "drift"
            r = tr.run_script(render(rb, "remediate"), interpreter="powershell")
            assert r.exit_code == 0
            r = tr.run_script(render(rb, "verify"), interpreter="powershell")
            assert json.loads(r.stdout)["observed"] == {
                "domain": True,
                "private": True,
                "public": True,
            }
            r = tr.run_script("Get-Date", interpreter="powershell")
            assert r.exit_code == 1
        finally:
            tr.close()


def test_dns_without_a_site_setting_needs_a_server_on_every_adapter() -> None:
    rb = CAT.runbook("RB-WIN-NET-001")
    host = WindowsLabHost()
    rc, out, _ = host.handle(render(rb, "detect", {}), "")
    res = json.loads(out)
    assert rc == 0 and res["status"] == "compliant"
    assert res["expected"] == {"dns_servers": "any"}
    for a in host.state["adapters"].values():
        a["dns"] = ""
    rc, out, _ = host.handle(render(rb, "detect", {}), "")
    assert json.loads(out)["status"] == "drift"
