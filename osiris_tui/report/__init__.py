"""The packet's human-readable report: report.html and report.pdf, rendered from report.json.

``osiris packet build`` passes ``RENDERERS`` to ``osiris_core.packet.build_packet(renderers=)``;
each is a pure function of the report dict (``osiris.packet-report/1``) returning the file's
bytes. osiris_core never imports these (no template or PDF library in the core): the packet's
truth is report.json and the signed bundles, these files only display it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .html import render_html
from .pdf import render_pdf

RENDERERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "report.html": render_html,
    "report.pdf": render_pdf,
}


def render_all(report: Mapping[str, Any]) -> dict[str, bytes]:
    """Every rendering of ``report``: ``{"report.html": …, "report.pdf": …}``."""
    return {name: fn(dict(report)) for name, fn in RENDERERS.items()}


__all__ = ["RENDERERS", "render_all", "render_html", "render_pdf"]
