"""Every bundle names the policy it ran under (DESIGN §3.6): ``policy_version`` is the version
of the signed ``osiris.policy/1`` in force, ``ruleset_hash`` the SHA-256 of the canonical signed
rules document it names (and the agent verified and applied).

Against the REAL osiris-server (and the lab Windows host for healing evidence); the expected
values are taken from the server's own signed policy, fetched here with the appliance's token
and verified with the order key the appliance pinned.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from osiris_agent import AGENT_VERSION
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.keys import Verifier
from osiris_core.policy import verify_policy
from tests.agent.fixtures_agent import FakeCentral, make_agent
from tests.e2e.conftest import Central, add_winrm, bundles, enroll_agent, seed_site

FW = "RB-WIN-FIREWALL-001"
PATCH = "RB-WIN-PATCH-001"


def _answer(c: Central, agent: Any) -> dict[str, Any]:
    """The server's check-in answer for this appliance, asked with its own token (no
    ``policy_version``: the server then always includes the policy)."""
    token = Path(agent.cfg.agent.token_file).read_text().strip()
    body = {
        "appliance_id": agent.appliance_id,
        "agent_version": AGENT_VERSION,
        "status": agent.status_block(),
        "log_size_seen": agent.witness.size,
    }
    r = httpx.post(
        c.url + "/api/v1/checkin", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _policy(c: Central, agent: Any) -> dict[str, Any]:
    ans = _answer(c, agent)
    got = verify_policy(
        ans["policy"], Verifier.from_vkey(agent.pins["order_vkey"]),
        appliance_id=agent.appliance_id, site_id=agent.site_id, catalog=load_catalog(),
    )  # fmt: skip
    return {**got.doc, "_rules": ans["rules"]["signed"]}


def _hash(signed: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical.dumps(signed)).hexdigest()


def _since(agent: Any, seq: int) -> list[dict[str, Any]]:
    return [b for b in bundles(agent) if b["seq"] > seq]


def test_bundles_carry_ruleset_hash_and_growing_policy_version(central, tmp_path) -> None:
    site = seed_site(central)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        pol = _policy(central, a)
        want_hash = _hash(pol["_rules"])
        assert pol["ruleset_hash"] == want_hash  # the policy names the signed rules
        v1 = str(pol["version"])
        first = bundles(a)
        assert first, "a cycle records at least the appliance's own timesync bundle"
        assert {b["ruleset_hash"] for b in first} == {want_hash}
        assert {b["policy_version"] for b in first} == {v1}

        # A runbook toggle at the site: a newer signed policy in the next cycle's bundles.
        seq = a.outbox.head()[0]
        central.api("PUT", f"/sites/{site.id}/runbooks", {"runbooks": {FW: False}})
        assert a.cycle().reachable
        pol = _policy(central, a)
        v2 = str(pol["version"])
        assert int(v2) == int(v1) + 1 and FW in pol["runbooks"]["disabled"]
        after = _since(a, seq)
        assert after and {b["policy_version"] for b in after} == {v2}
        assert {b["ruleset_hash"] for b in after} == {want_hash}  # rules did not change
        assert FW not in a.policy.enabled_runbooks

        # A runbook parameter change: newer again.
        seq = a.outbox.head()[0]
        path = f"/sites/{site.id}/runbooks/{PATCH}/params"
        central.api("PUT", path, {"params": {"critical_overdue_days": 10}})
        assert a.cycle().reachable
        v3 = str(_policy(central, a)["version"])
        assert int(v3) > int(v2)
        assert {b["policy_version"] for b in _since(a, seq)} == {v3}
        assert a.policy.params_for(PATCH) == {"critical_overdue_days": 10}
        # status and the console see the policy in force
        assert a.db.get_json("policy") == {"policy_version": v3, "ruleset_hash": want_hash}
        # the agent says which version it has: the server leaves the policy out
        resp = a.checkin(a.report)
        assert resp is not None and "policy" not in resp
    finally:
        a.close()


def test_the_policy_in_force_survives_a_restart(central, tmp_path) -> None:
    site = seed_site(central)
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        central.api("PUT", f"/sites/{site.id}/runbooks/{PATCH}/params",
                    {"params": {"critical_overdue_days": 12}})  # fmt: skip
        assert a.cycle().reachable
        version = a.policy_in_force.version
    finally:
        a.close()
    central.stop()  # the server is down: the appliance restarts and still knows its policy
    try:
        from osiris_agent.config import load_config
        from osiris_agent.cycle import Agent
        from tests.agent.fixtures_agent import good_clock

        b = Agent(load_config(state / "agent.toml"), measure_clock=good_clock,
                  scan_interval_s=0, scan_self=False)  # fmt: skip
        try:
            assert b.policy_in_force is not None and b.policy_in_force.version == version
            assert b.policy.policy_version == str(version)
            assert b.policy.params_for(PATCH) == {"critical_overdue_days": 12}
            r = b.cycle()
            assert not r.reachable
            assert {x["policy_version"] for x in _since(b, 0)[-1:]} == {str(version)}
        finally:
            b.close()
    finally:
        central.start()


def test_healing_evidence_carries_the_policy(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        host.inject("firewall_off")
        r = a.cycle()
        assert r.reachable, r.errors
        pol = _policy(central, a)
        healed = [b for b in bundles(a) if b["runbook_id"] == FW and b["tier"] == "L1"]
        assert healed and healed[-1]["outcome"] == "healed"
        for b in healed:
            assert b["ruleset_hash"] == _hash(pol["_rules"]) == pol["ruleset_hash"]
            assert b["policy_version"] == str(pol["version"])
    finally:
        a.close()


def test_before_any_policy_the_catalogue_defaults_run_as_default(tmp_path) -> None:
    """Unreachable at first: catalogue defaults, baseline rules only, ``policy_version``
    ``default`` and no rule-set hash; then the fake server's signed policy takes over."""
    with FakeCentral() as srv:
        a = make_agent(srv, tmp_path / "s")
        try:
            srv.stop()
            r = a.cycle()
            assert not r.reachable
            offline = bundles(a)
            assert offline and {(b["policy_version"], b["ruleset_hash"]) for b in offline} == {
                ("default", None)
            }
            srv.start()
            seq = a.outbox.head()[0]
            assert a.cycle().reachable
            env = srv.state.policy_env
            assert env is not None
            online = _since(a, seq)
            assert online
            assert {(b["policy_version"], b["ruleset_hash"]) for b in online} == {
                (str(env["policy"]["version"]), env["policy"]["ruleset_hash"])
            }
        finally:
            a.close()
