"""A hostile appliance cannot sign evidence into another partner's name.

A bundle's ``reseller_id`` is inside the appliance's signature, so an auditor (and the partner's
own SIEM, which receives it) believes it. The server checks it at ingest against the site's
partner (osiris_core.partner): a claim naming another partner, or any partner on a site that has
none, is refused with ``E_RESELLER`` and nothing is written (no log leaf, no index row, no
receipt). And the bundles a partner can read are only those of its own sites.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db import evidence as db_evidence


def _partner(server, name: str) -> tuple[str, Any]:
    p = server.admin.post("/api/v1/partners", json={"name": name})
    assert p.status_code == 201, p.text
    body = p.json()
    return body["partner"]["id"], server.client(api_key=body["api_key"])


def _post(server, a, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envelopes})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_claiming_another_partner_is_refused_and_nothing_is_written(server) -> None:
    p1, c1 = _partner(server, "Lakeside MSP")
    p2, c2 = _partner(server, "Rival MSP")
    s1 = server.site("Lakeside clinic", partner_id=p1)
    s2 = server.site("Rival clinic", partner_id=p2)
    hostile = server.enroll(s1["id"])
    before = server.app.log.size()
    forged = [
        hostile.envelope(deployment_mode="reseller", reseller_id=p2),  # the rival's name
        hostile.envelope(deployment_mode="direct", reseller_id=p2),  # same claim, direct mode
    ]
    res = _post(server, hostile, forged)
    assert [r["status"] for r in res] == ["rejected", "rejected"]
    assert {r["error"]["code"] for r in res} == {"E_RESELLER"}
    assert all(r["index"] is None and r["receipt"] is None for r in res)
    assert all(p1 not in r["error"]["message"] for r in res)  # never names the site's partner
    assert server.app.log.size() == before
    assert db_evidence.by_seq(server.app.db, hostile.id, 1) is None
    for r in res:
        assert db_evidence.by_hash(server.app.db, r["bundle_hash"]) is None
        assert c2.get(f"/api/v1/evidence/{r['bundle_hash']}").status_code == 404
    assert c2.get("/api/v1/evidence", params={"site": s2["id"]}).json()["evidence"] == []

    # Its own partner's name (or none) goes in, and only that partner can read it.
    own = _post(server, hostile, [hostile.envelope(deployment_mode="reseller", reseller_id=p1)])
    assert own[0]["status"] == "accepted", own
    bh = own[0]["bundle_hash"]
    assert c1.get(f"/api/v1/evidence/{bh}").status_code == 200
    listed = c1.get("/api/v1/evidence", params={"site": s1["id"]}).json()["evidence"]
    assert [e["bundle_hash"] for e in listed] == [bh]
    assert c2.get(f"/api/v1/evidence/{bh}").status_code == 404
    assert c2.get("/api/v1/evidence", params={"site": s1["id"]}).status_code == 404


def test_a_partner_claim_on_a_site_without_partner_is_refused(server) -> None:
    p1, _ = _partner(server, "Lakeside MSP")
    msp_only = server.site("MSP's own clinic")
    a = server.enroll(msp_only["id"])
    before = server.app.log.size()
    res = _post(server, a, [a.envelope(deployment_mode="reseller", reseller_id=p1)])
    assert res[0]["error"]["code"] == "E_RESELLER"
    assert "no partner" in res[0]["error"]["message"]
    assert server.app.log.size() == before
