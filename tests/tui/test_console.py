"""The console against a real server on 127.0.0.1: Pilot drives keys, the server's state is
checked through its API afterwards (never through the console's own view of it)."""

from __future__ import annotations

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.screens.appliance.orders import OrdersTab
from osiris_tui.screens.appliance.runbooks import RunbooksTab
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import ConfirmModal
from osiris_tui.widgets.table import KeyedTable
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def table(app, sel: str) -> KeyedTable:
    return app.screen.query_one(sel, KeyedTable)


def cells(t: KeyedTable, col: str) -> list[str]:
    return [t.get_cell(r.key, col).plain for r in t.ordered_rows]


async def open_appliance(app, pilot, hostname: str) -> ApplianceScreen:
    t = table(app, "#appliances")
    idx = cells(t, "host").index(hostname)
    t.move_cursor(row=idx)
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ApplianceScreen)
    return app.screen


async def test_fleet_filter_and_untrusted_site_name(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        t = table(app, "#appliances")
        assert sorted(cells(t, "host")) == ["rv-app-01", "rv-app-02", "weird-app"]
        # a site named like markup renders literally in the Sites table
        await pilot.press("tab")
        await settle(app, pilot, 1)
        assert "[bold red]x[/]" in cells(table(app, "#sites"), "name")
        await pilot.press("tab")
        await pilot.press("slash")
        await pilot.press(*"site=riverside")
        await settle(app, pilot, 1)
        assert sorted(cells(t, "host")) == ["rv-app-01", "rv-app-02"]
        app.screen.query_one("#filter").value = "!rv-app"
        await settle(app, pilot, 1)
        assert cells(t, "host") == ["weird-app"]
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert len(cells(t, "host")) == 3
        # drift and compliance come from the real check-in of rv-app-01
        row = cells(t, "host").index("rv-app-01")
        assert cells(t, "drift")[row] == "1"
        assert cells(t, "score")[row] == "66%"
        assert cells(t, "status")[row] == "● online"


async def test_cursor_stays_put_across_polls(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        t = table(app, "#appliances")
        t.move_cursor(row=2)
        key = t.cursor_key()
        app.screen.refresh_data()
        await settle(app, pilot)
        assert t.cursor_key() == key


async def test_toggle_runbook_confirms_then_changes_server(live) -> None:
    a = live.appliances["rv-app-02"]
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        scr = await open_appliance(app, pilot, "rv-app-02")
        await pilot.press("2")
        await settle(app, pilot, 1)
        rb = table(app, "#rb-table")
        target = rb.ordered_rows[0].key.value
        rb.move_cursor(row=0)
        await pilot.press("space")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        assert "rv-app-02" in str(app.screen.lines) and "Impact" in app.screen.impact
        await pilot.press("n")  # cancelled: nothing changes
        await settle(app, pilot)
        with Client(live.url, live.token) as c:
            assert next(s for s in c.appliance_runbooks(a.id) if s.id == target).enabled
        await pilot.press("space")
        await settle(app, pilot, 1)
        await pilot.press("y")
        await settle(app, pilot)
        with Client(live.url, live.token) as c:
            state = next(s for s in c.appliance_runbooks(a.id) if s.id == target)
        assert state.enabled is False and state.appliance is False
        assert any("PUT runbooks" in x.what for x in app.activity)
        assert scr is app.screen


async def test_add_and_rotate_credential(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await open_appliance(app, pilot, "rv-app-01")
        await pilot.press("3")
        await settle(app, pilot, 1)
        await pilot.press("a")
        await settle(app, pilot, 1)
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-host_id").value = "srv-tui"
        form.query_one("#f-address").value = "10.0.0.9"
        form.query_one("#f-username").value = "admin"
        form.query_one("#f-password").value = "first-secret"
        form.query_one("#f-password2").value = "first-secret"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(app, pilot)
        creds = table(app, "#cred-table")
        assert "srv-tui" in cells(creds, "host")
        assert "first-secret" not in str([cells(creds, c) for c in ("secret", "user")])
        with Client(live.url, live.token) as c:
            cred = next(x for x in c.credentials("riverside") if x.host_id == "srv-tui")
        assert cred.version == 1
        creds.move_cursor(row=cells(creds, "host").index("srv-tui"))
        await pilot.press("t")
        await settle(app, pilot, 1)
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-password").value = "second-secret"
        form.query_one("#f-password2").value = "second-secret"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(app, pilot)
        with Client(live.url, live.token) as c:
            assert c.credential("riverside", cred.id).version == 2
            revealed = c.reveal_credential("riverside", cred.id)
        assert revealed["password"] == "second-secret"
        assert all("second-secret" not in x.what for x in app.activity)


async def test_queue_order_goes_pending_then_done(live) -> None:
    a = live.appliances["rv-app-01"]
    app = OsirisApp(live.url, live.token, poll_s=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        scr = await open_appliance(app, pilot, "rv-app-01")
        await pilot.press("6")
        await settle(app, pilot, 1)
        rb_id = next(
            r
            for r, s in scr.query_one(RunbooksTab).runbooks.items()
            if s.enabled
            and getattr(scr.catalog.get(r), "platform", None) == "nixos"
            and not getattr(scr.catalog.get(r), "disruptive", False)
            and not getattr(scr.catalog.get(r), "requires_maintenance_window", False)
        )
        # the server queues only targets the site has: here the appliance itself (nixos)
        scr.query_one(OrdersTab).queue_order(rb_id, a.id)
        orders = table(app, "#order-table")
        # the table reloads after the POST returns, and a 0.3 s poll may race it: wait for it
        await until(app, pilot, lambda: orders.row_count > 0, "the queued order to be listed")
        assert cells(orders, "status") == ["… pending"]
        order_id = orders.ordered_rows[0].key.value
        # the appliance picks it up at check-in and reports evidence naming the order
        resp = a.checkin([])
        assert [o["order"]["order_id"] for o in resp["orders"]] == [order_id]
        a.send_evidence(1, order_id=order_id, tier="order", runbook_id=rb_id, outcome="healed")
        scr.refresh_all()
        await until(
            app, pilot, lambda: cells(orders, "status") != ["… pending"], "the order's result"
        )
        assert cells(orders, "status") == ["✓ done"]
        assert cells(orders, "outcome") == ["healed"]
        assert cells(orders, "bundle")[0].startswith("sha256:")


async def test_verify_chain_pass_and_tampered_folder_fail(live, tmp_path) -> None:
    from osiris_tui.pull import pull_export

    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        scr = await open_appliance(app, pilot, "rv-app-01")
        await pilot.press("4")
        await settle(app, pilot, 1)
        assert table(app, "#ev-table").row_count >= 6
        await pilot.press("v")
        await settle(app, pilot, 3)
        assert scr.evidence_tab.verdict == "PASS"
        assert "PASS E_SIG" in str(scr.query_one("#verify-result").render())
        # a tampered export: flip one character inside a signed bundle
        with Client(live.url, live.token) as c:
            pull_export(c, "riverside", tmp_path / "x", appliance_id=scr.appliance.id)
        f = tmp_path / "x" / "bundles.jsonl"
        lines = f.read_bytes().splitlines()
        lines[1] = lines[1].replace(b'"dc01"', b'"dc02"', 1)
        f.write_bytes(b"\n".join(lines) + b"\n")
        await pilot.press("V")
        await settle(app, pilot, 1)
        await pilot.press(*str(tmp_path / "x"), "enter")
        await settle(app, pilot, 3)
        assert scr.evidence_tab.verdict == "FAIL"
        assert "FAIL E_SIG" in str(scr.query_one("#verify-result").render())


async def test_read_only_blocks_mutations(live) -> None:
    a = live.appliances["rv-app-01"]
    app = OsirisApp(live.url, live.token, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "READ-ONLY" in str(app.screen.query_one("#banner").render())
        await open_appliance(app, pilot, "rv-app-01")
        await pilot.press("2")
        await settle(app, pilot, 1)
        with Client(live.url, live.token) as c:
            before = [s.as_json() for s in c.appliance_runbooks(a.id)]
        await pilot.press("space")
        await settle(app, pilot, 1)
        assert not isinstance(app.screen, ConfirmModal)
        with Client(live.url, live.token) as c:
            assert [s.as_json() for s in c.appliance_runbooks(a.id)] == before


async def test_unreachable_server_is_a_banner_not_a_crash() -> None:
    from tests.tui.conftest import free_port

    app = OsirisApp(f"http://127.0.0.1:{free_port()}", "osk_nothing")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.api_ok is False
        assert "unreachable" in str(app.screen.query_one("#banner").render())
        assert app.screen.query_one("#banner").has_class("down")


async def test_command_bar_and_audit_view(live) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"audit", "enter")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "AuditScreen"
        actions = cells(table(app, "#audit-table"), "action")
        assert "site.create" in actions
        await pilot.press("escape")
        await pilot.press("colon", *"prov", "enter")
        await settle(app, pilot)
        scr = app.screen
        assert type(scr).__name__ == "ProvisionScreen"
        scr.create("weird")
        await settle(app, pilot)
        assert scr.last_code is not None and scr.last_code["code"].startswith("ocl_")
        assert "▀" in str(scr.query_one("#code").render())
        assert "pending" in " ".join(cells(table(app, "#prov-table"), "state"))


async def test_learn_view_lists_the_servers_candidates(live) -> None:
    from tests.tui.test_cli import seed_pattern

    seed_pattern(live.data / "osiris.db", "L1-LRN-C0C0C0C0C0C0", "riverside", 3, 1,
                 runbook="LIN-FW-001", check="linux_firewall")  # fmt: skip
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"learn", "enter")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "LearnScreen"
        t = table(app, "#learn-table")
        row = cells(t, "runbook").index("LIN-FW-001")
        # issue 16, deliberate: k/n (was a percentage), and enter shows the evidence behind it
        assert cells(t, "healed")[row] == "3/4" and cells(t, "check")[row] == "linux_firewall"
        assert len(app.screen.records["L1-LRN-C0C0C0C0C0C0"].raw["evidence"]) == 4
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert type(app.screen).__name__ == "FleetScreen"
