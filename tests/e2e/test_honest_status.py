"""Issue 13, item 1: a host that cannot be checked never reads as healthy.

Real parts only: the real ``osiris-server``, a lab Windows host behind the real WS-Man server,
a real agent cycle (pywinrm), the real ``osiris`` CLI in a subprocess and the Textual console
under Pilot against the same server. The credential is made wrong (or pointed at a closed
port) through the server's API, exactly as a technician's typo would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osiris_core.evidence import OUTCOMES
from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from tests.e2e.conftest import WIN_PASSWORD, add_winrm, bundles, enroll_agent, free_port, seed_site

BIN = Path(sys.executable).parent


def _cred(central, site) -> dict:
    return central.api("GET", f"/sites/{site.id}/credentials")["credentials"][0]


def _patch(central, site, **body) -> None:
    central.api("PATCH", f"/sites/{site.id}/credentials/{_cred(central, site)['id']}", body)


def _cli(central, *args: str) -> subprocess.CompletedProcess:
    env = {"OSIRIS_SERVER": central.url, "OSIRIS_TOKEN": central.admin, "PATH": str(BIN),
           "OSIRIS_PROFILE_FILE": "/nonexistent"}  # fmt: skip
    return subprocess.run(
        [str(BIN / "osiris"), *args], capture_output=True, text=True, timeout=60, env=env
    )


def _two_cycles(agent) -> None:
    """A cycle checks in *before* it scans: the second one reports what the first found."""
    for _ in range(2):
        agent.cycle()


def _server_checks(central, appliance_id: str, host: str | None = "dc01") -> list:
    with Client(central.url, central.admin) as c:
        return [x for x in c.appliance(appliance_id).checks if host in (None, x.host_id)]


def test_wrong_password_is_error_auth_everywhere(central, win, tmp_path) -> None:
    _host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        _two_cycles(a)
        good = _server_checks(central, a.appliance_id)
        assert good and {x.status for x in good} == {"compliant"}
        with Client(central.url, central.admin) as c:
            before = c.appliance(a.appliance_id).score()
        assert before.percent == "100%"
        n = len(bundles(a))
        _patch(central, site, password="not-the-password-7d1e")
        _two_cycles(a)

        # the agent: every check of the host is an error, not only the one that tried
        res = [r for r in a.db.results() if r["host_id"] == "dc01"]
        assert len(res) == len(good) and {r["status"] for r in res} == {"error"}
        # evidence: one bundle for the host (not one per check), outcome within the
        # catalogue's vocabulary, the error recorded with its kind and every check it covers
        new = [b for b in bundles(a)[n:] if b["host_id"] == "dc01" and b["tier"] == "monitor"]
        assert len(new) == 1, [(b["check"], b["outcome"]) for b in new]
        b = new[0]
        assert b["outcome"] == "failed" and b["outcome"] in OUTCOMES
        err = b["post_state"]["error"]
        assert err["kind"] == "auth" and "refused" in err["detail"]
        assert sorted(err["checks"]) == sorted(x.check for x in good)
        text = json.dumps(bundles(a))
        assert "not-the-password-7d1e" not in text and WIN_PASSWORD not in text
        # the server's copy of the check-in: status error, reason auth, each check
        got = _server_checks(central, a.appliance_id)
        assert {(x.status, x.reason) for x in got} == {("error", "auth")}
        assert all(x.checked_at and x.interval_s for x in got)

        # the CLI: status error with its reason; --fail-on-drift fails on errors
        p = _cli(central, "appliance", "drift", a.appliance_id, "--json")
        assert p.returncode == 0, p.stderr
        rows = [r for r in json.loads(p.stdout) if r["host_id"] == "dc01"]
        assert rows and {(r["status"], r["reason"]) for r in rows} == {("error", "auth")}
        assert {r["reason_text"] for r in rows} == {"auth refused"}
        p = _cli(central, "appliance", "drift", a.appliance_id, "--fail-on-drift")
        assert p.returncode == 1 and "auth refused" in p.stdout, (p.stdout, p.stderr)
        p = _cli(central, "appliance", "list", "--json")
        mine = next(x for x in json.loads(p.stdout) if x["id"] == a.appliance_id)
        assert mine["error_count"] == len(good)

        # recovery: the right password again → each check signs its own way back
        _patch(central, site, password=WIN_PASSWORD)
        _two_cycles(a)
        assert {x.status for x in _server_checks(central, a.appliance_id)} == {"compliant"}
    finally:
        a.close()


def test_unreachable_host_marks_all_its_checks_error(central, win, tmp_path) -> None:
    _host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        _two_cycles(a)
        n_checks = len(_server_checks(central, a.appliance_id))
        # nothing listens there (changing the destination needs the secret again)
        _patch(central, site, port=free_port(), password=WIN_PASSWORD)
        _two_cycles(a)
        got = _server_checks(central, a.appliance_id)
        assert len(got) == n_checks
        assert {(x.status, x.reason) for x in got} == {("error", "unreachable")}
        p = _cli(central, "appliance", "drift", a.appliance_id, "--json")
        rows = [r for r in json.loads(p.stdout) if r["host_id"] == "dc01"]
        assert len(rows) == n_checks
        assert {(r["status"], r["reason_text"]) for r in rows} == {("error", "unreachable")}
    finally:
        a.close()


def test_deleted_credential_leaves_the_drift_view_not_the_evidence(central, win, tmp_path) -> None:
    _host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        _two_cycles(a)
        central.api("DELETE", f"/sites/{site.id}/credentials/{_cred(central, site)['id']}")
        _two_cycles(a)
        assert _server_checks(central, a.appliance_id) == []  # the agent stopped reporting it
        p = _cli(central, "appliance", "drift", a.appliance_id, "--json")
        assert p.returncode == 0, p.stderr
        assert [r for r in json.loads(p.stdout) if r["host_id"] == "dc01"] == []
        assert any(e["host_id"] == "dc01" for e in central.evidence(site.id))  # history stays
    finally:
        a.close()


# ---------------------------------------------------------------- the console (Pilot)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_console_shows_error_err_count_score_and_stale(central, win, tmp_path) -> None:
    from tests.tui.test_console import cells, open_appliance, settle, table
    from tests.tui.waiting import until

    _host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        _two_cycles(a)
        hostname = _appliance_hostname(central, a.appliance_id)
        app = OsirisApp(central.url, central.admin)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot)
            t = table(app, "#appliances")
            row = cells(t, "host").index(hostname)
            assert cells(t, "err")[row] == "0" and cells(t, "score")[row] == "100%"
        _patch(central, site, password="wrong-again-55aa")
        _two_cycles(a)
        app = OsirisApp(central.url, central.admin)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot)
            t = table(app, "#appliances")
            row = cells(t, "host").index(hostname)
            assert int(cells(t, "err")[row]) >= 1
            # every dc01 check could not run: only the appliance's own clock check is good
            every = _server_checks(central, a.appliance_id, host=None)
            ok = sum(1 for x in every if x.status == "compliant")
            assert ok == 1 and cells(t, "score")[row] == f"{100 * ok // len(every)}%"
            pulse = str(app.screen.query_one("#pulse").render())
            assert "errors and stale count against" in pulse and "score " in pulse
            await open_appliance(app, pilot, hostname)
            dt = table(app, "#drift-table")
            await until(app, pilot, lambda: "dc01" in cells(dt, "host"), "dc01 rows")
            status = {s for h, s in zip(cells(dt, "host"), cells(dt, "status"), strict=True)
                      if h == "dc01"}  # fmt: skip
            assert status == {"! error auth refused"}, status
            assert "▲ drift" not in cells(dt, "status")
        # stale: the same data seen 4 check-in intervals later (a frozen clock) — the good
        # password back, the results then age without a new cycle
        _patch(central, site, password=WIN_PASSWORD)
        _two_cycles(a)
        interval = max(x.interval_s or 0 for x in _server_checks(central, a.appliance_id))
        later = time.time() + 4 * interval
        app = OsirisApp(central.url, central.admin, clock=lambda: later)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot)
            t = table(app, "#appliances")
            row = cells(t, "host").index(hostname)
            assert cells(t, "score")[row] == "0%"  # stale results count against
            await open_appliance(app, pilot, hostname)
            dt = table(app, "#drift-table")
            await until(app, pilot, lambda: "dc01" in cells(dt, "host"), "dc01 rows")
            status = {s for h, s in zip(cells(dt, "host"), cells(dt, "status"), strict=True)
                      if h == "dc01"}  # fmt: skip
            assert status == {"◌ stale"}, status
    finally:
        a.close()


def _appliance_hostname(central, appliance_id: str) -> str:
    with Client(central.url, central.admin) as c:
        return c.appliance(appliance_id).hostname
