"""The console's fleet-versions screen (`:versions`) against a real server over loopback: each
appliance's agent version and its newest update's state, the title counting versions; a rollout
made through the API shows up at the next poll."""

from __future__ import annotations

import os

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.screens.versions import VersionsScreen
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio
SYS = "/nix/store/" + "5" * 32 + "-osiris-appliance-"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_versions_screen_shows_versions_and_update_state(live) -> None:
    site = live.site("Versions clinic")["id"]
    a = live.enroll(site, f"ver-{os.urandom(2).hex()}")
    ver = f"7.{os.urandom(1)[0]}.0"
    with live.admin() as h:
        assert h.post("/api/v1/releases", json={"version": ver, "system": SYS + ver}).is_success
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"versions", "enter")
        await settle(app, pilot)
        scr = app.screen
        assert isinstance(scr, VersionsScreen)
        await until(app, pilot, lambda: a.id in scr.records, "the appliance's row")
        t = scr.table
        assert t.get_cell(a.id, "update").plain == "-"
        with live.admin() as h:
            r = h.post("/api/v1/rollouts", json={"release": ver, "sites": [site]})
            assert r.status_code == 201, r.text
        await pilot.press("r")
        await until(app, pilot, lambda: t.get_cell(a.id, "update").plain == ver, "the update")
        assert t.get_cell(a.id, "state").plain == "pending"
        title = str(scr.query_one("#title").render())
        assert "Fleet versions:" in title and "×" in title, title
