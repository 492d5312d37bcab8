"""Alert routes per partner and site, durable deliveries with backoff, SLA escalation, and the
incident actions that talk back to PagerDuty (issue 16 item 3).

Real parts only: aiosmtpd on loopback as the mail server, real HTTP receivers on loopback (one
per preset, asserting the payload shape each service accepts), a receiver that fails its first
N requests, two server processes' worth of ``App`` sharing one database; both engines
(``--db-engine=postgresql``)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig, verify_webhook
from osiris_server.api import alert_fanout
from osiris_server.app import init_data
from osiris_server.db import alert_deliveries
from tests.server.conftest import Server, start_server, stop_server
from tests.server.test_alert_queue import _free_port, _Mailbox, _wait

LAB = {"allow_private_webhooks": True, "alert_poll_s": 0.05}
GENERIC_SECRET = "generic-secret-0123456789abcdef"
PD_KEY = "R0UTINGKEY0123456789abcdefABCDEF"
SLACK_TOKEN = "T0000/B0000/XXXXsecretslacktoken"


class Receiver:
    """An HTTP endpoint on loopback recording every POST; the first ``fail_first`` get a 500."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with threading.Lock():
                    outer.posts.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "raw": body,
                            "at": time.monotonic(),
                        }
                    )
                    failing = len(outer.posts) <= outer.fail_first
                self.send_response(500 if failing else outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(p["raw"]) for p in self.posts]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receivers() -> Any:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def mailbox() -> Any:
    box = _Mailbox()
    port = _free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, SmtpConfig(host="127.0.0.1", port=port, starttls=False, timeout=5)
    ctl.stop()


def _partner(s: Server, name: str) -> tuple[str, str]:
    r = s.admin.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"], r.json()["api_key"]


