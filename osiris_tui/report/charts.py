"""The report's charts as inline SVG we write ourselves: no chart library, no JavaScript, no fonts
or images fetched, so report.html opened from a file and report.pdf look the same everywhere.

Two charts, both only *display* report.json (the report model decides every status):

- ``family_chart``: one per control family, a bar per day of the share of expected cells that
  have evidence (the missing share hatched), and the day's findings as a marked count above it;
- ``heatmap``: host × day, each cell ok / finding / healed / missing.

Status is never colour alone (docs/console.md): every heat-map cell carries a glyph and missing
cells are hatched as well as grey, so the chart reads in black and white and for colour-blind
readers. Every string that reaches the SVG is stripped of control characters and XML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from osiris_tui.fmt import safe

# cell state -> (fill, glyph, word): the legend and the cells use the same table
CELL = {
    "ok": ("#d8f0dc", "✓", "ok: evidence, compliant"),
    "finding": ("#f6c6c1", "✕", "finding: non-compliant"),
    "healed": ("#cfe0fb", "+", "healed: fixed that day"),
    "missing": ("#e4e4e4", "?", "missing: no evidence"),
}
INK = "#1b1b1b"
FINDING_INK = "#a4221a"
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"

_HATCH = (
    '<pattern id="{id}" width="4" height="4" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="4" height="4" fill="{bg}"/>'
    '<line x1="0" y1="0" x2="0" y2="4" stroke="#9a9a9a" stroke-width="1.2"/></pattern>'
)


def clean(value: object) -> str:
    """Text made safe to show: control characters (C0, DEL, C1, bidi overrides and isolates)
    become visible ``\\xNN`` escapes (osiris_tui.fmt.safe), newlines ``⏎``. They are invalid in
    XML/HTML and could hide or reorder what an auditor reads; shown escaped, the tampering is
    visible instead of silently gone."""
    return safe(value)


def _t(value: object, limit: int | None = None) -> str:
    s = clean(value)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return str(escape(s))


def _svg(width: int, height: int, label: str, body: Iterable[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_t(label)}" '
        f'font-family="{FONT}">' + "".join(body) + "</svg>"
    )


def family_totals(controls: Sequence[Mapping[str, Any]], days: Sequence[str]) -> dict[str, list]:
    """Per family, per day: [evidenced, expected, findings] summed over the family's controls
    (in report order, families without controls left out)."""
    out: dict[str, list[list[int]]] = {}
    index = {d: i for i, d in enumerate(days)}
    for c in controls:
        fam = out.setdefault(str(c.get("family")), [[0, 0, 0] for _ in days])
        for row in c.get("daily") or []:
            i = index.get(row.get("date"))
            if i is None:
                continue
            fam[i][0] += int(row.get("evidenced") or 0)
            fam[i][1] += int(row.get("expected") or 0)
            fam[i][2] += int(row.get("findings") or 0)
    return out


def family_chart(family: str, per_day: Sequence[Sequence[int]], days: Sequence[str]) -> Markup:
    """Bars of evidenced/expected per day (0–100 %), the missing share hatched; a finding count
    marked ▲n above its day. The title names the family and the period's overall coverage."""
    n = max(1, len(days))
    left, top, plot_h, bar_w = 38, 32, 90, 16
    width = left + n * bar_w + 12
    height = top + plot_h + 34
    ev = sum(d[0] for d in per_day)
    ex = sum(d[1] for d in per_day)
    fnd = sum(d[2] for d in per_day)
    pct = f"{100 * ev / ex:.1f} %" if ex else "no cells expected"
    title = f"{family}: evidence coverage {pct}, {fnd} finding-day(s)"
    pid = "h-" + "".join(ch for ch in family.lower() if ch.isalnum())
    body = [
        "<defs>" + _HATCH.format(id=pid, bg="#f2f2f2") + "</defs>",
        f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{INK}">{_t(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h - frac * plot_h
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#cccccc" '
            f'stroke-width="0.6"/><text x="{left - 4}" y="{y + 3:.1f}" font-size="8" '
            f'text-anchor="end" fill="{INK}">{int(frac * 100)}%</text>'
        )
    for i, (evd, exp, finds) in enumerate(per_day):
        x = left + i * bar_w + 2
        w = bar_w - 4
        if exp:
            h_ev = plot_h * min(evd, exp) / exp
            body.append(
                f'<rect x="{x}" y="{top}" width="{w}" height="{plot_h - h_ev:.1f}" '
                f'fill="url(#{pid})" stroke="#9a9a9a" stroke-width="0.4"/>'
            )
            body.append(
                f'<rect x="{x}" y="{top + plot_h - h_ev:.1f}" width="{w}" height="{h_ev:.1f}" '
                f'fill="#3b7d4f"><title>{_t(days[i])}: {evd}/{exp} evidenced, '
                f"{finds} finding(s)</title></rect>"
            )
        if finds:
            body.append(
                f'<text x="{x + w / 2}" y="{top - 3}" font-size="8" text-anchor="middle" '
                f'fill="{FINDING_INK}" font-weight="bold">▲{finds}</text>'
            )
        if i % 5 == 0 or i == n - 1:
            body.append(
                f'<text x="{x + w / 2}" y="{top + plot_h + 11}" font-size="8" '
                f'text-anchor="middle" fill="{INK}">{_t(str(days[i])[-2:])}</text>'
            )
    ly = top + plot_h + 26
    body.append(
        f'<rect x="{left}" y="{ly - 8}" width="10" height="9" fill="#3b7d4f"/>'
        f'<text x="{left + 14}" y="{ly}" font-size="9" fill="{INK}">evidenced</text>'
        f'<rect x="{left + 78}" y="{ly - 8}" width="10" height="9" fill="url(#{pid})" '
        f'stroke="#9a9a9a" stroke-width="0.4"/>'
        f'<text x="{left + 92}" y="{ly}" font-size="9" fill="{INK}">no evidence</text>'
        f'<text x="{left + 170}" y="{ly}" font-size="9" fill="{FINDING_INK}" '
        f'font-weight="bold">▲n</text>'
        f'<text x="{left + 188}" y="{ly}" font-size="9" fill="{INK}">findings that day</text>'
    )
    return _svg(width, height, title, body)


