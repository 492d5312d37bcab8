"""The reviewer sign-off and risk-acceptance routes (issue 17 item 4) on a real server over
loopback: the author is the calling token's name (a body naming one is refused), the time is
the server's, bad statements are refused with a clear 400 and change nothing, role and tenant
rules hold, only the site's own appliances get the signed order, every post is audited, and the
listing tells a statement an appliance signed for a server order from one it made up.
(The end-to-end path through a real agent is tests/e2e/test_attestations.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from osiris_core import canonical
from osiris_core.orders import MemoryReplayGuard, check_order
from tests.server.conftest import Server

NOW = datetime.now(UTC)
MONTH = NOW.strftime("%Y-%m")
UNTIL = canonical.format_time(NOW + timedelta(days=90))


def _token(server: Server, role: str, name: str, site_id: str | None = None) -> str:
    body = {"role": role, "name": name, **({"site_id": site_id} if site_id else {})}
    r = server.admin.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _site_with_host(server: Server, name: str = "Clinic") -> tuple[dict, object]:
    site = server.site(name)
    a = server.enroll(site["id"], hostname=f"app-{name.lower().replace(' ', '-')}")
    cred = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5", "username": "u",
            "password": "pw"}  # fmt: skip
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=cred)
    assert r.status_code == 201, r.text
    return site, a


def _orders(server: Server) -> list[dict]:
    return server.app.db.query("SELECT id, appliance_id, site_id, kind FROM orders")


def _actions(server: Server) -> list[str]:
    return [x["action"] for x in server.admin.get("/api/v1/audit").json()["audit"]]


def test_review_names_the_token_and_signs_one_order_per_site_appliance(server: Server) -> None:
    site, a = _site_with_host(server)
    other_site, other = _site_with_host(server, "Other clinic")
    alice = server.client(_token(server, "operator", "Alice Reviewer"))
    body = {"month": MONTH, "note": "read it\nall fine", "packet_sha256": "a" * 64}
    r = alice.post(f"/api/v1/sites/{site['id']}/reviews", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert [o["appliance_id"] for o in out["orders"]] == [a.id]
    st = out["statement"]
    assert st["reviewer"] == "Alice Reviewer" and st["month"] == MONTH
    assert abs(canonical.parse_time(st["reviewed_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    rows = _orders(server)
    assert [(o["appliance_id"], o["site_id"], o["kind"]) for o in rows] == [
        (a.id, site["id"], "record_attestation")
    ]  # the other site's appliance never gets it
    assert all(o["appliance_id"] != other.id for o in rows) and other_site["id"] != site["id"]
    env = server.admin.get(f"/api/v1/appliances/{a.id}/orders").json()["orders"][0]["envelope"]
    verdict = check_order(env, server.app.order_signer.verifier(), datetime.now(UTC),
                          MemoryReplayGuard(), a.id)  # fmt: skip
    assert verdict.status == "accepted", verdict.reason  # signed by the order key, for a
    assert verdict.order is not None  # this appliance, fresh
    assert verdict.order["params"] == {"kind": "activity_review", **st}
    assert "review.create" in _actions(server)
    listed = alice.get(f"/api/v1/sites/{site['id']}/reviews").json()
    assert listed["statements"] == [] and [o["status"] for o in listed["orders"]] == ["pending"]
    assert listed["orders"][0]["params"]["reviewer"] == "Alice Reviewer"


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"month": MONTH, "reviewer": "Someone Else"}, "E_SCHEMA", "reviewer"),
        ({"month": MONTH, "reviewed_at": "2020-01-01T00:00:00.000Z"}, "E_SCHEMA", "reviewed_at"),
        ({"month": (NOW + timedelta(days=40)).strftime("%Y-%m")}, "E_INPUT", "future"),
        ({"month": "2026-13"}, "E_SCHEMA", "month"),
        ({"month": MONTH, "note": "ok \x1b[2J\x1b[H all clear"}, "E_INPUT", "U+001B"),
        ({"month": MONTH, "note": "reviewed \u202egnirts"}, "E_INPUT", "U+202E"),
        ({"month": MONTH, "note": "x" * 2001}, "E_SCHEMA", "note"),
    ],
)
def test_bad_reviews_are_refused_and_change_nothing(server: Server, body, code, needle) -> None:
    site, _a = _site_with_host(server)
    r = server.admin.post(f"/api/v1/sites/{site['id']}/reviews", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code and needle in err["message"], err
    assert _orders(server) == [] and "review.create" not in _actions(server)


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"by": "Someone Else"}, "E_SCHEMA", "by"),
        ({"until": canonical.format_time(NOW + timedelta(days=367))}, "E_INPUT", "one year"),
        ({"until": canonical.format_time(NOW - timedelta(hours=1))}, "E_INPUT", "future"),
        ({"host_id": "ghost01"}, "E_NO_HOST", "ghost01"),
        ({"check": "windows_bitlockr"}, "E_NO_CHECK", "windows_bitlocker"),
        ({"check": "made_up"}, "E_NO_CHECK", "made_up"),
        ({"reason": "vendor\x1b]0;pwned\x07"}, "E_INPUT", "U+001B"),
        ({"reason": ""}, "E_SCHEMA", "reason"),
        ({"exception_opened_at": canonical.format_time(NOW + timedelta(days=2))}, "E_INPUT",
         "future"),
    ],
)  # fmt: skip
def test_bad_acceptances_are_refused_and_change_nothing(server: Server, change, code, needle):
    site, _a = _site_with_host(server)
    body = {"host_id": "dc01", "check": "windows_bitlocker", "reason": "vendor-locked PC",
            "until": UNTIL, **change}  # fmt: skip
    r = server.admin.post(f"/api/v1/sites/{site['id']}/risk-acceptances", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code and needle in err["message"], err
    assert _orders(server) == [] and "risk_acceptance.create" not in _actions(server)


def test_acceptance_by_admin_names_the_admin_token(server: Server) -> None:
    site, a = _site_with_host(server)
    sec = server.client(_token(server, "admin", "Security Officer"))
    body = {"host_id": "dc01", "check": "windows_bitlocker", "reason": "vendor-locked PC",
            "until": UNTIL}  # fmt: skip
    r = sec.post(f"/api/v1/sites/{site['id']}/risk-acceptances", json=body)
    assert r.status_code == 201, r.text
    st = r.json()["statement"]
    assert st == {**body, "by": "Security Officer", "exception_opened_at": None}
    assert [o["appliance_id"] for o in r.json()["orders"]] == [a.id]
    # the appliance itself is a host of the site too (its own checks)
    r = sec.post(f"/api/v1/sites/{site['id']}/risk-acceptances",
                 json={**body, "host_id": a.id, "check": "timesync"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert _actions(server).count("risk_acceptance.create") == 2
    listed = sec.get(f"/api/v1/sites/{site['id']}/risk-acceptances").json()
    assert len(listed["orders"]) == 2 and listed["statements"] == []


def test_roles_and_tenants(server: Server) -> None:
    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = server.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    c1 = server.client(api_key=p1["api_key"])
    c2 = server.client(api_key=p2["api_key"])
    s1 = c1.post("/api/v1/sites", json={"name": "P1 clinic"}).json()
    server.enroll(s1["id"])
    review = {"month": MONTH}
    accept = {"host_id": "dc01", "check": "windows_bitlocker", "reason": "r", "until": UNTIL}
    client_tok = server.client(_token(server, "client", "Clinic Viewer", s1["id"]))
    auditor = server.client(_token(server, "auditor", "Outside Auditor"))
    operator = server.client(_token(server, "operator", "Op"))
    for who in (client_tok, auditor):
        for path, body in (("reviews", review), ("risk-acceptances", accept)):
            r = who.post(f"/api/v1/sites/{s1['id']}/{path}", json=body)
            assert r.status_code == 403, r.text
        assert who.get(f"/api/v1/sites/{s1['id']}/reviews").status_code == 200  # may read
    # another partner's site: exactly like a site that does not exist
    r = c2.post(f"/api/v1/sites/{s1['id']}/reviews", json=review)
    assert r.status_code == 404, r.text
    assert r.json() == c2.post("/api/v1/sites/no-such-site/reviews", json=review).json()
    assert c2.get(f"/api/v1/sites/{s1['id']}/reviews").status_code == 404
    # accepting a risk is an admin's decision: not an operator's, not a partner key's
    for who in (operator, c1):
        r = who.post(f"/api/v1/sites/{s1['id']}/risk-acceptances", json=accept)
        assert r.status_code == 403, r.text
    assert _orders(server) == []
    r = c1.post(f"/api/v1/sites/{s1['id']}/reviews", json=review)  # its own site
    assert r.status_code == 201, r.text
    assert r.json()["statement"]["reviewer"] == "P1 API key"  # the key's name
    assert len(_orders(server)) == 1


def test_a_site_without_an_active_appliance_gets_a_clear_409(server: Server) -> None:
    site = server.site("Empty")
    r = server.admin.post(f"/api/v1/sites/{site['id']}/reviews", json={"month": MONTH})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_NO_APPLIANCE", r.text
    assert _orders(server) == []


def _post(server: Server, a, envs) -> None:
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * len(envs), r.text


def test_listing_tells_a_made_up_statement_from_an_ordered_one(server: Server) -> None:
    """A hostile appliance can sign any bundle; it cannot make the server have ordered it. A
    statement that answers a server order exactly shows matches_order true; one naming no
    order, or saying something else than the order said, shows false."""
    site, a = _site_with_host(server)
    r = server.client(_token(server, "operator", "Alice")).post(
        f"/api/v1/sites/{site['id']}/reviews",
        json={"month": MONTH, "note": "ok; questions to it-desk@clinic.example"},
    )
    assert r.status_code == 201, r.text
    oid, st = r.json()["orders"][0]["order_id"], r.json()["statement"]
    common = {"check": "activity_review", "host_id": a.id, "tier": "order",
              "controls": ["164.308(a)(1)(ii)(D)"]}  # fmt: skip
    honest = a.envelope(**common, order_id=oid, post_state=st)  # the note's address: scrubbed
    assert honest["bundle"]["post_state"]["note"] != st["note"]  # ... and still the same words
    altered = a.envelope(**common, order_id=oid, post_state={**st, "reviewer": "Mallory"})
    invented = a.envelope(**common, post_state={**st, "reviewer": "Mallory"})
    _post(server, a, [honest, altered, invented])
    listed = server.admin.get(f"/api/v1/sites/{site['id']}/reviews").json()
    got = [(s["reviewer"], s["order_id"], s["matches_order"]) for s in listed["statements"]]
    assert sorted(got, key=str) == sorted(
        [("Alice", oid, True), ("Mallory", oid, False), ("Mallory", None, False)], key=str
    )
    assert listed["orders"] == []  # answered: no longer waiting


def test_every_active_appliance_of_the_site_and_no_revoked_one(server: Server) -> None:
    site, a = _site_with_host(server)
    b = server.enroll(site["id"], hostname="app-second")
    gone = server.enroll(site["id"], hostname="app-revoked")
    assert server.admin.delete(f"/api/v1/appliances/{gone.id}").status_code == 200
    r = server.admin.post(f"/api/v1/sites/{site['id']}/reviews", json={"month": MONTH})
    assert r.status_code == 201, r.text
    assert sorted(o["appliance_id"] for o in r.json()["orders"]) == sorted([a.id, b.id])
    assert {o["appliance_id"] for o in _orders(server)} == {a.id, b.id}