def _route(client: Any, scope: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = client.post(f"/api/v1/{scope}/alert-routes", json=body)
    assert r.status_code == status, r.text
    return r.json()


def _incident(s: Server, token: str, kind: str, severity: str = "critical") -> str:
    r = s.client(token).post(
        "/api/v1/incidents",
        json={"incidents": [{"kind": kind, "severity": severity, "summary": f"{kind} seen"}]},
    )
    assert r.status_code == 201, r.text
    return r.json()["incidents"][0]["id"]


def _deliveries(s: Server, **q: Any) -> list[dict[str, Any]]:
    r = s.admin.get("/api/v1/alerts/deliveries", params=q)
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def test_each_preset_gets_its_payload_and_pagerduty_hears_ack_and_resolve(
    server_factory: Any, receivers: Any, mailbox: Any
) -> None:
    box, smtp = mailbox
    s = server_factory(smtp=smtp, **LAB)
    pid, key = _partner(s, "Acme IT")
    partner = s.client(api_key=key)
    site = partner.post("/api/v1/sites", json={"name": "Clinic"}).json()
    hooks = {p: receivers() for p in ("generic", "slack", "teams", "pagerduty")}
    _route(
        partner,
        f"partners/{pid}",
        {"name": "noc mail", "preset": "email", "emails": ["noc@acme.test", "oncall@acme.test"]},
    )
    _route(
        partner,
        f"partners/{pid}",
        {
            "name": "psa",
            "preset": "generic",
            "url": hooks["generic"].base + "/hook",
            "secret": GENERIC_SECRET,
        },
    )
    slack = _route(
        partner,
        f"sites/{site['id']}",
        {
            "name": "clinic slack",
            "preset": "slack",
            "url": hooks["slack"].base + "/services/" + SLACK_TOKEN,
        },
    )
    _route(
        partner,
        f"sites/{site['id']}",
        {"name": "teams", "preset": "teams", "url": hooks["teams"].base + "/webhookb2/x"},
    )
    _route(partner, f"partners/{pid}", {"name": "pd", "preset": "pagerduty",
                                        "url": hooks["pagerduty"].base + "/v2/enqueue",
                                        "routing_key": PD_KEY})  # fmt: skip
    # masked to operators: no token, no secret, no routing key in any listing
    listed = partner.get(f"/api/v1/sites/{site['id']}/alert-routes")
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()["routes"]] == ["clinic slack", "teams"]
    assert slack["target"].endswith("/…") and SLACK_TOKEN not in slack["target"]
    plisted = partner.get(f"/api/v1/partners/{pid}/alert-routes").text
    for secret in (SLACK_TOKEN, GENERIC_SECRET, PD_KEY):
        assert secret not in listed.text and secret not in plisted

    a = s.enroll(site["id"])
    s.app.alerter.drain(10)
    for h in hooks.values():  # enrolling raised its own alert; this test follows the next one
        h.posts.clear()
    box.messages.clear()
    inc = _incident(s, a.token, "ransomware")
    assert _wait(lambda: all(h.posts for h in hooks.values()) and box.messages, 15)
    s.app.alerter.drain(10)
    rows = _deliveries(s, incident=inc)
    assert sorted(r["preset"] for r in rows) == ["email", "generic", "pagerduty", "slack", "teams"]
    assert {r["state"] for r in rows} == {"sent"} and {r["attempts"] for r in rows} == {1}

    g = hooks["generic"].posts[0]
    ts, sig = g["headers"]["X-Osiris-Timestamp"], g["headers"]["X-Osiris-Signature"]
    assert verify_webhook(GENERIC_SECRET.encode(), ts, sig, g["raw"], int(time.time()))
    assert json.loads(g["raw"])["event"] == "incident"
    assert json.loads(g["raw"])["incident"]["id"] == inc
    sl = hooks["slack"].bodies()[0]
    assert hooks["slack"].posts[0]["path"] == "/services/" + SLACK_TOKEN
    assert "ransomware" in sl["text"] and sl["blocks"][0]["type"] == "section"
    tm = hooks["teams"].bodies()[0]
    assert tm["@type"] == "MessageCard" and tm["@context"] == "https://schema.org/extensions"
    assert {"name": "Id", "value": inc} in tm["sections"][0]["facts"]
    pd = hooks["pagerduty"].bodies()[0]
    assert pd["routing_key"] == PD_KEY and pd["event_action"] == "trigger"
    assert pd["dedup_key"] == inc
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"].startswith(
        site["id"]
    )
    assert pd["payload"]["summary"]
    msg = box.messages[0].decode()
    assert f"Incident {inc}" in msg and "noc@acme.test" in msg

    # acknowledge and resolve: audited, and PagerDuty (only PagerDuty) is told, same dedup_key
    assert partner.post(f"/api/v1/incidents/{inc}/acknowledge", json={}).status_code == 200
    assert _wait(lambda: len(hooks["pagerduty"].posts) == 2, 10)
    r = partner.post(f"/api/v1/incidents/{inc}/resolve", json={"note": "restored from backup"})
    assert r.status_code == 200
    assert _wait(lambda: len(hooks["pagerduty"].posts) == 3, 10)
    s.app.alerter.drain(10)
    acts = [(b["event_action"], b["dedup_key"]) for b in hooks["pagerduty"].bodies()]
    assert acts == [("trigger", inc), ("acknowledge", inc), ("resolve", inc)]
    assert "payload" not in hooks["pagerduty"].bodies()[1]
    assert len(hooks["slack"].posts) == len(hooks["teams"].posts) == 1
    actions = [r["action"] for r in s.admin.get("/api/v1/audit").json()["audit"]]
    assert actions.count("alert_route.create") == 5
    assert "incident.acknowledge" in actions and "incident.resolve" in actions
    log = s.admin.get("/api/v1/audit").text
    for secret in (SLACK_TOKEN, GENERIC_SECRET, PD_KEY):
        assert secret not in log


