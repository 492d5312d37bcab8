"""Per-site policy parameters end to end: set through the real server's HTTP API, delivered at
the next check-in, used by the real agent's scan and L1 heal over pywinrm to the lab host, and
read back from the lab host's state. Each test changes the verdict only through a parameter."""

from __future__ import annotations

from osiris_core.evidence import bundle_hash
from tests.e2e.conftest import add_winrm, bundles, enroll_agent, seed_site, verify_receipt

NET = "RB-WIN-NET-001"
PATCH = "RB-WIN-PATCH-001"
SITE_DNS = "10.20.0.53,10.20.0.54"


def _dns(host) -> dict[str, str]:
    return {n: a["dns"] for n, a in host.state["adapters"].items() if a["up"]}


def _healed(agent, runbook_id: str) -> list[dict]:
    return [
        b
        for b in bundles(agent)
        if b["runbook_id"] == runbook_id and b["tier"] != "monitor" and b["outcome"] == "healed"
    ]


def _set(central, site_id: str, runbook_id: str, params: dict) -> dict:
    return central.api("PUT", f"/sites/{site_id}/runbooks/{runbook_id}/params", {"params": params})


def test_site_dns_servers_drive_detect_and_l1_heal(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        host.inject("dns_wrong")  # every adapter now asks 8.8.8.8
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        # No site setting: the weaker catalogue policy ("some DNS server") holds; nothing done.
        assert a.scanner.states("dc01")[NET]["status"] == "compliant"
        assert not _healed(a, NET) and (NET, "remediate") not in host.phases_run()
        assert set(_dns(host).values()) == {"8.8.8.8"}

        view = _set(central, site.id, NET, {"dns_servers": SITE_DNS})
        assert view["effective"] == {"dns_servers": SITE_DNS}
        r = a.cycle()  # check-in delivers the value, the scan sees drift, L1 heals
        assert r.reachable and a.outbox.depth() == 0, r.errors
        assert a.policy.params_for(NET) == {"dns_servers": SITE_DNS}
        healed = _healed(a, NET)
        assert len(healed) == 1, [(b["outcome"], b["action_taken"]) for b in bundles(a)]
        b = healed[0]
        assert b["tier"] == "L1" and b["host_id"] == "dc01"
        assert b["pre_state"]["status"] == "drift"
        assert set(b["pre_state"]["observed"]["adapters"].values()) == {"8.8.8.8"}
        assert b["post_state"]["status"] == "compliant"
        assert b["post_state"]["expected"] == {"dns_servers": SITE_DNS}
        # the lab host really uses exactly the site's servers, in order, on every adapter
        assert _dns(host) and set(_dns(host).values()) == {SITE_DNS}
        verify_receipt(a, central, bundle_hash(b))

        # One appliance overrides the site: the next scan judges against the appliance's value
        # (the L1 rule's 600 s cooldown keeps it from acting again within this test).
        central.api(
            "PUT", f"/appliances/{a.appliance_id}/runbooks/{NET}/params",
            {"params": {"dns_servers": "10.30.0.1"}},
        )  # fmt: skip
        a.cycle()
        assert a.policy.params_for(NET) == {"dns_servers": "10.30.0.1"}
        assert a.scanner.states("dc01")[NET]["status"] == "drift"
        res = {(x["host_id"], x["check"]): x for x in a.db.results()}
        net = res[("dc01", "windows_network")]
        assert net["status"] == "drift"
        assert net["expected"][NET] == {"dns_servers": "10.30.0.1"}, net["expected"]
    finally:
        a.close()


def test_patch_threshold_changes_the_verdict(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)  # window never opens: a patch install would only be deferred
    add_winrm(central, site, server)
    _set(central, site.id, PATCH, {"critical_overdue_days": 60})
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        host.inject("updates_overdue")  # a Critical update waiting for 45 days
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        assert a.scanner.states("dc01")[PATCH]["status"] == "compliant"  # 45 ≤ 60
        acted = [b for b in bundles(a) if b["runbook_id"] == PATCH and b["tier"] != "monitor"]
        assert acted == []

        _set(central, site.id, PATCH, {"critical_overdue_days": 15})  # the NPRM deadline
        r = a.cycle()
        assert r.reachable, r.errors
        assert a.scanner.states("dc01")[PATCH]["status"] == "drift"
        mon = [b for b in bundles(a) if b["runbook_id"] == PATCH and b["tier"] == "monitor"]
        assert mon[-1]["post_state"]["observed"]["overdue"] == 1
        assert mon[-1]["post_state"]["expected"]["critical_overdue_days"] == 15
        deferred = [
            b for b in bundles(a) if b["runbook_id"] == PATCH and b["outcome"] == "deferred"
        ]
        assert deferred and "maintenance window" in deferred[-1]["action_taken"]
        assert (PATCH, "remediate") not in host.phases_run()

        # Cleared: back to the catalogue default (30 days), still overdue at 45.
        _set(central, site.id, PATCH, {"critical_overdue_days": None})
        a.cycle()
        assert a.policy.params_for(PATCH) == {}
        assert a.scanner.states("dc01")[PATCH]["status"] == "drift"
    finally:
        a.close()


def test_agent_refuses_params_its_catalogue_rejects(central, win, tmp_path) -> None:
    """A value the agent's own catalogue rejects (version skew, a tampered server) costs only
    that value: its catalogue default applies, one incident is raised, nothing crashes."""
    from osiris_agent.cycle import check_site_params

    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        bad = {
            PATCH: {"critical_overdue_days": 0, "include_important": False},
            NET: {"dns_servers": "8.8.8.8; Remove-Item C:\\"},
            "RB-NOPE-001": {"x": 1},
        }
        accepted, refused = check_site_params(a.catalog, bad)
        assert accepted == {PATCH: {"include_important": False}}
        assert {(r["runbook_id"], r["param"]) for r in refused} == {
            (PATCH, "critical_overdue_days"), (NET, "dns_servers"), ("RB-NOPE-001", "x"),
        }  # fmt: skip
        before = len(a.db.unsent_incidents())
        a._apply_params(bad)
        a._apply_policy()
        a._apply_params(bad)  # the same refusal again: not a second incident
        mine = [i for i in a.db.unsent_incidents() if i["kind"] == "runbook_params_refused"]
        assert len(a.db.unsent_incidents()) == before + 1 and len(mine) == 1
        assert "critical_overdue_days" in mine[0]["summary"]
        assert a.policy.params_for(PATCH) == {"include_important": False}
        assert a.policy.params_for(NET) == {}
        # and the next real cycle (server sends no params) runs on catalogue defaults
        host.inject("updates_overdue")
        r = a.cycle()
        assert r.reachable, r.errors
        assert a.policy.params_for(PATCH) == {}
        assert a.scanner.states("dc01")[PATCH]["status"] == "drift"  # 45 > 30 (default)
    finally:
        a.close()
