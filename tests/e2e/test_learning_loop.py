"""The learning loop end to end (issue 16 item 5): real agents at two sites, their L2 planner
answering through a local OpenAI-compatible endpoint, a real osiris-server process.

Each agent heals a Windows firewall drift through L2 once L1 has used up its attempts; the
server counts the signed L2 bundles per pattern across sites; at 5 outcomes (all healed) from 2
sites the pattern is a candidate, shown as ``k/n``; an operator cannot approve it (403), an
admin approves it for a canary site; that site's agent receives a signed rule set with the
learned rule, records a ``policy_change`` bundle naming it and heals the next drift with it at
L1 (counted after promotion), while the other site's rule set does not have it; once the soak
is over with no failure, the other site's agent receives it too and records the same.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx

from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.e2e.conftest import WIN_PASSWORD, add_winrm, bundles, enroll_agent, seed_site
from tests.e2e.test_heal_l2_outage import ScriptedLLM

FW = "RB-WIN-FIREWALL-001"


def _heal_by_l2(a, host, base, start: int, l2_heals: int) -> int:
    """L1 fails 3 times (its remediation claims success and changes nothing), then each new
    drift goes to L2, which heals it; cycles an hour apart so no cooldown holds anything back."""
    k = start
    for _ in range(3):
        k += 1
        a.now = lambda k=k: base + timedelta(minutes=61 * k)
        host.inject("firewall_off")
        host.break_next(FW)
        assert a.cycle().reachable
    for _ in range(l2_heals):
        k += 1
        a.now = lambda k=k: base + timedelta(minutes=61 * k)
        host.inject("firewall_off")
        r = a.cycle()
        assert r.reachable, r.errors
    healed = [b for b in bundles(a) if b["tier"] == "L2" and b["outcome"] == "healed"]
    assert len(healed) == l2_heals, [b["action_taken"] for b in bundles(a) if b["tier"] == "L2"]
    return k


def _learned(a) -> list[dict]:
    return [b for b in bundles(a) if b["check"] == "policy_change"
            and "learned L1 rule" in b["action_taken"]]  # fmt: skip


def test_l2_outcomes_become_a_canary_rule_then_the_fleets(central, tmp_path) -> None:
    llm = ScriptedLLM()
    llm.answer = json.dumps(
        {"runbook_id": FW, "params": {}, "confidence": 95, "reason": "firewall profiles off"}
    )
    toml = f'[healing]\nl2_enabled = true\nl2_base_url = "{llm.url}"\nl2_model = "lab-model"\n'
    hosts = [WindowsLabHost(), WindowsLabHost()]
    servers = [WsmanLabServer(handler=h, password=WIN_PASSWORD) for h in hosts]
    agents = []
    try:
        for s in servers:
            s.__enter__()
        sites = [seed_site(central), seed_site(central)]
        for i, (site, srv) in enumerate(zip(sites, servers, strict=True)):
            add_winrm(central, site, srv)
            agents.append(enroll_agent(central, site, tmp_path / f"state{i}", toml))
        a, b = agents
        base = datetime.now(UTC)
        for x in agents:
            x.now = lambda: base
            assert x.cycle().reachable
        ka = _heal_by_l2(a, hosts[0], base, 0, 3)
        kb = _heal_by_l2(b, hosts[1], base, 0, 2)

        # the L2 bundle carries the pattern: shapes only, nothing of the clinic
        sig = next(x for x in bundles(a) if x["tier"] == "L2" and x["outcome"] == "healed")[
            "pre_state"]["l2"]["pattern"]  # fmt: skip
        assert sig["runbook_id"] == FW and sig["params"] == {} and "dc01" not in json.dumps(sig)

        (cand,) = central.api("GET", "/learning/candidates?status=candidate")["candidates"]
        assert cand["l2"]["fraction"] == "5/5" and cand["l2"]["sites"] == 2
        assert cand["runbook_id"] == FW and cand["approvable"], cand
        cid = cand["id"]
        shown = central.api("GET", f"/learning/candidates/{cid}")
        ours = {x["bundle_hash"] for x in central.evidence(sites[0].id)} | {
            x["bundle_hash"] for x in central.evidence(sites[1].id)}  # fmt: skip
        assert len(shown["evidence"]) == 5 and {e["bundle_hash"] for e in shown["evidence"]} <= ours

        op = central.api("POST", "/tokens", {"role": "operator", "name": "on call"})["token"]
        r = httpx.post(
            f"{central.url}/api/v1/learning/candidates/{cid}/approve",
            json={"canary_sites": [sites[0].id]},
            headers={"Authorization": f"Bearer {op}"}, timeout=10,
        )  # fmt: skip
        assert r.status_code == 403
        central.api("POST", f"/learning/candidates/{cid}/approve",
                    {"canary_sites": [sites[0].id], "soak_s": 3600})  # fmt: skip

        # the canary site's agent: the learned rule arrives signed, is evidence, and heals
        ka += 1
        a.now = lambda: base + timedelta(minutes=61 * ka)
        hosts[0].inject("firewall_off")
        assert a.cycle().reachable
        (added,) = _learned(a)
        assert cid in added["action_taken"] and "added to" in added["action_taken"]
        assert added["post_state"]["rule"]["runbook_id"] == FW
        fired = [x for x in bundles(a) if x["tier"] == "L1" and cid in x["action_taken"]]
        assert [x["outcome"] for x in fired] == ["healed"], [x["action_taken"] for x in fired]
        assert all(p["enabled"] for p in hosts[0].state["firewall"].values())
        row = central.api("GET", f"/learning/candidates/{cid}")
        assert row["status"] == "canary" and row["after_promotion"]["fraction"] == "1/1"

        # the other site is not in the canary: its rule set has no learned rule
        kb += 1
        b.now = lambda: base + timedelta(minutes=61 * kb)
        assert b.cycle().reachable
        assert _learned(b) == [] and cid not in {r.id for r in b.policy.rules}

        # the soak is over with no failure (time moved on: the test's back door to the index)
        db = sqlite3.connect(central.data / "osiris.db", timeout=10)
        with db:
            db.execute("UPDATE learning_patterns SET promoted_at = ? WHERE id = ?",
                       ("2020-01-01T00:00:00.000Z", cid))  # fmt: skip
            db.execute("UPDATE cache_gen SET gen = gen + 1 WHERE scope = 'learning'")
        db.close()
        time.sleep(2.2)  # the server re-reads the learning generation at most every 2 s
        kb += 1
        b.now = lambda: base + timedelta(minutes=61 * kb)
        assert b.cycle().reachable
        (added_b,) = _learned(b)
        assert cid in added_b["action_taken"] and cid in {r.id for r in b.policy.rules}
        assert central.api("GET", f"/learning/candidates/{cid}")["status"] == "fleet"
        # both sites' evidence in the server's log shows the rule reaching them
        for site in sites:
            got = [x["envelope"]["bundle"] for x in central.evidence(site.id)]
            assert [x for x in got if x["check"] == "policy_change" and cid in x["action_taken"]]
        actions = [x["action"] for x in central.api("GET", "/audit?limit=500")["audit"]
                   if x["target"] == cid]  # fmt: skip
        assert sorted(actions) == ["learning.approve", "learning.candidate", "learning.fleet"]
    finally:
        for x in agents:
            x.close()
        for s in servers:
            s.__exit__(None, None, None)
        llm.close()
