"""The Orders tab's `n` form against a real server: it offers only targets the server accepts,
and a refused order shows the server's words (what to type instead); nothing is queued."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.screens.appliance.orders import OrdersTab
from osiris_tui.widgets.modals import FormModal
from tests.tui.test_console import open_appliance
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_order_form_offers_real_targets_and_shows_a_refusal(live) -> None:
    a = live.appliances["rv-app-01"]
    with Client(live.url, live.token) as c:
        before = len(c.orders(a.id, 1000))
        creds = {x.host_id for x in c.credentials("riverside")}
    app = OsirisApp(live.url, live.token, poll_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        scr = await open_appliance(app, pilot, "rv-app-01")
        await pilot.press("6")
        await settle(app, pilot, 2)
        await pilot.press("n")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FormModal)
        hosts = [v for _label, v in app.screen.query_one("#f-host_id", Select)._options]
        offered = {str(h) for h in hosts if isinstance(h, str)}
        # dc01 and fs01 are hosts the appliance's checks name, but the site has no credential
        # for them: the server would refuse them, so the form does not offer them
        assert offered == creds | {a.id}, offered
        await pilot.press("escape")
        await settle(app, pilot, 1)
        scr.query_one(OrdersTab).queue_order("RB-WIN-FIREWALL-001", "dc99")
        await until(app, pilot, lambda: any(not x.ok for x in app.activity), "the refusal")
    refused = [x for x in app.activity if not x.ok]
    assert refused[-1].result.startswith('no host "dc99" at site riverside; ')
    assert "Traceback" not in refused[-1].result
    with Client(live.url, live.token) as c:
        assert len(c.orders(a.id, 1000)) == before
