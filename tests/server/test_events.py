"""GET /events over real HTTP: what it reports, its cursor and limit, its scope, its 400s."""

from __future__ import annotations

import time

import pytest

from tests.server.conftest import checkin_body


def _post(server, a, envelopes) -> None:
    r = server.client(a.token).post(
        "/api/v1/evidence", json={"envelopes": envelopes, "log_size_seen": 0}
    )
    assert r.status_code == 200, r.text
    assert all(x["status"] == "accepted" for x in r.json()["results"]), r.text


def _events(c, **params) -> dict:
    r = c.get("/api/v1/events", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_drift_heal_escalation_and_cursor(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    start = _events(server.admin)
    # enrolment opened an incident: the feed's first event
    assert [(e["kind"], e["check"]) for e in start["events"]] == [
        ("incident", "appliance_enrolled")
    ]
    assert start["more"] is False
    _post(
        server,
        a,
        [
            a.envelope(outcome="compliant"),  # not an event
            a.envelope(outcome="alert", host_id="dc01", check="firewall"),
            a.envelope(outcome="healed", tier="L1", runbook_id="RB-WIN-FW-001"),
            a.envelope(outcome="failed", host_id="fs01"),  # a check that could not run
            a.envelope(outcome="escalated", tier="L3", host_id="ws01"),
        ],
    )
    got = _events(server.admin, since=start["cursor"])
    kinds = [(e["kind"], e["host_id"], e["tier"]) for e in got["events"]]
    assert kinds == [
        ("drift", "dc01", "monitor"),
        ("healed", "dc01", "L1"),
        ("error", "fs01", "monitor"),
        ("escalated", "ws01", "L3"),
    ]
    healed = got["events"][1]
    assert healed["runbook_id"] == "RB-WIN-FW-001" and healed["appliance_id"] == a.id
    assert healed["site_id"] == site["id"] and healed["check"] == "firewall"
    # no payloads: ids, words and times only
    assert not {"pre_state", "post_state", "envelope", "summary"} & set(healed)
    # the cursor moves on: nothing twice
    again = _events(server.admin, since=got["cursor"])
    assert again["events"] == [] and again["more"] is False
    # limit pages through, oldest first, without loss or repeat
    seen, cur = [], start["cursor"]
    while True:
        page = _events(server.admin, since=cur, limit=1)
        seen += [e["id"] for e in page["events"]]
        cur = page["cursor"]
        if not page["more"]:
            break
    assert seen == [e["id"] for e in got["events"]]
    # without since: the newest, up to limit
    newest = _events(server.admin, limit=2)
    assert [e["kind"] for e in newest["events"]] == ["error", "escalated"]


def test_order_result_incident_and_offline(server) -> None:
    site = server.site(checkin_interval_s=10)
    a = server.enroll(site["id"])
    c = server.client(a.token)
    cur = _events(server.admin)["cursor"]
    r = server.admin.post(
        f"/api/v1/appliances/{a.id}/orders",
        json={"kind": "collect_evidence", "params": {}},
    )
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    _post(server, a, [a.envelope(outcome="compliant", tier="order", order_id=order_id)])
    r = c.post(
        "/api/v1/incidents",
        json={"incidents": [{"kind": "chain_gap", "severity": "critical", "summary": "x"}]},
    )
    assert r.status_code == 201, r.text
    got = _events(server.admin, since=cur)["events"]
    assert [e["kind"] for e in got] == ["order_done", "incident"]
    assert got[0]["order_id"] == order_id and got[0]["outcome"] == "compliant"
    assert got[1]["severity"] == "critical" and got[1]["check"] == "chain_gap"
    # offline: the last check-in becomes three intervals (30 s) old one second from now
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    server.app.heartbeats.flush()
    off_at = int(time.time()) + 1
    with server.app.db.write() as w:
        w.execute("UPDATE appliances SET last_seen_epoch = ? WHERE id = ?", [off_at - 30, a.id])
    before = _events(server.admin, since=cur)
    assert "offline" not in [e["kind"] for e in before["events"]]  # still online
    while time.time() < off_at + 1:
        time.sleep(0.1)
    off = _events(server.admin, since=before["cursor"])
    assert [(e["kind"], e["appliance_id"]) for e in off["events"]] == [("offline", a.id)]
    assert off["events"][0]["at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(off_at)))
    assert _events(server.admin, since=off["cursor"])["events"] == []  # once


def test_scope_partner_and_client(server) -> None:
    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = server.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    c1 = server.client(api_key=p1["api_key"])
    c2 = server.client(api_key=p2["api_key"])
    s1 = c1.post("/api/v1/sites", json={"name": "P1 clinic"}).json()
    s2 = c2.post("/api/v1/sites", json={"name": "P2 clinic"}).json()
    msp = server.site("MSP only")
    tok = server.admin.post(
        "/api/v1/tokens", json={"role": "client", "name": "c", "site_id": msp["id"]}
    ).json()["token"]
    client = server.client(tok)
    for s in (s1, s2, msp):
        a = server.enroll(s["id"])
        _post(server, a, [a.envelope(outcome="alert", host_id=f"h-{s['id']}"[:60])])

    def sites_of(c) -> set[str]:
        return {e["site_id"] for e in _events(c, since="0.0.0.0")["events"]}

    assert sites_of(c1) == {s1["id"]}
    assert sites_of(c2) == {s2["id"]}
    assert sites_of(client) == {msp["id"]}
    assert sites_of(server.admin) >= {s1["id"], s2["id"], msp["id"]}
    # another tenant's site: 404, exactly as a site that does not exist
    r = c1.get("/api/v1/events", params={"site": s2["id"]})
    assert r.status_code == 404
    assert r.json() == c1.get("/api/v1/events", params={"site": "no-such-site"}).json()
    assert {e["site_id"] for e in _events(c1, site=s1["id"], since="0.0.0.0")["events"]} == {
        s1["id"]
    }
    # an appliance token is not for this endpoint
    a = server.enroll(msp["id"])
    assert server.client(a.token).get("/api/v1/events").status_code == 403


@pytest.mark.parametrize(
    "params",
    [
        {"since": "x"},
        {"since": "1.2.3"},
        {"since": "1.2.3.4.5"},
        {"since": "-1.0.0.0"},
        {"since": "1" * 20 + ".0.0.0"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"site": "../etc"},
        {"other": "1"},
    ],
)
def test_bad_input_is_400(server, params) -> None:
    r = server.admin.get("/api/v1/events", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "E_SCHEMA"


def test_huge_cursor_positions_are_no_500(server) -> None:
    r = server.admin.get("/api/v1/events", params={"since": ".".join(["9" * 19] * 4)})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == []


def test_listed_in_openapi(server) -> None:
    doc = server.client().get("/api/v1/openapi.json").json()
    op = doc["paths"]["/api/v1/events"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"since", "site", "limit"}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"events", "cursor", "more"} <= set(schema["properties"])


def test_paging_survives_ingests_timed_out_of_log_order(server) -> None:
    """Two workers may log bundles in one order and time them in the other: a page never
    skips the earlier-logged one to return the later (and never stalls on it)."""
    site = server.site()
    a = server.enroll(site["id"])
    cur = _events(server.admin)["cursor"]
    _post(server, a, [a.envelope(outcome="alert"), a.envelope(outcome="failed")])
    with server.app.db.write() as w:
        first = w.one("SELECT MIN(log_index) AS i FROM evidence WHERE appliance_id = ?", [a.id])
        w.execute(
            "UPDATE evidence SET received_at = '2999-01-01T00:00:00.000Z' WHERE log_index = ?",
            [first["i"]],
        )
    seen = []
    for _ in range(5):
        page = _events(server.admin, since=cur, limit=1)
        seen += [e["kind"] for e in page["events"]]
        cur = page["cursor"]
        if not page["more"]:
            break
    assert sorted(seen) == ["drift", "error"]
