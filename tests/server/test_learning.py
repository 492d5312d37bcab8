"""The learning loop on a real server over HTTP: signed L2 outcome bundles from enrolled
appliances at several sites → a candidate (k/n) → admin approval → a signed L1 rule in the canary
sites' rule sets only → the fleet after the soak → disabled when it fails after promotion.

Hostile cases: one appliance's fake successes never make a candidate; a resent bundle counts
once; an operator cannot approve (403); a pattern whose params would weaken a control, or that
names a trust-redirecting parameter, can never be approved; a signature that does not describe
its bundle is not counted."""

from __future__ import annotations

from typing import Any

from osiris_core import pattern
from osiris_core.keys import Verifier
from tests.server.conftest import Appliance, checkin_body, policy_of

RB = "LIN-ACCT-002"
CHECK = "linux_accounts"
OBSERVED = {"max_days": 99999, "users": ["alice", "bob"], "login_defs": "drift", "ok": False}


def _token(server, role: str) -> str:
    r = server.admin.post("/api/v1/tokens", json={"role": role, "name": f"{role} token"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _l2(a: Appliance, outcome: str = "healed", params: dict | None = None, **kw: Any) -> dict:
    observed = {**OBSERVED, "host": f"{a.id}.clinic.example", "at": "2026-01-02T03:04:05Z"}
    sig = pattern.signature(
        CHECK, RB, observed, kw.pop("runbook_id", RB), params or {"max_days": 60}
    )
    return a.envelope(
        check=kw.pop("check", CHECK), host_id="srv01", tier="L2", runbook_id=RB, outcome=outcome,
        action_taken="L2 plan (model lab, confidence 90): healed",
        pre_state={"observed": observed, "l2": {"accepted": True, "pattern": sig}}, **kw,
    )  # fmt: skip


def _post(server, a: Appliance, envs: list[dict]) -> list[str]:
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    return [x["status"] for x in r.json()["results"]]


def _candidates(server, status: str = "all") -> list[dict]:
    r = server.admin.get(f"/api/v1/learning/candidates?status={status}")
    assert r.status_code == 200, r.text
    return r.json()["candidates"]


def _rules(server, a: Appliance) -> tuple[list[str], dict[str, Any]]:
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a))
    assert r.status_code == 200, r.text
    resp = r.json()
    doc = policy_of(a, resp)
    from osiris_agent.healing.l1 import verify_signed_rules
    from osiris_agent.signed_policy import ruleset_hash
    from osiris_core.catalog import load_catalog

    signed = resp["rules"]["signed"]
    rules = verify_signed_rules(signed, Verifier.from_vkey(a.enroll["order_vkey"]), load_catalog())
    assert ruleset_hash(signed) == doc["ruleset_hash"]  # the policy names this very rule set
    return [r.id for r in rules], doc


def _fleet(server, n_sites: int = 3) -> list[Appliance]:
    out = []
    for i in range(n_sites):
        site = server.site(f"Clinic {i}")
        out.append(server.enroll(site["id"], hostname=f"appliance-{i}"))
    return out


def test_one_site_alone_never_makes_a_candidate(server) -> None:
    (a,) = _fleet(server, 1)
    assert _post(server, a, [_l2(a) for _ in range(12)]) == ["accepted"] * 12
    (row,) = _candidates(server)
    assert row["status"] == "observing" and row["l2"]["fraction"] == "12/12"
    assert row["l2"]["sites"] == 1 and row["approvable"] is False
    assert _candidates(server, "candidate") == []


