"""The alert queue is durable and shared: an alert is a row written with its incident, sent
once by one of several servers, and not lost by a server killed -9 before it sent it.

Real pieces only: aiosmtpd on loopback as the mail server, a loopback TCP listener that never
answers as a mail server that hangs, real server processes, real SIGKILL, both engines (two
``App`` instances on one SQLite data directory, as gunicorn workers; or on one PostgreSQL
database from two data directories, as two hosts)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from osiris_server.alerts import SmtpConfig
from osiris_server.app import init_data
from osiris_server.db import alert_queue
from tests.server.conftest import Server, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.osiris/osiris/log"
_INCIDENT_LINE = re.compile(rb"Incident (inc_[0-9a-f]+)")


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"

    def incidents(self) -> list[str]:
        return [
            m.group(1).decode() for msg in self.messages for m in [_INCIDENT_LINE.search(msg)] if m
        ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mailbox() -> Any:
    box = _Mailbox()
    port = _free_port()
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
                timeout=5,
            ),
        )
    finally:
        ctl.stop()


def _wait(cond: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _critical(server: Server, token: str, kind: str) -> str:
    r = server.client(token).post(
        "/api/v1/incidents",
        json={"incidents": [{"kind": kind, "severity": "critical", "summary": f"{kind} seen"}]},
    )
    assert r.status_code == 201, r.text
    return r.json()["incidents"][0]["id"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_servers_on_one_database_send_each_alert_once(
    engine: str, mailbox: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    box, smtp = mailbox
    url = request.getfixturevalue("pg_url") if engine == "postgresql" else None
    first = tmp_path / "host-a"
    info = init_data(first, ORIGIN, url)
    if url is None:
        second = first  # two workers of one data directory
    else:
        second = tmp_path / "host-b"  # another host: its own copy of keys and server.toml
        shutil.copytree(first, second)
    apps = [start_server(d, smtp=smtp) for d in (first, second)]
    servers = [
        Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
        for (app, _srv, u), d in zip(apps, (first, second), strict=True)
    ]
    try:
        for app, _srv, _u in apps:
            app.alerter.poll_s = 0.01  # both pollers race for every row
        site = servers[0].site()
        fleet = [servers[k % 2].enroll(site["id"], f"ap{k}") for k in range(4)]  # 4 alerts
        expected = {
            _critical(servers[(k + i) % 2], a.token, f"ransomware_{k}_{i}")
            for k, a in enumerate(fleet)
            for i in range(3)
        }
        total = len(expected) + len(fleet)
        assert _wait(lambda: len(box.messages) >= total)
        for app, _srv, _u in apps:
            app.alerter.drain(10)
        time.sleep(0.5)  # a duplicate would have had time to arrive
        sent = box.incidents()
        assert len(sent) == total == len(set(sent))  # every alert once, by one of the servers
        assert expected <= set(sent)
        db = apps[0][0].db
        for incident_id in sent:
            rows = alert_queue.for_incident(db, incident_id)
            assert len(rows) == 1 and rows[0]["sent_epoch"] is not None
            assert rows[0]["attempts"] == 1
        claimers = {r["claimed_by"] for r in db.query("SELECT claimed_by FROM alert_queue")}
        print(f"{total} alerts, sent by {len(claimers)} process(es)")
    finally:
        for s in servers:
            for c in s.clients:
                c.close()
        for app, srv, _u in apps:
            stop_server(app, srv)


# ---------------------------------------------------------------- kill -9 before sending

_CHILD = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
from osiris_server.alerts import SmtpConfig
from osiris_server.app import App
from osiris_server.serve import make_server
data, port = sys.argv[2], int(sys.argv[3])
smtp = SmtpConfig(host="127.0.0.1", port=port, starttls=False, recipients=["noc@x.test"],
                  timeout=60)
app = App.open(data, smtp=smtp, request_log=False, checkpoint_interval_s=0.0)
app.alerter.lease_s = 2  # short, so the test need not wait minutes for the lease to run out
srv = make_server(app, "127.0.0.1", 0, max_body_bytes=app.cfg.max_body_bytes)
print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
srv.serve_forever(poll_interval=0.05)
"""


