"""Per-site policy parameters end to end: set through the real server's HTTP API, delivered at
the next check-in inside the signed policy, used by the real agent's scan and L1 heal over
pywinrm to the lab host, and read back from the lab host's state. Each test changes the verdict
only through a parameter. DNS servers are trust-redirecting: an admin puts them on the site's
allow-list first, and the appliance signs a ``policy_change`` bundle naming who changed them."""

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


def _allow_dns(central, site_id: str, servers: list[str]) -> None:
    central.api("PUT", f"/sites/{site_id}/allowlists/{NET}/dns_servers", {"values": servers})


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

        _allow_dns(central, site.id, ["10.20.0.53", "10.20.0.54", "10.30.0.1"])
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
        # the redirect itself is signed evidence, naming who made it, under the new policy
        (change,) = [x for x in bundles(a) if x["check"] == "policy_change"]
        assert change["runbook_id"] == NET and change["outcome"] == "alert"
        assert change["post_state"]["change"]["new"] == SITE_DNS
        assert change["post_state"]["change"]["by"].startswith("operator:")
        assert change["policy_version"] == b["policy_version"]
        verify_receipt(a, central, bundle_hash(change))

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


def test_weakening_values_never_reach_the_policy_or_the_host(central, win, tmp_path) -> None:
    """A value the catalogue's validator refuses is refused at the API (400, nothing written),
    and one that is already stored (written before its bound existed) is left out of the
    signed policy: the agent runs the catalogue default."""
    from osiris_server.db import open_database
    from osiris_server.db import runbooks as db_runbooks

    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        central.api("PUT", f"/sites/{site.id}/runbooks/{PATCH}/params",
                    {"params": {"critical_overdue_days": 365}}, ok=(400,))  # fmt: skip
        central.api("PUT", f"/sites/{site.id}/runbooks/{NET}/params",
                    {"params": {"dns_servers": "8.8.8.8"}}, ok=(400,))  # fmt: skip
        db = open_database(central.data / "osiris.db")
        try:
            with db.write() as w:  # a legacy row, as an older server would have kept it
                db_runbooks.apply_params(w, "site", site.id, PATCH,
                                         {"critical_overdue_days": 365}, "legacy")  # fmt: skip
        finally:
            db.close()
        host.inject("updates_overdue")  # a Critical update waiting for 45 days
        r = a.cycle()
        assert r.reachable, r.errors
        assert a.policy.params_for(PATCH) == {}  # not delivered: the default (30 days) holds
        assert a.scanner.states("dc01")[PATCH]["status"] == "drift"  # 45 > 30
    finally:
        a.close()
