"""Reviewer sign-off and risk acceptance end to end (issue 17 item 4): the REAL osiris-server
(a subprocess), a REAL agent enrolled with ``enroll`` and driven with ``Agent.cycle()``.

An operator's review and an admin's risk acceptance become signed orders; the appliance checks
each and signs exactly one statement bundle, which reaches the transparency log with the token's
name as author (a name in the body is refused), with a receipt the agent stores; the listing
reads the statement back from the evidence. Attacks: the same signed order replayed to the
appliance is rejected (no second statement), and an appliance of another site never receives
the order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from osiris_core import canonical
from osiris_core import evidence as ev
from osiris_core.keys import Verifier
from tests.e2e.conftest import Central, bundles, enroll_agent, seed_site, verify_receipt


def _as(c: Central, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, c.url + "/api/v1" + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _token(c: Central, role: str, name: str) -> str:
    return c.api("POST", "/tokens", {"role": role, "name": name})["token"]


def _statements(c: Central, site_id: str, check: str) -> list[dict[str, Any]]:
    return [e for e in c.evidence(site_id) if e["check"] == check]


def _appliance_verifier(c: Central, appliance_id: str) -> Verifier:
    keys = c.api("GET", "/log/keys")["appliances"]
    entry = next(k for k in keys if k["appliance_id"] == appliance_id)
    return Verifier.from_vkey(entry["signing_vkey"])


def test_review_and_acceptance_are_signed_by_the_sites_appliance(central, tmp_path) -> None:
    site = seed_site(central)
    other_site = seed_site(central)
    agent = enroll_agent(central, site, tmp_path / "a")
    other = enroll_agent(central, other_site, tmp_path / "b")
    try:
        agent.cycle()
        other.cycle()
        alice = _token(central, "operator", "Dr Alice Reviewer")
        month = datetime.now(UTC).strftime("%Y-%m")
        # the body cannot choose the reviewer
        r = _as(central, alice, "POST", f"/sites/{site.id}/reviews",
                {"month": month, "reviewer": "Somebody Else"})  # fmt: skip
        assert r.status_code == 400 and "reviewer" in r.json()["error"]["message"], r.text
        r = _as(central, alice, "POST", f"/sites/{site.id}/reviews",
                {"month": month, "note": "read the packet; two hosts late"})  # fmt: skip
        assert r.status_code == 201, r.text
        [order] = r.json()["orders"]
        assert order["appliance_id"] == agent.appliance_id

        sec = _token(central, "admin", "Security Officer")
        until = canonical.format_time(datetime.now(UTC) + timedelta(days=180))
        accept = {"host_id": agent.appliance_id, "check": "timesync", "reason": "lab clock",
                  "until": until}  # fmt: skip
        r = _as(central, sec, "POST", f"/sites/{site.id}/risk-acceptances", accept)
        assert r.status_code == 201, r.text
        [acc_order] = r.json()["orders"]

        agent.cycle()  # pulls both orders, signs one statement each, uploads them
        agent.cycle()
        other.cycle()

        [rev] = _statements(central, site.id, "activity_review")
        b = rev["envelope"]["bundle"]
        assert b["appliance_id"] == agent.appliance_id and b["order_id"] == order["order_id"]
        assert b["post_state"]["reviewer"] == "Dr Alice Reviewer"
        assert b["post_state"]["month"] == month and b["tier"] == "order"
        assert b["controls"] == ["164.308(a)(1)(ii)(D)"]
        key = _appliance_verifier(central, agent.appliance_id)  # the key the server pinned
        ev.verify_envelope(rev["envelope"], {key.key_id_hex: key})
        verify_receipt(agent, central, rev["bundle_hash"])  # in the log, proven by receipt

        [acc] = _statements(central, site.id, "risk_acceptance")
        ab = acc["envelope"]["bundle"]
        assert ab["order_id"] == acc_order["order_id"]
        assert ab["post_state"] == {**accept, "by": "Security Officer",
                                    "exception_opened_at": None}  # fmt: skip
        verify_receipt(agent, central, acc["bundle_hash"])

        listed = _as(central, alice, "GET", f"/sites/{site.id}/reviews").json()
        assert [(s["reviewer"], s["matches_order"]) for s in listed["statements"]] == [
            ("Dr Alice Reviewer", True)
        ]
        assert listed["orders"] == []
        listed = _as(central, sec, "GET", f"/sites/{site.id}/risk-acceptances").json()
        assert [s["by"] for s in listed["statements"]] == ["Security Officer"]

        # another site's appliance never got either order
        theirs = central.api("GET", f"/appliances/{other.appliance_id}/orders")["orders"]
        assert [o for o in theirs if o["kind"] == "record_attestation"] == []
        assert not [x for x in bundles(other) if x["check"] in ("activity_review",
                                                                "risk_acceptance")]  # fmt: skip

        # replaying the signed review order to the appliance signs no second statement
        from osiris_agent.cycle import CycleReport

        orders = central.api("GET", f"/appliances/{agent.appliance_id}/orders")["orders"]
        env = next(o["envelope"] for o in orders if o["id"] == order["order_id"])
        agent.order_actions.receive([env], CycleReport())
        agent.cycle()
        answers = [e["envelope"]["bundle"] for e in central.evidence(site.id)
                   if e["order_id"] == order["order_id"]]  # fmt: skip
        assert [(x["check"], x["outcome"]) for x in answers] == [
            ("activity_review", "compliant"),
            ("evidence_pipeline", "rejected"),
        ], answers
        assert "replay" in answers[1]["action_taken"], answers[1]["action_taken"]
        assert len(_statements(central, site.id, "activity_review")) == 1
    finally:
        agent.close()
        other.close()