def test_a_failing_receiver_is_retried_with_backoff_then_sent_or_dead(
    server_factory: Any, receivers: Any
) -> None:
    s = server_factory(alert_retry_base_s=1, alert_retry_cap_s=2, alert_max_attempts=3, **LAB)
    site = s.site()
    a = s.enroll(site["id"])  # before the routes: its enrolment alert goes elsewhere
    flaky, down = receivers(fail_first=2), receivers(fail_first=1000)
    _route(
        s.admin,
        f"sites/{site['id']}",
        {"name": "flaky", "preset": "slack", "url": flaky.base + "/services/" + SLACK_TOKEN},
    )
    _route(
        s.admin,
        f"sites/{site['id']}",
        {"name": "down", "preset": "teams", "url": down.base + "/hook?token=" + SLACK_TOKEN},
    )
    t0 = time.monotonic()
    inc = _incident(s, a.token, "ransomware")

    def states() -> dict[str, dict[str, Any]]:
        return {r["route_name"]: r for r in _deliveries(s, incident=inc)}

    assert _wait(lambda: states()["flaky"]["state"] == "sent", 20)
    at = [p["at"] for p in flaky.posts]
    # waited 1 s, then 2 s (exponential from the base) before attempt 3 — in whole epoch
    # seconds, so each wait is at least the previous delay minus one second
    assert at[1] > at[0] and at[2] - at[1] >= 1.0 and at[2] - t0 >= 2.0
    assert states()["flaky"]["attempts"] == 3 and len(flaky.posts) == 3
    assert _wait(lambda: states()["down"]["state"] == "dead", 20)
    dead = states()["down"]
    assert dead["attempts"] == 3 and len(down.posts) == 3  # no fourth try
    assert "HTTP 500" in dead["last_error"] and SLACK_TOKEN not in dead["last_error"]
    assert "127.0.0.1" not in dead["last_error"]  # not even the host: the URL is sealed
    time.sleep(2.5)
    assert len(down.posts) == 3
    assert [r["route_name"] for r in _deliveries(s, state="dead")] == ["down"]
    assert alert_fanout.retry_delay(s.app.cfg, 10) == 2  # capped


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://192.168.1.10:8443/hook",
        "http://93.184.216.34/hook",  # public, but plain http
        "https://user:pass@93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
        "not a url",
    ],
)
def test_a_webhook_into_the_private_network_is_refused(server: Server, url: str) -> None:
    site = server.site()
    r = server.admin.post(f"/api/v1/sites/{site['id']}/alert-routes",
                          json={"name": "x", "preset": "slack", "url": url})  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "E_SCHEMA"
    assert url not in r.text
    assert server.admin.get(f"/api/v1/sites/{site['id']}/alert-routes").json()["routes"] == []


def test_route_bodies_are_validated(server: Server) -> None:
    site = server.site()
    path = f"sites/{site['id']}"
    bad = [
        {"name": "x", "preset": "generic", "url": "https://93.184.216.34/h"},  # no secret
        {"name": "x", "preset": "slack", "url": "https://93.184.216.34/h", "secret": "a" * 20},
        {"name": "x", "preset": "pagerduty", "routing_key": "short"},
        {"name": "x", "preset": "email", "emails": ["noc@x.test"]},  # no [smtp] relay here
        {"name": "x", "preset": "sms", "url": "https://93.184.216.34/h"},
        {"name": "<b>", "preset": "pagerduty", "routing_key": PD_KEY},
        {"name": "x", "preset": "pagerduty", "routing_key": PD_KEY, "level": 9},
    ]
    for body in bad:
        r = server.admin.post(f"/api/v1/{path}/alert-routes", json=body)
        assert r.status_code == 400, (body, r.text)
    ok = _route(server.admin, path, {"name": "pd", "preset": "pagerduty", "routing_key": PD_KEY})
    assert ok["target"] == "PagerDuty Events v2" and ok["scope"] == "site"


def test_a_partner_cannot_read_or_edit_another_partners_routes(server: Server) -> None:
    pa, key_a = _partner(server, "A")
    pb, key_b = _partner(server, "B")
    a, b = server.client(api_key=key_a), server.client(api_key=key_b)
    site_b = b.post("/api/v1/sites", json={"name": "B clinic"}).json()
    route_b = _route(b, f"partners/{pb}", {"name": "pd", "preset": "pagerduty",
                                           "routing_key": PD_KEY})  # fmt: skip
    body = {"name": "mine", "preset": "pagerduty", "routing_key": PD_KEY}
    for method, path, payload in [
        ("GET", f"/api/v1/partners/{pb}/alert-routes", None),
        ("POST", f"/api/v1/partners/{pb}/alert-routes", body),
        ("GET", f"/api/v1/sites/{site_b['id']}/alert-routes", None),
        ("POST", f"/api/v1/sites/{site_b['id']}/alert-routes", body),
        ("DELETE", f"/api/v1/alert-routes/{route_b['id']}", None),
        ("GET", f"/api/v1/partners/{pb}/sla", None),
        ("PUT", f"/api/v1/partners/{pb}/sla", {"critical": 0}),
        ("GET", f"/api/v1/alerts/deliveries?site={site_b['id']}", None),
    ]:
        r = a.request(method, path, json=payload)
        assert r.status_code == 404, (method, path, r.text)
    assert [r["id"] for r in b.get(f"/api/v1/partners/{pb}/alert-routes").json()["routes"]] == [
        route_b["id"]
    ]
    assert b.get(f"/api/v1/partners/{pb}/sla").json()["sla"] == {"critical": 900, "high": 3600}
    assert a.get(f"/api/v1/partners/{pa}/alert-routes").json()["routes"] == []
    # an auditor reads, cannot write
    r = server.admin.post("/api/v1/tokens", json={"role": "auditor", "name": "aud"})
    aud = server.client(r.json()["token"])
    assert aud.get(f"/api/v1/partners/{pb}/alert-routes").status_code == 200
    assert aud.post(f"/api/v1/partners/{pb}/alert-routes", json=body).status_code == 403


