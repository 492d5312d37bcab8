"""The shared column specs (osiris_tui.columns): the same spec yields the CLI's plain row and the
console's Rich cells, and remote text stays inert in both."""

from __future__ import annotations

import pytest
from rich.text import Text

from osiris_tui.client import Appliance, Credential, Incident
from osiris_tui.columns import APPLIANCES, CREDENTIALS, INCIDENTS, ColumnSet

HOSTILE = "evil\x1b]52;c;AAAA\x07[bold red]x[/]"


def test_cli_row_and_headers_come_from_one_spec() -> None:
    checks = [
        {"host_id": "h", "check": "firewall", "status": "drift", "since": ""},
        {"host_id": "h", "check": "av_edr", "status": "compliant"},
        # issue 13: a check that could not run is counted (ERR) and counts against the score
        {"host_id": "h", "check": "backup", "status": "error", "since": "", "reason": "auth"},
    ]
    a = Appliance.from_json(
        {"id": "a1", "site_id": "s1", "hostname": "box", "last_seen_at": None,
         "status": {"checks": checks}}
    )  # fmt: skip
    assert APPLIANCES.headers() == [
        "ID", "SITE", "HOSTNAME", "STATUS", "LAST SEEN", "DRIFT", "ERR", "COMPLIANT",
    ]  # fmt: skip
    assert APPLIANCES.row(a) == ["a1", "s1", "box", "never", "never", 1, 1, "1/3"]
    assert APPLIANCES.texts(a)[5] == "1"


def test_console_cells_are_literal_and_escaped() -> None:
    c = Credential.from_json(
        {"id": "c1", "host_id": HOSTILE, "kind": "winrm", "address": "10.0.0.1", "port": 5986}
    )
    cells = CREDENTIALS.cells(c)
    assert all(isinstance(x, Text) for x in cells)
    host = cells[1]
    assert "\x1b" not in host.plain and "\x07" not in host.plain
    assert "\\x1b" in host.plain and "[bold red]" in host.plain  # shown, not interpreted
    assert cells[CREDENTIALS.headers().index("SECRET")].style == "dim"


def test_status_columns_render_glyph_and_word_in_the_console_only() -> None:
    i = Incident.from_json({"id": "i1", "status": "open", "severity": "critical", "count": 2})
    status = INCIDENTS["status"]
    assert status.value(i) == "open"
    assert status.cell(i).plain == "▲ open"
    assert INCIDENTS["sev"].cell(i).style == "red"


def test_pick_selects_reorders_and_renames() -> None:
    sub = CREDENTIALS.pick("version", "host", version="VER")
    assert isinstance(sub, ColumnSet)
    assert sub.keyed() == [("version", "VER"), ("host", "HOST")]
    assert CREDENTIALS["version"].header == "VERSION"  # the shared spec is unchanged
    with pytest.raises(KeyError):
        CREDENTIALS.pick("nope")
    with pytest.raises(KeyError):
        CREDENTIALS.pick("host", version="VER")
