"""A quarantined appliance in the CLI: shown as such, confirmed by an admin only (real server)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.tui.seed import enroll
from tests.tui.test_packet_cli import run


def _token(live, role: str) -> str:  # noqa: ANN001
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": role, "name": f"{role}-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_quarantined_appliance_listed_and_confirmed_by_an_admin(live) -> None:
    site_id = f"q-{uuid.uuid4().hex[:8]}"
    live.site("Quarantine Clinic", site_id)
    operator = _token(live, "operator")
    a = enroll(live.url, operator, site_id, f"{site_id}-box")  # the operator made the code
    listed = run(live, "appliance", "list", "--site", site_id)
    assert listed.returncode == 0, listed.stderr
    assert "⚠ quarantined" in listed.stdout
    js = json.loads(run(live, "appliance", "list", "--site", site_id, "--json").stdout)
    assert js[0]["quarantined"] in (1, True)
    # without --yes and no terminal: refused, nothing changed
    r = run(live, "appliance", "confirm", a.id)
    assert r.returncode == 2
    # an operator may not confirm (403: exit 4 like any refusal of the token's rights)
    r = run(live, "appliance", "confirm", a.id, "--yes", token=operator)
    assert r.returncode in (2, 4) and "Traceback" not in r.stderr
    r = run(live, "appliance", "confirm", a.id, "--yes")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["confirmed"] is True
    listed = run(live, "appliance", "list", "--site", site_id)
    assert "quarantined" not in listed.stdout


@pytest.mark.anyio
async def test_console_shows_the_quarantine_and_an_admin_confirms_it(live) -> None:
    from osiris_tui.app import OsirisApp
    from osiris_tui.widgets.modals import ConfirmModal
    from tests.tui.test_console import open_appliance
    from tests.tui.waiting import settle, until

    site_id = f"qc-{uuid.uuid4().hex[:8]}"
    live.site("Quarantine Console Clinic", site_id)
    a = enroll(live.url, _token(live, "operator"), site_id, f"{site_id}-box")
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        scr = await open_appliance(app, pilot, f"{site_id}-box")
        title = str(scr.query_one("#title").render())
        assert "QUARANTINED" in title
        await pilot.press("C")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        # the dialog names the target and the impact
        assert ("appliance", a.id) in app.screen.lines and ("site", site_id) in app.screen.lines
        assert "every credential" in app.screen.impact
        await pilot.press("y")
        await until(
            app, pilot, lambda: not scr.appliance.is_quarantined, "the confirmation to land"
        )
        assert "QUARANTINED" not in str(scr.query_one("#title").render())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
