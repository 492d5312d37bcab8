"""report.pdf: the same page as report.html, printed by WeasyPrint (HTML + CSS paged media).

Why WeasyPrint (measured, docs/internals.md "Report PDF"): it prints the very HTML the auditor
can open, so the two files cannot say different things; it draws our inline SVG charts as
vectors, repeats table headers across page breaks and numbers pages ("page n of N") from CSS.
fpdf2 and reportlab would need a second layout of every table, and fpdf2's HTML subset drops
the CSS and the status colours.

The PDF view cuts long lists (``PDF_LIMIT``) to "and N more — see report.json". Nothing is
fetched while printing: the URL fetcher refuses every URL, so a hostile value that slipped an
``<img src=http://…>`` past escaping still could not make the build reach the network. The one
exception is the partner logo's own ``data:`` URI (html.logo_src, checked against its sha256):
that exact string is decoded here, never by urllib, so the logo prints and nothing else does.
WeasyPrint is imported on first use: the ``osiris`` CLI starts without paying for it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from .html import PDF_LIMIT, logo_src, page


class FetchRefused(ValueError):
    """The report asked for an external resource; the packet must be self-contained."""


def no_fetch(allow: str | None = None) -> Any:
    """A WeasyPrint URL fetcher that refuses every URL (http, file, data alike) but ``allow``,
    a ``data:…;base64,`` URI answered from its own bytes: WeasyPrint logs a refusal as a
    warning and prints the page without the resource."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class _Refuse(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: object = None) -> Any:
            if allow is not None and url == allow:
                head, _sep, b64 = allow.partition(",")
                ctype = head.removeprefix("data:").removesuffix(";base64")
                body = base64.b64decode(b64)
                return URLFetcherResponse(url, body, {"Content-Type": ctype})
            raise FetchRefused(f"report.pdf fetches nothing (refused {url[:80]!r})")

    return _Refuse()


def render_pdf(report: Mapping[str, Any]) -> bytes:
    """report.pdf's bytes: a renderer for build_packet."""
    import weasyprint  # heavy (pango, fonttools): only when a packet is built

    text = page(report, limit=PDF_LIMIT)
    fetcher = no_fetch(logo_src(report.get("partner")))
    out = weasyprint.HTML(string=text, url_fetcher=fetcher, base_url=None).write_pdf()
    if out is None:  # write_pdf() with no target returns the bytes; never None here
        raise RuntimeError("weasyprint returned no PDF")
    return bytes(out)
