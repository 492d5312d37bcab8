"""report.html from report.json (osiris_tui.report): what an auditor must find on the page, and
what a hostile fleet (host ids, notes, partner name chosen by the MSP or a compromised host)
must not be able to put there.

The page is rendered from tests/tui/report_fixture.py, a document of the shared
``osiris.packet-report/1`` shape with every status, a host with no evidence, healed / open /
accepted exceptions, an incident and a review (or none).
"""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import pytest
from markupsafe import escape

from osiris_tui.report import RENDERERS, render_all, render_html
from osiris_tui.report.html import page
from tests.tui.report_fixture import HOSTILE, empty_report, rich_report

URL_ATTRS = {"src", "href", "xlink:href", "action", "data", "poster", "srcset", "background"}
LOCAL_URL = re.compile(r"url\(\s*#[\w-]+\s*\)")  # an SVG pattern in the same document


class Fetches(HTMLParser):
    """What a browser would fetch or run from this page, read as a browser reads it (tags and
    attributes, not text that merely looks like a tag)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "iframe", "object", "embed", "base", "img", "image"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            v = (value or "").strip()
            if name in URL_ATTRS and not v.startswith("#"):
                self.found.append(f"{name}={v}")
            if name.startswith("on"):
                self.found.append(f"{name}=")
            if "url(" in v and LOCAL_URL.sub("", v).count("url("):
                self.found.append(f"{name}={v}")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and ("@import" in data or LOCAL_URL.sub("", data).count("url(")):
            self.found.append("style fetches")


def fetches(text: str) -> list[str]:
    p = Fetches()
    p.feed(text)
    p.close()
    return p.found


# C0 except tab/newline/CR, DEL, C1, bidi embeddings/overrides/isolates, LRM/RLM/ALM
CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def html(report: dict) -> str:
    return render_html(report).decode("utf-8")


BLOCK = {"td", "th", "tr", "dt", "dd", "br", "p", "li", "div", "h1", "h2", "h3", "section"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK:
            self.parts.append(" ")


def visible(text: str) -> str:
    """The page's text as a reader sees it: tags gone, entities decoded, whitespace folded."""
    p = _Text()
    p.feed(text.split("</style>", 1)[-1])
    return " ".join("".join(p.parts).split())


def test_renderers_are_the_two_files_and_pure() -> None:
    report = rich_report()
    before = copy.deepcopy(report)
    out = render_all(report)
    assert set(RENDERERS) == {"report.html", "report.pdf"} == set(out)
    assert all(isinstance(v, bytes) and v for v in out.values())
    assert report == before  # the report dict is not changed by rendering
    assert render_html(report) == out["report.html"]  # same input, same bytes


def test_every_control_with_status_glyph_and_word() -> None:
    report = rich_report()
    text = html(report)
    words = {
        "met": "✓ met",
        "partially_met": "◐ partially met",
        "not_met": "✕ not met",
        "not_evidenced": "○ not evidenced",
    }
    for c in report["controls"]:
        assert all(str(escape(c[k])) in text for k in ("citation", "title", "why"))
        # status is never colour alone: glyph and word beside the control's title
        heading = re.search(
            re.escape(c["title"]) + r" — <span class=\"status \w+\">([^<]*)</span>", text
        )
        assert heading, c["title"]
        assert heading.group(1) == words[c["status"]]
    assert "met: 4" in text and "partially met: 1" in text and "not evidenced: 1" in text


def test_missing_host_is_a_failure_not_an_absence() -> None:
    report = rich_report()
    text = html(report)
    (missing,) = report["population"]["missing"]
    assert "6 hosts expected, 5 with evidence" in text
    alarm = re.search(r'<div class="alarm">✕ Hosts with no evidence.*?</div>', text, re.S)
    assert alarm and missing in alarm.group(0)
    row = re.search(r'<tr class="failrow"><td><code class="short">([^<]+)</code>.*?</tr>', text)
    assert row and row.group(1) == missing and "✕ none" in row.group(0)
    assert text.count('<tr class="failrow">') == 1
    # and its missing days appear under the control it fails
    assert f"{missing} windows_bitlocker 2026-11-01–30 (30 days)" in visible(text)


def test_exceptions_linked_to_their_heal_escalation_and_acceptance() -> None:
    report = rich_report()
    text = visible(html(report))
    for e in report["exceptions"]:  # the HTML cuts nothing
        assert f" {e['id']} " in text
    assert "closed app-clinic-a-1#413 (healed, L1)" in text
    assert "4 min 29 s" in text  # exc-0001's time to fix
    assert "accepted by J. Rivera until 2027-01-31 00:00:00 UTC" in text
    assert "(app-clinic-a-1#611)" in text
    assert "incident inc-0042" in text
    assert "J. Rivera (Security Official)" in text and "Acme IT (MSP)" in text
    assert "▲ open" in text and "✚ healed" in text and "◇ accepted" in text
    # healing statistics and the incident
    assert "4 min 45 s" in text  # median time to remediate, 285 s
    assert (
        "inc-0042 ws03.clinic-a.local encryption high 2026-11-20 02:01:00 "
        "app-clinic-a-1#701" in text
    )


def test_review_shown_or_clearly_absent() -> None:
    with_review = visible(html(rich_report()))
    assert "Reviewed by J. Rivera on 2026-12-02 14:30:00 UTC" in with_review
    assert "app-clinic-a-1#733" in with_review
    assert "No review recorded" not in with_review
    without = html(rich_report(review=False))
    assert "✕ No review recorded" in without and "Reviewed by" not in without


