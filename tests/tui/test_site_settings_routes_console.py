"""A site's alert routes edited from the console's `:settings` against a real server over
loopback: `n` adds a route (form → confirm naming site, route and impact → POST), `d` deletes
the one under the cursor (confirm → DELETE). The routing key typed is never on screen again nor
in the activity log; the API's 400 (an http webhook URL) comes back verbatim in the form with
the values kept and nothing stored; an auditor gets the API's 403, a read-only console no form.
"""

from __future__ import annotations

import html

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import ConfirmModal
from tests.tui.test_site_settings_console import _open, _rows
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio
KEY = "R0utingKeyForPagerDuty0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _routes(live, site_id: str) -> list[dict]:
    with live.admin() as h:
        return h.get(f"/api/v1/sites/{site_id}/alert-routes").json()["routes"]


def _screen_text(app) -> str:
    """Everything the console could show: the screen's table cells, every Static and Input
    value on the screen stack, and the activity log."""
    out = []
    for scr in app.screen_stack:
        for w in scr.query("*"):
            for attr in ("value", "renderable"):
                v = getattr(w, attr, None)
                if isinstance(v, str):
                    out.append(v)
                elif v is not None and hasattr(v, "plain"):
                    out.append(v.plain)
    out.append(repr(app.activity))
    out.append(html.unescape(app.export_screenshot()).replace("\xa0", " "))  # what is painted
    return "\n".join(out)


async def _fill(app, pilot, **values: str) -> None:
    form = app.screen
    assert isinstance(form, FormScreen)
    if "kind" in values:
        form.query_one("#f-kind").value = values.pop("kind")
        await settle(app, pilot, 1)
    for k, v in values.items():
        form.query_one(f"#f-{k}").value = v
    await pilot.press("ctrl+s")
    await settle(app, pilot, 1)


async def test_add_a_pagerduty_route_then_remove_it_confirmed(live) -> None:
    site = live.site("Console routes clinic")["id"]
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        assert not any(k.startswith("route:") for k in _rows(scr))
        await pilot.press("n")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FormScreen)
        assert app.screen.query_one("#f-routing_key").password
        await _fill(app, pilot, kind="pagerduty", name="on-call", level="1", routing_key=KEY)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        said = confirm.title_text + " ".join(v for _, v in confirm.lines) + confirm.impact
        assert site in said and "on-call" in said and "level 1" in confirm.impact
        assert KEY not in said
        await pilot.press("y")
        await until(app, pilot, lambda: len(_routes(live, site)) == 1, "the route stored")
        stored = _routes(live, site)[0]
        assert (stored["name"], stored["preset"], stored["level"]) == ("on-call", "pagerduty", 1)
        rid = f"route:{stored['id']}"
        await until(app, pilot, lambda: rid in _rows(scr), "the route on the settings screen")
        assert "pagerduty level 1" in _rows(scr)[rid]
        shown = _screen_text(app)
        assert "PagerDuty Events v2" in _rows(scr)[rid] and "on-call" in shown
        assert KEY not in shown
        assert any("on-call" in a.what for a in app.activity)
        assert KEY not in repr(app.activity)

        # remove it: the confirm names site, route and impact; `n` keeps it, `y` deletes it
        keys = [r.key.value for r in scr.table.ordered_rows]
        scr.table.move_cursor(row=keys.index(rid))
        await pilot.press("d")
        await settle(app, pilot, 1)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert ("site", site) in confirm.lines and "on-call" in confirm.title_text
        assert "no longer" in confirm.impact
        await pilot.press("n")
        await settle(app, pilot, 1)
        assert app.screen is scr and len(_routes(live, site)) == 1
        await pilot.press("d")
        await settle(app, pilot, 1)
        await pilot.press("y")
        await until(app, pilot, lambda: _routes(live, site) == [], "the route deleted")
        await until(app, pilot, lambda: rid not in _rows(scr), "repaint")


async def test_an_http_webhook_is_the_apis_400_in_the_form_and_nothing_stored(live) -> None:
    site = live.site("Console bad route clinic")["id"]
    url = "http://8.8.8.8/services/T000/B000/secretpart"  # numeric and public: no DNS needed
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        await pilot.press("n")
        await settle(app, pilot, 1)
        await _fill(app, pilot, kind="slack", name="team chat", url=url)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert url not in " ".join(v for _, v in confirm.lines)
        await pilot.press("y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen)
                    and bool(app.screen.error), "the API refusal in the form")  # fmt: skip
        form = app.screen
        assert "must be https" in form.error, form.error
        assert form.query_one("#f-name").value == "team chat"
        assert form.query_one("#f-kind").value == "slack"
        assert form.query_one("#f-url").value == url and form.query_one("#f-url").password
        assert _routes(live, site) == []
        await pilot.press("escape")
        await settle(app, pilot, 1)
        assert app.screen is scr
        assert "secretpart" not in _screen_text(app)
    assert _routes(live, site) == []


async def test_an_auditor_gets_the_403_and_a_read_only_console_no_form(live) -> None:
    site = live.site("Console auditor routes clinic")["id"]
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": "auditor", "name": "console auditor"})
        assert r.status_code in (200, 201), r.text
        h.post(f"/api/v1/sites/{site}/alert-routes",
               json={"name": "pd", "preset": "pagerduty", "routing_key": KEY})  # fmt: skip
    auditor = r.json()["token"]
    before = _routes(live, site)
    assert len(before) == 1
    app = OsirisApp(live.url, auditor)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, site)
        await pilot.press("n")
        await settle(app, pilot, 1)
        await _fill(app, pilot, kind="pagerduty", name="mine", routing_key=KEY)
        await pilot.press("y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen)
                    and "403" in app.screen.error, "the API's 403 in the form")  # fmt: skip
        await pilot.press("escape")
        await settle(app, pilot, 1)
        keys = [r.key.value for r in scr.table.ordered_rows]
        scr.table.move_cursor(row=keys.index(f"route:{before[0]['id']}"))
        await pilot.press("d")
        await settle(app, pilot, 1)
        await pilot.press("y")
        await until(app, pilot, lambda: any("DELETE" in a.what and not a.ok
                    and "403" in a.result for a in app.activity), "the 403 logged")  # fmt: skip
        assert app.screen is scr
    assert _routes(live, site) == before
    app = OsirisApp(live.url, live.token, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _open(app, pilot, site)
        for key in ("n", "d"):
            await pilot.press(key)
            await settle(app, pilot, 1)
            assert app.screen is scr  # no form, no confirm
    assert _routes(live, site) == before
