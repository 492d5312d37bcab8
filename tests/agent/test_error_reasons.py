"""Issue 13: a check that could not run says why — against the real WS-Man lab server.

A wrong password, a closed port and a script that prints no result each become status
``error`` with one reason word, and the evidence the scanner signs records it as
``post_state.error = {"kind", "detail"}`` with the catalogue's outcome ``failed`` — never a
secret, never a pass.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from osiris_agent.checkin import result_reason
from osiris_agent.healing.engine import Policy
from osiris_agent.healing.executor import Executor, error_record, parse_output, split_error
from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_agent.scanner import Scanner
from osiris_core.catalog import load_catalog
from osiris_core.evidence import OUTCOMES
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.agent.test_scanner import Sink

CAT = load_catalog()
T0 = datetime(2025, 4, 15, 14, 0, tzinfo=UTC)
SECRET = "Right-Pw-77c1"
RUNBOOKS = frozenset({"RB-WIN-FIREWALL-001", "RB-WIN-SEC-001"})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server() -> Iterator[WsmanLabServer]:
    with WsmanLabServer(handler=WindowsLabHost(CAT), password=SECRET) as srv:
        yield srv


def _transport(port: int, password: str) -> WinrmTransport:
    t = Target(
        host_id="dc01", kind="winrm", address="127.0.0.1", port=port,
        username="Administrator", password=password, lab=True, use_tls=False, auth="basic",
    )  # fmt: skip
    return WinrmTransport(t, backoff_s=0.01, retries=1)


def test_wrong_password_is_auth_and_the_bundle_records_it(server) -> None:
    tr = _transport(server.port, "wrong-pw-0000")
    sink = Sink()
    policy = Policy(enabled_runbooks=RUNBOOKS)
    sc = Scanner(CAT, lambda h: tr, sink)
    try:
        (f,) = sc.run([tr.target], T0, policy)
        assert f.status == "error" and split_error(f.error)[0] == "auth"
        (b,) = sink.bundles
        assert b["outcome"] == "failed" and b["outcome"] in OUTCOMES and b["tier"] == "monitor"
        err = b["post_state"]["error"]
        assert err["kind"] == "auth" and "refused" in err["detail"]
        assert sorted(err["checks"]) == sorted({CAT.runbook(r).check for r in RUNBOOKS})
        assert "wrong-pw-0000" not in json.dumps(b) and SECRET not in json.dumps(b)
        assert {s["status"] for s in sc.states("dc01").values()} == {"error"}
        # a second failing cycle signs nothing new: evidence on change only
        sc.run([tr.target], T0, policy)
        assert len(sink.bundles) == 1
    finally:
        tr.close()
        sc.close()


def test_closed_port_is_unreachable(server) -> None:
    tr = _transport(_closed_port(), SECRET)
    ex = Executor(CAT, lambda h: tr, timeout_s=10)
    try:
        pr = ex.run_phase("dc01", CAT.runbook("RB-WIN-FIREWALL-001"), "detect", {})
    finally:
        tr.close()
    assert (pr.status, pr.reason) == ("error", "unreachable")
    assert pr.state()["error"]["kind"] == "unreachable"
    assert result_reason({"RB-WIN-FIREWALL-001": {"error": error_record(pr.error or "")}}) == (
        "unreachable"
    )


def test_script_errors_say_so_and_an_older_text_still_reads() -> None:
    assert parse_output("detect", 0, "not json", "").reason == "no_result"
    pr = parse_output("detect", 1, '{"status": "error", "observed": {"error": "boom"}}', "")
    assert (pr.reason, pr.state()["error"]) == ("script", {"kind": "script", "detail": "boom"})
    assert split_error("transport: no route to host") == ("unreachable", "no route to host")
    assert split_error("something odd") == ("script", "something odd")
    assert split_error(None) is None
