"""Every screen at 80x24 and 120x40: frozen clock, fixed ids, one theme, small fixtures.

Regenerate deliberately with `pytest tests/tui/test_snapshots.py --snapshot-update` and review
the SVGs (docs/console.md embeds them). Textual is pinned (8.2.8): its SVG output changes
between releases.
"""

from __future__ import annotations

import pytest

from osiris_tui.app import LocalApp, OsirisApp
from tests.tui.fixtures import NOW, RecordedClient
from tests.tui.waiting import quiesce

SIZES = [(80, 24), (120, 40)]


def clock() -> float:
    return float(NOW)


async def settle(pilot) -> None:
    """Wait for the screen's data to be loaded *and laid out* (not for "CPU idle", which a
    starved process reaches early on a loaded machine): see tests/tui/waiting.py."""
    await quiesce(pilot)


def fleet_app() -> OsirisApp:
    return OsirisApp(client=RecordedClient(), clock=clock, poll_s=3600)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_fleet(snap_compare, size) -> None:
    assert snap_compare(fleet_app(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_fleet_sites_filtered(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"appliance-00", "enter")
        await pilot.press("tab")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5", "6"])
@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_appliance_tabs(snap_compare, size, tab) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(tab)
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_confirm_disable_runbook(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_provisioning(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        pilot.app.screen.show_code(
            {
                "id": "prv_03",
                "code": "ocl_FixtureClaimCode0123456789abc",
                "site_id": "site-00",
                "expires_at": "2026-01-02T00:00:00.000Z",
            }  # fmt: skip
        )
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_audit(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_learn(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("colon", *"learn", "enter")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_local(snap_compare, size, tmp_path) -> None:
    from tests.tui.test_data_layer import _agent_state

    d = _agent_state(tmp_path)
    app = LocalApp(str(d), clock=clock, poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_local_identity(snap_compare, size, tmp_path) -> None:
    """The technician's phone panel: the attestation's facts as fingerprints (key 3)."""
    from tests.tui.test_data_layer import _agent_state

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)

    d = _agent_state(tmp_path)
    app = LocalApp(str(d), clock=clock, poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=before)
