"""`osiris site settings show|set|allowlist`: a site's maintenance window, check-in cadence,
watchdog thresholds and the allow-lists of its trust-redirecting runbook parameters (its alert
routes are shown; `osiris alerts` edits them).

Nothing is judged here: every value goes to the API as given (``osiris_tui.site_settings``), so
a bad window, an unknown time zone or a cadence out of range is the API's own 400 message (exit
2) and nothing changes; an allow-list edit by anyone but an admin is the API's 403 (exit 4). The
server audits each change (who, old, new) and delivers it in the appliances' next signed policy.
"""

from __future__ import annotations

from typing import Any

import click

from osiris_core.errors import ExitCode

from .. import site_settings as ss
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, emit_table, fail


def _show(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(view)
        return
    rows: list[tuple[str, str]] = [
        ("site", view["site_id"]),
        ("name", view["name"]),
        ("window", ss.window_text(view["window"])),
        ("checkin_interval_s", str(view["checkin_interval_s"])),
    ]
    rows += [(k, "-" if view[k] is None else str(view[k])) for k in ss.WATCHDOG]
    for rid, name, values in ss.allowlist_rows(view):
        rows.append((f"allowlist {rid}.{name}", ", ".join(values) or "-"))
    for r in view["alert_routes"]:
        rows.append((f"alert route {r['name']}", f"{r['preset']} level {r['level']} "
                                                 f"({r['scope']}): {r['target']}"))  # fmt: skip
    emit_table(rows, ["SETTING", "VALUE"])


@click.group("settings")
def settings() -> None:
    """A site's settings: window, check-in cadence, watchdog, allow-lists."""


@settings.command("show")
@click.argument("site_id")
@JSON_OPT
@click.pass_context
def settings_show(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """Show a site's window, cadence, watchdog thresholds, allow-lists and alert routes."""
    _show(ss.settings_view(client_of(ctx), site_id), as_json)


@settings.command("set")
@click.argument("site_id")
@click.option(
    "--days",
    metavar="DAYS",
    help="Window days, comma-separated (mon,tue,…); 'none': the window never opens.",
)
@click.option("--start", metavar="HH:MM", help="Window start, local time in the site's zone.")
@click.option(
    "--duration",
    "duration_min",
    type=int,
    metavar="MINUTES",
    help="Window length in minutes (1-1440).",
)
@click.option(
    "--timezone", metavar="ZONE", help="IANA time zone of the clinic, e.g. Europe/Berlin."
)
@click.option(
    "--checkin-interval",
    "checkin_interval_s",
    type=int,
    metavar="SECONDS",
    help="Check-in cadence of the site's appliances, seconds (10-3600).",
)
@click.option(
    "--watchdog-missed",
    "watchdog_missed_checkins",
    type=int,
    metavar="N",
    help="Missed check-ins before the watchdog raises appliance_silent.",
)
@click.option(
    "--watchdog-host-silent",
    "watchdog_host_silent_min",
    type=int,
    metavar="MINUTES",
    help="Minutes a host may go without evidence while its appliance is online (0: off).",
)
@JSON_OPT
@click.pass_context
def settings_set(
    ctx: click.Context,
    site_id: str,
    days: str | None,
    start: str | None,
    duration_min: int | None,
    timezone: str | None,
    checkin_interval_s: int | None,
    watchdog_missed_checkins: int | None,
    watchdog_host_silent_min: int | None,
    as_json: bool,
) -> None:
    """Change a site's maintenance window, check-in cadence or watchdog thresholds, e.g.
    `osiris site settings set clinic --days sat,sun --start 03:00`. Parts not given keep their
    value; the server validates, audits and signs the change into the next policy."""
    c = client_of(ctx)
    current = c.get(f"/sites/{ss.seg(site_id)}")["window"]
    win = ss.window_change(current, days, start, duration_min, timezone)
    view = ss.apply_settings(
        c, site_id, win, checkin_interval_s,
        watchdog_missed_checkins=watchdog_missed_checkins,
        watchdog_host_silent_min=watchdog_host_silent_min,
    )  # fmt: skip
    _show(view, as_json)


@settings.command("allowlist")
@click.argument("site_id")
@click.argument("runbook_id")
@click.argument("param")
@click.argument("values", nargs=-1)
@click.option("--clear", is_flag=True, help="Empty the allow-list (no value is allowed).")
@YES_OPT
@JSON_OPT
@click.pass_context
def settings_allowlist(
    ctx: click.Context,
    site_id: str,
    runbook_id: str,
    param: str,
    values: tuple[str, ...],
    clear: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Replace the allow-list of a trust-redirecting parameter (admin only), e.g.
    `osiris site settings allowlist clinic RB-WIN-UPD-002 wsus_server http://wsus:8530 --yes`.
    The values given become the whole list; --clear empties it."""
    if bool(values) == clear:
        fail("give the allowed VALUES, or --clear (not both)", ExitCode.USAGE)
    what = f"{site_id}: {runbook_id}.{param} may then point only at " + (
        ", ".join(values) if values else "nothing (cleared)"
    )
    confirm(yes, f"replace the allow-list of {what}")
    _show(ss.set_allowlist(client_of(ctx), site_id, runbook_id, param, list(values)), as_json)
