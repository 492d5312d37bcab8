"""report.html: the packet's report.json (``osiris.packet-report/1``) as one self-contained page an
auditor opens from a file, with no Osiris installed and no network.

Why it is shaped this way: the packet is evidence, so the page must not depend on anything
outside it — the CSS is inline, the charts are inline SVG (charts.py), there is no JavaScript
and no external URL (an auditor's browser fetches nothing, and nothing can change what it
shows later). Jinja2 autoescapes every value, and every string of the report is first stripped
of control characters (a host id is data the MSP's fleet chose: it must not inject markup or
hide text). The same page, with long lists cut to "and N more — see report.json", is what
pdf.py prints. This module only *displays*: the statuses and why-sentences come from the report
model (osiris_core/report_model.py) and are never re-judged here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from . import charts
from .charts import clean

STATUS = {  # control status -> (glyph, words, css class)
    "met": ("✓", "met", "met"),
    "partially_met": ("◐", "partially met", "partial"),
    "not_met": ("✕", "not met", "notmet"),
    "not_evidenced": ("○", "not evidenced", "noevid"),
}
EXC_STATUS = {
    "healed": ("✚", "healed", "met"),
    "accepted": ("◇", "accepted", "partial"),
    "open": ("▲", "open", "notmet"),
}
STATUS_FAMILIES = ("Administrative", "Physical", "Technical", "Documentation")
PDF_LIMIT = 12  # rows of a long list the PDF shows before "and N more — see report.json"

_env = Environment(
    loader=PackageLoader("osiris_tui.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def scrub(value: Any) -> Any:
    """The report with control characters stripped from every string (keys too)."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {clean(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def when(ts: object) -> str:
    """``2026-11-03T02:00:11Z`` -> ``2026-11-03 02:00:11 UTC``; none -> an em dash."""
    if not ts:
        return "—"
    s = str(ts)
    return s.replace("T", " ").removesuffix("Z") + (" UTC" if s.endswith("Z") else "")


def utc(ts: object) -> str:
    """A table cell's time: ``2026-11-03 02:00:11`` (the column header says UTC)."""
    return when(ts).removesuffix(" UTC")


def duration(seconds: object) -> str:
    """Seconds as the two largest units (``4 min 29 s``, ``3 d 2 h``); none -> an em dash."""
    if seconds is None or not isinstance(seconds, int | float):
        return "—"
    s = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


def day_ranges(days: Sequence[str]) -> str:
    """Consecutive days folded: ``2026-11-01–05, 2026-11-18`` (same month: day only)."""
    parsed = []
    for d in sorted(set(days)):
        try:
            parsed.append(date.fromisoformat(d))
        except (TypeError, ValueError):
            continue
    runs: list[tuple[date, date]] = []
    for d in parsed:
        if runs and d - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    out = []
    for a, b in runs:
        if a == b:
            out.append(a.isoformat())
        elif (a.year, a.month) == (b.year, b.month):
            out.append(f"{a.isoformat()}–{b.day:02d}")
        else:
            out.append(f"{a.isoformat()}–{b.isoformat()}")
    n = len(parsed)
    return ", ".join(out) + (f" ({n} days)" if n > 1 else "")


def ref(by: Mapping[str, Any] | None) -> Markup:
    """An appliance bundle reference ``appliance#seq`` — what the auditor looks up in bundles —
    kept on one line (a reference broken at its hyphen copies out of a PDF wrong)."""
    if not by:
        return Markup("—")
    text = escape(f"{by.get('appliance_id')}#{by.get('seq')}")
    return Markup('<span class="ref">') + text + Markup("</span>")


def colour(value: object) -> str | None:
    """The partner colour only if it is a plain ``#rrggbb`` / ``#rgb`` (it goes into CSS)."""
    s = str(value or "")
    hexd = set("0123456789abcdefABCDEF")
    if s.startswith("#") and len(s) in (4, 7) and all(c in hexd for c in s[1:]):
        return s
    return None


LOGO_CAPS = {"image/png": 256 * 1024, "image/svg+xml": 64 * 1024}  # the server's caps
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


def logo_src(partner: object) -> str | None:
    """The partner logo's ``data:`` URI for the header ``<img>`` (in an img an SVG never runs a
    script; the server sanitised it anyway), or None unless it is what report.json says it is:
    a PNG or SVG within the server's caps whose bytes match its sha256."""
    logo = partner.get("logo") if isinstance(partner, Mapping) else None
    if not isinstance(logo, Mapping):
        return None
    ctype, b64 = logo.get("type"), logo.get("b64")
    if ctype not in LOGO_CAPS or not isinstance(b64, str) or not _B64.match(b64):
        return None
    if len(b64) > (LOGO_CAPS[ctype] + 2) // 3 * 4:
        return None
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if hashlib.sha256(data).hexdigest() != logo.get("sha256"):
        return None
    if ctype == "image/png" and not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return f"data:{ctype};base64,{b64}"


def css_text(value: object) -> str:
    """A value for a CSS string (the PDF's page footer): only letters, digits and ``._:-/ ``
    survive, so no quote, backslash or ``</style>`` can leave the string."""
    return "".join(ch for ch in clean(value) if ch.isalnum() or ch in "._:-/ ")[:80]


