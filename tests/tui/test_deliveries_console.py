"""The console's deliveries screen (`:deliveries`) against a real server over loopback: a route
whose receiver always fails is retried and then shown dead (the title counts it), its last error
names the route and never the URL's token; a route that answers shows sent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from osiris_server.app import init_data
from osiris_tui.app import OsirisApp
from osiris_tui.screens.deliveries import DeliveriesScreen
from tests.server.conftest import Server, start_server, stop_server
from tests.tui.waiting import settle

pytestmark = pytest.mark.anyio
TOKEN = "T0000/B0000/consoletokenXYZ"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _receiver(status: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


async def test_deliveries_screen_shows_sent_and_dead(tmp_path: Path) -> None:
    info = init_data(tmp_path / "d", "test.osiris/osiris/log", None)
    app_s, srv, url = start_server(tmp_path / "d", allow_private_webhooks=True, alert_poll_s=0.05,
                                   alert_retry_base_s=0, alert_max_attempts=2)  # fmt: skip
    s = Server(url=url, app=app_s, data=tmp_path / "d", admin_token=info["admin_token"], init=info)
    good, bad = _receiver(200), _receiver(503)
    try:
        site = s.site()["id"]
        for name, httpd in (("ok chat", good), ("broken chat", bad)):
            port = httpd.server_address[1]
            r = s.admin.post(f"/api/v1/sites/{site}/alert-routes", json={
                "name": name, "preset": "slack",
                "url": f"http://127.0.0.1:{port}/services/{TOKEN}"})  # fmt: skip
            assert r.status_code == 201, r.text
        s.enroll(site)  # its enrolment incident is alerted on both routes
        app = OsirisApp(url, info["admin_token"])
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("colon", *"deliveries", "enter")
            await settle(app, pilot)
            scr = app.screen
            assert isinstance(scr, DeliveriesScreen)

            def states() -> dict[str, str]:
                t = scr.table
                return {t.get_cell(k, "route").plain: t.get_cell(k, "state").plain
                        for k in scr.records}  # fmt: skip

            want = {"ok chat": "sent", "broken chat": "dead"}
            for _ in range(120):  # the next poll, pressed by hand (r), until both settled
                if states() == want:
                    break
                await pilot.press("r")
                await settle(app, pilot)
                await pilot.pause(0.25)
            assert states() == want
            dead = next(k for k in scr.records if scr.records[k]["route_name"] == "broken chat")
            err = scr.table.get_cell(dead, "error").plain
            assert "HTTP 503" in err and TOKEN not in err
            assert scr.table.get_cell(dead, "tries").plain == "2"
            title = str(scr.query_one("#title").render())
            assert "1 dead" in title, title
    finally:
        for c in s.clients:
            c.close()
        stop_server(app_s, srv)
        good.shutdown()
        bad.shutdown()
