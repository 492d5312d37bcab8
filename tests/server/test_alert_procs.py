"""Two real ``osiris-server serve`` processes share one alert-delivery queue (issue 16): on one
SQLite data dir and on one PostgreSQL database, with one real receiver on loopback that fails
its first deliveries, one incident reaches each route exactly once per event — the trigger to
a Slack and a PagerDuty route, then PagerDuty's resolve — however the retries fall between the
processes (each claims with a lease, ``db/lease.py``; ``tests/server/test_alert_routing.py``
has the two-``App``-objects version)."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Server
from tests.server.serverproc import ServerProc, run_cli
from tests.server.test_alert_queue import _wait
from tests.server.test_alert_routing import PD_KEY, SLACK_TOKEN, Receiver, _route

FAIL_FIRST = 3
TOML = (
    "watchdog_tick_s = 0\nrequest_log = false\nallow_private_webhooks = true\n"
    "alert_poll_s = 0.05\nalert_retry_base_s = 1\nalert_retry_cap_s = 1\nalert_max_attempts = 8\n"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path):
    a_dir = tmp_path / "host-a"
    args = ["init", "--data", str(a_dir), "--json"]
    if request.param == "postgresql":
        args += ["--db", request.getfixturevalue("pg_cluster").create_database("alerts")]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    with open(a_dir / "server.toml", "a") as f:
        f.write(TOML)
    b_dir = a_dir  # SQLite: two processes on one data dir (as gunicorn workers are)
    if request.param == "postgresql":  # a second host: same server.toml and keys, own data dir
        b_dir = tmp_path / "host-b"
        b_dir.mkdir(mode=0o700)
        shutil.copy2(a_dir / "server.toml", b_dir / "server.toml")
        shutil.copytree(a_dir / "keys", b_dir / "keys")
    procs = [ServerProc(a_dir), ServerProc(b_dir, logs=tmp_path)]
    try:
        yield procs, info
    finally:
        for p in procs:
            p.stop()


def _server(proc: ServerProc, info: dict) -> Server:
    return Server(url=proc.url, app=None, data=proc.data, admin_token=info["admin_token"],
                  init=info)  # type: ignore[arg-type]  # fmt: skip


def test_two_server_processes_deliver_each_route_and_event_once(two_servers) -> None:
    (a_srv, b_srv), info = two_servers
    a, b = _server(a_srv, info), _server(b_srv, info)
    hook = Receiver(fail_first=FAIL_FIRST)
    try:
        site = a.site("Clinic")
        ap = a.enroll(site["id"])  # before the routes: its enrolment alert goes nowhere
        scope = f"sites/{site['id']}"
        chat = {"name": "chat", "preset": "slack", "url": hook.base + "/services/" + SLACK_TOKEN}
        pager = {"name": "pager", "preset": "pagerduty", "url": hook.base + "/pd/v2/enqueue",
                 "routing_key": PD_KEY}  # fmt: skip
        _route(b.admin, scope, chat)
        _route(a.admin, scope, pager)
        one = {"kind": "ransomware", "severity": "critical", "summary": "files renamed"}
        r = httpx.post(b_srv.url + "/api/v1/incidents", json={"incidents": [one]},
                       headers={"Authorization": f"Bearer {ap.token}"})  # fmt: skip
        assert r.status_code == 201, r.text
        inc = r.json()["incidents"][0]["id"]

        def delivered() -> Counter:
            """(route, event) of every POST the receiver answered 200 (all after the first
            FAIL_FIRST, which it failed)."""
            got: Counter = Counter()
            for p in hook.posts[FAIL_FIRST:]:
                body = json.loads(p["raw"])
                if p["path"].startswith("/pd/"):
                    assert body["dedup_key"] == inc and body["routing_key"] == PD_KEY
                    got["pager", body["event_action"]] += 1
                else:
                    got["chat", "trigger"] += 1
            return got

        def states() -> dict[tuple[str, str], dict]:
            rows = a.admin.get("/api/v1/alerts/deliveries", params={"incident": inc}).json()
            return {(d["route_name"], d["event"]): d for d in rows["deliveries"]}

        want = {("chat", "trigger"), ("pager", "trigger")}
        assert _wait(lambda: {k for k, d in states().items() if d["state"] == "sent"} == want, 30)
        r = a.admin.post(f"/api/v1/incidents/{inc}/resolve", json={"note": "restored"})
        assert r.status_code == 200, r.text
        want.add(("pager", "resolve"))
        assert _wait(lambda: {k for k, d in states().items() if d["state"] == "sent"} == want, 30)
        time.sleep(2.5)  # both processes polled many times more, past a retry delay
        assert delivered() == Counter({k: 1 for k in want})  # each route and event once
        assert len(hook.posts) == FAIL_FIRST + len(want)  # nothing beyond the failures re-sent
        rows = states()
        assert set(rows) == want
        assert sum(int(d["attempts"]) for d in rows.values()) == FAIL_FIRST + len(want)
        assert any(int(d["attempts"]) > 1 for d in rows.values())  # the failures were retried
        for p in (a_srv, b_srv):
            assert "Traceback" not in p.stderr()
    finally:
        hook.close()
        for s in (a, b):
            for c in s.clients:
                c.close()
