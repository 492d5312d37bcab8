"""The server's timer promotes learned rules (issue 16): a canary rule whose soak ended goes to
the fleet on the watchdog thread's tick, with its ``learning.fleet`` audit row written then —
not only when some canary site happens to check in — and several server processes promote it
once, with one audit row.

Real parts: real servers over loopback HTTP, their own watchdog threads (``watchdog_tick_s``
small), signed L2 outcome bundles from enrolled appliances, the signed rule set verified as the
agent verifies it. Both engines (``--db-engine=postgresql``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from osiris_server import learning
from osiris_server.app import init_data
from osiris_server.db import learning as db_learning
from tests.server.conftest import Server, start_server, stop_server
from tests.server.test_alert_queue import _wait
from tests.server.test_learning import _candidates, _fleet, _l2, _post, _rules


def _candidate(server: Server) -> tuple[str, list[Any]]:
    """Three sites; a candidate from sites a and b (10/10 healed)."""
    fleet = _fleet(server)
    a, b, _c = fleet
    _post(server, a, [_l2(a) for _ in range(5)])
    _post(server, b, [_l2(b) for _ in range(5)])
    (row,) = _candidates(server, "candidate")
    return row["id"], fleet


def _approve(server: Server, cid: str, site_id: str, soak_s: int) -> None:
    r = server.admin.post(
        f"/api/v1/learning/candidates/{cid}/approve",
        json={"canary_sites": [site_id], "soak_s": soak_s},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canary"


def _fleet_audit(server: Server, cid: str) -> list[dict[str, Any]]:
    rows = server.admin.get("/api/v1/audit", params={"limit": 200}).json()["audit"]
    return [x for x in rows if x["target"] == cid and x["action"] == "learning.fleet"]


def _checkins(server: Server) -> int:
    return int(server.app.db.scalar("SELECT COUNT(*) FROM appliances WHERE last_seen_epoch > 0"))


def test_the_tick_promotes_a_soaked_canary_rule_with_no_checkin(server_factory: Any) -> None:
    server = server_factory(watchdog_tick_s=0.2)
    cid, (a, _b, c) = _candidate(server)
    _approve(server, cid, c.site_id, soak_s=1)
    seen_before = _checkins(server)
    # nobody checks in: only the server's own timer can move it
    assert _wait(lambda: [r["id"] for r in _candidates(server, "fleet")] == [cid], 20)
    assert _checkins(server) == seen_before  # no check-in happened meanwhile
    [audit] = _fleet_audit(server, cid)
    assert audit["actor"] == "server" and audit["detail"]["soak_s"] == 1
    time.sleep(1.0)  # several more ticks: still one audit row
    assert len(_fleet_audit(server, cid)) == 1
    # the next check-in of a site outside the canary receives it in its signed rule set
    ids_a, _ = _rules(server, a)
    assert cid in ids_a


def test_a_canary_rule_still_soaking_is_left_alone(server_factory: Any) -> None:
    server = server_factory(watchdog_tick_s=0)
    cid, (a, _b, c) = _candidate(server)
    _approve(server, cid, c.site_id, soak_s=3600)
    assert learning.tick(server.app) == []
    assert [r["id"] for r in _candidates(server, "canary")] == [cid]
    assert _fleet_audit(server, cid) == []
    ids_a, _ = _rules(server, a)
    assert cid not in ids_a
    # once soaked (the clock moved on), the tick moves it
    server.index_sql("UPDATE learning_patterns SET soak_s = 0 WHERE id = ?", [cid])
    assert learning.tick(server.app) == [cid]
    assert learning.tick(server.app) == []  # nothing left in canary
    ids_a, _ = _rules(server, a)  # this process invalidated its rule sets itself
    assert cid in ids_a


def test_a_canary_failure_keeps_it_out_of_the_fleet_on_the_tick(server_factory: Any) -> None:
    server = server_factory(watchdog_tick_s=0)
    cid, (_a, _b, c) = _candidate(server)
    _approve(server, cid, c.site_id, soak_s=0)
    fail = c.envelope(check="linux_accounts", host_id="srv01", tier="L1",
                      runbook_id="LIN-ACCT-002", outcome="failed",
                      action_taken=f"L1 rule {cid}: remediated")  # fmt: skip
    assert _post(server, c, [fail]) == ["accepted"]
    assert learning.tick(server.app) == []
    assert [r["id"] for r in _candidates(server, "canary")] == [cid]


def test_two_servers_advancing_together_promote_once(tmp_path: Path, db_url: str | None) -> None:
    data_a = tmp_path / "a"
    info = init_data(data_a, "test.osiris/osiris/log", db_url)
    data_b = data_a if db_url is None else tmp_path / "b"
    if db_url is not None:
        shutil.copytree(data_a, data_b)
    apps = [start_server(d, watchdog_tick_s=0) for d in (data_a, data_b)]
    servers = [Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
               for (app, _s, u), d in zip(apps, (data_a, data_b), strict=True)]  # fmt: skip
    try:
        cid, (_a, _b, c) = _candidate(servers[0])
        _approve(servers[1], cid, c.site_id, soak_s=0)
        # both read the canary rows before either writes: the stale read of two processes
        stale = [db_learning.patterns(s.app.db, ("canary",)) for s in servers]
        assert [r["id"] for r in stale[0]] == [r["id"] for r in stale[1]] == [cid]
        first = learning.advance_due(servers[1].app, stale[1])
        second = learning.advance_due(servers[0].app, stale[0])
        assert first == [cid] and second == []
        assert [learning.tick(s.app) for s in servers] == [[], []]
        [audit] = _fleet_audit(servers[0], cid)
        assert audit["actor"] == "server"
        assert [r["id"] for r in _candidates(servers[0], "fleet")] == [cid]
    finally:
        for s in servers:
            for cl in s.clients:
                cl.close()
        for app, srv, _u in apps:
            stop_server(app, srv)


def test_two_servers_ticking_on_their_threads_write_one_audit_row(
    tmp_path: Path, db_url: str | None
) -> None:
    data_a = tmp_path / "a"
    info = init_data(data_a, "test.osiris/osiris/log", db_url)
    data_b = data_a if db_url is None else tmp_path / "b"
    if db_url is not None:
        shutil.copytree(data_a, data_b)
    apps = [start_server(d, watchdog_tick_s=0.05) for d in (data_a, data_b)]
    servers = [Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
               for (app, _s, u), d in zip(apps, (data_a, data_b), strict=True)]  # fmt: skip
    try:
        cid, (a, _b, c) = _candidate(servers[0])
        _approve(servers[0], cid, c.site_id, soak_s=1)
        assert _wait(lambda: bool(_candidates(servers[1], "fleet")), 20)
        time.sleep(1.0)  # both threads ticked many times more
        assert len(_fleet_audit(servers[1], cid)) == 1
        ids_a, _ = _rules(servers[1], a)  # the other process's rule sets have it too
        assert cid in ids_a
    finally:
        for s in servers:
            for cl in s.clients:
                cl.close()
        for app, srv, _u in apps:
            stop_server(app, srv)