def legend() -> Markup:
    """The heat map's legend: colour, glyph and word for each cell state."""
    body = ["<defs>" + _HATCH.format(id="hm-legend", bg=CELL["missing"][0]) + "</defs>"]
    x = 0
    for state, (fill, glyph, word) in CELL.items():
        paint = "url(#hm-legend)" if state == "missing" else fill
        body.append(
            f'<rect x="{x}" y="2" width="14" height="14" fill="{paint}" stroke="#777"'
            f' stroke-width="0.5"/><text x="{x + 7}" y="13" font-size="10" '
            f'text-anchor="middle" fill="{INK}" font-weight="bold">{glyph}</text>'
            f'<text x="{x + 19}" y="13" font-size="10" fill="{INK}">{_t(word)}</text>'
        )
        x += 40 + 6 * len(word)
    return _svg(x, 20, "heat map legend", body)


HEATMAP_ROWS = 40  # hosts per heat-map picture: one picture fits an A4 page (an SVG never splits)


def heatmaps(
    hosts: Sequence[str], days: Sequence[str], cells: Sequence[Sequence[str]]
) -> list[Markup]:
    """The heat map in pictures of ``HEATMAP_ROWS`` hosts each (a site of 100 hosts prints on
    three pages instead of running off one); at least one picture, even with no host."""
    parts = range(0, max(1, len(hosts)), HEATMAP_ROWS)
    return [
        heatmap(hosts[i : i + HEATMAP_ROWS], days, cells[i : i + HEATMAP_ROWS], part=n)
        for n, i in enumerate(parts)
    ]


def heatmap(
    hosts: Sequence[str], days: Sequence[str], cells: Sequence[Sequence[str]], *, part: int = 0
) -> Markup:
    """Host × day grid; the host label is cut at 28 characters (the full id is in the table
    and in report.json) and every cell carries its glyph. ``part`` keeps the hatch pattern's
    id unique when the map is split."""
    cell, label_w, top = 15, 178, 22
    width = label_w + cell * max(1, len(days)) + 4
    height = top + cell * max(1, len(hosts)) + 4
    pid = f"hm-missing-{part}"
    body = ["<defs>" + _HATCH.format(id=pid, bg=CELL["missing"][0]) + "</defs>"]
    for j, d in enumerate(days):
        if j % 2 == 0 or j == len(days) - 1:
            body.append(
                f'<text x="{label_w + j * cell + cell / 2}" y="{top - 6}" font-size="8" '
                f'text-anchor="middle" fill="{INK}">{_t(str(d)[-2:])}</text>'
            )
    for i, host in enumerate(hosts):
        y = top + i * cell
        body.append(
            f'<text x="{label_w - 6}" y="{y + cell - 4}" font-size="9" text-anchor="end" '
            f'fill="{INK}">{_t(host, 28)}</text>'
        )
        row = cells[i] if i < len(cells) else []
        for j, _d in enumerate(days):
            state = str(row[j]) if j < len(row) else "missing"
            fill, glyph, word = CELL.get(state, CELL["missing"])
            paint = f"url(#{pid})" if state not in CELL or state == "missing" else fill
            x = label_w + j * cell
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{paint}">'
                f"<title>{_t(host)} {_t(days[j])}: {_t(word)}</title></rect>"
                f'<text x="{x + (cell - 1) / 2}" y="{y + cell - 4.5}" font-size="9" '
                f'text-anchor="middle" fill="{INK}">{glyph}</text>'
            )
    return _svg(width, height, "heat map: host by day", body)
