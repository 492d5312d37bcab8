"""The appliance heals a Windows host end to end: real osiris-server, real agent cycle, real
pywinrm to the lab WS-Man host. Each test changes the lab host and reads it back."""

from __future__ import annotations

from datetime import UTC, datetime

from osiris_core.evidence import bundle_hash
from tests.e2e.conftest import (
    ALL_DAYS,
    WIN_PASSWORD,
    add_winrm,
    bundles,
    enroll_agent,
    seed_site,
    verify_receipt,
)

FW = "RB-WIN-FIREWALL-001"


def _firewall_on(host) -> bool:
    return all(p["enabled"] for p in host.state["firewall"].values())


def _actions(agent, runbook_id: str) -> list[dict]:
    return [b for b in bundles(agent) if b["runbook_id"] == runbook_id and b["tier"] != "monitor"]


def test_l1_heals_firewall_with_verified_receipt(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        assert not _actions(a, FW), "a compliant host must not be 'healed'"
        host.inject("firewall_off")
        assert not _firewall_on(host)
        r = a.cycle()
        assert r.reachable and a.outbox.depth() == 0, r.errors
        healed = [b for b in _actions(a, FW) if b["outcome"] == "healed"]
        assert len(healed) == 1, [(b["outcome"], b["action_taken"]) for b in _actions(a, FW)]
        b = healed[0]
        assert b["tier"] == "L1" and b["check"] == "windows_firewall" and b["host_id"] == "dc01"
        assert b["pre_state"]["status"] == "drift"
        assert set(b["pre_state"]["observed"].values()) == {False}  # every profile disabled
        assert b["post_state"]["status"] == "compliant"
        assert set(b["post_state"]["observed"].values()) == {True}
        assert "L1 rule" in b["action_taken"]
        assert _firewall_on(host), "the lab host's firewall was not really turned back on"
        assert ("RB-WIN-FIREWALL-001", "remediate") in host.phases_run()
        verify_receipt(a, central, bundle_hash(b))
        # The server has it too, and the console's view of the results says compliant now.
        on_server = {e["bundle_hash"] for e in central.evidence(site.id)}
        assert bundle_hash(b) in on_server
        res = {(x["host_id"], x["check"]): x for x in a.db.results()}
        assert res[("dc01", "windows_firewall")]["status"] == "compliant"
        # Next cycle: detect sees it compliant, nothing more is done.
        a.cycle()
        assert len([x for x in _actions(a, FW) if x["outcome"] == "healed"]) == 1
    finally:
        a.close()
    assert WIN_PASSWORD.encode() not in (tmp_path / "state" / "state.db").read_bytes()


def test_disabled_runbook_alerts_and_changes_nothing(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    central.api("PUT", f"/sites/{site.id}/runbooks", {"runbooks": {FW: False}})
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        host.inject("firewall_off")
        r = a.cycle()
        assert r.reachable, r.errors
        acts = _actions(a, FW)
        assert [x["outcome"] for x in acts] == ["alert"], [x["action_taken"] for x in acts]
        assert "disabled for this site" in acts[0]["action_taken"]
        assert not _firewall_on(host)
        assert ("RB-WIN-FIREWALL-001", "remediate") not in host.phases_run()
        # Monitoring still reports the drift (a disabled runbook is watched, not ignored).
        mon = [x for x in bundles(a) if x["runbook_id"] == FW and x["tier"] == "monitor"]
        assert mon and mon[-1]["outcome"] == "alert"
    finally:
        a.close()


def test_window_only_runbook_outside_window_is_deferred(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)  # window never opens
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    window_only = [
        rb for rb in a.catalog.runbooks.values()
        if rb.platform == "windows" and (rb.disruptive or rb.requires_maintenance_window)
    ]  # fmt: skip
    assert any(rb.id == "RB-WIN-UPD-001" for rb in window_only) or window_only
    try:
        a.cycle()
        host.inject("updates_overdue")
        r = a.cycle()
        assert r.reachable, r.errors
        deferred = [x for x in bundles(a) if x["outcome"] == "deferred"]
        assert deferred, [
            (x["runbook_id"], x["outcome"]) for x in bundles(a) if x["tier"] != "monitor"
        ]
        ids = {x["runbook_id"] for x in deferred}
        assert ids <= {rb.id for rb in window_only}
        assert all("maintenance window" in x["action_taken"] for x in deferred)
        assert not any(p == "remediate" and r in ids for r, p in host.phases_run())
    finally:
        a.close()


def test_verify_failure_is_reverted_then_l3(central, win, tmp_path) -> None:
    """Issue 15 (deliberate change: FIREWALL-001 now has a snapshot and a rollback, so a verify
    that fails is rolled back and re-checked — reverted, never healed — and still goes to L3)."""
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        host.inject("firewall_off")
        host.break_next(FW)  # remediation claims success, changes nothing
        r = a.cycle()
        assert r.reachable, r.errors
        acts = _actions(a, FW)
        outcomes = [(x["tier"], x["outcome"]) for x in acts]
        assert ("L1", "reverted") in outcomes, outcomes
        reverted = next(x for x in acts if x["outcome"] == "reverted")
        assert reverted["post_state"]["status"] == "drift"
        assert "verify drift" in reverted["action_taken"]
        assert "state restored" in reverted["action_taken"]
        assert reverted["rollback_available"] is True
        assert [p["phase"] for p in reverted["post_state"]["phases"]][-2:] == [
            "rollback", "recheck",
        ]  # fmt: skip
        assert ("L3", "escalated") in outcomes
        incidents = central.api("GET", f"/incidents?site={site.id}")["incidents"]
        assert any(i["kind"] == "drift_unresolved" and i["host_id"] == "dc01" for i in incidents)
        assert not _firewall_on(host)
        assert len(host.snapshots[FW]) == 1  # taken before the (ineffective) change
    finally:
        a.close()


def test_operator_order_runs_through_executor(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central, {"days": ALL_DAYS, "start": "00:00", "duration_min": 1440,
                               "timezone": "UTC"})  # fmt: skip
    add_winrm(central, site, server)
    # Orders run before the cycle's scan, so the order (not L1) is what fixes this drift.
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        host.state["firewall"]["public"]["enabled"] = False  # drift between cycles
        order = central.api("POST", f"/appliances/{a.appliance_id}/orders",
                            {"kind": "run_runbook",
                             "params": {"runbook_id": FW, "host_id": "dc01"}})  # fmt: skip
        oid = order["id"]
        r = a.cycle()
        assert r.reachable, r.errors
        mine = [x for x in bundles(a) if x["order_id"] == oid]
        assert [(x["tier"], x["outcome"], x["check"]) for x in mine] == [
            ("order", "healed", "windows_firewall")
        ]
        assert _firewall_on(host)
        a.cycle()  # the flush of that cycle lands the evidence; the server marks the order
        got = central.api("GET", f"/appliances/{a.appliance_id}/orders/{oid}")
        assert got["status"] == "done", got
        assert got["result_bundle_hash"] == bundle_hash(mine[0])
    finally:
        a.close()


def test_results_and_meta_for_the_console(central, win, tmp_path) -> None:
    from osiris_tui.local import read_state

    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        host.inject("defender_stopped")
        host.fail_next("RB-WIN-AV-001", "remediate")  # so the drift outlives this cycle
        a.cycle()
        st = read_state(tmp_path / "state")
        assert st.appliance_id == a.appliance_id and st.site_id == site.id
        assert st.server_reachable is True and st.last_checkin
        assert abs(datetime.fromisoformat(st.last_checkin.replace("Z", "+00:00"))
                   - datetime.now(UTC)).total_seconds() < 60  # fmt: skip
        assert st.clock == {"ntp_ok": True, "offset_ms": 3, "source": "sntp:t"}
        res = {(r.host_id, r.check): r for r in st.results}
        av = res[("dc01", "windows_defender")]
        assert av.status == "drift" and av.observed["RB-WIN-AV-001"]["service_running"] is False
        assert res[("dc01", "windows_firewall")].status == "compliant"
        assert res[(a.appliance_id, "timesync")].status == "compliant"
    finally:
        a.close()
