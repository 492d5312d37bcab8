"""Sites, their appliances, and per-site / per-appliance runbook toggles.

A site's maintenance window is judged here exactly as the agent judges the window its signed
policy carries (``osiris_agent/signed_policy.py`` ``apply_window``): a time zone the zone database
does not know, or a length outside 1 … 1440 minutes, is a 400 here — otherwise the server would
store and sign a window the agent silently ignores (unknown zone) or clamps (a two-day length
becomes one), and the operator's CLI or console would say a change was made that never takes
effect. The same bounds answer every caller (raw API, ``osiris site settings``, the console).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from osiris_core import ids
from osiris_core.protocol import DAYS
from osiris_server.api import targets
from osiris_server.api.common import (
    appliance_for,
    audit,
    read,
    require_write,
    site_for,
    visible_site_ids,
    write,
)
from osiris_server.db import appliances as db_appliances
from osiris_server.db import runbooks as db_runbooks
from osiris_server.db import tenants as db_tenants
from osiris_server.http import F, Request, Response, bad_request, conflict, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

WINDOW = F(
    "object",
    fields={
        "days": F("array", required=True, items=F("string", enum=DAYS), max_items=7),
        "start": F.of(ids.HHMM, required=True),
        "duration_min": F("integer", required=True, minimum=1, maximum=1440),
        "timezone": F("string", required=True, max_len=64, pattern=r"[A-Za-z0-9_+/-]{1,64}"),
    },
)
CREATE = {
    "id": F.of(
        ids.SITE_ID,
        description="admin and operator only (others: 400 E_SCHEMA); default server-assigned",
    ),
    "name": F("string", required=True, min_len=1, max_len=128),
    "partner_id": F.of(ids.PARTNER_ID),
    "window": WINDOW,
    "checkin_interval_s": F("integer", minimum=10, maximum=3600),
}
PATCH = {
    "name": F("string", min_len=1, max_len=128),
    "window": WINDOW,
    "checkin_interval_s": F("integer", minimum=10, maximum=3600),
    # the watchdog (osiris_server/watchdog.py): appliance_silent after this many missed
    # check-ins; host_silent after this many minutes without a host's evidence (0: off)
    "watchdog_missed_checkins": F("integer", minimum=1, maximum=100),
    "watchdog_host_silent_min": F("integer", minimum=0, maximum=43200),
}


def check_window(body: dict[str, Any]) -> None:
    """400 ``E_SCHEMA`` for a window time zone the zone database does not know (the schema has
    checked its form already)."""
    win = body.get("window")
    if win is None:
        return
    try:
        ZoneInfo(win["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(
            f"window.timezone: {win['timezone']!r} is not an IANA time zone "
            "(e.g. Europe/Berlin, America/New_York, UTC)",
            "E_SCHEMA",
        ) from None


def list_sites(app: App, req: Request) -> Response:
    p = req.principal
    if p.all_sites:
        rows = db_tenants.list_sites(app.db)
    elif p.kind == "partner":
        rows = db_tenants.list_sites(app.db, partner_id=p.partner_id)
    else:
        rows = db_tenants.list_sites(app.db, site_id=p.site_id or "")
    return json_response({"sites": rows})


def create_site(app: App, req: Request) -> Response:
    """Create a site. Only callers who see every site (admin, operator) may choose its id: for
    them a taken id is a 409 that tells nothing they could not list. A partner sees only its
    own sites, so a 409 would reveal that another tenant uses the id; a partner's request
    naming any id is therefore refused before the id is looked at (400 ``E_SCHEMA``, the same
    answer for a free id, its own site's id and another tenant's), and without one it gets a
    fresh server-assigned id."""
    p = req.principal
    body = req.data
    partner_id = body.get("partner_id")
    check_window(body)
    if "id" in body and not p.all_sites:
        raise bad_request(
            "id: only admin and operator tokens choose site ids; leave it out and the server "
            "assigns one",
            "E_SCHEMA",
        )
    if p.kind == "partner":
        if partner_id not in (None, p.partner_id):
            raise not_found("partner")
        partner_id = p.partner_id
    with app.db.write() as w:
        if partner_id is not None and not db_tenants.partner_exists(w, partner_id):
            raise not_found("partner")
        if body.get("id") and db_tenants.site_exists(w, body["id"]):
            raise conflict("a site with this id exists")
        site = db_tenants.create_site(
            w,
            body.get("id"),
            body["name"],
            partner_id,
            body.get("window", db_tenants.DEFAULT_WINDOW),
            body.get("checkin_interval_s", app.cfg.checkin_interval_s),
        )
        audit(w, req, "site.create", site["id"], site["id"], {"name": body["name"]})
    return json_response(site, 201)


def get_site(app: App, req: Request, site_id: str) -> Response:
    return json_response(site_for(app, req.principal, site_id))


def patch_site(app: App, req: Request, site_id: str) -> Response:
    """Rename a site, or change the settings its appliances' signed policy carries (window,
    check-in cadence). The audit record names who changed what from which old value to which
    new one, so an auditor reads the change without replaying the log."""
    site_for(app, req.principal, site_id)
    check_window(req.data)
    with app.db.write() as w:
        before = db_tenants.get_site(w, site_id) or {}
        db_tenants.update_site(w, site_id, req.data)
        fields = sorted(req.data)
        audit(w, req, "site.update", site_id, site_id, {
            "fields": fields,
            "old": {f: before.get(f) for f in fields},
            "new": {f: req.data[f] for f in fields},
        })  # fmt: skip
    return json_response(db_tenants.get_site(app.db, site_id))


def list_appliances(app: App, req: Request, site_id: str) -> Response:
    site = site_for(app, req.principal, site_id)
    app.heartbeats.flush()
    rows = db_appliances.list_for_sites(app.db, [site_id])
    after = 3 * site["checkin_interval_s"]
    return json_response({"appliances": [db_appliances.public(r, after) for r in rows]})


def list_all_appliances(app: App, req: Request) -> Response:
    app.heartbeats.flush()
    sites = visible_site_ids(app, req.principal)
    intervals = {s["id"]: s["checkin_interval_s"] for s in db_tenants.list_sites(app.db)}
    rows = db_appliances.list_for_sites(app.db, sites)
    out = [db_appliances.public(r, 3 * intervals.get(r["site_id"], 60)) for r in rows]
    return json_response({"appliances": out})


def get_appliance(app: App, req: Request, appliance_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    site = db_tenants.get_site(app.db, row["site_id"]) or {}
    return json_response(db_appliances.public(row, 3 * site.get("checkin_interval_s", 60)))


def revoke_appliance(app: App, req: Request, appliance_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    with app.db.write() as w:
        if not db_appliances.revoke(w, appliance_id):
            raise conflict("appliance already revoked")
        audit(w, req, "appliance.revoke", appliance_id, row["site_id"])
    return json_response({"revoked": appliance_id})


# ---- runbook toggles

TOGGLES = {
    "enabled": F(
        "array",
        items=F("string", max_len=64),
        max_items=10000,
        description="Full form: exactly these runbooks enabled, every other one disabled",
    ),
    "runbooks": F(
        "object",
        description="Partial form: {runbook_id: true | false | null}; null clears the override",
    ),
}


def _changes(app: App, body: dict[str, Any]) -> dict[str, bool | None]:
    if ("enabled" in body) == ("runbooks" in body):
        raise bad_request("give either enabled (full list) or runbooks (partial map)")
    known = app.runbook_defaults()
    if "enabled" in body:
        wanted = set(body["enabled"])
        unknown = sorted(wanted - set(known))
        if unknown:
            raise bad_request(targets.unknown_runbook(unknown[0], known), "E_SCHEMA")
        return {rb: rb in wanted for rb in known}
    changes: dict[str, bool | None] = {}
    if len(body["runbooks"]) > 10000:
        raise bad_request("too many runbooks", "E_SCHEMA")
    for rb, v in body["runbooks"].items():
        if rb not in known:
            raise bad_request(targets.unknown_runbook(rb, known), "E_SCHEMA")
        if v is not None and type(v) is not bool:
            raise bad_request(f"runbooks.{rb} must be true, false or null", "E_SCHEMA")
        changes[rb] = v
    return changes


def _view(app: App, site: dict[str, bool], appliance: dict[str, bool] | None) -> dict[str, Any]:
    defaults = app.runbook_defaults()
    out = db_runbooks.effective(defaults, site, appliance or {})
    out["site"] = site
    if appliance is not None:
        out["appliance"] = appliance
    out["defaults"] = defaults
    return out


def get_site_runbooks(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response(_view(app, db_runbooks.settings(app.db, "site", site_id), None))


def put_site_runbooks(app: App, req: Request, site_id: str) -> Response:
    require_write(req.principal)
    site_for(app, req.principal, site_id)
    changes = _changes(app, req.data)
    with app.db.write() as w:
        db_runbooks.apply(w, "site", site_id, changes, req.principal.actor)
        audit(w, req, "runbooks.site", site_id, site_id, {"changes": changes})
    return get_site_runbooks(app, req, site_id)


def get_appliance_runbooks(app: App, req: Request, appliance_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    site = db_runbooks.settings(app.db, "site", row["site_id"])
    own = db_runbooks.settings(app.db, "appliance", appliance_id)
    return json_response(_view(app, site, own))


def put_appliance_runbooks(app: App, req: Request, appliance_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    changes = _changes(app, req.data)
    with app.db.write() as w:
        db_runbooks.apply(w, "appliance", appliance_id, changes, req.principal.actor)
        audit(w, req, "runbooks.appliance", appliance_id, row["site_id"], {"changes": changes})
    return get_appliance_runbooks(app, req, appliance_id)


ROUTES = [
    read("GET", "/api/v1/sites", list_sites, summary="Sites this caller may see", tag="sites"),
    write(
        "POST",
        "/api/v1/sites",
        create_site,
        body=CREATE,
        status=201,
        summary="Create a site (partners: under their own partner, server-assigned id)",
        tag="sites",
    ),
    read("GET", "/api/v1/sites/{site_id}", get_site, summary="One site", tag="sites"),
    write(
        "PATCH",
        "/api/v1/sites/{site_id}",
        patch_site,
        body=PATCH,
        summary="Rename, maintenance window, check-in interval",
        tag="sites",
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/appliances",
        list_appliances,
        summary="Appliances of a site, with online/offline",
        tag="appliances",
    ),
    read(
        "GET",
        "/api/v1/appliances",
        list_all_appliances,
        summary="Every appliance this caller may see",
        tag="appliances",
    ),
    read(
        "GET",
        "/api/v1/appliances/{appliance_id}",
        get_appliance,
        summary="One appliance",
        tag="appliances",
    ),
    write(
        "DELETE",
        "/api/v1/appliances/{appliance_id}",
        revoke_appliance,
        summary="Revoke an appliance's token",
        tag="appliances",
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/runbooks",
        get_site_runbooks,
        summary="Runbook toggles of a site and the effective state",
        tag="runbooks",
    ),
    write(
        "PUT",
        "/api/v1/sites/{site_id}/runbooks",
        put_site_runbooks,
        body=TOGGLES,
        summary="Set site runbook toggles",
        tag="runbooks",
    ),
    read(
        "GET",
        "/api/v1/appliances/{appliance_id}/runbooks",
        get_appliance_runbooks,
        summary="Per-appliance runbook overrides and the effective state",
        tag="runbooks",
    ),
    write(
        "PUT",
        "/api/v1/appliances/{appliance_id}/runbooks",
        put_appliance_runbooks,
        body=TOGGLES,
        summary="Set per-appliance runbook overrides",
        tag="runbooks",
    ),
]
