"""Every screen at 80x24 and 160x45: frozen clock, fixed ids, one theme, small fixtures; the
main views (fleet, appliance Drift, local) also in their error, stale and empty states, and the
listing views (audit, learn, provisioning) when the server goes down under them and when empty.

Regenerate deliberately with `pytest tests/tui/test_snapshots.py --snapshot-update` and review
the SVGs (docs/console.md embeds them). Textual is pinned (8.2.8): its SVG output changes
between releases.
"""

from __future__ import annotations

from typing import Any

import pytest

from osiris_tui.app import LocalApp, OsirisApp
from osiris_tui.transport import TOKEN_FIX, AuthRefused, Unreachable
from tests.tui.fixtures import NOW, RecordedClient, fleet, iso
from tests.tui.waiting import quiesce

SIZES = [(80, 24), (160, 45)]
IDS = ["80x24", "160x45"]
STALE_AFTER_S = 3600  # the stale state: the frozen clock an hour past the fixture's data


def clock() -> float:
    return float(NOW)


async def settle(pilot) -> None:
    """Wait for the screen's data to be loaded *and laid out* (not for "CPU idle", which a
    starved process reaches early on a loaded machine): see tests/tui/waiting.py."""
    await quiesce(pilot)


def fleet_app(client: RecordedClient | None = None, at: float = NOW) -> OsirisApp:
    return OsirisApp(client=client or RecordedClient(), clock=lambda: float(at), poll_s=3600)


class FailingClient(RecordedClient):
    """The fixture's answers until ``fail`` is set; then every request raises ``error`` (the
    server went down, or the token was revoked, under an open console)."""

    def __init__(self, error: Exception, data: dict[str, Any] | None = None) -> None:
        super().__init__(data)
        self.error = error
        self.fail = True

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if self.fail:
            raise self.error
        return super().request(method, path, **kw)


class EmptyClient(RecordedClient):
    """A server with nothing yet: no sites, no appliances, no events."""

    def __init__(self) -> None:
        super().__init__({"sites": [], "appliances": [], "incidents": []})

    EMPTY: dict[str, dict[str, Any]] = {  # noqa: RUF012 - a constant table
        "/events": {"events": [], "cursor": None, "more": False},
        "/provisions": {"provisions": []},
        "/learning/candidates": {"candidates": []},
        "/audit": {"audit": []},
    }

    def request(self, method: str, path: str, **kw: Any) -> Any:
        for suffix, answer in self.EMPTY.items():
            if path.endswith(suffix):
                return answer
        return super().request(method, path, **kw)


class QuietApplianceClient(RecordedClient):
    """One appliance that has checked in but reported no checks and sent no evidence."""

    def __init__(self) -> None:
        data = fleet(1, 1)
        data["appliances"][0]["status"] = {"checks": [], "outbox_depth": 0, "seq": 0}
        data["incidents"] = []
        super().__init__(data)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if path.endswith("/evidence"):
            return {"evidence": []}
        return super().request(method, path, **kw)


def stale_client() -> RecordedClient:
    """The fixture's fleet with each check run a minute before ``NOW`` on a 60 s interval: at
    ``NOW + STALE_AFTER_S`` every result is many intervals old (``records.STALE_INTERVALS``)."""
    data = fleet()
    for a in data["appliances"]:
        for c in a["status"]["checks"]:
            c["checked_at"], c["interval_s"] = iso(NOW - 60), 60
    return RecordedClient(data)


def down() -> Unreachable:
    return Unreachable(
        "server unreachable: http://fixture.invalid (Connection refused)",
        reason="unreachable (Connection refused)",
    )