def test_candidate_approve_canary_fleet_disable(server) -> None:
    a, b, c = _fleet(server)
    envs = [_l2(a) for _ in range(3)]
    _post(server, a, envs)
    _post(server, a, envs)  # resent: counted once
    _post(server, b, [_l2(b), _l2(b, outcome="failed")])
    (row,) = _candidates(server)
    assert row["status"] == "observing" and row["l2"]["fraction"] == "4/5"  # 80 % < 90 %
    _post(server, b, [_l2(b) for _ in range(5)])
    (row,) = _candidates(server, "candidate")
    assert row["l2"]["fraction"] == "9/10" and row["l2"]["sites"] == 2 and row["approvable"]
    cid = row["id"]
    assert cid.startswith("L1-LRN-") and row["params"] == {"max_days": 60}
    # the shape holds no identifier: no host name, time, appliance id or count
    assert row["shape"]["host"] == "<host>" and row["shape"]["at"] == "<time>"
    assert row["shape"]["max_days"] == "<num>" and a.id not in str(row)

    shown = server.admin.get(f"/api/v1/learning/candidates/{cid}").json()
    assert len(shown["evidence"]) == 10 and {e["site_id"] for e in shown["evidence"]} == {
        a.site_id, b.site_id}  # fmt: skip
    assert shown["rule"]["id"] == cid and shown["rule"]["params"] == {"max_days": 60}

    op = server.client(_token(server, "operator"))
    r = op.post(f"/api/v1/learning/candidates/{cid}/approve", json={"canary_sites": [c.site_id]})
    assert r.status_code == 403
    before, _ = _rules(server, c)
    assert cid not in before
    r = server.admin.post(
        f"/api/v1/learning/candidates/{cid}/approve",
        json={"canary_sites": [c.site_id], "soak_s": 3600},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canary" and r.json()["canary_sites"] == [c.site_id]
    ids_c, _ = _rules(server, c)
    ids_a, _ = _rules(server, a)
    assert cid in ids_c and cid not in ids_a  # canary only
    assert set(ids_c) - {cid} == set(ids_a)  # the baseline is unchanged beside it
    again = server.admin.post(f"/api/v1/learning/candidates/{cid}/approve", json={})
    assert again.status_code == 409

    def fired(x: Appliance, outcome: str) -> dict:
        return x.envelope(check=CHECK, host_id="srv01", tier="L1", runbook_id=RB,
                          outcome=outcome, action_taken=f"L1 rule {cid}: remediated")  # fmt: skip

    # in the canary, a site the rule is not in force at cannot report it failing
    _post(server, a, [fired(a, "failed") for _ in range(5)])
    assert _candidates(server, "canary")[0]["after_promotion"]["n"] == 0

    # soak over with no failure: the fleet (any process moves it at its next look)
    server.index_sql("UPDATE learning_patterns SET soak_s = 0 WHERE id = ?", [cid])
    server.app.rule_sets.invalidate()
    ids_a, _ = _rules(server, a)
    assert cid in ids_a
    assert _candidates(server, "fleet")[0]["id"] == cid

    # after promotion the rule fires (L1 bundles naming it); 2 failures in 5 > 20 %: disabled
    _post(server, a, [fired(a, "healed"), fired(a, "healed"), fired(a, "failed")])
    assert _candidates(server, "fleet")[0]["after_promotion"]["fraction"] == "2/3"
    _post(server, c, [fired(c, "healed"), fired(c, "reverted")])
    (row,) = _candidates(server, "disabled")
    assert row["after_promotion"]["fraction"] == "3/5"
    server.app.rule_sets.invalidate()
    ids_a, _ = _rules(server, a)
    assert cid not in ids_a
    actions = [
        (x["action"], x["actor"])
        for x in server.admin.get("/api/v1/audit?limit=200").json()["audit"]
        if x["target"] == cid
    ]
    by = dict(actions)
    assert sorted(by) == ["learning.approve", "learning.candidate", "learning.disable",
                          "learning.fleet"] and len(actions) == 4  # fmt: skip
    assert by["learning.candidate"] == by["learning.fleet"] == by["learning.disable"] == "server"
    assert by["learning.approve"] != "server"  # the admin who approved


def test_weakening_or_trust_params_can_never_be_approved(server) -> None:
    a, b, _ = _fleet(server)
    for x in (a, b):
        _post(server, x, [_l2(x, params={"max_days": 4000}) for _ in range(3)])
    (row,) = _candidates(server, "candidate")
    assert row["approvable"] is False and "bounds" in row["refusal"]
    r = server.admin.post(f"/api/v1/learning/candidates/{row['id']}/approve", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_REFUSED"
    assert _candidates(server, "canary") == []


def test_a_signature_that_does_not_describe_its_bundle_is_not_counted(server) -> None:
    (a,) = _fleet(server, 1)
    # the bundle ran LIN-ACCT-002 but its signature claims another runbook / check
    _post(server, a, [_l2(a, runbook_id="LIN-SSH-003"), _l2(a, check="linux_ssh")])
    _post(server, a, [a.envelope(tier="L2", outcome="healed", runbook_id=RB,
                                 pre_state={"l2": {"pattern": "not a signature"}})])  # fmt: skip
    assert _candidates(server) == []


def test_reject_needs_a_reason_and_is_audited(server) -> None:
    a, b, _ = _fleet(server)
    for x in (a, b):
        _post(server, x, [_l2(x) for _ in range(3)])
    (row,) = _candidates(server, "candidate")
    url = f"/api/v1/learning/candidates/{row['id']}/reject"
    assert server.admin.post(url, json={}).status_code == 400
    assert server.admin.post(url, json={"reason": "   "}).status_code == 400
    op = server.client(_token(server, "operator"))
    assert op.post(url, json={"reason": "no"}).status_code == 403
    r = server.admin.post(url, json={"reason": "changes password policy fleet-wide"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["reason"] == "changes password policy fleet-wide"
    approve = f"/api/v1/learning/candidates/{row['id']}/approve"
    assert server.admin.post(approve, json={}).status_code == 409
    assert server.admin.get("/api/v1/learning/candidates/L1-LRN-NOPE").status_code == 404
    assert server.admin.get("/api/v1/learning/candidates/..%2F").status_code == 404