def test_cover_has_site_period_checkpoint_tsa_and_verify_command() -> None:
    report = rich_report()
    text = html(report)
    assert "Clinic A — Main Street Family Practice" in text and "<code>clinic-a</code>" in text
    assert "2026-11-01 00:00:00 UTC to 2026-12-01 00:00:00 UTC" in text
    assert report["checkpoint"]["sha256"] in text and "size 18342" in text
    assert "existed by <b>2026-12-01 00:05:12 UTC</b>" in text
    assert report["verify_command"] in text
    assert report["retention"] in text and "clinic-a-policy-2026.3" in text
    no_tsa = rich_report()
    no_tsa["checkpoint"]["tsa"] = None
    assert "no RFC 3161 timestamp in this packet" in html(no_tsa)


def test_charts_are_inline_svg_one_per_family_and_a_heat_map() -> None:
    text = html(rich_report())
    assert text.count("<svg ") == 4 + 2  # four families, the legend, the heat map
    for fam in ("Administrative", "Physical", "Technical", "Documentation"):
        assert f"{fam}: evidence coverage" in text
    assert 'aria-label="heat map: host by day"' in text
    assert "Physical: evidence coverage 0.0 %" in text  # nothing evidenced is not drawn as a pass
    # a heat-map cell says its state in words (title) and glyph, not colour alone
    assert "ws05.clinic-a.local 2026-11-01: missing: no evidence</title>" in text


def test_page_is_self_contained() -> None:
    for report in (rich_report(), rich_report(hostile=True), empty_report()):
        text = html(report)
        assert fetches(text) == []
        assert "<style>" in text and text.count("</style>") == 1


def test_external_url_probe_can_fail() -> None:
    for planted in (
        '<img src="http://x/a.png">',
        "<a href='https://x'>",
        "<script>",
        '<p style="background:url(//x/a)">',
        '<link rel="stylesheet" href="a.css">',
        "<style>@import 'x.css';</style>",
        '<rect fill="url(http://x/#p)"/>',
        '<body onload="x()">',
    ):
        assert fetches(planted), planted
    assert fetches('<rect fill="url(#h-tech)"/><a href="#cover">') == []


def test_hostile_strings_are_escaped_and_control_characters_shown_escaped() -> None:
    report = rich_report(hostile=True)
    text = html(report)
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert fetches(text) == []
    assert not CONTROL.search(text), repr(CONTROL.search(text))
    # shown, not silently dropped: the auditor sees that a host id carried markup and escapes
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
        "\\x1b[31m\\x07\\x00\\x9b2J\\u202eevil" in text
    )
    # the hostile partner colour never reaches the CSS
    assert "url(http" not in text and "--accent: #2b4a6f;" in text
    assert "\x1b" in HOSTILE  # the fixture is really hostile


def test_hostile_site_id_cannot_leave_the_css_string() -> None:
    report = rich_report()
    report["site_id"] = 'x"; } body { display: none } </style><script>alert(1)</script>'
    text = html(report)
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "display: none" not in style.replace('"x  body  display: none', "")
    assert "<script" not in text.lower() and text.count("</style>") == 1
    footer = re.search(r'@bottom-left \{ content: "([^"]*)"', style)
    assert footer and footer.group(1).startswith("x  body  display: none  /stylescript")


def test_pdf_view_truncates_long_lists_the_html_does_not() -> None:
    report = rich_report()
    full = html(report)
    cut = page(report, limit=12)
    assert "kiosk29.clinic-a.local" in full and "see report.json" not in full
    assert "kiosk29.clinic-a.local" not in cut
    assert "… and 20 more — see report.json" in cut  # 32 missing rows, 12 shown
    assert "exc-0029" not in cut and "… and 5 more — see report.json" in cut


def test_empty_report_renders_and_says_so() -> None:
    text = html(empty_report())
    assert "0 hosts expected, 0 with evidence" in text
    assert "No exception in the period." in text and "No incident in the period." in text
    assert "✕ No review recorded" in text and "none recorded" in text
    assert "no RFC 3161 timestamp" in text and "not evidenced: 7" in text


@pytest.mark.parametrize("field", ["controls", "exceptions", "incidents", "reviews", "heatmap"])
def test_missing_sections_do_not_crash(field: str) -> None:
    report = rich_report()
    del report[field]
    assert "HIPAA evidence report" in html(report)


def test_a_large_site_splits_the_heat_map_and_keeps_ids_unique() -> None:
    text = html(rich_report(hosts=100))
    assert text.count('aria-label="heat map: host by day"') == 3  # 100 hosts, 40 per picture
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert "ws98.clinic-a.local 2026-11-30: ok: evidence, compliant</title>" in text


def test_pdf_view_names_many_missing_hosts_up_to_a_limit() -> None:
    report = rich_report()
    extra = [f"gone{i:03d}.clinic-a.local" for i in range(300)]
    report["population"]["missing"] += extra
    report["population"]["expected"] += [
        {"host_id": h, "platform": "windows", "source": "site target"} for h in extra
    ]
    full, cut = visible(html(report)), visible(page(report, limit=12))
    assert "gone299.clinic-a.local" in full and "see report.json" not in full
    assert "gone118.clinic-a.local" in cut and "gone119.clinic-a.local" not in cut
    assert "… and 181 more — see report.json" in cut  # 301 missing, 120 named
    assert "… and 270 more — see report.json" in cut  # 306 expected, 36 rows
