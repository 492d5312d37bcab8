"""The polling-table base (osiris_tui.widgets.polling) and the appliance screen's per-tab keys.

Against the real server (tests/tui/conftest.py): the audit screen is driven through the base's
keys (r refreshes, enter opens the record as JSON, esc closes it and goes back), a failing poll
turns the banner red with the error line, and the next good poll clears it.
"""

from __future__ import annotations

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.screens.audit import AuditScreen
from osiris_tui.screens.fleet import FleetScreen
from osiris_tui.screens.learn import LearnScreen
from osiris_tui.screens.provision import ProvisionScreen
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import JsonModal
from osiris_tui.widgets.polling import PollingTableScreen
from osiris_tui.widgets.table import KeyedTable
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio

POLLING_SCREENS = [AuditScreen, LearnScreen, ProvisionScreen]
# What the base does and a subclass must not re-implement (it declares columns, fetch, cells).
SHARED = ["compose", "load", "action_back", "action_refresh", "on_data_table_row_selected"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("screen", POLLING_SCREENS, ids=lambda s: s.__name__)
def test_polling_screens_are_subclasses_of_the_base(screen) -> None:
    assert issubclass(screen, PollingTableScreen)
    assert [m for m in SHARED if m in vars(screen)] == []
    for declared in ("TABLE_ID", "COLUMNS", "POLL_GROUP", "fetch", "key", "cells"):
        assert declared in vars(screen), f"{screen.__name__} does not declare {declared}"
    ids = [b.id for b in screen.BINDINGS]  # type: ignore[union-attr]
    # a screen's own decisions (provisions: create/withdraw; learning: approve/reject) are the
    # only keys beside the base's back and refresh
    ends = (".back", ".refresh", ".create", ".withdraw", ".approve", ".reject")
    assert len(ids) == len(set(ids)) and all(i and i.endswith(ends) for i in ids)


def keys_of(t: KeyedTable) -> list[str]:
    return [str(r.key.value) for r in t.ordered_rows]


async def test_base_refresh_enter_and_esc_on_the_audit_screen(live) -> None:
    app = OsirisApp(live.url, live.token, poll_s=3600)  # only `r` refreshes in this test
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await settle(app, pilot)
        scr = app.screen
        assert isinstance(scr, AuditScreen)
        t = scr.query_one("#audit-table", KeyedTable)
        before = keys_of(t)
        assert before and before == sorted(before, key=lambda k: -int(k))  # newest first
        live.site("Polling Base Clinic", "poll-base")  # the server audits the creation
        await settle(app, pilot)
        assert keys_of(t) == before  # no poll ran: the table did not change by itself
        await pilot.press("r")
        await until(app, pilot, lambda: len(keys_of(t)) > len(before), "the refreshed rows")
        (newest,) = set(keys_of(t)) - set(before)
        assert int(newest) > int(before[0])
        assert t.get_cell(newest, "action").plain == "site.create"
        assert t.get_cell(newest, "target").plain == "poll-base"
        t.move_cursor(row=keys_of(t).index(newest))
        await pilot.press("enter")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, JsonModal)
        assert app.screen.doc["id"] == int(newest) and app.screen.doc["target"] == "poll-base"
        await pilot.press("escape")  # closes the modal
        await settle(app, pilot, 1)
        assert app.screen is scr
        await pilot.press("escape")  # back to the fleet
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FleetScreen)


async def test_base_failed_poll_is_the_banner_error_line(live) -> None:
    app = OsirisApp(live.url, live.token, poll_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"learn", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, LearnScreen)
        assert app.api_ok is True
        good = app.client
        app.client = Client(live.url, "osk_wrong", timeout=5.0, retries=0)
        try:
            await pilot.press("r")
            await until(app, pilot, lambda: app.api_ok is False, "the failed poll")
            banner = app.screen.query_one("#banner")
            assert banner.has_class("down")
            assert app.api_error and "osk_wrong" not in str(banner.render())
            assert isinstance(app.screen, LearnScreen)  # a banner, not a crash
        finally:
            app.client.close()
            app.client = good
        await pilot.press("r")
        await until(app, pilot, lambda: app.api_ok is True, "the next good poll")
        assert not app.screen.query_one("#banner").has_class("down")


async def test_appliance_tab_keys_exist_only_on_their_tab(live) -> None:
    """Each tab owns its keys (k9s style): the footer offers a tab's keys on that tab only,
    after the screen's esc and r, in the order they had on the one-piece screen; and they work
    while focus is on the tab strip, as they did."""
    app = OsirisApp(live.url, live.token, poll_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        t = app.screen.query_one("#appliances", KeyedTable)
        hosts = [t.get_cell(r.key, "host").plain for r in t.ordered_rows]
        t.move_cursor(row=hosts.index("rv-app-01"))
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ApplianceScreen)
        own = {
            "1": [],
            "2": ["space", "s", "p"],
            "3": ["a", "t", "d", "x"],
            "4": ["v", "V"],
            "5": ["a", "s", "x"],
            "6": ["n"],
        }
        every = {k for ks in own.values() for k in ks}
        for number, keys in own.items():
            await pilot.press(number)
            await settle(app, pilot, 1)
            shown = [k for k, b in app.screen.active_bindings.items() if b.binding.show]
            assert shown[:2] == ["escape", "r"], number
            assert [k for k in shown if k in every] == keys, number
            assert shown[2 : 2 + len(keys)] == keys, number
        # focus on the tab strip (the tab key), outside every pane: the tab's keys still work
        await pilot.press("3")
        await settle(app, pilot, 1)
        await pilot.press("tab")
        await settle(app, pilot, 1)
        assert type(app.focused).__name__ == "ContentTabs"
        await pilot.press("a")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FormScreen)  # the credential form (issue 13 item 8)
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ApplianceScreen)
