"""Issue 16's Done-when: run the demo (its real server, farm and three real agents, as
``osiris demo`` starts them: osiris_lab/demo.py), stop one agent, and see the watchdog's
``appliance_silent`` incident and its alert arrive at a real local SMTP server (aiosmtpd) within
the configured time; start the agent again and see the incident resolved by the watchdog.

The site's threshold is set short through the API (1 missed check-in of the demo's 10 s), the
demo server's watchdog ticks every 5 s (osiris_lab/demo.py WATCHDOG_TICK_S): the alert must be
mailed within 10 s + 5 s + delivery slack of the agent's last check-in.
"""

from __future__ import annotations

import socket
import time
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from osiris_lab.demo import ALERT_TO, CHECKIN_S, WATCHDOG_TICK_S, Demo, Options
from osiris_lab.demo_children import python_cmd

SITE = "northside"
BUDGET_S = CHECKIN_S + WATCHDOG_TICK_S + 20  # threshold + a tick + check-in jitter and delivery


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[float, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append((time.monotonic(), list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox():
    box = _Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()


def _wait(what: str, ok, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ok():
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_stopped_agent_is_noticed_mailed_and_resolved(tmp_path: Path, mailbox, capsys) -> None:
    box, port = mailbox
    opts = Options(data=tmp_path / "demo", linux=False, chaos=False, smtp=f"127.0.0.1:{port}")
    with Demo(opts) as demo:
        demo.start()
        assert f"mailed to {ALERT_TO} via SMTP 127.0.0.1:{port}" in capsys.readouterr().err
        url, token = demo.state.server_url, demo.state.admin_token
        api = httpx.Client(base_url=url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                           timeout=20)  # fmt: skip
        try:
            r = api.patch(f"/sites/{SITE}", json={"watchdog_missed_checkins": 1})
            assert r.status_code == 200, r.text
            appliance = demo.state.appliances[SITE]

            def silent() -> list[dict]:
                rows = api.get("/incidents", params={"site": SITE}).json()["incidents"]
                return [i for i in rows if i["kind"] == "appliance_silent"]

            assert silent() == []
            agent = next(c for c in demo.children if c.name == f"agent-{SITE}")
            agent.stop()
            stopped = time.monotonic()

            def mailed() -> list[bytes]:
                return [m for _, to, m in box.messages
                        if b"appliance_silent" in m and to == [ALERT_TO]]  # fmt: skip

            _wait("the watchdog's alert mail", mailed, BUDGET_S + 30)
            took = min(t for t, _, m in box.messages if b"appliance_silent" in m) - stopped
            assert took <= BUDGET_S, f"alert after {took:.1f} s (budget {BUDGET_S} s)"
            msg = message_from_bytes(mailed()[0])
            assert msg["Subject"].startswith("[osiris] CRITICAL appliance_silent at site northside")
            [inc] = silent()
            assert inc["status"] == "open" and inc["severity"] == "critical"
            assert inc["appliance_id"] == appliance and inc["alerted_at"]
            # the other clinics' agents kept checking in: nothing raised for them
            for other in ("riverside", "hilltop"):
                rows = api.get("/incidents", params={"site": other}).json()["incidents"]
                assert not [i for i in rows if i["kind"] == "appliance_silent"], other
            # the agent comes back: the watchdog resolves the incident, audited
            cfg = demo.write_agent_config(SITE)
            demo.spawn(f"agent-{SITE}", python_cmd("osiris_agent.cli", "run", "--config", str(cfg)))
            back = CHECKIN_S + WATCHDOG_TICK_S + 30
            _wait("the watchdog's resolution", lambda: silent()[0]["status"] == "resolved", back)
            [done] = silent()
            assert done["resolved_by"] == "server:watchdog"
            audit = api.get("/audit", params={"site": SITE, "action": "watchdog.resolve"}).json()
            assert [e["target"] for e in audit["audit"]] == [inc["id"]]
            assert len(mailed()) == 1  # one alert for one silence
        finally:
            api.close()
