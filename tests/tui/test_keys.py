"""Discoverable keys (issue 13 item 5, and item 4's footer): against the real server.

- at 80×24 every view's footer shows `?`, `:` and `q` (Textual's footer cut them first);
- `?` is our panel: the view's own keys first, grouped, with what they do; no cursor-key noise;
- `j/k/g/G` move on every list; ctrl+c quits, asking first like `q` while a change is in flight;
- the palette finds sites, appliances and hosts by name and jumps there;
- the local console has a key for every tab.
"""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Input, TabbedContent
from textual.widgets._footer import FooterKey

from osiris_tui.app import LocalApp, OsirisApp
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.screens.fleet import FleetScreen
from osiris_tui.widgets.footer import OsirisFooter
from osiris_tui.widgets.help import WHAT, HelpModal
from osiris_tui.widgets.modals import ConfirmModal
from osiris_tui.widgets.table import KeyedTable
from tests.tui.seed import check
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio

ESSENTIAL = ["question_mark", "colon", "q"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def visible_footer_keys(app) -> list[str]:  # noqa: ANN001
    """The footer keys drawn fully inside the terminal, left to right."""
    footer = app.screen.query_one(OsirisFooter)
    right = footer.region.right
    keys = [k for k in footer.query(FooterKey) if k.region.width and k.region.right <= right]
    return [k.key for k in sorted(keys, key=lambda k: k.region.x)]


def assert_essentials(app, where: str) -> None:  # noqa: ANN001
    keys = visible_footer_keys(app)
    assert keys[:3] == ESSENTIAL, f"{where}: footer shows {keys}"


def table(app) -> KeyedTable:  # noqa: ANN001
    focused = app.focused
    assert isinstance(focused, KeyedTable), focused
    return focused


async def open_row(app, pilot, hostname: str) -> None:  # noqa: ANN001
    t = app.screen.query_one("#appliances", KeyedTable)
    t.move_cursor(row=[t.get_cell(r.key, "host").plain for r in t.ordered_rows].index(hostname))
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ApplianceScreen)


