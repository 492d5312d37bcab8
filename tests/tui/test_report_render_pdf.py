"""report.pdf (WeasyPrint over the same page as report.html): valid, sane page count, its text
extractable by a PDF reader (pypdfium2, the PDFium engine Chromium uses) and holding what an
auditor looks for; long lists cut with a pointer to report.json; nothing fetched while printing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdfium2
import pytest

from osiris_tui.report import render_pdf
from osiris_tui.report.pdf import no_fetch
from tests.tui.report_fixture import empty_report, rich_report
from tests.tui.test_report_render import CONTROL


def pdf_text(data: bytes) -> tuple[int, str]:
    doc = pypdfium2.PdfDocument(data)
    try:
        pages = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()
    # PDFium marks a word broken at a line end with U+FFFE: a test that finds an id in the text
    # finds it unbroken (ids and refs are kept on one line, so none should be broken)
    # and long free text carries zero-width break opportunities (html.soften): removed here
    return len(pages), "\n".join(pages).replace("\u200b", "")


@pytest.fixture(scope="module")
def rich_pdf() -> bytes:
    return render_pdf(rich_report())


def test_pdf_is_valid_with_a_sane_page_count(rich_pdf: bytes) -> None:
    assert rich_pdf.startswith(b"%PDF-") and rich_pdf.rstrip().endswith(b"%%EOF")
    n, text = pdf_text(rich_pdf)
    assert 5 <= n <= 15, n
    assert f"page 1 of {n}" in text and f"page {n} of {n}" in text
    assert len(rich_pdf) < 1_000_000


def test_pdf_text_has_every_control_the_missing_host_and_exceptions(rich_pdf: bytes) -> None:
    report = rich_report()
    _, text = pdf_text(rich_pdf)
    flat = " ".join(text.split())
    for c in report["controls"]:
        assert c["citation"] in flat and c["title"] in flat
    for word in ("✓ met", "◐ partially met", "✕ not met", "○ not evidenced"):
        assert word in flat
    (missing,) = report["population"]["missing"]
    assert "Hosts with no evidence in the period (failures, not passes)" in flat
    assert missing in flat
    assert "exc-0001" in flat and "app-clinic-a-1#413" in flat
    assert "Reviewed by J. Rivera" in flat
    assert report["verify_command"] in flat


def test_pdf_cuts_long_lists_and_points_to_report_json(rich_pdf: bytes) -> None:
    _, text = pdf_text(rich_pdf)
    flat = " ".join(text.split())
    assert "and 20 more — see report.json" in flat  # 32 missing rows of one control, 12 shown
    assert "kiosk09.clinic-a.local" in flat and "kiosk10.clinic-a.local" not in flat


def test_pdf_is_deterministic() -> None:
    # the same report.json gives the same report.pdf: a rebuilt packet's manifest hash holds
    assert render_pdf(rich_report()) == render_pdf(rich_report())


def test_empty_report_pdf() -> None:
    n, text = pdf_text(render_pdf(empty_report()))
    flat = " ".join(text.split())
    assert n >= 1 and "No review recorded" in flat and "No exception in the period" in flat


def test_hostile_report_pdf_has_no_control_characters_or_markup() -> None:
    _, text = pdf_text(render_pdf(rich_report(hostile=True)))
    assert not CONTROL.search(text.replace("\r", "")), repr(CONTROL.search(text))
    flat = " ".join(text.split())
    assert '<script>alert("x")</script>\\x1b[31m' in flat  # shown as text, escaped


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body{color:red}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_url() -> Iterator[str]:
    _Counting.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_printing_fetches_nothing_even_if_markup_slipped_through(loopback_url: str) -> None:
    """The second wall behind escaping: the PDF's URL fetcher refuses every URL. Planted
    directly into the HTML (as a template bug would), a stylesheet, image and font on a real
    loopback server are never requested; without the refusing fetcher they are (the probe can
    fail)."""
    import weasyprint

    planted = (
        f'<html><head><link rel="stylesheet" href="{loopback_url}/a.css">'
        f"<style>@import url({loopback_url}/b.css); @font-face {{font-family: x; "
        f"src: url({loopback_url}/f.ttf)}}</style></head>"
        f'<body style="font-family: x"><img src="{loopback_url}/i.png">hi</body></html>'
    )
    weasyprint.HTML(string=planted, url_fetcher=no_fetch()).write_pdf()
    assert _Counting.hits == []
    weasyprint.HTML(string=planted).write_pdf()  # the default fetcher does reach out
    assert "/a.css" in _Counting.hits


def on_page(data: bytes, needle: str) -> list[tuple[float, float, float]]:
    """(bottom, top, page height) of every occurrence of ``needle``, in PDF points."""
    doc = pypdfium2.PdfDocument(data)
    found = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            tp = page.get_textpage()
            search = tp.search(needle)
            while (hit := search.get_next()) is not None:
                _, bottom, _, top = tp.get_charbox(hit[0])
                found.append((bottom, top, page.get_size()[1]))
    finally:
        doc.close()
    return found


def test_a_large_site_prints_every_host_of_the_heat_map_on_the_page() -> None:
    """A 100-host heat map as one picture runs off the bottom of its page (the text is still
    in the PDF, below the page: this test failed that way); split in pictures of 40 hosts,
    every label lies inside its page."""
    data = render_pdf(rich_report(hosts=100))
    assert len(pypdfium2.PdfDocument(data)) <= 20
    for host in ("ws50.clinic-a.local", "ws98.clinic-a.local"):  # in no cut table
        hits = on_page(data, host)
        assert hits, host
        for bottom, top, height in hits:
            assert 0 <= bottom < top <= height, (host, bottom, top, height)


MARGIN_PT = 14 / 25.4 * 72 - 1  # report.css: @page left/right margin 14 mm, 1 pt tolerance


def outside(data: bytes) -> list[tuple[int, str, tuple[float, ...]]]:
    """Every drawn glyph left or right of the page's margins, or above or below the paper."""
    doc = pypdfium2.PdfDocument(data)
    bad = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            width, height = page.get_size()
            tp = page.get_textpage()
            for c in range(tp.count_chars()):
                box = tp.get_charbox(c)
                left, bottom, right, top = box
                if right <= left:  # spaces and line ends have empty boxes
                    continue
                if left < MARGIN_PT or right > width - MARGIN_PT or bottom < 0 or top > height:
                    bad.append((i + 1, tp.get_text_range(c, 1), box))
    finally:
        doc.close()
    return bad


def test_every_glyph_is_inside_the_margins(rich_pdf: bytes) -> None:
    assert outside(rich_pdf) == []
    assert outside(render_pdf(rich_report(hostile=True))) == []


def test_a_very_long_host_id_stays_inside_the_page() -> None:
    """A host id chosen by the fleet (a 300-character name with no break) wraps in its cells;
    no character is printed beyond the margins (where a reader would not see it; this failed
    while long ids were only allowed to break at word boundaries)."""
    report = rich_report()
    long_id = "x" * 290 + ".clinic-a.local"
    report["population"]["expected"][0]["host_id"] = long_id
    report["population"]["missing"] = [long_id]
    report["exceptions"][0]["host_id"] = long_id
    report["controls"][0]["missing"][0]["host_id"] = long_id
    assert outside(render_pdf(report)) == []
