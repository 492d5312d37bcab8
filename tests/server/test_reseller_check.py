"""Evidence ingest checks a bundle's reseller_id against its site's partner, at ingest time.

What passes: no claim (null, ``direct`` mode) on any site, and the site's own partner id. What is
refused (``E_RESELLER``, per envelope, nothing written): any other id. A refused bundle never
blocks the appliance's chain: the agent parks it as rejected (its outbox moves on, an
``evidence_rejected`` incident on the appliance side), and the next bundle is accepted across the
hole, which the server records as a ``chain_gap`` incident — the missing seq stays visible to an
auditor instead of silently disappearing or stalling the outbox.
"""

from __future__ import annotations

from typing import Any


def _partner(server, name: str) -> str:
    r = server.admin.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"]


def _post(server, a, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envelopes})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_no_claim_and_the_sites_own_partner_are_accepted(server) -> None:
    p = _partner(server, "Lakeside MSP")
    partnered = server.enroll(server.site("Partner clinic", partner_id=p)["id"])
    direct = server.enroll(server.site("MSP clinic")["id"], "appliance-2")
    res = _post(server, partnered, [
        partnered.envelope(),  # direct mode, reseller_id null: claims nothing
        partnered.envelope(deployment_mode="reseller", reseller_id=p),
        partnered.envelope(deployment_mode="direct", reseller_id=p),
    ])  # fmt: skip
    assert [r["status"] for r in res] == ["accepted"] * 3, res
    assert _post(server, direct, [direct.envelope()])[0]["status"] == "accepted"


def test_a_refused_bundle_does_not_stall_the_chain(server) -> None:
    """seq 1 names the wrong partner (e.g. a stale deployment.reseller_id): refused; seq 2, with
    the right one, is accepted across the hole and the hole is an incident; resending seq 1
    unchanged is refused again (its signed claim cannot change), never half-accepted."""
    p = _partner(server, "Lakeside MSP")
    other = _partner(server, "Former MSP")
    site = server.site("Clinic", partner_id=p)
    a = server.enroll(site["id"])
    stale = a.envelope(deployment_mode="reseller", reseller_id=other)
    fixed = a.envelope(deployment_mode="reseller", reseller_id=p)
    res = _post(server, a, [stale, fixed])
    assert [r["status"] for r in res] == ["rejected", "accepted"]
    assert res[0]["error"]["code"] == "E_RESELLER"
    inc = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()["incidents"]
    gaps = [i for i in inc if i["kind"] == "chain_gap"]
    assert len(gaps) == 1 and gaps[0]["details"] == {"seq": 2, "last_seq_before": 0}
    again = _post(server, a, [stale])
    assert again[0]["status"] == "rejected" and again[0]["error"]["code"] == "E_RESELLER"
    # A resent accepted bundle stays a duplicate whatever the claim check would say now.
    assert _post(server, a, [fixed])[0]["status"] == "duplicate"


def test_the_check_reads_the_partner_at_ingest_time(server) -> None:
    """The partner is read when the batch is ingested, not when the appliance enrolled or its
    token was checked: a site's partner as stored now is what a bundle must name."""
    p = _partner(server, "Lakeside MSP")
    site = server.site("Clinic")
    a = server.enroll(site["id"])
    claim = a.envelope(deployment_mode="reseller", reseller_id=p)
    assert _post(server, a, [claim])[0]["error"]["code"] == "E_RESELLER"
    # The API has no partner reassignment; the operator's database is the only way to change
    # it today (docs/evidence-format.md, Vocabulary, says what a reassignment must keep).
    with server.app.db.write() as w:
        w.execute("UPDATE sites SET partner_id = ? WHERE id = ?", [p, site["id"]])
    assert _post(server, a, [claim])[0]["status"] == "accepted"
