"""The watchdog (issue 16 item 2) in a real server, ticked by the test at chosen times (its own
thread is off: ``watchdog_tick_s=0``), alerting through the real alert path to a real aiosmtpd
server on loopback. Runs on both engines."""

from __future__ import annotations

import socket
import time

import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig
from tests.server.conftest import checkin_body


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp():
    box = _Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        cfg = SmtpConfig(
            host="127.0.0.1",
            port=port,
            starttls=False,
            recipients=["noc@example.test"],
            sender="osiris@example.test",
        )
        yield box, cfg
    finally:
        ctl.stop()


def _watch(server, **kw):
    site = server.site("Clinic", checkin_interval_s=10)
    if kw:
        r = server.admin.patch(f"/api/v1/sites/{site['id']}", json=kw)
        assert r.status_code == 200, r.text
    a = server.enroll(site["id"])
    c = server.client(a.token)
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    return site, a, c


def _incidents(server, site_id: str, kind: str) -> list[dict]:
    rows = server.admin.get("/api/v1/incidents", params={"site": site_id}).json()["incidents"]
    return [r for r in rows if r["kind"] == kind]


def _mails(server, box, word: bytes, n: int) -> list[bytes]:
    server.app.alerter.drain(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len([m for m in box.messages if word in m]) < n:
        time.sleep(0.05)
    return [m for m in box.messages if word in m]


def test_a_silent_appliance_raises_one_critical_alerted_incident_and_its_return_resolves_it(
    server_factory, smtp
) -> None:
    box, cfg = smtp
    server = server_factory(smtp=cfg, watchdog_tick_s=0)
    site, a, c = _watch(server)
    wd = server.app.watchdog
    t0 = time.time()
    assert wd.tick(t0) == {"raised": [], "resolved": []}
    assert wd.tick(t0 + 25)["raised"] == []  # 2.5 intervals: not yet
    got = wd.tick(t0 + 32)  # 3 × 10 s missed
    assert len(got["raised"]) == 1
    assert wd.tick(t0 + 40)["raised"] == []  # still silent: the same incident, no second one
    [inc] = _incidents(server, site["id"], "appliance_silent")
    assert inc["severity"] == "critical" and inc["status"] == "open"
    assert inc["appliance_id"] == a.id and inc["host_id"] == a.id
    mail = _mails(server, box, b"appliance_silent", 1)
    assert len(mail) == 1 and b"CRITICAL appliance_silent" in mail[0]
    # it checks in again: the next tick resolves it, audited as the watchdog's act
    time.sleep(1.1)
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    assert wd.tick(t0 + 41)["resolved"] == [inc["id"]]
    [done] = _incidents(server, site["id"], "appliance_silent")
    assert done["status"] == "resolved" and done["resolved_by"] == "server:watchdog"
    audit = server.admin.get("/api/v1/audit", params={"site": site["id"]}).json()["audit"]
    acts = [(e["action"], e["target"]) for e in audit if e["action"].startswith("watchdog.")]
    assert sorted(acts) == [("watchdog.raise", inc["id"]), ("watchdog.resolve", inc["id"])]
    assert len(_mails(server, box, b"appliance_silent", 1)) == 1  # no second alert


def test_per_site_threshold_and_validation(server_factory) -> None:
    server = server_factory(watchdog_tick_s=0)
    site, a, c = _watch(server, watchdog_missed_checkins=1)
    got = server.admin.get(f"/api/v1/sites/{site['id']}").json()
    assert got["watchdog_missed_checkins"] == 1 and got["watchdog_host_silent_min"] == 1440
    wd = server.app.watchdog
    t0 = time.time()
    wd.tick(t0)
    assert len(wd.tick(t0 + 12)["raised"]) == 1  # one 10 s interval missed is enough here
    for bad in ({"watchdog_missed_checkins": 0}, {"watchdog_missed_checkins": "3"},
                {"watchdog_host_silent_min": -1}, {"watchdog_host_silent_min": 10**6}):  # fmt: skip
        r = server.admin.patch(f"/api/v1/sites/{site['id']}", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", bad
    assert server.admin.get(f"/api/v1/sites/{site['id']}").json()["watchdog_missed_checkins"] == 1
    # an appliance may not change its own site's watchdog (it would silence itself)
    r = c.patch(f"/api/v1/sites/{site['id']}", json={"watchdog_missed_checkins": 100})
    assert r.status_code in (401, 403)


def test_no_storm_after_the_server_was_down_or_the_clock_jumped(server_factory) -> None:
    server = server_factory(watchdog_tick_s=0)
    site, a, c = _watch(server)
    b = server.enroll(site["id"], "appliance-2")
    assert server.client(b.token).post("/api/v1/checkin", json=checkin_body(b)).status_code == 200
    wd = server.app.watchdog
    t0 = time.time()
    wd.tick(t0)
    # every server was down for ten days (or the clock jumped ten days ahead): nothing raised —
    # the appliances could not have checked in with a dead server
    assert wd.tick(t0 + 10 * 86400)["raised"] == []
    assert wd.tick(t0 + 10 * 86400 + 20)["raised"] == []
    # silent for a whole threshold after the watchdog resumed: now they are real
    assert len(wd.tick(t0 + 10 * 86400 + 31)["raised"]) == 2
    # the clock goes back a day: it resumes again, nothing new, nothing resolved by accident
    assert wd.tick(t0 + 9 * 86400) == {"raised": [], "resolved": []}
    assert len(_incidents(server, site["id"], "appliance_silent")) == 2


def test_a_host_is_not_called_silent_while_its_appliance_is(server_factory) -> None:
    """A host without evidence behind a silent appliance is the appliance's silence: one
    appliance_silent, no host_silent beside it."""
    server = server_factory(watchdog_tick_s=0)
    site = server.site("Clinic", checkin_interval_s=10)
    r = server.admin.patch(f"/api/v1/sites/{site['id']}", json={"watchdog_host_silent_min": 1})
    assert r.status_code == 200
    cred = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5",
            "username": "CLINIC\\osiris", "password": "S3cret-Pa55!"}  # fmt: skip
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=cred)
    assert r.status_code == 201
    a = server.enroll(site["id"])
    assert server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    wd = server.app.watchdog
    t0 = time.time()
    for dt in range(0, 200, 20):
        wd.tick(t0 + dt)
    assert len(_incidents(server, site["id"], "appliance_silent")) == 1
    assert _incidents(server, site["id"], "host_silent") == []


