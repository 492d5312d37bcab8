"""Tables that fit (issue 13 item 4): columns re-measured on every refresh and on resize; at 80
columns the least important give way first; a cut or hidden value is still readable (`i`).

The rule is a pure function (osiris_tui.column_fit); the widget tests host one KeyedTable in a
bare app (no client at all); the fleet and Drift views are checked against the real server.
"""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult

from osiris_tui.app import OsirisApp
from osiris_tui.column_fit import HIDDEN, Fit, fit_widths
from osiris_tui.fmt import cell, status_cell
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.widgets.row_detail import RowModal
from osiris_tui.widgets.table import SCROLLBAR, KeyedTable
from tests.tui.waiting import settle

pytestmark = pytest.mark.anyio

COLS = [("status", "STATUS"), ("host", "HOST"), ("check", "CHECK"), ("since", "SINCE"),
        ("heal", "HEALING"), ("observed", "OBSERVED")]  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---- the rule


def test_everything_fits_at_natural_width() -> None:
    assert fit_widths([6, 4, 10], [Fit(0), Fit(2), Fit(3)], budget=100) == [6, 4, 10]


def test_the_least_important_shrinks_first_then_hides_never_an_essential() -> None:
    fits = [Fit(0, 8), Fit(1, 6), Fit(3, 10)]
    # 30 + 10 + 40 content + 6 padding = 86: 6 over -> the detail column gives 6
    assert fit_widths([30, 10, 40], fits, budget=80) == [30, 10, 34]
    # far too narrow: the detail column hides, the important one shrinks, the essential stays
    w = fit_widths([30, 10, 40], fits, budget=40)
    assert w[2] == HIDDEN and w[0] >= 8 and sum(w) + 2 * sum(1 for x in w if x) <= 40
    # nothing left to give: the essential column is shrunk, never hidden
    w = fit_widths([30, 10, 40], fits, budget=12)
    assert w[0] != HIDDEN and w[1] == HIDDEN and w[2] == HIDDEN


def test_width_freed_by_hiding_goes_back_to_the_cut_columns() -> None:
    fits = [Fit(0, 8), Fit(1, 10), Fit(3, 10)]
    w = fit_widths([8, 30, 30], fits, budget=40)
    assert w[2] == HIDDEN
    assert w[1] == 40 - 8 - 4  # HEALING got the room the hidden OBSERVED left


# ---- the widget


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(COLS, id="t")


def row(heal: str, observed: str) -> list[Text]:
    return [status_cell("drift"), cell("dc01"), cell("windows_firewall"), cell("3m"),
            cell(heal), cell(observed)]  # fmt: skip


def shown(t: KeyedTable) -> dict[str, int]:
    return {str(c.key.value): c.width for c in t.ordered_columns}


async def test_a_cell_that_grows_widens_its_column_and_one_that_shrinks_narrows_it() -> None:
    app = One()
    async with app.run_test(size=(160, 12)) as pilot:
        t = app.query_one(KeyedTable)
        t.sync({"a": row("-", "{}")})
        await pilot.pause()
        assert shown(t)["heal"] == len("HEALING")
        t.sync({"a": row("L1 healed after 3", '{"free_space_gb": 12}')})  # the case
        await pilot.pause()
        assert shown(t)["heal"] == len("L1 healed after 3")
        assert shown(t)["observed"] == len('{"free_space_gb": 12}')
        t.sync({"a": row("-", "{}")})
        await pilot.pause()
        assert shown(t)["heal"] == len("HEALING")


async def test_resize_hides_the_detail_columns_first_and_brings_them_back() -> None:
    app = One()
    long = '{"free_space_gb": 12, "volumes": ["C:", "D:", "E:"], "threshold_gb": 20}'
    async with app.run_test(size=(160, 12)) as pilot:
        t = app.query_one(KeyedTable)
        t.sync({k: row("L1 healed after 3", long) for k in "abc"})
        t.move_cursor(row=2)
        await pilot.pause()
        assert list(shown(t)) == [k for k, _ in COLS]
        await pilot.resize_terminal(60, 12)
        await pilot.pause()
        widths = shown(t)
        assert "observed" not in widths  # the detail column went first
        assert {"status", "host", "check"} <= set(widths)  # the verdict and what it is about stay
        assert sum(widths.values()) + 2 * len(widths) <= 60 - SCROLLBAR
        assert t.cursor_key() == "c"  # rebuilding the columns kept the cursor's row
        await pilot.press("i")  # the hidden value is still readable, whole
        await pilot.pause()
        assert isinstance(app.screen, RowModal)
        assert ("OBSERVED", long) in [(h, v.plain) for h, v in app.screen.cells]
        await pilot.press("escape")
        await pilot.resize_terminal(160, 12)
        await pilot.pause()
        assert shown(t)["observed"] == len(long)


# ---- the views, against the real server


async def test_fleet_keeps_its_verdict_columns_at_80_and_cuts_nothing_at_160(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        t = app.screen.query_one("#appliances", KeyedTable)
        assert [c.width for c in t.ordered_columns] == t.natural_widths()
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot, 1)
        widths = shown(t)
        assert {"status", "site", "host", "drift", "score"} <= set(widths), widths
        assert sum(widths.values()) + 2 * len(widths) <= 80 - SCROLLBAR


async def test_drift_tab_at_80_keeps_host_check_status(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        t = app.screen.query_one("#appliances", KeyedTable)
        t.move_cursor(
            row=[t.get_cell(r.key, "host").plain for r in t.ordered_rows].index("rv-app-01")
        )
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ApplianceScreen)
        drift = app.screen.query_one("#drift-table", KeyedTable)
        widths = shown(drift)
        assert {"host", "check", "status"} <= set(widths), widths
        assert sum(widths.values()) + 2 * len(widths) <= 80 - SCROLLBAR


async def test_a_resize_keeps_the_order_a_view_sorted_the_rows_into() -> None:
    """The fleet puts rows in order with DataTable.sort; rebuilding the columns must not undo it."""
    app = One()
    long = "x" * 90
    async with app.run_test(size=(160, 12)) as pilot:
        t = app.query_one(KeyedTable)
        t.sync({k: row("-", long) for k in "abc"})
        rank = {"c": 0, "a": 1, "b": 2}
        cells = {id(t.get_cell(k, "host")): k for k in "abc"}  # as fleet.py ranks its rows
        t.sort("host", key=lambda c: rank[cells[id(c)]])
        await pilot.pause()
        assert [r.key.value for r in t.ordered_rows] == ["c", "a", "b"]
        await pilot.resize_terminal(60, 12)  # OBSERVED hides: the columns are rebuilt
        await pilot.pause()
        assert "observed" not in shown(t)
        assert [r.key.value for r in t.ordered_rows] == ["c", "a", "b"]
