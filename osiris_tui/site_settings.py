"""A site's settings as operators edit them — from `osiris site settings …` and the console's
settings screen alike: the maintenance window, the check-in cadence and the allow-lists of the
trust-redirecting runbook parameters.

Why one module for both front ends: the CLI and the console must read and write exactly the same
things the same way, and neither judges a value itself. Every change goes to the server's API
(``PATCH /sites/{id}``, ``PUT /sites/{id}/allowlists/{runbook}/{param}``), which validates it
(a bad value is the API's 400 with its message; nothing changes), audits it (who, old, new) and
bumps the site's generation, so the next check-in delivers a new signed policy that carries it.
The only thing done here is shaping: a partial window edit (``--start 03:00``) is merged into the
site's current window, because the API takes a window whole.

The watchdog thresholds (``watchdog_missed_checkins``: check-ins an appliance may miss before
the server raises ``appliance_silent``; ``watchdog_host_silent_min``: minutes a host may go
without evidence while its appliance is online, 0 = off) are site fields of the same ``PATCH``;
they stay on the server (the watchdog runs there) and are not part of the signed policy. The
site's alert routes are shown read-only (``osiris alerts …`` edits them).

``settings_view`` is the stable ``--json`` shape of `osiris site settings show`:
``{site_id, name, window: {days, start, duration_min, timezone}, checkin_interval_s,
watchdog_missed_checkins, watchdog_host_silent_min, allowlists: {runbook_id: {param: [value,
…]}}, alert_routes: [{id, name, preset, level, scope, target}]}``.
"""

from __future__ import annotations

from typing import Any

from .client import Client, UsageError
from .transport import seg

__all__ = ["seg"]

NO_DAYS = ("", "none", "never")
ROUTE_KEYS = ("id", "name", "preset", "level", "scope", "target")
WATCHDOG = ("watchdog_missed_checkins", "watchdog_host_silent_min")


def settings_view(c: Client, site_id: str) -> dict[str, Any]:
    """The site's editable settings, read from the API (stable keys, see the module doc)."""
    site = c.get(f"/sites/{seg(site_id)}")
    allow = c.get(f"/sites/{seg(site_id)}/allowlists")
    routes = c.get(f"/sites/{seg(site_id)}/alert-routes").get("routes", [])
    return {
        "site_id": site["id"],
        "name": site["name"],
        "window": dict(site["window"]),
        "checkin_interval_s": site["checkin_interval_s"],
        "watchdog_missed_checkins": site.get("watchdog_missed_checkins"),
        "watchdog_host_silent_min": site.get("watchdog_host_silent_min"),
        "allowlists": allow.get("allowlists", {}),
        "alert_routes": [{k: r.get(k) for k in ROUTE_KEYS} for r in routes],
    }


def parse_days(text: str) -> list[str]:
    """``mon,wed`` → ``["mon", "wed"]``; ``none`` (or empty) → ``[]`` (the window never opens).
    Only the list's form is read here; the API judges the day names."""
    if text.strip().lower() in NO_DAYS:
        return []
    return [d.strip().lower() for d in text.split(",") if d.strip()]


def window_change(
    current: dict[str, Any],
    days: str | None = None,
    start: str | None = None,
    duration_min: int | None = None,
    timezone: str | None = None,
) -> dict[str, Any] | None:
    """The whole window to send: ``current`` with the given parts replaced (None: no part
    given, so no window change)."""
    if days is None and start is None and duration_min is None and timezone is None:
        return None
    win = {k: current[k] for k in ("days", "start", "duration_min", "timezone")}
    if days is not None:
        win["days"] = parse_days(days)
    if start is not None:
        win["start"] = start.strip()
    if duration_min is not None:
        win["duration_min"] = duration_min
    if timezone is not None:
        win["timezone"] = timezone.strip()
    return win


def apply_settings(
    c: Client,
    site_id: str,
    window: dict[str, Any] | None = None,
    checkin_interval_s: int | None = None,
    **watchdog: int | None,
) -> dict[str, Any]:
    """One ``PATCH`` with what changed (the server validates and audits it); the new view.
    ``watchdog``: ``watchdog_missed_checkins`` / ``watchdog_host_silent_min``."""
    body: dict[str, Any] = {}
    if window is not None:
        body["window"] = window
    if checkin_interval_s is not None:
        body["checkin_interval_s"] = checkin_interval_s
    for key in WATCHDOG:
        if watchdog.get(key) is not None:
            body[key] = watchdog[key]
    if not body:
        raise UsageError(
            "nothing to change: give a window part, --checkin-interval or a watchdog threshold"
        )
    c.patch(f"/sites/{seg(site_id)}", body)
    return settings_view(c, site_id)


def set_allowlist(
    c: Client, site_id: str, runbook_id: str, param: str, values: list[str]
) -> dict[str, Any]:
    """Replace one trust-redirecting parameter's allow-list (admin only: the API answers 403 to
    anyone else); the new view."""
    c.put(
        f"/sites/{seg(site_id)}/allowlists/{seg(runbook_id)}/{seg(param)}",
        {"values": list(values)},
    )
    return settings_view(c, site_id)


def window_text(win: dict[str, Any]) -> str:
    """``mon,tue 02:00 +120 min Europe/Berlin`` (``never`` without days): one line for a table
    or the console."""
    days = ",".join(win.get("days") or []) or "never"
    return f"{days} {win.get('start')} +{win.get('duration_min')} min {win.get('timezone')}"


def allowlist_rows(view: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """``(runbook_id, param, values)`` per trust-redirecting parameter, sorted."""
    return [
        (rid, name, list(values))
        for rid, names in sorted((view.get("allowlists") or {}).items())
        for name, values in sorted(names.items())
    ]