class _SilentMailServer:
    """Accepts SMTP connections and never says a word: the sender hangs in the greeting."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.sock.close()
        for c in self._held:
            c.close()


def test_a_server_killed_before_sending_loses_no_alert(
    mailbox: Any, tmp_path: Path, db_url: str | None
) -> None:
    box, smtp = mailbox
    data = tmp_path / "d"
    info = init_data(data, ORIGIN, db_url)
    silent = _SilentMailServer()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(ROOT), str(data), str(silent.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://"), child.stderr.read() if child.stderr else ""
        doomed = Server(url=url, app=None, data=data, admin_token=info["admin_token"], init=info)  # type: ignore[arg-type]
        site = doomed.site()
        a = doomed.enroll(site["id"])  # the enrolment alert: claimed, hangs on the mail server
        incident = _critical(doomed, a.token, "ransomware_suspected")  # committed, not sent
        assert silent.connected.wait(20)  # the child is inside its delivery now
        for c in doomed.clients:
            c.close()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        silent.close()
    assert box.messages == []
    # another server (or the same one restarted) on the same data sends both, once each
    app, srv, _u = start_server(data, smtp=smtp)
    try:
        app.alerter.poll_s = 0.05
        assert _wait(lambda: len(box.messages) >= 2, timeout=30)  # after the 2 s lease
        app.alerter.drain(10)
        time.sleep(0.3)
        sent = box.incidents()
        assert len(sent) == 2 == len(set(sent)) and incident in sent
        (enrolled,) = set(sent) - {incident}
        attempts = {}
        for incident_id in sent:
            (row,) = alert_queue.for_incident(app.db, incident_id)
            assert row["sent_epoch"] is not None and row["claimed_by"] == app.alerter.claimer
            attempts[incident_id] = row["attempts"]
        # the enrolment alert was claimed by the killed server (in flight at the kill) and sent
        # after its lease ran out; the incident's was committed and never claimed before the kill
        assert attempts == {enrolled: 2, incident: 1}
    finally:
        stop_server(app, srv)


def test_a_failed_alert_is_retried_later_not_dropped(tmp_path: Path, db_url: str | None) -> None:
    """Every channel down: the alert stays queued with its error and a retry time; a mail
    server that comes back gets it on the retry."""
    data = tmp_path / "d"
    info = init_data(data, ORIGIN, db_url)
    port = _free_port()  # nothing listens yet
    smtp = SmtpConfig(
        host="127.0.0.1", port=port, starttls=False, recipients=["n@x.test"], timeout=2
    )
    app, srv, url = start_server(data, smtp=smtp)
    server = Server(url=url, app=app, data=data, admin_token=info["admin_token"], init=info)
    box = _Mailbox()
    ctl: Controller | None = None
    try:
        site = server.site()
        server.enroll(site["id"])
        app.alerter.drain(10)
        assert app.alerter.failed == 1 and app.alerter.sent == 0
        (row,) = app.db.query("SELECT * FROM alert_queue")
        assert row["sent_epoch"] is None and row["attempts"] == 1 and row["claimed_by"] is None
        assert "email" in row["last_error"] and row["claimed_until"] > time.time() + 20
        ctl = Controller(box, hostname="127.0.0.1", port=port)
        ctl.start()
        with app.db.write() as w:  # as if the 30 s backoff had passed
            w.execute("UPDATE alert_queue SET claimed_until = 0")
        app.alerter.kick()
        assert _wait(lambda: len(box.messages) == 1)
        app.alerter.drain(10)
        (row,) = app.db.query("SELECT * FROM alert_queue")
        assert row["sent_epoch"] is not None and row["attempts"] == 2
    finally:
        for c in server.clients:
            c.close()
        stop_server(app, srv)
        if ctl is not None:
            ctl.stop()
