"""Signed orders through a real check-in: forged, expired, replayed, out-of-window, accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from osiris_agent.cycle import CycleReport
from osiris_core.keys import Signer
from osiris_core.release import make_release, sign_release
from tests.agent.fixtures_agent import FakeCentral, make_agent


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def _order_bundles(agent) -> list[dict]:
    return [e["bundle"] for e in agent.outbox.envelopes() if e["bundle"]["tier"] == "order"]


def test_outcomes(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    forged = srv.queue_order("refresh_rules", {}, signer=Signer.generate(srv.state.orders_key.name))
    old = datetime.now(UTC) - timedelta(hours=1)
    expired = srv.queue_order("collect_evidence", {}, ttl_s=60, now=old)
    good = srv.queue_order("collect_evidence", {"checks": ["timesync"]})
    runbook = srv.queue_order("run_runbook", {"runbook_id": "RB-TIME-001", "host_id": "h1"})
    real = srv.queue_order("run_runbook", {"runbook_id": "RB-WIN-FIREWALL-001", "host_id": "h1"})
    # issue 16: an update whose release no pinned key signed is refused (was: unsupported kind)
    system = "/nix/store/" + "a" * 32 + "-osiris-1.2.3"
    rogue = sign_release(make_release(system, "x", version="1.2.3"), Signer.generate("rogue"))
    update = srv.queue_order(
        "update_agent", {"version": "1.2.3", "system": system, "release": rogue}
    )
    disruptive = srv.queue_order("run_runbook", {"runbook_id": "RB-X-001", "host_id": "h1"},
                                 disruptive=True)  # fmt: skip
    a.checkin(CycleReport())
    srv.state.pending_orders.append(good)  # the server (or an attacker) replays it
    a.checkin(CycleReport())
    by_id: dict[str, list[str]] = {}
    for b in _order_bundles(a):
        by_id.setdefault(b["order_id"], []).append(b["outcome"])
    oid = lambda e: e["order"]["order_id"]  # noqa: E731
    assert by_id[oid(forged)] == ["rejected"]
    assert by_id[oid(expired)] == ["expired"]
    assert by_id[oid(good)] == ["compliant", "rejected"]  # then replay
    assert by_id[oid(runbook)] == ["rejected"]  # not a catalogue runbook: nothing runs
    # A catalogue runbook goes through the executor's guards: this site has not enabled it.
    assert by_id[oid(real)] == ["alert"]
    assert by_id[oid(update)] == ["rejected"]
    assert by_id[oid(disruptive)] == ["deferred"]  # window days = [] -> never open
    reasons = {b["order_id"]: b["action_taken"] for b in _order_bundles(a)}
    assert "could not be run here" in reasons[oid(runbook)]
    assert "release signed by an unknown key" in reasons[oid(update)]
    assert "disabled for this site" in reasons[oid(real)]
    checks_of = {b["order_id"]: b["check"] for b in _order_bundles(a)}
    assert checks_of[oid(real)] == "windows_firewall"  # the runbook's catalogue check
    assert checks_of[oid(forged)] == "evidence_pipeline"  # no runbook: the agent's pipeline
    # collect_evidence really ran the check now: a timesync bundle follows the order bundle.
    checks = [e["bundle"]["check"] for e in a.outbox.envelopes()]
    assert "timesync" in checks
    assert a.orders.deferred_count() == 1


def test_deferred_order_runs_when_window_opens_or_expires(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    d1 = srv.queue_order("collect_evidence", {}, disruptive=True)
    d2 = srv.queue_order("collect_evidence", {}, disruptive=True, ttl_s=60)
    a.checkin(CycleReport())
    assert a.orders.deferred_count() == 2
    # The window opens now (all days, starting this minute, 60 min).
    now = datetime.now(UTC)
    srv.state.window = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": now.strftime("%H:%M"), "duration_min": 60,
                        "timezone": "UTC"}  # fmt: skip
    a.checkin(CycleReport())
    # d2 has already expired by the time the window is checked (pretend 2 minutes pass).
    a.now = lambda: now + timedelta(minutes=2)
    a._due_orders(CycleReport())
    outcomes = {b["order_id"]: b["outcome"] for b in _order_bundles(a)}
    assert outcomes[d1["order"]["order_id"]] == "compliant"
    assert outcomes[d2["order"]["order_id"]] == "expired"
    assert a.orders.deferred_count() == 0


def test_replay_guard_survives_restart(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    env = srv.queue_order("refresh_rules", {})
    a.checkin(CycleReport())
    a.close()
    b = make_agent(srv, tmp_path / "s")
    srv.state.pending_orders.append(json.loads(json.dumps(env)))
    b.checkin(CycleReport())
    outs = [x["outcome"] for x in _order_bundles(b) if x["order_id"] == env["order"]["order_id"]]
    assert outs[0] == "compliant" and outs[-1] == "rejected"