def test_an_unacknowledged_incident_escalates_once_per_breach_and_ack_stops_it(
    server_factory: Any, receivers: Any
) -> None:
    s = server_factory(**LAB)
    pid, key = _partner(s, "Acme IT")
    partner = s.client(api_key=key)
    site = partner.post("/api/v1/sites", json={"name": "Clinic"}).json()
    a = s.enroll(site["id"])  # its enrolment incident is acknowledged: only ours is timed
    for row in partner.get("/api/v1/incidents").json()["incidents"]:
        partner.post(f"/api/v1/incidents/{row['id']}/acknowledge", json={})
    first, second = receivers(), receivers()
    _route(
        partner, f"partners/{pid}", {"name": "tier1", "preset": "slack", "url": first.base + "/t1"}
    )
    _route(partner, f"partners/{pid}", {"name": "tier2", "preset": "slack", "level": 1,
                                        "url": second.base + "/t2"})  # fmt: skip
    r = partner.put(f"/api/v1/partners/{pid}/sla", json={"critical": 120})
    assert r.status_code == 200 and r.json()["sla"]["critical"] == 120
    assert partner.put(f"/api/v1/partners/{pid}/sla", json={"critical": 5}).status_code == 400
    inc = _incident(s, a.token, "ransomware")
    assert _wait(lambda: len(first.posts) == 1, 10)
    assert second.posts == []
    t0 = int(time.time())
    assert alert_fanout.sweep_sla(s.app, t0 + 60) == []  # within the SLA
    # breach 1 is escalated once, whoever sweeps (a second sweep, a second server)
    assert alert_fanout.sweep_sla(s.app, t0 + 125) == [inc]
    assert alert_fanout.sweep_sla(s.app, t0 + 126) == []
    assert _wait(lambda: len(second.posts) == 1, 10)
    assert "SLA BREACH 1" in second.bodies()[0]["text"]
    # breach 2: no level-2 route, so level 1 hears it again (a re-alert, not silence)
    assert alert_fanout.sweep_sla(s.app, t0 + 245) == [inc]
    assert _wait(lambda: len(second.posts) == 2, 10)
    audit = s.admin.get("/api/v1/audit").json()["audit"]
    breaches = [e for e in audit if e["action"] == "incident.sla_breach"]
    assert len(breaches) == 2 and {e["actor"] for e in breaches} == {"server"}
    # acknowledging stops the timer
    assert partner.post(f"/api/v1/incidents/{inc}/acknowledge", json={}).status_code == 200
    assert alert_fanout.sweep_sla(s.app, t0 + 10_000) == []
    s.app.alerter.drain(5)
    assert len(first.posts) == 1 and len(second.posts) == 2
    # below the partner's alert threshold: never alerted, so never escalated either
    r = partner.put(f"/api/v1/partners/{pid}/alert-threshold", json={"threshold": "critical"})
    assert r.status_code == 200, r.text
    quiet = _incident(s, a.token, "audit_policy", "high")
    assert alert_fanout.sweep_sla(s.app, t0 + 10_000) == []
    assert s.app.db.scalar("SELECT sla_level FROM incidents WHERE id = ?", [quiet]) == 0
    # a severity whose timer is off is never escalated
    low = _incident(s, a.token, "patching", "critical")
    partner.put(f"/api/v1/partners/{pid}/sla", json={"critical": 0})
    assert alert_fanout.sweep_sla(s.app, t0 + 10_000) == []
    assert s.app.db.scalar("SELECT sla_level FROM incidents WHERE id = ?", [low]) == 0


