"""The cycle's healing wiring against a fake Central Command and the lab WS-Man host: the policy
comes from the check-in (rules refused loudly, an empty enabled list runs nothing), transports
live in memory and close when their target changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from osiris_agent.cycle import CycleReport
from osiris_agent.lab.windows import WindowsLabHost
from osiris_agent.lab.wsman import WsmanLabServer
from tests.agent.fixtures_agent import FakeCentral, make_agent

PW = "Pw-cycle-healing-4c2e"


@pytest.fixture()
def srv() -> Iterator[FakeCentral]:
    with FakeCentral() as s:
        yield s


@pytest.fixture()
def lab() -> Iterator[tuple[WindowsLabHost, WsmanLabServer]]:
    host = WindowsLabHost()
    with WsmanLabServer(handler=host, password=PW) as server:
        yield host, server


def _target(server: WsmanLabServer, password: str = PW) -> dict:
    return {"host_id": "dc01", "kind": "winrm", "address": "127.0.0.1", "port": server.port,
            "lab": True, "username": "Administrator", "password": password,
            "host_key_fingerprints": [], "use_tls": False, "verify_tls": False}  # fmt: skip


def test_empty_enabled_list_runs_nothing(srv, lab, tmp_path) -> None:
    host, server = lab
    srv.state.targets = [_target(server)]
    srv.state.runbooks = {"enabled": [], "disabled": []}
    host.inject("firewall_off")
    a = make_agent(srv, tmp_path / "s", scan_interval_s=0, scan_self=False)
    try:
        r = a.cycle()
        assert r.reachable and a.policy.enabled_runbooks == frozenset()
        assert host.log == []  # not even a detect: the site named no runbook
        assert not [b for b in a.outbox.envelopes() if b["bundle"]["tier"] != "monitor"]
        # Now the server enables the firewall runbook: the same drift is healed.
        srv.state.runbooks = {"enabled": ["RB-WIN-FIREWALL-001"], "disabled": []}
        a.cycle()
        tiers = [(e["bundle"]["tier"], e["bundle"]["outcome"]) for e in a.outbox.envelopes()]
        assert ("L1", "healed") in tiers
        assert all(p["enabled"] for p in host.state["firewall"].values())
    finally:
        a.close()


def test_refused_rules_raise_incident_and_keep_previous(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        assert a.rules == {"version": "7", "rules": []}
        srv.state.rules = [{"id": "R1", "check": "timesync"}]  # signed, but not a valid rule
        a.checkin(CycleReport())
        assert a.rules == {"version": "7", "rules": []}  # kept, not dropped
        kinds = [i["kind"] for i in a.db.unsent_incidents()] + [
            i["kind"] for i in srv.state.incidents
        ]
        assert "rules_refused" in kinds
    finally:
        a.close()


def test_transport_closed_when_credential_rotates(srv, lab, tmp_path) -> None:
    host, server = lab
    srv.state.targets = [_target(server)]
    a = make_agent(srv, tmp_path / "s", scan_self=False)
    try:
        a.checkin(CycleReport())
        first = a.transport_for("dc01")
        assert a.transport_for("dc01") is first  # opened once, reused
        a.checkin(CycleReport())
        assert a.transport_for("dc01") is first  # same target: kept
        srv.state.targets = [_target(server, "Pw-rotated-91")]
        a.checkin(CycleReport())
        assert "dc01" not in a._transports  # closed on change
        second = a.transport_for("dc01")
        assert second is not first and second.target.password == "Pw-rotated-91"
        srv.state.targets = []
        a.checkin(CycleReport())
        assert a._transports == {}
    finally:
        a.close()