async def test_every_view_keeps_help_command_quit_at_80x24(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert_essentials(app, "fleet")
        await pilot.press("tab")
        await settle(app, pilot, 1)
        assert_essentials(app, "fleet sites")
        await pilot.press("tab")
        await open_row(app, pilot, "rv-app-01")
        for n in "123456":
            await pilot.press(n)
            await settle(app, pilot, 1)
            assert_essentials(app, f"appliance tab {n}")
        await pilot.press("escape")
        await settle(app, pilot, 1)
        for keys, where in [("p", "provision"), ("A", "audit"), ("colon l e a r n enter", "learn")]:
            await pilot.press(*keys.split())
            await settle(app, pilot)
            assert not isinstance(app.screen, FleetScreen), where
            assert_essentials(app, where)
            await pilot.press("escape")
            await settle(app, pilot, 1)
        await pilot.press("L")
        await settle(app, pilot, 1)
        assert_essentials(app, "activity")


async def test_local_console_footer_and_a_key_per_tab(tmp_path) -> None:
    from tests.tui.test_data_layer import _agent_state

    app = LocalApp(str(_agent_state(tmp_path)), poll_s=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        tabs = app.screen.query_one(TabbedContent)
        for key, tab in [("2", "evidence"), ("3", "identity"), ("1", "checks")]:
            await pilot.press(key)
            await settle(app, pilot, 1)
            assert tabs.active == tab
            assert_essentials(app, f"local tab {key}")
        titles = [str(t.label) for t in app.screen.query("Tab")]
        assert titles == ["1 Checks", "2 Evidence", "3 Identity"]


async def test_help_lists_the_views_own_keys_first_grouped(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await open_row(app, pilot, "rv-app-01")
        await pilot.press("2")
        await settle(app, pilot, 1)
        await pilot.press("question_mark")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, HelpModal)
        body = app.screen.body().plain
        lines = [ln.strip() for ln in body.splitlines()]
        heads = [ln for ln in lines if ln in ("Navigate", "Act", "View", "Everywhere")]
        assert heads == ["Navigate", "Act", "View", "Everywhere"]
        act = lines[lines.index("Act") + 1 : lines.index("View")]
        assert any(ln.startswith("space") and "Toggle (appliance)" in ln for ln in act), act
        assert lines.index("Act") < lines.index("Everywhere")
        everywhere = lines[lines.index("Everywhere") + 1 :]
        assert everywhere[:4] == [
            "?            this help",
            ":            " + WHAT["app.command"],
            "L            activity log: every change this session sent and what came back",
            "q/^c         quit (asks first while a change is still in flight)",
        ]
        assert any(ln.startswith("^p") and "site, appliance or host" in ln for ln in everywhere)
        assert "j" in {ln.split()[0] for ln in lines if ln}  # the list keys are listed
        assert "Cursor right" not in body and "cursor_left" not in body  # Textual's own: not here
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ApplianceScreen)


async def test_j_k_g_G_move_on_lists(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        t = table(app)
        assert t.row_count >= 3 and t.cursor_row == 0
        await pilot.press("j")
        assert t.cursor_row == 1
        await pilot.press("k")
        assert t.cursor_row == 0
        await pilot.press("G")
        assert t.cursor_row == t.row_count - 1
        await pilot.press("g")
        assert t.cursor_row == 0


async def test_ctrl_c_quits(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.return_code == 0


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_asks_first_while_a_change_is_in_flight(live, key) -> None:
    app = OsirisApp(live.url, live.token)
    release = threading.Event()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        # a change on its way: the console's mutations run as workers of group "mutation"
        app.run_worker(release.wait, name="toggle RB-1", group="mutation", thread=True)
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert app.return_code is None
        assert "toggle RB-1" in str(app.screen.lines)
        await pilot.press("n")
        await pilot.pause()
        assert app.return_code is None and isinstance(app.screen, FleetScreen)
        await pilot.press(key)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code == 0
        release.set()


async def palette_pick(app, pilot, query: str, want: str) -> None:  # noqa: ANN001
    """Open the palette, type ``query``, choose the hit whose text contains ``want``."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    await settle(app, pilot, 1)
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*query)
    hits = app.screen.query_one(CommandList)

    def texts() -> list[str]:
        return [str(o.prompt) for o in hits._options]

    await until(app, pilot, lambda: any(want in t for t in texts()), f"{want!r} in {texts()}")
    hits.highlighted = next(i for i, t in enumerate(texts()) if want in t)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_palette_finds_a_site_by_name_and_filters_the_fleet(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_pick(app, pilot, "riverside", "Site: Riverside Family Practice")
        assert isinstance(app.screen, FleetScreen)
        assert app.screen.query_one("#filter", Input).value == "site=riverside"
        hosts = sorted(
            r.key.value for r in app.screen.query_one("#appliances", KeyedTable).ordered_rows
        )
        names = {a.id: a.hostname for a in app.screen.data.appliances}
        assert sorted(names[h] for h in hosts) == ["rv-app-01", "rv-app-02"]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):  # noqa: ANN001, ANN201
    """A server of its own: a host shows in the Drift tab only while it has a credential at
    the site, and adding one to the shared server would change what other tests count."""
    from tests.tui.conftest import start

    proc, srv = start(tmp_path_factory.mktemp("keys-server"))
    try:
        srv.site("Riverside Family Practice", "riverside")
        srv.enroll("riverside", "rv-app-02")
        a = srv.enroll("riverside", "pl-app-01")
        with srv.admin() as h:
            r = h.post("/api/v1/sites/riverside/credentials", json={
                "host_id": "plhost7", "kind": "winrm", "address": "127.0.0.1", "port": 5985,
                "lab": True, "use_tls": False, "verify_tls": False,
                "username": "Administrator", "password": "pw-palette",
            })  # fmt: skip
            assert r.status_code == 201, r.text
        a.checkin(
            [check("plhost7", "firewall", "drift"), check("plhost7", "bitlocker", "compliant")]
        )
        yield srv
    finally:
        proc.terminate()
        proc.wait(10)


async def test_palette_finds_an_appliance_and_a_host_by_name(clinic) -> None:
    app = OsirisApp(clinic.url, clinic.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await palette_pick(app, pilot, "rv-app-02", "Appliance: rv-app-02")
        assert isinstance(app.screen, ApplianceScreen)
        assert app.screen.appliance.hostname == "rv-app-02"
        await palette_pick(app, pilot, "plhost7", "Host: plhost7 on pl-app-01")
        screen = app.screen
        assert isinstance(screen, ApplianceScreen) and screen.appliance.hostname == "pl-app-01"
        assert len(app.screen_stack) == 2  # the palette went back to the fleet first
        drift = screen.query_one("#drift-table", KeyedTable)
        await until(app, pilot, lambda: (drift.cursor_key() or "").startswith("plhost7\0"), "row")
        assert screen.query_one(TabbedContent).active == "drift"
        assert app.focused is drift