def test_host_silent_raised_and_resolved_by_its_evidence(server_factory) -> None:
    server = server_factory(watchdog_tick_s=0)
    site = server.site("Clinic", checkin_interval_s=3600)  # online for three hours
    server.admin.patch(f"/api/v1/sites/{site['id']}", json={"watchdog_host_silent_min": 5})
    cred = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5",
            "username": "CLINIC\\osiris", "password": "S3cret-Pa55!"}  # fmt: skip
    assert (
        server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=cred).status_code == 201
    )
    a = server.enroll(site["id"])
    c = server.client(a.token)
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    wd = server.app.watchdog
    t0 = time.time()
    for dt in range(0, 5 * 60 + 1, 30):  # ticks as a running server ticks (no gap to resume on)
        assert wd.tick(t0 + dt)["raised"] == [], dt
    [iid] = wd.tick(t0 + 5 * 60 + 20)["raised"]
    [inc] = _incidents(server, site["id"], "host_silent")
    assert inc["id"] == iid and inc["severity"] == "high" and inc["host_id"] == "dc01"
    assert wd.tick(t0 + 5 * 60 + 30)["raised"] == []
    time.sleep(1.1)
    r = c.post("/api/v1/evidence", json={"envelopes": [a.envelope(host_id="dc01")],
                                         "log_size_seen": 0})  # fmt: skip
    assert r.status_code == 200, r.text
    assert wd.tick(t0 + 5 * 60 + 31)["resolved"] == [iid]
