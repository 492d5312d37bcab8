"""The Drift tab and `osiris appliance drift` from real signed evidence on a real server.

An enrolled appliance posts a chain that tells a story per (host, check) — drift, failed and
escalated healing, a heal, a check that could not run, an order that expired — and the view
computed from `GET /evidence` must tell the same story. Own server, so the shared one keeps its
exact fleet for the other tests.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from osiris_core.canonical import format_time
from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.drift import drift_rows, fetch_chain_tail
from tests.tui.conftest import BIN, start
from tests.tui.seed import check

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def t(minutes: int) -> str:
    return format_time(T0 + timedelta(minutes=minutes))


def b(minute: int, host: str, chk: str, outcome: str, tier: str = "monitor", **kw) -> dict:
    return {"host_id": host, "check": chk, "outcome": outcome, "tier": tier,
            "started_at": t(minute), "finished_at": t(minute), **kw}  # fmt: skip


FW_OFF = {"observed": {"enabled": False}, "expected": {"enabled": True}}
FW_ON = {"observed": {"enabled": True}, "expected": {"enabled": True}}

STORY = [
    b(0, "dc01", "windows_firewall", "compliant", pre_state=FW_ON),  # seq 1
    b(10, "dc01", "windows_firewall", "alert", pre_state=FW_OFF),  # 2: drift since 10
    b(11, "dc01", "windows_firewall", "failed", "L1", runbook_id="RB-WIN-FIREWALL-001",
      pre_state=FW_OFF, post_state=FW_OFF),  # 3: attempt 1
    b(12, "dc01", "windows_firewall", "escalated", "L2", runbook_id="RB-WIN-FIREWALL-001"),  # 4
    b(13, "dc01", "windows_firewall", "expired", "order", runbook_id="RB-WIN-FIREWALL-001"),  # 5
    b(20, "dc01", "bitlocker", "alert", pre_state={"observed": {"on": False}}),  # 6
    b(21, "dc01", "bitlocker", "healed", "L1", runbook_id="RB-WIN-ENCRYPTION-001",
      post_state={"status": "compliant", "observed": {"on": True}, "expected": {"on": True}}),
    b(30, "fs01", "audit_policy", "failed", action_taken="winrm timeout"),  # 8: error
    b(40, "dc01", "evidence_pipeline", "alert", post_state={"counts": {"drift": 1}}),  # 9
    b(50, "fs01", "audit_policy", "failed"),  # 10: still error, since stays 30
    b(52, "dc01", "bitlocker", "compliant", pre_state={"observed": {"on": True}}),  # 11
]  # fmt: skip


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    proc, srv = start(tmp_path_factory.mktemp("drift-server"))
    try:
        srv.site("Drift Clinic", "driftclinic")
        a = srv.enroll("driftclinic", "drift-app")
        # the story's hosts have credentials at the site (issue 13: a host whose credential
        # was deleted leaves the drift view, so a view of them needs them to exist)
        with srv.admin() as h:
            for host in ("dc01", "fs01", "ws09"):
                r = h.post("/api/v1/sites/driftclinic/credentials", json={
                    "host_id": host, "kind": "winrm", "address": "127.0.0.1", "port": 5985,
                    "lab": True, "use_tls": False, "verify_tls": False,
                    "username": "Administrator", "password": "pw-drift-story",
                })  # fmt: skip
                assert r.status_code == 201, r.text
        a.send_bundles(STORY)
        a.checkin([check("ws09", "windows_firewall", "drift", t(55))])  # no evidence yet
        yield srv, a
    finally:
        proc.terminate()
        proc.wait(10)


def by_pair(rows) -> dict:
    return {(r.host_id, r.check): r for r in rows}


def test_drift_from_real_evidence(drifted) -> None:
    srv, a = drifted
    with Client(srv.url, srv.token) as c:
        head = c.appliance(a.id).status["seq"]
        assert head == len(STORY)
        ev, start = fetch_chain_tail(c, "driftclinic", a.id, head)
        rows = by_pair(drift_rows(ev, c.appliance(a.id).checks, window_start_seq=start))
    assert start == 1 and len(ev) == len(STORY)
    assert ("dc01", "evidence_pipeline") not in rows  # the agent's pipeline, not a host check
    fw = rows[("dc01", "windows_firewall")]
    assert (fw.state, fw.since, fw.drift_since, fw.attempts) == ("drift", t(10), t(10), 2)
    assert fw.since_exact and fw.observed == {"enabled": False}
    assert fw.expected == {"enabled": True}
    assert (fw.last_tier, fw.last_outcome, fw.last_seq) == ("order", "expired", 5)
    bl = rows[("dc01", "bitlocker")]
    assert (bl.state, bl.since, bl.drift_since, bl.attempts) == ("compliant", t(21), t(20), 1)
    assert bl.observed == {"on": True} and bl.last_outcome == "compliant"  # seq 11
    assert (bl.resolved_at, bl.resolved_by) == (t(21), "L1")
    assert fw.resolved_at is None
    ap = rows[("fs01", "audit_policy")]
    assert (ap.state, ap.since, ap.attempts, ap.bundles) == ("error", t(30), 0, 2)
    ws = rows[("ws09", "windows_firewall")]
    assert (ws.source, ws.state, ws.since) == ("checkin", "drift", t(55))
    # drift first, then errors, then compliant: what a technician looks at first
    assert [r.state for r in rows.values()][:3] == ["drift", "drift", "error"]


def test_window_that_starts_inside_a_state_says_so(drifted) -> None:
    srv, a = drifted
    with Client(srv.url, srv.token) as c:
        ev, start = fetch_chain_tail(c, "driftclinic", a.id, len(STORY), window=8)
    rows = by_pair(drift_rows(ev, window_start_seq=start))
    assert start == 4 and [r["seq"] for r in ev] == list(range(4, 12))
    fw = rows[("dc01", "windows_firewall")]
    # seq 4 (L2 escalated) is the first seen: drift began earlier, unknown exactly when
    assert fw.state == "drift" and not fw.since_exact and fw.attempts == 1
    assert rows[("dc01", "bitlocker")].since_exact  # its whole story is inside the window


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_drift_tab_shows_it(drifted) -> None:
    from tests.tui.test_console import cells, open_appliance, settle, table

    srv, _ = drifted
    app = OsirisApp(srv.url, srv.token)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await open_appliance(app, pilot, "drift-app")
        await settle(app, pilot)
        dt = table(app, "#drift-table")
        pairs = list(zip(cells(dt, "host"), cells(dt, "check"), strict=True))
        got = dict(zip(pairs, cells(dt, "status"), strict=True))
        assert got == {
            ("dc01", "windows_firewall"): "▲ drift",
            ("ws09", "windows_firewall"): "▲ drift",
            ("fs01", "audit_policy"): "! error",
            ("dc01", "bitlocker"): "✓ compliant",
        }
        heal = dict(zip(pairs, cells(dt, "heal"), strict=True))
        assert heal[("dc01", "windows_firewall")].startswith("2 in ")
        assert heal[("dc01", "bitlocker")] == "L1 healed after 1"
        assert heal[("ws09", "windows_firewall")] == "-"  # known from the check-in only
        fw_row = pairs.index(("dc01", "windows_firewall"))
        assert cells(dt, "observed")[fw_row] == "enabled=false want true"
        bl_row = pairs.index(("dc01", "bitlocker"))
        assert cells(dt, "observed")[bl_row] == '{"on":true}'
        # enter opens the full row
        dt.move_cursor(row=fw_row)
        await pilot.press("enter")
        await settle(app, pilot, 1)
        from osiris_tui.widgets.modals import JsonModal

        assert isinstance(app.screen, JsonModal)
        doc = app.screen.doc
        assert doc["check"] == "windows_firewall" and doc["attempts"] == 2


def test_cli_appliance_drift_json(drifted) -> None:
    srv, a = drifted
    env = {"OSIRIS_SERVER": srv.url, "OSIRIS_TOKEN": srv.token, "PATH": str(BIN)}
    p = subprocess.run(
        [str(BIN / "osiris"), "appliance", "drift", a.id, "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    fw = next(r for r in rows if r["check"] == "windows_firewall" and r["host_id"] == "dc01")
    assert fw["state"] == "drift" and fw["attempts"] == 2 and fw["since"] == t(10)
    p = subprocess.run(
        [str(BIN / "osiris"), "appliance", "drift", a.id, "--fail-on-drift"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert p.returncode == 1 and "windows_firewall" in p.stdout, (p.stdout, p.stderr)