def test_a_site_without_routes_keeps_the_global_channels(server_factory: Any, mailbox: Any):
    box, smtp = mailbox
    smtp.recipients = ["global@msp.test"]
    s = server_factory(smtp=smtp, **LAB)
    routed, plain = s.site("Routed"), s.site("Plain")
    _route(s.admin, f"sites/{routed['id']}", {"name": "mail", "preset": "email",
                                              "emails": ["clinic@routed.test"]})  # fmt: skip
    a, b = s.enroll(routed["id"], "ap-r"), s.enroll(plain["id"], "ap-p")
    inc_r, inc_p = _incident(s, a.token, "ransomware"), _incident(s, b.token, "ransomware")
    assert _wait(lambda: {inc_r, inc_p} <= set(box.incidents()), 15)
    s.app.alerter.drain(5)
    by_inc = {i: m.decode() for m in box.messages for i in box.incidents() if i in m.decode()}
    assert box.incidents().count(inc_r) == box.incidents().count(inc_p) == 1
    assert "clinic@routed.test" in by_inc[inc_r] and "global@msp.test" not in by_inc[inc_r]
    assert "global@msp.test" in by_inc[inc_p]


def test_two_servers_share_the_delivery_queue_each_route_once(
    tmp_path: Path, receivers: Any, db_url: str | None
) -> None:
    data_a = tmp_path / "a"
    info = init_data(data_a, "test.osiris/osiris/log", db_url)
    data_b = data_a if db_url is None else tmp_path / "b"
    if db_url is not None:
        shutil.copytree(data_a, data_b)
    apps = [start_server(d, **{**LAB, "alert_poll_s": 0.01}) for d in (data_a, data_b)]
    servers = [Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
               for (app, _s, u), d in zip(apps, (data_a, data_b), strict=True)]  # fmt: skip
    hook = receivers()
    try:
        site = servers[0].site()
        _route(servers[1].admin, f"sites/{site['id']}", {"name": "chat", "preset": "slack",
                                                         "url": hook.base + "/h"})  # fmt: skip
        fleet = [servers[k % 2].enroll(site["id"], f"ap{k}") for k in range(2)]
        expected = {_incident(servers[(k + i) % 2], ap.token, f"kind_{k}_{i}")
                    for k, ap in enumerate(fleet) for i in range(5)}  # fmt: skip
        assert _wait(lambda: len(hook.posts) >= len(expected), 20)
        for app, _s, _u in apps:
            app.alerter.drain(10)
        time.sleep(0.5)
        got = [b["blocks"][1]["elements"][0]["text"].split()[1] for b in hook.bodies()]
        everything = {
            r["id"] for r in servers[0].admin.get("/api/v1/incidents").json()["incidents"]
        }
        assert expected <= everything and len(everything) == len(expected) + len(fleet)  # +enrol
        assert sorted(got) == sorted(everything)  # every alert once, to its one route
        rows = alert_deliveries.list_rows(apps[0][0].db, None, None, None, 100)
        assert len(rows) == len(everything) and {r["attempts"] for r in rows} == {1}
        claimers = {
            r["claimed_by"] for r in apps[0][0].db.query("SELECT claimed_by FROM alert_deliveries")
        }
        print(f"{len(rows)} deliveries, sent by {len(claimers)} process(es)")
    finally:
        for s in servers:
            for c in s.clients:
                c.close()
        for app, srv, _u in apps:
            stop_server(app, srv)


def test_a_deleted_route_is_not_sent_to_and_its_queued_delivery_dies(
    server_factory: Any, receivers: Any
) -> None:
    s = server_factory(alert_retry_base_s=60, alert_max_attempts=5, **LAB)
    site = s.site()
    a = s.enroll(site["id"])
    down = receivers(fail_first=1000)
    route = _route(s.admin, f"sites/{site['id']}", {"name": "down", "preset": "slack",
                                                    "url": down.base + "/h"})  # fmt: skip
    inc = _incident(s, a.token, "ransomware")
    assert _wait(lambda: _deliveries(s, incident=inc)[0]["state"] == "retrying", 10)
    assert s.admin.delete(f"/api/v1/alert-routes/{route['id']}").status_code == 200
    assert s.admin.delete(f"/api/v1/alert-routes/{route['id']}").status_code == 404
    # the retry comes due (the test moves it to now): the route is gone, so the delivery is
    # dead and nothing is sent
    with s.app.db.write() as w:
        w.execute("UPDATE alert_deliveries SET next_attempt_at = 0 WHERE incident_id = ?", [inc])
    s.app.alerter.kick()
    assert _wait(lambda: _deliveries(s, incident=inc)[0]["state"] == "dead", 10)
    row = _deliveries(s, incident=inc)[0]
    assert "gone" in row["last_error"] and len(down.posts) == 1
    actions = [e["action"] for e in s.admin.get("/api/v1/audit").json()["audit"]]
    assert "alert_route.delete" in actions
