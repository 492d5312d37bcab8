"""report.html opened the way an auditor opens it: a file in a real browser (Debian's Chromium,
driven by Playwright), offline. It must load with no console error, no page error and no request
other than the file itself; the probe is shown to catch a page that does fetch (a loopback HTTP
server records the request) or that throws.

Playwright's own browser download is not used (CI fetches no browser builds): the test runs the
system ``chromium`` (``apt-get install chromium``, in .ci/run) and skips, saying so, without it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from osiris_tui.report import render_html
from tests.tui.report_fixture import empty_report, rich_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no system chromium (apt-get install chromium)",
)


@dataclass
class Visit:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    text: str = ""
    title: str = ""


def open_offline(path: Path) -> Visit:
    """Open ``path`` in headless Chromium; every request and console/page error recorded."""
    assert CHROMIUM, "CI must install chromium (.ci/run)"
    v = Visit()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: v.requests.append(r.url))
            page.on("console", lambda m: m.type == "error" and v.console_errors.append(m.text))
            page.on("pageerror", lambda e: v.console_errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("networkidle")
            v.text = page.inner_text("body")
            v.title = page.title()
        finally:
            browser.close()
    return v


@pytest.mark.parametrize(
    "report",
    [rich_report(), rich_report(hostile=True), empty_report()],
    ids=["rich", "hostile", "empty"],
)
def test_report_html_opens_offline_cleanly(tmp_path: Path, report: dict) -> None:
    f = tmp_path / "report.html"
    f.write_bytes(render_html(report))
    v = open_offline(f)
    assert v.requests == [f.as_uri()]
    assert v.console_errors == []
    assert v.title.startswith("HIPAA evidence report")
    assert "1. Summary per control" in v.text and "7. Reviewer sign-off" in v.text
    if report["population"]["missing"]:
        assert "Hosts with no evidence in the period" in v.text
        assert report["population"]["missing"][0] in v.text
    if report["site_name"].startswith("<script"):  # hostile: the markup shows as text
        assert '<script>alert("x")</script>' in v.text


class _Hits(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Hits.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    _Hits.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hits)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_probe_catches_a_fetching_or_throwing_page(tmp_path: Path, loopback: str) -> None:
    f = tmp_path / "bad.html"
    f.write_text(f'<html><body><img src="{loopback}/leak.png"><script>nope(</script></body></html>')
    v = open_offline(f)
    assert f"{loopback}/leak.png" in v.requests and "/leak.png" in _Hits.hits
    assert v.console_errors  # the syntax error (and the 404) are reported
