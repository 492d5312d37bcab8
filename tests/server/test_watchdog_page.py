"""A watchdog incident that the watchdog resolves closes its page (issue 16): the resolve queues,
in the watchdog's own transaction, the follow-up an operator's resolve queues — PagerDuty Events
v2 ``resolve`` with the trigger's ``dedup_key``. Mail routes hear the trigger only (as with an
operator's resolve: follow-ups go to PagerDuty routes, docs/server.md, Alert routing).

Real parts: a real server, its watchdog ticked by the test at chosen times, a real HTTP receiver
on loopback as the PagerDuty Events endpoint, aiosmtpd on loopback as the mail server. Both
engines."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig
from tests.server.conftest import checkin_body
from tests.server.test_alert_queue import _free_port, _Mailbox, _wait
from tests.server.test_alert_routing import LAB, PD_KEY, Receiver, _deliveries, _route


@pytest.fixture
def pd() -> Any:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def mailbox() -> Any:
    box = _Mailbox()
    port = _free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    yield box, SmtpConfig(host="127.0.0.1", port=port, starttls=False, timeout=5)
    ctl.stop()


def _mails(box: Any, word: bytes) -> list[bytes]:
    return [m for m in box.messages if word in m]


@pytest.mark.parametrize("kind", ["appliance_silent", "host_silent"])
def test_the_watchdogs_resolve_sends_pagerduty_resolve_with_the_same_dedup_key(
    server_factory: Any, pd: Receiver, mailbox: Any, kind: str
) -> None:
    box, smtp = mailbox
    server = server_factory(smtp=smtp, watchdog_tick_s=0, **LAB)
    # host_silent: the appliance stays online for an hour (the test's ticks run ahead of it)
    site = server.site("Clinic", checkin_interval_s=10 if kind == "appliance_silent" else 3600)
    if kind == "host_silent":
        r = server.admin.patch(f"/api/v1/sites/{site['id']}", json={"watchdog_host_silent_min": 1})
        assert r.status_code == 200, r.text
        cred = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5",
                "username": "CLINIC\\osiris", "password": "S3cret-Pa55!"}  # fmt: skip
        r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=cred)
        assert r.status_code == 201, r.text
    _route(server.admin, f"sites/{site['id']}", {"name": "pager", "preset": "pagerduty",
                                                   "url": pd.base + "/v2/enqueue",
                                                   "routing_key": PD_KEY})  # fmt: skip
    _route(server.admin, f"sites/{site['id']}",
           {"name": "noc mail", "preset": "email", "emails": ["noc@clinic.test"]})  # fmt: skip
    a = server.enroll(site["id"])
    c = server.client(a.token)
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    server.app.alerter.drain(10)
    wd = server.app.watchdog
    t0 = time.time()
    wd.tick(t0)
    if kind == "appliance_silent":
        [inc] = wd.tick(t0 + 32)["raised"]  # 3 × 10 s missed
    else:
        assert wd.tick(t0 + 30)["raised"] == []  # ticks as a running server ticks
        [inc] = wd.tick(t0 + 61)["raised"]  # no evidence from dc01 for over a minute

    def pages() -> list[tuple[str, str]]:
        got = [(b["event_action"], b["dedup_key"]) for b in pd.bodies()]
        return [g for g in got if g[1] == inc]

    assert _wait(lambda: pages() == [("trigger", inc)] and _mails(box, inc.encode()), 15)

    # the subject comes back: the watchdog resolves it, and the page closes
    time.sleep(1.1)
    if kind == "appliance_silent":
        assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
        at = t0 + 41
    else:
        r = c.post("/api/v1/evidence", json={"envelopes": [a.envelope(host_id="dc01")],
                                             "log_size_seen": 0})  # fmt: skip
        assert r.status_code == 200, r.text
        at = t0 + 62
    assert wd.tick(at)["resolved"] == [inc]
    queued = {(d["route_name"], d["event"]) for d in _deliveries(server, incident=inc)}
    assert ("pager", "resolve") in queued  # committed with the resolve itself
    assert _wait(lambda: pages() == [("trigger", inc), ("resolve", inc)], 15)
    server.app.alerter.drain(10)
    assert wd.tick(at + 1)["resolved"] == []  # a later tick sends nothing more
    server.app.alerter.drain(10)
    time.sleep(0.3)
    assert pages() == [("trigger", inc), ("resolve", inc)]
    assert "payload" not in [b for b in pd.bodies() if b["dedup_key"] == inc][1]
    assert pd.bodies()[-1]["routing_key"] == PD_KEY
    assert len(_mails(box, inc.encode())) == 1  # the trigger; mail hears no follow-up
    rows = _deliveries(server, incident=inc)
    assert sorted((d["route_name"], d["event"], d["state"]) for d in rows) == [
        ("noc mail", "trigger", "sent"), ("pager", "resolve", "sent"),
        ("pager", "trigger", "sent")]  # fmt: skip
