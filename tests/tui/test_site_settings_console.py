"""The console's site settings screen (`:settings`) against a real server over loopback: Pilot
drives the keys, the server's state is read back through its API. A change goes form → confirm
(site, old → new, impact) → PATCH; a value the API refuses comes back verbatim in the form with
what was typed kept, and nothing changes; an operator's allow-list edit is the API's 403."""

from __future__ import annotations

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.screens.site_settings import SiteSettingsScreen
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import ConfirmModal
from osiris_tui.widgets.table import KeyedTable
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio
UPD = "RB-WIN-UPD-002"
WSUS = "http://wsus.clinic.local:8530"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _site(live, site_id: str) -> dict:
    with live.admin() as h:
        r = h.get(f"/api/v1/sites/{site_id}")
        allow = h.get(f"/api/v1/sites/{site_id}/allowlists").json()["allowlists"]
    return {**r.json(), "allowlists": allow}


async def _open(app, pilot, site_id: str) -> SiteSettingsScreen:
    await settle(app, pilot)
    await pilot.press("tab")  # the Sites tab
    await settle(app, pilot, 1)
    sites = app.screen.query_one("#sites", KeyedTable)
    await until(app, pilot, lambda: site_id in [r.key.value for r in sites.ordered_rows],
                "the new site in the Sites table")  # fmt: skip
    sites.move_cursor(row=[r.key.value for r in sites.ordered_rows].index(site_id))
    await pilot.press("colon", *"settings", "enter")
    await settle(app, pilot)
    scr = app.screen
    assert isinstance(scr, SiteSettingsScreen) and scr.site_id == site_id
    await until(app, pilot, lambda: scr.view is not None, "the settings")
    return scr


def _rows(scr: SiteSettingsScreen) -> dict[str, str]:
    t = scr.table
    return {r.key.value: t.get_cell(r.key, "value").plain for r in t.ordered_rows}


async def test_edit_window_confirmed_then_a_refusal_keeps_the_form(live) -> None:
    site = live.site("Console settings clinic")["id"]
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        assert _rows(scr)["window"] == "sun 02:00 +120 min UTC"
        assert f"allow:{UPD}:wsus_server" in _rows(scr)
        await pilot.press("e")
        await settle(app, pilot, 1)
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-days").value = "sat,sun"
        form.query_one("#f-timezone").value = "Europe/Berlin"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        said = " ".join(v for _, v in confirm.lines) + confirm.impact
        assert (
            site in said and "sun 02:00 +120 min UTC → sat,sun 02:00 +120 min Europe/Berlin" in said
        )
        assert "window" in confirm.impact
        await pilot.press("y")
        await until(app, pilot, lambda: _site(live, site)["window"]["days"] == ["sat", "sun"],
                    "the new window on the server")  # fmt: skip
        assert _site(live, site)["window"]["timezone"] == "Europe/Berlin"
        await until(app, pilot, lambda: _rows(scr)["window"].startswith("sat,sun"), "repaint")
        assert _rows(scr)["watchdog_missed_checkins"] == "3"

        # the watchdog threshold, in the same form
        await pilot.press("e")
        await settle(app, pilot, 1)
        app.screen.query_one("#f-watchdog_missed_checkins").value = "6"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        assert ("missed_checkins", "3 → 6") in app.screen.lines
        assert "watchdog" in app.screen.impact
        await pilot.press("y")
        await until(app, pilot, lambda: _site(live, site)["watchdog_missed_checkins"] == 6,
                    "the new threshold on the server")  # fmt: skip
        assert _site(live, site)["window"]["days"] == ["sat", "sun"]  # nothing else changed

        # a time zone the API refuses: its message in the form, the values kept, nothing changed
        before = _site(live, site)
        await pilot.press("e")
        await settle(app, pilot, 1)
        app.screen.query_one("#f-timezone").value = "Mars/Olympus_Mons"
        app.screen.query_one("#f-duration_min").value = "2880"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        refused = lambda: isinstance(app.screen, FormScreen) and "duration_min" in app.screen.error  # noqa: E731, E501
        await until(app, pilot, refused, "the API's refusal in the form")
        assert app.screen.query_one("#f-timezone").value == "Mars/Olympus_Mons"
        assert _site(live, site) == before
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert app.screen is scr


async def test_an_operator_cannot_set_an_allowlist_from_the_console(live) -> None:
    site = live.site("Console allow-list clinic")["id"]
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": "operator", "name": "console operator"})
    operator = r.json()["token"]
    before = _site(live, site)
    app = OsirisApp(live.url, operator)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        keys = [r.key.value for r in scr.table.ordered_rows]
        scr.table.move_cursor(row=keys.index(f"allow:{UPD}:wsus_server"))
        await pilot.press("a")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FormScreen)
        app.screen.query_one("#f-values").value = WSUS
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert ("new", WSUS) in confirm.lines and ("site", site) in confirm.lines
        await pilot.press("y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen)
                    and "403" in app.screen.error, "the API's 403 in the form")  # fmt: skip
    assert _site(live, site) == before
    # the admin's console may
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        keys = [r.key.value for r in scr.table.ordered_rows]
        scr.table.move_cursor(row=keys.index(f"allow:{UPD}:wsus_server"))
        await pilot.press("enter")
        await settle(app, pilot, 1)
        app.screen.query_one("#f-values").value = WSUS
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        await pilot.press("y")
        await until(app, pilot,
                    lambda: _site(live, site)["allowlists"][UPD]["wsus_server"] == [WSUS],
                    "the allow-list on the server")  # fmt: skip
        await until(app, pilot, lambda: _rows(scr)[f"allow:{UPD}:wsus_server"] == WSUS, "repaint")


async def test_read_only_console_shows_settings_and_changes_nothing(live) -> None:
    site = live.site("Read-only settings clinic")["id"]
    before = _site(live, site)
    app = OsirisApp(live.url, live.token, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _open(app, pilot, site)
        await pilot.press("e")
        await settle(app, pilot, 1)
        assert app.screen is scr  # no form
    assert _site(live, site) == before
