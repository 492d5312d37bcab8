"""Critical incidents alert by e-mail (a real aiosmtpd server) and signed webhook (a real HTTP
receiver), both on loopback; repeats and non-critical incidents do not alert."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from osiris_server.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, SmtpConfig, verify_webhook
from osiris_server.config import Webhook

SECRET = b"webhook-secret-for-tests"


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"


def _receiver():
    got: list[tuple[dict, bytes]] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, got


def test_critical_incident_sends_email_and_signed_webhook(server_factory) -> None:
    box = _Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    hook_srv, got = _receiver()
    try:
        server = server_factory(
            smtp=SmtpConfig(
                host="127.0.0.1",
                port=port,
                starttls=False,
                recipients=["noc@example.test"],
                sender="osiris@example.test",
            ),
            webhooks=[
                Webhook(url=f"http://127.0.0.1:{hook_srv.server_address[1]}/h", secret=SECRET)
            ],
        )
        site = server.site()
        a = server.enroll(site["id"])
        c = server.client(a.token)
        crit = {
            "kind": "ransomware_suspected",
            "severity": "critical",
            "host_id": "fs01",
            "summary": "mass file renames on fs01",
        }
        warn = {
            "kind": "disk_low",
            "severity": "warning",
            "host_id": "fs01",
            "summary": "disk 91% full",
        }
        r = c.post("/api/v1/incidents", json={"incidents": [crit, warn]})
        assert r.status_code == 201
        c.post("/api/v1/incidents", json={"incidents": [crit]})  # a repeat: no second alert
        server.app.alerter.drain(10)
        deadline = time.monotonic() + 30
        while (len(box.messages) < 2 or len(got) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        # every enrolment is alerted (a rogue box enrolling is news); then the critical one
        enrolled = [m for m in box.messages if b"appliance_enrolled" in m]
        assert len(enrolled) == 1
        box.messages = [m for m in box.messages if m not in enrolled]
        got[:] = [g for g in got if b"appliance_enrolled" not in g[1]]
        assert len(box.messages) == 1
        assert b"ransomware_suspected" in box.messages[0]
        assert len(got) == 1
        headers, body = got[0]
        assert verify_webhook(
            SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, int(time.time())
        )
        payload = json.loads(body)
        assert payload["incident"]["kind"] == "ransomware_suspected"
        inc = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()
        alerted = {i["kind"]: i["alerted_at"] for i in inc["incidents"]}
        assert alerted["ransomware_suspected"] is not None
        assert alerted["disk_low"] is None
    finally:
        smtp.stop()
        hook_srv.shutdown()
        hook_srv.server_close()


def test_dead_alert_targets_do_not_block_requests(server_factory) -> None:
    server = server_factory(
        smtp=SmtpConfig(
            host="127.0.0.1", port=1, starttls=False, recipients=["x@y.test"], timeout=1
        ),
        webhooks=[Webhook(url="http://127.0.0.1:1/h", secret=SECRET)],
    )
    site = server.site()
    a = server.enroll(site["id"])
    t0 = time.monotonic()
    r = server.client(a.token).post(
        "/api/v1/incidents",
        json={"incidents": [{"kind": "x", "severity": "critical", "summary": "s"}]},
    )
    assert r.status_code == 201
    assert time.monotonic() - t0 < 1.0
    server.app.alerter.drain(10)
    assert server.app.alerter.failed == 4  # mail + webhook, for the enrolment and the incident
