"""The compliance-over-time chart: inline SVG we write ourselves (no script, no library).

One bar per day of the window, stacked: hosts with compliant evidence (or healed that day),
hosts with a finding, hosts with no evidence (hatched as well as grey). Status is never colour
alone: each part has its own pattern or mark, the legend names them in words, and the page
carries the same numbers as a table. Every value is a number or a day we formatted; nothing
remote reaches the SVG as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

OK, FINDING, MISSING = "#2e7d32", "#b3261e", "#9e9e9e"


def chart(series: Sequence[dict[str, Any]], label: str) -> Markup:
    w_bar, gap, h, top, left = 14, 4, 160, 10, 34
    n = max(1, len(series))
    width = left + n * (w_bar + gap) + 10
    height = top + h + 34
    hosts = max([s["hosts"] for s in series] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'class="chart" aria-labelledby="chart-title"><title id="chart-title">{escape(label)}'
        "</title>",
        '<defs><pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="5" height="5" fill="#e0e0e0"/>'
        f'<line x1="0" y1="0" x2="0" y2="5" stroke="{MISSING}" stroke-width="2"/></pattern>'
        '<pattern id="dots" width="4" height="4" patternUnits="userSpaceOnUse">'
        f'<rect width="4" height="4" fill="{FINDING}"/><circle cx="2" cy="2" r="0.9" '
        'fill="#fff"/></pattern></defs>',
        f'<line x1="{left - 2}" y1="{top}" x2="{left - 2}" y2="{top + h}" stroke="#444"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" font-size="10">{hosts}</text>',
        f'<text x="{left - 6}" y="{top + h}" text-anchor="end" font-size="10">0</text>',
    ]
    for i, s in enumerate(series):
        x = left + i * (w_bar + gap)
        y = top + h
        for key, fill in (("ok", OK), ("finding", "url(#dots)"), ("missing", "url(#hatch)")):
            v = int(s[key])
            if v <= 0:
                continue
            bh = h * v / hosts
            y -= bh
            parts.append(
                f'<rect x="{x}" y="{y:.1f}" width="{w_bar}" height="{bh:.1f}" fill="{fill}">'
                f"<title>{escape(s['day'])}: {v} {key}</title></rect>"
            )
        if i % 7 == 0 or i == n - 1:
            parts.append(
                f'<text x="{x + w_bar / 2}" y="{top + h + 14}" text-anchor="middle" '
                f'font-size="9">{escape(s["day"][5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
