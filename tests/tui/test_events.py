"""Events where the technician is looking (issue 13 item 3), against the real server: signed
bundles ingested through the API move the fleet's ticker, the row's NEW counter, its place in the
default sort, and land in the `L` activity log. Plus the headless feed on its own."""

from __future__ import annotations

import re
import subprocess

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.events import Event, EventFeed, label, line
from osiris_tui.screens.activity import ActivityScreen
from osiris_tui.widgets.table import KeyedTable
from tests.tui.conftest import start
from tests.tui.seed import check
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cells(t: KeyedTable, col: str) -> list[str]:
    return [t.get_cell(r.key, col).plain for r in t.ordered_rows]


def ticker(app) -> str:  # noqa: ANN001
    return str(app.screen.query_one("#ticker").render())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A server of this module's own: its appliance and events must not show up in the
    shared server's fleet, whose tests count appliances."""
    proc, srv = start(tmp_path_factory.mktemp("events-server"))
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def zz(live):  # noqa: ANN001, ANN201
    """Two sites; the appliance under test is on the one that sorts last by name."""
    live.site("Riverside Family Practice", "riverside")
    other = live.enroll("riverside", "rv-app-01")
    other.checkin([check("dc01", "firewall", "compliant")])
    live.site("Zz Events Clinic", "zz-events")
    a = live.enroll("zz-events", "zz-app-01")
    a.checkin([check("dc07", "firewall", "compliant")])
    return a


async def test_drift_then_heal_moves_the_fleet(live, zz) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        fleet = app.screen
        t = fleet.query_one("#appliances", KeyedTable)
        await until(app, pilot, lambda: fleet.feed.started, "the first events page")
        hosts = cells(t, "host")
        assert hosts[-1] == "zz-app-01"  # by site: last
        assert cells(t, "new")[hosts.index("zz-app-01")] == ""

        zz.send_bundles([{"outcome": "alert", "host_id": "dc07", "check": "firewall"}])
        fleet.refresh_data()
        await until(app, pilot, lambda: "▲ drift" in ticker(app), "the drift on the ticker")
        assert "▲ drift firewall dc07 · zz-app-01" in ticker(app)
        assert re.search(r"  [0-9]+ events? in 5 min  L log", ticker(app))
        assert cells(t, "host")[0] == "zz-app-01"  # new drift sorts first
        assert cells(t, "new")[0] == "•▲1"  # changed in this poll, one drift

        zz.send_bundles(
            [{"outcome": "healed", "tier": "L1", "host_id": "dc07", "check": "firewall",
              "runbook_id": "RB-WIN-FW-001"}]
        )  # fmt: skip
        fleet.refresh_data()
        await until(app, pilot, lambda: "✓ L1 healed" in ticker(app), "the heal on the ticker")
        assert "✓ L1 healed firewall dc07 RB-WIN-FW-001 · zz-app-01" in ticker(app)
        hosts = cells(t, "host")
        assert hosts[-1] == "zz-app-01"  # healed: no longer first
        assert cells(t, "new")[-1] == "•▲1 ✓1"
        fleet.refresh_data()  # a poll with nothing new: the flash goes, the counts stay
        await until(app, pilot, lambda: cells(t, "new")[-1] == "▲1 ✓1", "the flash to clear")

        # `L` keeps them all, newest first, and filters with /
        await pilot.press("L")
        await settle(app, pilot)
        assert isinstance(app.screen, ActivityScreen)
        log = app.screen.query_one("#activity", KeyedTable)
        words = cells(log, "ok")
        assert words.index("✓ L1 healed") < words.index("▲ drift")
        subjects = cells(log, "what")
        assert "firewall dc07 · zz-app-01" in subjects
        await pilot.press("slash", *"healed")
        await settle(app, pilot)
        assert set(cells(log, "ok")) <= {"✓ L1 healed", "✓ healed"}
        assert "✓ L1 healed" in cells(log, "ok")
        await pilot.press("escape")  # clears the filter
        await settle(app, pilot)
        assert "▲ drift" in cells(log, "ok")
        await pilot.press("escape")  # closes
        await settle(app, pilot)
        assert not isinstance(app.screen, ActivityScreen)


async def test_ticker_is_one_line_at_80x24(live, zz) -> None:
    zz.send_bundles(
        [{"outcome": "failed", "check": "firewall", "host_id": "a-very-long-host-name-x"}]
    )
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await until(app, pilot, lambda: "! error" in ticker(app), "the history page")
        text = ticker(app)
        assert "\n" not in text and len(text) <= 80
        assert text.endswith("…")
        assert app.screen.query_one("#ticker").size.height == 1


def test_feed_counts_live_events_only_and_clears_on_heal() -> None:
    def ev(i: int, kind: str, **kw: object) -> Event:
        base = {"id": f"ev:{i}", "kind": kind, "at": f"2026-01-01T00:00:{i:02d}.000Z",
                "site_id": "s", "appliance_id": "app_1", "host_id": "dc01",
                "check": "firewall"}  # fmt: skip
        return Event.from_json({**base, **kw})

    f = EventFeed()
    f.take([ev(1, "drift")], "c1")  # history: shown, not counted
    assert f.counter("app_1") == "" and f.sort_key("app_1") == (1, 0.0)
    assert f.newest() is not None and f.cursor == "c1"
    f.take([ev(2, "drift"), ev(2, "drift")], "c2")  # a repeat is dropped
    assert f.counter("app_1") == "•▲1" and f.sort_key("app_1")[0] == 0
    f.take([ev(3, "healed", tier="L2")], "c3")
    assert f.counter("app_1") == "•▲1 ✓1" and f.sort_key("app_1") == (1, 0.0)
    f.take([ev(4, "offline", host_id=None, check=None)], "c4")
    assert f.sort_key("app_1")[0] == 0 and f.counter("app_1").endswith("○1")
    f.take([], "c5")
    assert not f.counter("app_1").startswith("•")
    assert f.recent(f.newest().epoch + 1, 2) == 2  # ev 3 and 4 within 2 s
    assert label(ev(5, "healed", tier="L1")) == ("✓ L1 healed", "green")
    assert label(ev(6, "order_done", outcome="failed"))[0] == "✕ order failed"
    assert (
        line(ev(7, "escalated", tier="L3"), "rv-app-01")
        == "⇡ escalated L3 firewall dc01 · rv-app-01"
    )
