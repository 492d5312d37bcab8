"""The Windows lab host answers every Windows runbook from its state, and refuses other scripts.

Scripts are the real ``render()`` output; the round trips at the bottom go through the real
pywinrm client and the WS-Man lab server.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core.catalog import load_catalog, load_from, render
from osiris_core.catalog.bounds import TrustContext
from osiris_lab.ps_code import code_only
from osiris_lab.windows import FAULTS, WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.core.old_windows_scripts import OLD_PATCH_REMEDIATE

CAT = load_catalog()
# Detect-only runbooks have no remediate to round-trip: RB-WIN-EDR-001 is modelled in
# osiris_lab/windows_edr.py and tested in tests/agent/test_lab_windows_edr_time.py.
DETECT_ONLY = {"RB-WIN-EDR-001"}
WIN = sorted(
    r for r, rb in CAT.runbooks.items() if rb.platform == "windows" and r not in DETECT_ONLY
)

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
    "RB-WIN-TIME-001": ("clock_skewed", {}),
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
    assert len(WIN) == 28  # 27 + RB-WIN-TIME-001 (clock offset)
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
    # (issue 15: the values are secedit's integers now, not `net accounts` text — deliberate)
    _, res, _ = _run(host, "RB-WIN-SEC-004", "detect", {"max_password_age_days": 30})
    assert res["status"] == "drift" and res["observed"]["max_password_age_days"] == 60
    assert res["observed"]["gpo_managed"] is False
    _run(host, "RB-WIN-SEC-004", "remediate", {"max_password_age_days": 30})
    _, res, _ = _run(host, "RB-WIN-SEC-004", "verify", {"max_password_age_days": 30})
    assert res["status"] == "compliant" and res["observed"]["max_password_age_days"] == 30


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


# -- issue 15 item 3: what Windows refuses, scheduled tasks, GPO-owned policy ---------------------


def catalog_with(tmp_path: Path, rid: str, phase: str, text: str):
    """A copy of the catalogue where one phase script is ``text`` (the lab serves exactly what
    that catalogue renders, so the old or a broken script can be run against the lab)."""
    src = Path(str(resources.files("osiris_core.catalog")))
    dst = tmp_path / "catalog"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (dst / "runbooks" / rid / f"{phase}.ps1").write_text(text, encoding="utf-8")
    return load_from(dst)


def test_the_old_patch_remediate_is_refused_as_windows_refuses_it(tmp_path: Path) -> None:
    """RB-WIN-PATCH-001 before issue 15 called WUA Download()/Install() from the WinRM session:
    Windows answers E_ACCESSDENIED to a network logon, and so does the lab; nothing installs."""
    old = catalog_with(tmp_path, "RB-WIN-PATCH-001", "remediate", OLD_PATCH_REMEDIATE)
    host = WindowsLabHost(old)
    host.inject("updates_overdue")
    rb = old.runbook("RB-WIN-PATCH-001")
    rc, out, _ = host.handle(render(rb, "remediate", rb.validate_params({})))
    res = json.loads(out)
    assert rc == 1 and res["status"] == "error"
    assert "0x80070005 (E_ACCESSDENIED)" in res["observed"]["error"]
    assert "CreateUpdateDownloader" in res["observed"]["error"]
    assert any(u["kb"] == "KB5037771" for u in host.state["updates"])  # nothing installed
    assert host.state["reboot_pending"] is False


def test_patch_installs_through_a_system_task_and_reports_the_reboot() -> None:
    host = WindowsLabHost(CAT)
    host.inject("updates_overdue")
    rc, res, _ = _run(host, "RB-WIN-PATCH-001", "remediate", {"allow_reboot": False})
    assert rc == 0 and res["observed"]["changed"] is True
    action = res["observed"]["action"]
    assert "as SYSTEM" in action and "KB5037771" in action
    assert "reboot required, not performed (allow_reboot is false)" in action
    assert host.state.get("reboot_scheduled") is None  # reported, never performed
    assert host.state["scheduled_tasks"] == {}  # polled to completion, then removed
    assert _run(host, "RB-WIN-PATCH-001", "verify")[1]["status"] == "compliant"
    host.inject("updates_overdue")
    _, res, _ = _run(host, "RB-WIN-PATCH-001", "remediate", {"allow_reboot": True})
    assert res["observed"]["action"].endswith("reboot required, scheduled in 5 minutes")


def test_the_scan_outlives_the_session_in_a_system_task() -> None:
    """RB-WIN-AV-001 is fire-and-verify: the quick scan's task stays registered (as SYSTEM) after
    the script returns; the next run sweeps a finished one and refuses to stack a running one."""
    host = WindowsLabHost(CAT)
    host.inject("defender_stopped")
    rc, res, _ = _run(host, "RB-WIN-AV-001", "remediate")
    assert rc == 0 and "quick scan started as SYSTEM" in res["observed"]["action"]
    (name, task), *rest = host.state["scheduled_tasks"].items()
    assert rest == [] and name.startswith("Osiris-RB-WIN-AV-001-")
    assert task["user"] == "SYSTEM" and task["run_level"] == "Highest"
    rc, _, _ = _run(host, "RB-WIN-AV-001", "remediate")
    assert rc == 0 and name not in host.state["scheduled_tasks"]  # swept, a new one registered
    for t in host.state["scheduled_tasks"].values():
        t["state"] = "Running"
    rc, res, _ = _run(host, "RB-WIN-AV-001", "remediate")
    assert rc == 1 and "still running" in res["observed"]["error"]


@pytest.mark.parametrize(
    ("rid", "fault", "key"),
    [
        ("RB-WIN-SEC-003", "gpo_lockout_policy", "LockoutBadCount"),
        ("RB-WIN-SEC-004", "gpo_password_policy", "MinimumPasswordLength"),
    ],
)
def test_a_policy_a_domain_gpo_owns_is_refused_not_flapped(rid: str, fault: str, key: str) -> None:
    """A GPO sets the weak value: detect says drift *and* gpo_managed; remediate refuses (the
    local change would be undone at the next refresh) and changes nothing locally."""
    host = WindowsLabHost(CAT)
    host.inject(fault)
    local_before = dict(host.state["account_policy"])
    rc, res, _ = _run(host, rid, "detect")
    assert rc == 0 and res["status"] == "drift" and res["observed"]["gpo_managed"] is True
    rc, res, _ = _run(host, rid, "remediate")
    assert rc == 1 and res["status"] == "error"
    assert res["observed"]["error"].startswith("refused: a domain GPO sets " + key)
    assert "in the GPO" in res["observed"]["error"]
    assert host.state["account_policy"] == local_before


def test_secedit_scripts_never_read_net_accounts() -> None:
    for rid in ("RB-WIN-SEC-003", "RB-WIN-SEC-004"):
        rb = CAT.runbook(rid)
        for phase in rb.phases:
            body = code_only(rb.script(phase))  # comments may name it; code must not
            assert "net.exe" not in body and "net accounts" not in body
            assert "OsirisSecurityPolicy" in body


def test_windows_time_without_any_source_is_refused() -> None:
    host = WindowsLabHost(CAT)
    host.inject("w32time_unconfigured")
    assert _run(host, "RB-WIN-SVC-004", "detect")[1]["observed"]["source"] == ""
    rc, res, _ = _run(host, "RB-WIN-SVC-004", "remediate")
    assert rc == 1 and "refused: W32Time has no time source" in res["observed"]["error"]
    assert host.state["w32time"]["type"] == "NoSync"
