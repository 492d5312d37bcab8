"""The console's header for a partner's staff (issue 19 item 3), against a real server of this
module's own: with the partner's key the banner names the partner's display name, with its
colour as an accent beside the name; MSP staff (the admin) get no brand; a partner without a
brand sees its own name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from osiris_tui.app import Banner, OsirisApp
from tests.tui.conftest import LiveServer, running
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running(tmp_path_factory.mktemp("brand-console")) as live:
        yield live


def _partner(srv: LiveServer, name: str, brand: dict | None) -> str:
    with srv.admin() as h:
        r = h.post("/api/v1/partners", json={"name": name})
        assert r.status_code == 201, r.text
        pid, key = r.json()["partner"]["id"], r.json()["api_key"]
        if brand:
            r = h.put(f"/api/v1/partners/{pid}/branding", json=brand)
            assert r.status_code == 200, r.text
    return key


def _banner(app: OsirisApp):  # noqa: ANN202
    return app.screen.query_one(Banner).render()


async def test_a_partner_key_brands_the_header(srv: LiveServer) -> None:
    key = _partner(srv, "Acme IT LLC", {"display_name": "[b]Acme[/b] Clinics", "colour": "#1f6feb"})
    app = OsirisApp(srv.url, key)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(app, pilot, lambda: "Clinics" in str(_banner(app)), "the brand")
        text = _banner(app)
        # the display name, not the partner's name; markup in it shown literally
        assert str(text).startswith("▌[b]Acme[/b] Clinics ")
        assert "Acme IT LLC" not in str(text)
        accent = text.spans[0]  # the colour on the bar only, the name in the normal colour
        assert (accent.start, accent.end) == (0, 1)
        assert str(accent.style) == "rgb(31,111,235) bold", text.spans
        assert "Acme" in app.title


async def test_admin_gets_no_brand_and_an_unbranded_partner_its_name(srv: LiveServer) -> None:
    _partner(srv, "Branded Other", {"display_name": "Should Not Show", "colour": "#ff0000"})
    app = OsirisApp(srv.url, srv.token)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.brand is None and "▌" not in str(_banner(app))
        assert "Should Not Show" not in str(_banner(app))
    key = _partner(srv, "Plain Partner", None)
    app = OsirisApp(srv.url, key)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(app, pilot, lambda: app.brand is not None, "the partner's name")
        assert str(_banner(app)).startswith("Plain Partner ")  # no colour: no accent bar
