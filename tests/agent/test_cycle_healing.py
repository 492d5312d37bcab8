"""The cycle's healing wiring against a fake Central Command and the lab WS-Man host: the policy
comes from the check-in (rules refused loudly, an empty enabled list runs nothing), transports
live in memory and close when their target changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from osiris_agent.cycle import CycleReport
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
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


def test_scan_cadence_comes_from_config(srv, tmp_path) -> None:
    """``agent.scan_interval_s`` sets every check's cadence; unset, the catalogue's applies."""
    a = make_agent(srv, tmp_path / "a", scan_self=False)
    b = make_agent(srv, tmp_path / "b", "[agent]\nscan_interval_s = 120\n", scan_self=False)
    try:
        assert a.cfg.agent.scan_interval_s is None
        assert (a.scanner.interval("linux_ssh"), a.scanner.interval("linux_patching")) == (
            300, 3600,
        )  # fmt: skip
        assert {b.scanner.interval(c) for c in b.catalog.checks} == {120}
    finally:
        a.close()
        b.close()


def test_reseller_mode_emits_every_bundle_including_healing(srv, lab, tmp_path) -> None:
    """Every bundle the cycle signs — check results, scanner changes, L1 heals, snapshots —
    also reaches the reseller's syslog (real UDP receiver) and webhook (real HTTP receiver)."""
    import json
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from osiris_core.evidence import bundle_hash

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    hooks: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            hooks.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    web = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    host, server = lab
    srv.state.targets = [_target(server)]
    srv.state.runbooks = {"enabled": ["RB-WIN-FIREWALL-001"], "disabled": []}
    host.inject("firewall_off")
    extra = (
        '[deployment]\nmode = "reseller"\nreseller_id = "rs-9"\n'
        f'[reseller]\nsyslog_target = "udp://127.0.0.1:{udp.getsockname()[1]}"\n'
        f'webhook_url = "http://127.0.0.1:{web.server_address[1]}/hook"\n'
    )
    a = make_agent(srv, tmp_path / "s", extra, scan_interval_s=0, scan_self=False)
    try:
        a.cycle()
        signed = {bundle_hash(e["bundle"]): e["bundle"] for e in a.outbox.envelopes()}
        assert any(b["tier"] == "L1" and b["outcome"] == "healed" for b in signed.values())
        msgs: list[str] = []
        try:
            while True:
                msgs.append(udp.recv(65536).decode())
        except TimeoutError:
            pass
    finally:
        a.close()
        web.shutdown()
        udp.close()
    assert {h["bundle_hash"] for h in hooks} == set(signed)
    assert all(h["reseller_id"] == "rs-9" for h in hooks)
    for h in signed:
        assert sum(h in m for m in msgs) == 1, f"{signed[h]['tier']} bundle not in syslog"
    assert len(msgs) == len(signed)


def test_server_cannot_downgrade_a_production_appliance_to_lab_transport(tmp_path) -> None:
    """A credential marked lab at the server relaxes transport security only on a lab appliance:
    otherwise whoever edits a credential could send a domain password over plain HTTP."""
    target = {
        "host_id": "dc01", "kind": "winrm", "address": "dc01.clinic.example", "port": 5986,
        "lab": True, "username": "Administrator", "password": "pw", "private_key": None,
        "host_key_fingerprints": [], "use_tls": False, "verify_tls": False,
    }  # fmt: skip
    with FakeCentral() as srv:
        prod = make_agent(srv, tmp_path / "prod", extra_toml="[agent]\nlab = false\n")
        prod._apply_targets([dict(target)])
        (t,) = prod.targets
        assert t.lab is False and t.auth == "ntlm"
        lab = make_agent(srv, tmp_path / "lab")
        lab._apply_targets([dict(target)])
        assert lab.targets[0].lab is True and lab.targets[0].auth == "basic"
