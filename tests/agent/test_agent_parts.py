"""Each part of the agent does its one job on the shared context, testable on its own
(issue 12 item 4): the flush, the order actions, the check-in's status block, the policy keeper
and the run loop's request file. Real state dirs, a real outbox and a real (fake-central) HTTP
server; nothing of ours is mocked."""

from __future__ import annotations

import stat

import pytest

from osiris_agent.checkin import CheckIn
from osiris_agent.context import AgentContext, CycleReport
from osiris_agent.flush import Flusher
from osiris_agent.order_actions import ORDER_CHECK, OrderActions, executes
from osiris_agent.orders import OrderOutcome
from osiris_agent.runloop import RUN_REQUEST, request_cycle
from osiris_agent.signed_policy import PolicyKeeper
from tests.agent.fixtures_agent import FakeCentral, make_agent


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def test_flush_with_a_real_outbox_and_a_dead_server_keeps_everything(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        assert isinstance(a, AgentContext)  # the part needs nothing but the context
        flusher = Flusher(a)
        for i in range(3):
            a.record(host_id=a.appliance_id, check="timesync", outcome="compliant",
                     action_taken=f"{i}")  # fmt: skip
        with a.db.tx():
            a.db.add_incident("probe", "high", "an incident waiting for the server", {})
        srv.stop()
        r = CycleReport()
        assert flusher.flush(r) is False  # unreachable: not drained
        assert not r.reachable and r.acked == 0 and r.errors
        assert a.outbox.depth() == 3 and a.outbox.list_entries()[0]["attempts"] >= 1
        assert [i["kind"] for i in a.db.unsent_incidents()] == ["probe"]  # still queued
        srv.start()
        r = CycleReport()
        assert flusher.flush(r) is True and r.reachable and r.acked == 3
        assert a.outbox.depth() == 0 and a.db.unsent_incidents() == []
        assert [i["kind"] for i in srv.state.incidents] == ["probe"]
    finally:
        a.close()


def test_order_actions_name_a_catalogue_check_for_every_fate(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        collected: list[tuple[str | None, list[str] | None]] = []
        acts = OrderActions(a, collect=lambda r, h, only: collected.append((h, only)),
                            refresh=lambda r: None)  # fmt: skip
        real = {"order_id": "o-1", "kind": "run_runbook",
                "params": {"runbook_id": "RB-WIN-FIREWALL-001", "host_id": "dc01"}}  # fmt: skip
        bogus = {"order_id": "o-2", "kind": "run_runbook",
                 "params": {"runbook_id": "RB-NOPE-001", "host_id": "dc01"}}  # fmt: skip
        assert acts.order_fields(OrderOutcome("rejected", "x", real))["check"] == (
            "windows_firewall"
        )
        f = acts.order_fields(OrderOutcome("rejected", "x", bogus))
        assert f["check"] == ORDER_CHECK and f["runbook_id"] is None
        assert not executes(OrderOutcome("deferred", "window", real))
        # collect_evidence asks the appliance's checks to run now, for the order's host.
        order = {"order_id": "o-3", "kind": "collect_evidence",
                 "params": {"host_id": "nobody", "checks": ["timesync"]}}  # fmt: skip
        acts.act(OrderOutcome("compliant", "ok", order, "collect_evidence"), CycleReport())
        assert collected == [("nobody", ["timesync"])]
    finally:
        a.close()


def test_status_block_reports_what_the_last_cycle_stored(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        part = CheckIn(a, PolicyKeeper(a), OrderActions(a, collect=lambda *x: None,
                                                         refresh=lambda r: None))  # fmt: skip
        before = part.status_block()
        assert before["checks"] == [] and before["clock"]["source"] == "unchecked"
        a.cycle()
        after = part.status_block()
        assert [(c["check"], c["status"]) for c in after["checks"]] == [("timesync", "compliant")]
        assert after["seq"] == a.outbox.head()[0] and after["clock"]["ntp_ok"] is True
    finally:
        a.close()


def test_policy_keeper_keeps_the_window_for_an_unknown_time_zone(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        keeper = PolicyKeeper(a)
        window = a.window
        keeper.apply_window({"days": ["mon"], "start": "01:00", "duration_min": 60,
                             "timezone": "Mars/Olympus_Mons"})  # fmt: skip
        assert a.window is window
        keeper.apply_window({"days": ["mon"], "start": "01:00", "duration_min": 99999,
                             "timezone": "UTC"})  # fmt: skip
        assert a.window.days == ("mon",) and a.window.duration_min == 1440  # clamped
    finally:
        a.close()


def test_request_cycle_is_a_private_file(tmp_path) -> None:
    request_cycle(tmp_path)
    p = tmp_path / RUN_REQUEST
    assert p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077 == 0
