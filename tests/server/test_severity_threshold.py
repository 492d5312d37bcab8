"""One severity scale and the per-partner alert threshold (issue 16 item 1), against a real
aiosmtpd server on loopback: a ``high`` escalation now alerts (it used to be mapped to
``warning`` and reach nobody), ``medium`` does not, and each partner moves the line."""

from __future__ import annotations

import socket
import time

import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def mail():
    box = _Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield (
            box,
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                starttls=False,
                recipients=["noc@example.test"],
                sender="osiris@example.test",
            ),
        )
    finally:
        ctl.stop()


def _inc(kind: str, sev: str, **details) -> dict:
    out = {"kind": kind, "severity": sev, "host_id": "fs01", "summary": f"{kind} on fs01"}
    if details:
        out["details"] = details
    return out


def _mailed(server, box, kinds: set[str], timeout: float = 20) -> set[str]:
    """Kinds mailed (subject line) once the queue drained; waits for ``kinds`` to show."""
    server.app.alerter.drain(10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = {k for k in kinds if any(k.encode() in m for m in box.messages)}
        if got == kinds:
            break
        time.sleep(0.05)
    server.app.alerter.drain(10)
    known = ("drift_unresolved", "disk_low", "legacy_high", "note_low")
    return {k for k in known if any(k.encode() in m for m in box.messages)}


def _stored(server, site_id: str) -> dict[str, str]:
    rows = server.admin.get("/api/v1/incidents", params={"site": site_id}).json()["incidents"]
    return {r["kind"]: r["severity"] for r in rows}


def test_high_escalation_alerts_and_medium_does_not(server_factory, mail) -> None:
    box, smtp = mail
    server = server_factory(smtp=smtp)
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    r = c.post("/api/v1/incidents", json={"incidents": [
        _inc("drift_unresolved", "high", runbook_id="LIN-SSH-001"),
        _inc("disk_low", "medium"),
        # an older agent: the server's old word, its own word riding along
        _inc("legacy_high", "warning", agent_severity="high"),
    ]})  # fmt: skip
    assert r.status_code == 201, r.text
    mailed = _mailed(server, box, {"drift_unresolved", "legacy_high"})
    assert mailed == {"drift_unresolved", "legacy_high"}
    assert _stored(server, site["id"]) | {"appliance_enrolled": "x"} == {
        "drift_unresolved": "high", "disk_low": "medium", "legacy_high": "high",
        "appliance_enrolled": "x",
    }  # fmt: skip
    subject = next(m for m in box.messages if b"drift_unresolved" in m)
    assert b"HIGH drift_unresolved" in subject


def test_unknown_severity_is_a_400_and_nothing_is_stored(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    r = c.post("/api/v1/incidents", json={"incidents": [_inc("x_y", "urgent")]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA"
    assert "x_y" not in _stored(server, site["id"])


def test_partner_threshold_moves_the_line_and_is_guarded(server_factory, mail) -> None:
    box, smtp = mail
    server = server_factory(smtp=smtp)
    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = server.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    pid = p1["partner"]["id"]
    assert p1["partner"]["alert_threshold"] == "high"
    c1 = server.client(api_key=p1["api_key"])
    c2 = server.client(api_key=p2["api_key"])
    site = c1.post("/api/v1/sites", json={"name": "P1 clinic"}).json()
    path = f"/api/v1/partners/{pid}/alert-threshold"
    # hostile and malformed: another partner, an operator, an unknown word: nothing changes
    assert c2.put(path, json={"threshold": "low"}).status_code == 404
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    assert server.client(op["token"]).put(path, json={"threshold": "low"}).status_code == 403
    bad = c1.put(path, json={"threshold": "warning"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "E_SCHEMA"
    assert server.admin.get(f"/api/v1/partners/{pid}").json()["alert_threshold"] == "high"
    # the partner raises its line to critical: a high escalation no longer mails
    r = c1.put(path, json={"threshold": "critical"})
    assert r.status_code == 200 and r.json() == {"partner_id": pid, "alert_threshold": "critical"}
    a = server.enroll(site["id"])
    c = server.client(a.token)
    c.post("/api/v1/incidents", json={"incidents": [_inc("drift_unresolved", "high")]})
    assert "drift_unresolved" not in _mailed(server, box, set(), timeout=0)
    # an admin lowers it to low: even a low note mails
    assert server.admin.put(path, json={"threshold": "low"}).status_code == 200
    c.post("/api/v1/incidents", json={"incidents": [_inc("note_low", "low")]})
    assert "note_low" in _mailed(server, box, {"note_low"})
    q = {"action": "partner.alert_threshold"}
    rows = server.admin.get("/api/v1/audit", params=q).json()["audit"]
    assert [(e["detail"]["old"], e["detail"]["new"]) for e in reversed(rows)] == [
        ("high", "critical"), ("critical", "low")]  # fmt: skip
