"""The partner logo in the packet report's header (issue 19 item 3): shown from report.json as
a data: URI only when it is what report.json says (type, cap, sha256); printed in the PDF
although the PDF's fetcher refuses every other URL, data: ones included."""

from __future__ import annotations

import hashlib

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from osiris_tui.report import render_html, render_pdf
from osiris_tui.report.html import logo_src
from osiris_tui.report.pdf import FetchRefused, no_fetch
from tests.brand_fixtures import b64, make_png
from tests.tui.report_fixture import rich_report

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 40" width="100" height="40">'
    b'<rect width="100" height="40" fill="#1f6feb"/><circle cx="20" cy="20" r="12" fill="#fff"/>'
    b"</svg>"
)


def _logo(data: bytes, ctype: str = "image/png") -> dict[str, str]:
    return {"type": ctype, "sha256": hashlib.sha256(data).hexdigest(), "b64": b64(data)}


def _report(logo: dict | None) -> dict:
    r = rich_report()
    r["partner"] = {"name": 'Acme "IT" <b>', "colour": "#1f6feb", "logo": logo}
    return r


def test_the_html_header_shows_the_logo() -> None:
    png = make_png(16, 8)
    html = render_html(_report(_logo(png))).decode()
    assert f'<img class="logo" src="data:image/png;base64,{b64(png)}"' in html
    assert 'alt="Acme &#34;IT&#34; &lt;b&gt;"' in html
    assert "<img" not in render_html(_report(None)).decode()


@pytest.mark.parametrize(
    "bad",
    [
        {**_logo(make_png()), "sha256": "0" * 64},  # bytes other than announced
        _logo(b"<html><script>alert(1)</script>", "text/html"),
        _logo(b"GIF89a....", "image/png"),  # not a PNG
        {**_logo(make_png()), "b64": b64(make_png()) + '" onerror="alert(1)'},
        _logo(make_png(pad=300 * 1024)),  # over the 256 KiB cap: report.json stays bounded
        "data:image/png;base64,AAAA",
    ],
)
def test_a_logo_that_is_not_what_it_says_is_not_shown(bad: object) -> None:
    assert logo_src({"name": "x", "logo": bad}) is None
    html = render_html(_report(bad)).decode()  # type: ignore[arg-type]
    assert "<img" not in html and "onerror" not in html


def _objects_on_first_page(pdf: bytes, kind: int) -> int:
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return len(list(doc[0].get_objects(filter=[kind], max_depth=5)))
    finally:
        doc.close()


def _images_on_first_page(pdf: bytes) -> int:
    return _objects_on_first_page(pdf, pdfium_c.FPDF_PAGEOBJ_IMAGE)


def test_the_pdf_prints_a_png_logo() -> None:
    assert _images_on_first_page(render_pdf(_report(None))) == 0
    assert _images_on_first_page(render_pdf(_report(_logo(make_png(16, 8))))) == 1


def test_the_pdf_prints_an_svg_logo_as_vectors() -> None:
    paths = pdfium_c.FPDF_PAGEOBJ_PATH
    plain = _objects_on_first_page(render_pdf(_report(None)), paths)
    branded = _objects_on_first_page(render_pdf(_report(_logo(SVG, "image/svg+xml"))), paths)
    assert branded >= plain + 2  # the rect and the circle


def test_the_fetcher_allows_only_the_logo_uri() -> None:
    src = logo_src({"logo": _logo(make_png())})
    assert src is not None
    f = no_fetch(src)
    assert f.fetch(src).read() == make_png()
    for other in ("data:image/png;base64,AAAA", src + "A", "http://127.0.0.1:9/x.png"):
        with pytest.raises(FetchRefused):
            f.fetch(other)
    with pytest.raises(FetchRefused):
        no_fetch().fetch(src)