def refused() -> AuthRefused:
    return AuthRefused(
        f"token refused (401 E_AUTH: unknown or revoked token): {TOKEN_FIX}", "E_AUTH", 401
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_fleet(snap_compare, size) -> None:
    assert snap_compare(fleet_app(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_fleet_sites_filtered(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"appliance-00", "enter")
        await pilot.press("tab")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5", "6"])
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_appliance_tabs(snap_compare, size, tab) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(tab)
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
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


@pytest.mark.parametrize("size", SIZES, ids=IDS)
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


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_audit(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_learn(snap_compare, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("colon", *"learn", "enter")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_local(snap_compare, size, tmp_path) -> None:
    from tests.tui.test_data_layer import _agent_state

    d = _agent_state(tmp_path)
    app = LocalApp(str(d), clock=clock, poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
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


# ---------------------------------------------------------------- states of the main views


@pytest.mark.parametrize("error", ["down", "token"])
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_fleet_error(snap_compare, size, error) -> None:
    """Nothing ever answered: the header says why (down, or the token refused and how to fix)."""
    client = FailingClient(down() if error == "down" else refused())
    assert snap_compare(fleet_app(client), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_fleet_stale(snap_compare, size) -> None:
    """The last answer is an hour old: appliances read offline, results stale."""
    app = fleet_app(stale_client(), at=NOW + STALE_AFTER_S)
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_fleet_empty(snap_compare, size) -> None:
    assert snap_compare(fleet_app(EmptyClient()), terminal_size=size, run_before=settle)


async def open_first_appliance(pilot) -> None:  # noqa: ANN001
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_drift_error(snap_compare, size) -> None:
    """The server goes down under an open Drift tab: the last rows stay, the header says so."""
    client = FailingClient(down())
    client.fail = False

    async def before(pilot) -> None:
        await open_first_appliance(pilot)
        client.fail = True
        await pilot.press("r")
        await settle(pilot)

    assert snap_compare(fleet_app(client), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_drift_stale(snap_compare, size) -> None:
    app = fleet_app(stale_client(), at=NOW + STALE_AFTER_S)
    assert snap_compare(app, terminal_size=size, run_before=open_first_appliance)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_drift_empty(snap_compare, size) -> None:
    app = fleet_app(QuietApplianceClient())
    assert snap_compare(app, terminal_size=size, run_before=open_first_appliance)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_local_error(snap_compare, size) -> None:
    """A state dir the console cannot read: the summary line says so (a fixed path: the
    message names it)."""
    app = LocalApp("/nonexistent/osiris-state", clock=clock, poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_local_stale(snap_compare, size, tmp_path) -> None:
    """A day after the agent's last check-in: the ages say how old everything is."""
    from tests.tui.test_data_layer import _agent_state

    d = _agent_state(tmp_path)
    app = LocalApp(str(d), clock=lambda: float(NOW + 86400), poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_local_empty(snap_compare, size, tmp_path) -> None:
    """A freshly installed appliance: a state database with nothing in it yet."""
    from osiris_agent.state import StateDB

    StateDB.open_dir(tmp_path).close()
    app = LocalApp(str(tmp_path), clock=clock, poll_s=3600, label="/var/lib/osiris")
    assert snap_compare(app, terminal_size=size, run_before=settle)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_help(snap_compare, size) -> None:
    """`?` on the Runbooks tab: its own keys first, grouped, then the global ones."""

    async def before(pilot) -> None:
        await open_first_appliance(pilot)
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(fleet_app(), terminal_size=size, run_before=before)


# ---------------------------------------------------------------- states of the listing views

LISTINGS = {"audit": ("A",), "learn": ("colon", *"learn", "enter"), "prov": ("p",)}


@pytest.mark.parametrize("view", list(LISTINGS))
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_listing_error(snap_compare, size, view) -> None:
    """The server goes down under an open listing: its last rows stay, the header says why."""
    client = FailingClient(down())
    client.fail = False

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press(*LISTINGS[view])
        await settle(pilot)
        client.fail = True
        await pilot.press("r")
        await settle(pilot)

    assert snap_compare(fleet_app(client), terminal_size=size, run_before=before)


@pytest.mark.parametrize("view", list(LISTINGS))
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_listing_empty(snap_compare, size, view) -> None:
    """A server with nothing yet: the listing is empty, not loading forever."""

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press(*LISTINGS[view])
        await settle(pilot)

    assert snap_compare(fleet_app(EmptyClient()), terminal_size=size, run_before=before)