def cut(rows: Sequence[Any], limit: int | None) -> tuple[list[Any], int]:
    """(rows to show, how many were left out)."""
    rows = list(rows)
    if limit is None or len(rows) <= limit:
        return rows, 0
    return rows[:limit], len(rows) - limit


_RUN = 30  # an unbroken run longer than this gets a break opportunity in the PDF (soften)


def soften(text: str) -> str:
    """Free text with a zero-width space every ``_RUN`` characters of an unbroken run: a
    hostile 300-character "reason" wraps inside its table cell instead of widening the table
    past the paper (WeasyPrint sizes a column by its longest unbreakable word)."""
    out = []
    for word in text.split(" "):
        out.append("\u200b".join(word[i : i + _RUN] for i in range(0, len(word), _RUN)))
    return " ".join(out)


def _soften_free_text(r: dict[str, Any]) -> None:
    """The PDF's prose fields softened; ids, hashes and refs are kept exact (they have their
    own break rules in report.css) so they copy out of the PDF intact."""

    def fix(d: Any, *keys: str) -> None:
        if isinstance(d, dict):
            for k in keys:
                if isinstance(d.get(k), str):
                    d[k] = soften(d[k])

    fix(r, "site_name")
    fix(r.get("partner"), "name")
    fix(r.get("population"), "note")
    for h in (r.get("population") or {}).get("expected") or []:
        fix(h, "platform", "source")
    for c in r.get("controls") or []:
        fix(c, "title", "why")
    for e in r.get("exceptions") or []:
        fix(e, "owner")
        fix(e.get("accepted"), "by", "reason")
    for i in r.get("incidents") or []:
        fix(i, "severity")
    for v in r.get("reviews") or []:
        fix(v, "reviewer", "note")


def _context(report: Mapping[str, Any], limit: int | None) -> dict[str, Any]:
    r = scrub(dict(report))
    if limit is not None:
        _soften_free_text(r)
    period = r.get("period") or {}
    days = list(period.get("days") or [])
    controls = list(r.get("controls") or [])
    for c in controls:
        c["glyph"], c["word"], c["css"] = STATUS.get(c.get("status"), ("?", "unknown", "noevid"))
        exp, ev = c.get("expected_cells") or 0, c.get("evidenced_cells") or 0
        c["coverage"] = f"{ev}/{exp} ({100 * ev / exp:.0f} %)" if exp else "0/0"
        c["missing_rows"], c["missing_more"] = cut(c.get("missing") or [], limit)
    pop = r.get("population") or {}
    missing_hosts = set(pop.get("missing") or [])
    with_ev = set(pop.get("with_evidence") or [])
    expected = sorted(
        pop.get("expected") or [], key=lambda h: h.get("host_id") not in missing_hosts
    )
    # the PDF: the table's first rows are the failures; the alarm names up to 10x the limit
    hosts_rows, hosts_more = cut(expected, None if limit is None else limit * 3)
    missing_list, missing_list_more = cut(
        pop.get("missing") or [], None if limit is None else limit * 10
    )
    excs = list(r.get("exceptions") or [])
    for e in excs:
        e["glyph"], e["word"], e["css"] = EXC_STATUS.get(e.get("status"), ("?", "unknown", ""))
    exc_rows, exc_more = cut(excs, None if limit is None else limit * 2)
    inc_rows, inc_more = cut(r.get("incidents") or [], None if limit is None else limit * 2)
    fam = charts.family_totals(controls, days)
    order = [f for f in STATUS_FAMILIES if f in fam] + [f for f in fam if f not in STATUS_FAMILIES]
    families = [charts.family_chart(f, fam[f], days) for f in order]
    hm = r.get("heatmap") or {}
    counts = {s: sum(1 for c in controls if c.get("status") == s) for s in STATUS}
    return {
        "r": r,
        "period": period,
        "partner": r.get("partner"),
        "logo_src": logo_src(r.get("partner")),
        "accent": colour((r.get("partner") or {}).get("colour")) or "#2b4a6f",
        "controls": controls,
        "counts": counts,
        "STATUS": STATUS,
        "hosts_rows": hosts_rows,
        "hosts_more": hosts_more,
        "missing_hosts": missing_hosts,
        "missing_list": missing_list,
        "missing_list_more": missing_list_more,
        "with_evidence": with_ev,
        "exc_rows": exc_rows,
        "exc_more": exc_more,
        "inc_rows": inc_rows,
        "inc_more": inc_more,
        "family_charts": families,
        "heatmaps": charts.heatmaps(
            hm.get("hosts") or [], hm.get("days") or [], hm.get("cells") or []
        ),
        "legend": charts.legend(),
        "checkpoint": r.get("checkpoint") or {},
        "reviews": r.get("reviews") or [],
        "healing": r.get("healing") or {},
        "policy": r.get("policy") or {},
        "for_pdf": limit is not None,
    }


_env.filters.update(
    when=when, duration=duration, days=day_ranges, ref=ref, css_text=css_text, utc=utc
)


def page(report: Mapping[str, Any], *, limit: int | None = None) -> str:
    """The page as text. ``limit``: cut long lists to about that many rows (the PDF's view)."""
    return _env.get_template("report.html.j2").render(**_context(report, limit))


def render_html(report: Mapping[str, Any]) -> bytes:
    """report.html's bytes (every row, nothing cut): a renderer for build_packet."""
    return page(report).encode("utf-8")
