"""Windows rollbacks that prove themselves (issue 15 items 3 and 5), on the lab model.

Every Windows remediate that changes configuration saves a pre-change snapshot first and has a
rollback that restores from the newest one. The lab keeps snapshots the way the scripts do (it
saves what each ``$before.<key>`` stands for and restores only what the rollback reads), so:

* remediate → rollback → detect shows the pre-state, for each of them (lab, real render());
* through the healing engine and the real pywinrm client, a verify that fails after the change
  runs the rollback, the executor re-detects, and the outcome is ``reverted`` with the host back
  as it was — for FIREWALL-001, SEC-002, SEC-003, NET-003, SVC-003 and SVC-004 (the trusted
  parameters of NET-001/UPD-002 need a site allow-list: they are proven on the lab directly);
* a rollback that restores nothing is ``failed`` + L3, never ``reverted``;
* a rollback.ps1 that reads a key its remediate never saved, or forgets one it did, is caught;
* a GPO-owned account policy is refused and escalated (L3), never flapped;
* a snapshot is restored once, and only by the run that took it (at most 30 minutes old).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from osiris_agent.healing.engine import HealingEngine, Policy
from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.agent.test_healing_windows import CAT, SECRET, Clock, Sinks, _detect
from tests.agent.test_lab_windows import DRIFT, SITE_ALLOW, _run, catalog_with

WITH_ROLLBACK = sorted(
    rid for rid, rb in CAT.runbooks.items() if rb.platform == "windows" and "rollback" in rb.phases
)
# the configuration-changing ones issue 15 names at least (AD's two change no configuration)
MUST = {
    "RB-WIN-FIREWALL-001", "RB-WIN-LOGGING-001", "RB-WIN-NET-001", "RB-WIN-NET-003",
    "RB-WIN-NET-004", "RB-WIN-SEC-001", "RB-WIN-SEC-002", "RB-WIN-SEC-003", "RB-WIN-SEC-004",
    "RB-WIN-SEC-006", "RB-WIN-SVC-001", "RB-WIN-SVC-002", "RB-WIN-SVC-003", "RB-WIN-SVC-004",
    "RB-WIN-UPD-002",
}  # fmt: skip


def test_the_configuration_changing_runbooks_have_a_rollback() -> None:
    assert MUST <= set(WITH_ROLLBACK)
    for rid in CAT.runbooks:
        rb = CAT.runbooks[rid]
        if rb.platform == "windows" and "remediate" in rb.phases:
            assert rb.rollback_note, f"{rid}: say what rollback restores, or why there is none"


@pytest.mark.parametrize("rid", WITH_ROLLBACK)
def test_remediate_then_rollback_restores_the_pre_state(rid: str) -> None:
    fault, params = DRIFT[rid]
    host = WindowsLabHost(CAT)
    host.inject(fault)
    drifted = copy.deepcopy(host.state)
    rc, pre, _ = _run(host, rid, "detect", params)
    assert rc == 0 and pre["status"] == "drift"
    rc, res, _ = _run(host, rid, "remediate", params)
    assert rc == 0 and res["observed"]["changed"] is True
    assert _run(host, rid, "verify", params)[1]["status"] == "compliant"
    assert len(host.snapshots[rid]) == 1  # saved before the change
    rc, res, _ = _run(host, rid, "rollback", params)
    assert rc == 0 and "from the snapshot" in res["observed"]["action"], res
    _, back, _ = _run(host, rid, "detect", params)
    assert (back["status"], back["observed"]) == (pre["status"], pre["observed"])
    for key in ("firewall", "adapters", "audit", "account_policy", "wsus", "w32time"):
        assert host.state[key] == drifted[key], key


def test_a_rollback_without_a_snapshot_is_an_error() -> None:
    host = WindowsLabHost(CAT)
    rc, res, _ = _run(host, "RB-WIN-FIREWALL-001", "rollback")
    assert rc == 1 and "nothing to roll back to" in res["observed"]["error"]


@pytest.fixture()
def lab() -> Iterator[tuple[WindowsLabHost, WinrmTransport]]:
    host = WindowsLabHost(CAT)
    with WsmanLabServer(handler=host, password=SECRET) as server:
        target = Target(
            host_id="dc01", kind="winrm", address="127.0.0.1", port=server.port,
            username="Administrator", password=SECRET, lab=True, use_tls=False, auth="basic",
        )  # fmt: skip
        tr = WinrmTransport(target, backoff_s=0.01, retries=1)
        yield host, tr
        tr.close()


def _policy(rid: str) -> Policy:
    params = {rid: DRIFT[rid][1]} if DRIFT[rid][1] else {}
    return Policy.default(CAT, in_window=lambda now: True, params=params)


def _heal(host: WindowsLabHost, tr: WinrmTransport, rid: str) -> Sinks:
    sinks = Sinks()
    finding = _detect(tr, rid, DRIFT[rid][1] or None)
    assert finding.status == "drift"
    HealingEngine(CAT, lambda _h: tr, sinks, sinks, Clock()).handle(finding, _policy(rid))
    return sinks


@pytest.mark.parametrize(
    "rid",
    ["RB-WIN-FIREWALL-001", "RB-WIN-SEC-002", "RB-WIN-SEC-003", "RB-WIN-NET-003",
     "RB-WIN-SVC-003", "RB-WIN-SVC-004"],
)  # fmt: skip
def test_failed_verify_rolls_back_and_the_recheck_says_reverted(lab, rid: str) -> None:
    host, tr = lab
    host.inject(DRIFT[rid][0])
    drifted = copy.deepcopy(host.state)
    host.fail_next(rid, "verify")  # the change went in, then verify could not confirm it
    sinks = _heal(host, tr, rid)
    assert sinks.outcomes()[0] == ("reverted", "L1", rid), sinks.bundles[0]["action_taken"]
    b = sinks.bundles[0]
    assert b["rollback_available"] is True
    assert [p["phase"] for p in b["post_state"]["phases"]] == [
        "remediate", "verify", "rollback", "recheck",
    ]  # fmt: skip
    assert b["post_state"]["observed"] == b["pre_state"]["observed"]
    assert "state restored" in b["action_taken"]
    assert host.state == {**drifted, "scheduled_tasks": host.state["scheduled_tasks"]}


def test_a_rollback_that_restores_nothing_is_failed_and_escalated(lab) -> None:
    host, tr = lab
    rid = "RB-WIN-SEC-001"
    host.inject("inbound_allow")
    host.fail_next(rid, "verify")
    host.break_rollback_next(rid)  # exits 0, "restored", changes nothing
    sinks = _heal(host, tr, rid)
    assert sinks.outcomes()[0] == ("failed", "L1", rid)
    b = sinks.bundles[0]
    assert [p["phase"] for p in b["post_state"]["phases"]][-1] == "recheck"
    assert "not back in its pre-change state" in b["action_taken"]
    assert ("escalated", "L3", rid) in sinks.outcomes()
    assert host.state["firewall"]["public"]["inbound"] == "Block"  # the change stayed


MISMATCHED_ROLLBACK = """\
# RB-WIN-FIREWALL-001 rollback (wrong): reads a key its remediate never saves.
Set-StrictMode -Version 3.0
$snap = Get-OsirisSnapshot
foreach ($p in @($snap.firewall_inbound)) {
    Set-NetFirewallProfile -ErrorAction Stop -Name $p.name -DefaultInboundAction $p.inbound
}
Write-OsirisDone -Changed $true -Action 'restored'
"""

FORGETFUL_REMEDIATE = """\
# RB-WIN-NET-001 remediate (wrong): changes DNS without saving what it changes.
$want = $OsirisParams.dns_servers -split ','
foreach ($a in Get-NetAdapter | Where-Object { $_.Status -eq 'Up' }) {
    Set-DnsClientServerAddress -ErrorAction Stop -InterfaceIndex $a.ifIndex -ServerAddresses $want
}
Write-OsirisDone -Changed $true -Action 'DNS servers set'
"""


def test_a_rollback_that_does_not_match_its_remediate_is_caught(tmp_path: Path) -> None:
    """The lab restores what the rollback reads from what the remediate saved: a rollback reading
    a key never saved fails (strict mode), and a remediate that saves nothing leaves the rollback
    nothing to restore — neither can pass for a rollback."""
    cat = catalog_with(tmp_path / "a", "RB-WIN-FIREWALL-001", "rollback", MISMATCHED_ROLLBACK)
    host = WindowsLabHost(cat)
    host.inject("firewall_off")
    rb = cat.runbook("RB-WIN-FIREWALL-001")
    from osiris_core.catalog import render

    assert host.handle(render(rb, "remediate"))[0] == 0
    rc, out, _ = host.handle(render(rb, "rollback"))
    assert rc == 1 and "'firewall_inbound' cannot be found" in out
    assert host.state["firewall"]["public"]["enabled"] is True  # not restored

    cat = catalog_with(tmp_path / "b", "RB-WIN-NET-001", "remediate", FORGETFUL_REMEDIATE)
    host = WindowsLabHost(cat)
    host.inject("dns_wrong")
    rb = cat.runbook("RB-WIN-NET-001")
    values = rb.validate_params(DRIFT["RB-WIN-NET-001"][1], SITE_ALLOW)
    assert host.handle(render(rb, "remediate", values))[0] == 0
    rc, out, _ = host.handle(render(rb, "rollback", values))
    assert rc == 1 and "nothing to roll back to" in out


@pytest.mark.parametrize(
    ("rid", "fault"),
    [("RB-WIN-SEC-003", "gpo_lockout_policy"), ("RB-WIN-SEC-004", "gpo_password_policy")],
)
def test_a_gpo_owned_policy_escalates_to_l3_and_nothing_changes(lab, rid: str, fault: str):
    host, tr = lab
    host.inject(fault)
    local = dict(host.state["account_policy"])
    sinks = _heal(host, tr, rid)
    first = sinks.bundles[0]
    # remediate refused: no verify, no rollback (nothing changed, so nothing is "reverted");
    # the re-check proves the host as it was: failed, never healed, and a person is told (L3)
    assert first["outcome"] == "failed"
    assert "remediate refused (script: refused: a domain GPO sets" in first["action_taken"]
    assert "in the GPO" in first["action_taken"]
    assert "nothing was changed (re-checked)" in first["action_taken"]
    assert [p["phase"] for p in first["post_state"]["phases"]] == ["remediate", "recheck"]
    assert first["post_state"]["observed"]["gpo_managed"] is True
    assert ("escalated", "L3", rid) in sinks.outcomes()
    assert host.state["account_policy"] == local
    assert (rid, "verify") not in host.phases_run()
    assert (rid, "rollback") not in host.phases_run()


def test_a_snapshot_is_restored_once_and_only_by_its_own_run() -> None:
    """A snapshot is used once (renamed *.restored), and one older than 30 minutes is not this
    run's: a remediate that failed before it saved one never makes the rollback write back an
    old state."""
    rid = "RB-WIN-SEC-003"
    host = WindowsLabHost(CAT)
    now = [1000.0]
    host.clock = lambda: now[0]
    host.inject("lockout_off")
    assert _run(host, rid, "remediate")[0] == 0
    assert _run(host, rid, "rollback")[0] == 0
    assert host.state["account_policy"]["LockoutBadCount"] == 0
    rc, res, _ = _run(host, rid, "rollback")  # the same snapshot, a second time
    assert rc == 1 and "nothing to roll back to" in res["observed"]["error"]
    assert _run(host, rid, "remediate")[0] == 0  # a month ago: threshold 0 -> 5
    now[0] += 31 * 60
    host.fail_next(rid, "remediate")  # today's remediate fails before it saves anything
    assert _run(host, rid, "remediate")[0] == 1
    rc, res, _ = _run(host, rid, "rollback")
    assert rc == 1 and "taken before this run; nothing restored" in res["observed"]["error"]
    assert host.state["account_policy"]["LockoutBadCount"] == 5  # the old 0 is not written back


def test_the_lib_uses_a_snapshot_once_and_only_when_fresh() -> None:
    from importlib import resources

    lib = resources.files("osiris_core.catalog").joinpath("lib", "osiris.ps1").read_text("utf-8")
    body = lib[lib.index("function Get-OsirisSnapshot") :]
    body = body[: body.index("\n}\n")]
    assert "[int]$MaxAgeMinutes = 30" in body
    assert "-gt $MaxAgeMinutes) { throw" in body
    assert '-NewName "$($newest.Name).restored" -ErrorAction Stop' in body
    assert body.index("Rename-Item") < body.index("return $doc.data")
