"""Rendering portal pages: Jinja2 with autoescape, and the headers every portal answer carries.

Why these headers: the page holds a clinic's compliance state and the sign-in link is a
credential in a URL. ``Content-Security-Policy`` allows nothing but our own stylesheet, images
and form posts (no script at all, no framing); ``Referrer-Policy: same-origin`` keeps the link
out of any other site's Referer; the app adds ``Cache-Control: no-store`` and ``nosniff`` to
every answer. Every remote string is stripped of control characters before the template escapes it.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from osiris_core.phi import scrub
from osiris_server.http import Response

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own
    # form posts, which the Origin check must then refuse (found by the browser test)
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


def clean(value: Any) -> str:
    """Printable text: control characters (a remote host's, a bundle's) become spaces."""
    s = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else " " for ch in s)


def when(value: Any) -> str:
    s = clean(value)
    # 2026-12-03T13:41:40.887Z -> 2026-12-03 13:41 UTC (a day alone stays a day)
    if not s:
        return "never"
    return s[:10] + (f" {s[11:16]} UTC" if len(s) >= 16 and s[10] == "T" else "")


_env = Environment(
    loader=PackageLoader("osiris_server.portal", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["clean"] = clean
_env.filters["when"] = when
_env.filters["scrub"] = lambda v: scrub(clean(v))


def page(template: str, status: int = 200, headers: list[tuple[str, str]] | None = None,
         **ctx: Any) -> Response:  # fmt: skip
    body = _env.get_template(template).render(**ctx).encode("utf-8")
    return Response(status, body, "text/html; charset=utf-8",
                    [*SECURITY_HEADERS, *(headers or [])])  # fmt: skip


def redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, b"", "text/plain; charset=utf-8",
                    [*SECURITY_HEADERS, ("Location", location), *(headers or [])])  # fmt: skip
