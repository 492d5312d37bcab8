"""Alert routes per partner and per site, their deliveries, and the partners' SLA timers.

Why the rules are what they are:

* **Tenancy as for sites**: a partner key sees and edits its own partner's routes and its own
  sites' routes only; another partner's (or a site outside it) is 404, never 403 (no
  existence hint). MSP staff see every route; auditors read, only admin/operator/partner write.
* **Destinations are secrets**: a webhook URL (Slack and Teams URLs *are* their token), the
  generic webhook's HMAC secret and a PagerDuty routing key are sealed in the vault, bound to
  the route id (``db/alert_routes.context``); listings show the URL's scheme and host only.
  E-mail addresses are not secret and are shown.
* **SSRF**: a webhook URL is https to a public address unless the admin allowed private ones
  in ``server.toml`` (``alert_targets.check_url``); the answer is 400 E_SCHEMA without echoing
  the URL.
* Every change is audited (``alert_route.create`` / ``alert_route.delete`` / ``sla.update``),
  the audit detail naming preset, level and target as shown, never the secret.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from osiris_server.alert_presets import PRESETS
from osiris_server.alert_targets import TargetRefused, check_url, display
from osiris_server.api.common import LIMIT, SITE_ID, audit, read, site_for, visible_site_ids, write
from osiris_server.db import alert_deliveries as db_dlv
from osiris_server.db import alert_routes as db_routes
from osiris_server.db import tenants as db_tenants
from osiris_server.http import (
    F,
    HttpError,
    Request,
    Response,
    bad_request,
    json_response,
    not_found,
)

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.auth import Principal

# the scale every part uses (osiris_core/severity.py, issue 16 item 1)
SLA_SEVERITIES = ("low", "medium", "high", "critical")
EMAIL = F("string", min_len=3, max_len=254, pattern=r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
CREATE = {
    "name": F(
        "string", required=True, min_len=1, max_len=64, pattern=r"[A-Za-z0-9][A-Za-z0-9 ._-]*"
    ),
    "preset": F("string", required=True, enum=PRESETS),
    "level": F("integer", minimum=0, maximum=5),
    "emails": F("array", items=EMAIL, min_items=1, max_items=20),
    "url": F("string", min_len=8, max_len=2048),
    "secret": F("string", min_len=16, max_len=256),
    "routing_key": F("string", min_len=20, max_len=64, pattern=r"[A-Za-z0-9]{20,64}"),
}
SLA = {s: F("integer", minimum=0, maximum=7 * 86400) for s in SLA_SEVERITIES}
DELIVERY_QUERY = {
    "site": SITE_ID,
    "state": F("string", enum=db_dlv.STATES),
    "incident": F("string", max_len=64, pattern=r"[A-Za-z0-9_]{1,64}"),
    "limit": LIMIT,
}
NEEDS = {  # preset -> (required fields, refused fields)
    "email": ({"emails"}, {"url", "secret", "routing_key"}),
    "generic": ({"url", "secret"}, {"emails", "routing_key"}),
    "slack": ({"url"}, {"emails", "secret", "routing_key"}),
    "teams": ({"url"}, {"emails", "secret", "routing_key"}),
    "pagerduty": ({"routing_key"}, {"emails", "secret"}),
}


def _partner_for(app: App, p: Principal, partner_id: str) -> dict[str, Any]:
    """The partner if this principal may manage it; 404 otherwise (like ``site_for``)."""
    if p.kind == "partner" and p.partner_id != partner_id:
        raise not_found("partner")
    if p.kind != "partner" and not p.all_sites:
        raise not_found("partner")
    row = db_tenants.get_partner(app.db, partner_id)
    if row is None:
        raise not_found("partner")
    return row


def _route_for(app: App, p: Principal, route_id: str) -> dict[str, Any]:
    row = db_routes.get(app.db, route_id)
    if row is None:
        raise not_found("alert route")
    try:
        if row["site_id"] is not None:
            site_for(app, p, row["site_id"])
        else:
            _partner_for(app, p, row["partner_id"])
    except HttpError:  # whatever hides the scope hides the route too
        raise not_found("alert route") from None
    return row


def _out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["scope"] = "site" if row["site_id"] else "partner"
    out["level"] = int(row["level"])
    return out


def _sealed(app: App, body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(what operators see, what the vault keeps) for a validated body."""
    preset = body["preset"]
    need, refuse = NEEDS[preset]
    for k in sorted(need):
        if k not in body:
            raise bad_request(f"a {preset} route needs {k}", "E_SCHEMA")
    for k in sorted(refuse):
        if k in body:
            raise bad_request(f"a {preset} route takes no {k}", "E_SCHEMA")
    if preset == "email":
        if app.cfg.smtp is None:
            raise bad_request("the server has no [smtp] relay for e-mail routes", "E_SCHEMA")
        return ", ".join(body["emails"]), {}
    secret = {k: body[k] for k in ("url", "secret", "routing_key") if k in body}
    if "url" in body:
        try:
            check_url(body["url"], app.cfg.allow_private_webhooks)
        except TargetRefused as exc:
            raise bad_request(str(exc), "E_SCHEMA") from None
        return display(body["url"]), secret
    return "PagerDuty Events v2", secret


def _create(app: App, req: Request, partner_id: str | None, site_id: str | None) -> Response:
    body = req.data
    target, secret = _sealed(app, body)
    route_id = db_routes.new_route_id()
    token = app.vault.encrypt(json.dumps(secret).encode(), db_routes.context(route_id))
    row = {
        "id": route_id,
        "partner_id": partner_id,
        "site_id": site_id,
        "name": body["name"],
        "preset": body["preset"],
        "level": int(body.get("level", 0)),
        "target": target,
        "secret_enc": token,
        "created_by": req.principal.actor,
    }
    with app.db.write() as w:
        db_routes.insert(w, row)
        detail = {k: row[k] for k in ("name", "preset", "level", "target")}
        audit(w, req, "alert_route.create", route_id, site_id, detail)
    return json_response(_out(db_routes.get(app.db, route_id) or {}), 201)


def list_partner_routes(app: App, req: Request, partner_id: str) -> Response:
    _partner_for(app, req.principal, partner_id)
    rows = db_routes.list_for(app.db, partner_id, None)
    return json_response({"routes": [_out(r) for r in rows]})


def create_partner_route(app: App, req: Request, partner_id: str) -> Response:
    _partner_for(app, req.principal, partner_id)
    return _create(app, req, partner_id, None)


def list_site_routes(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    rows = db_routes.list_for(app.db, None, site_id)
    return json_response({"routes": [_out(r) for r in rows]})


def create_site_route(app: App, req: Request, site_id: str) -> Response:
    site = site_for(app, req.principal, site_id)
    return _create(app, req, site.get("partner_id"), site_id)


def delete_route(app: App, req: Request, route_id: str) -> Response:
    row = _route_for(app, req.principal, route_id)
    with app.db.write() as w:
        if db_routes.delete(w, route_id):
            detail = {k: row[k] for k in ("name", "preset", "level", "target")}
            audit(w, req, "alert_route.delete", route_id, row["site_id"], detail)
    return json_response({"deleted": route_id})


def get_sla(app: App, req: Request, partner_id: str) -> Response:
    _partner_for(app, req.principal, partner_id)
    return json_response({"partner_id": partner_id, "sla": db_routes.sla_of(app.db, partner_id)})


def put_sla(app: App, req: Request, partner_id: str) -> Response:
    _partner_for(app, req.principal, partner_id)
    sla = {k: int(v) for k, v in req.data.items()}
    for k, v in sla.items():
        if 0 < v < 60:
            raise bad_request(f"{k}: an SLA is at least 60 seconds (0 turns it off)", "E_SCHEMA")
    merged = {**db_routes.sla_of(app.db, partner_id), **sla}
    with app.db.write() as w:
        old = db_routes.sla_of(w, partner_id)
        db_routes.set_sla(w, partner_id, {k: v for k, v in merged.items() if k in SLA})
        audit(w, req, "sla.update", partner_id, None, {"old": old, "new": merged})
    return json_response({"partner_id": partner_id, "sla": db_routes.sla_of(app.db, partner_id)})


def list_deliveries(app: App, req: Request) -> Response:
    q = req.params
    if "site" in q:
        site_for(app, req.principal, q["site"])
        sites: list[str] | None = [q["site"]]
    else:
        sites = visible_site_ids(app, req.principal)
    rows = db_dlv.list_rows(app.db, sites, q.get("state"), q.get("incident"), q.get("limit", 100))
    return json_response({"deliveries": rows})


READERS = ("admin", "operator", "auditor", "partner")
PARTNER = "/api/v1/partners/{partner_id}"
ROUTES = [
    read("GET", f"{PARTNER}/alert-routes", list_partner_routes, roles=READERS,
         summary="A partner's alert routes (destinations masked)", tag="alerts"),
    write("POST", f"{PARTNER}/alert-routes", create_partner_route, body=CREATE, status=201,
          summary="Add an alert route for every site of a partner (audited)", tag="alerts"),
    read("GET", "/api/v1/sites/{site_id}/alert-routes", list_site_routes, roles=READERS,
         summary="A site's own alert routes (destinations masked)", tag="alerts"),
    write("POST", "/api/v1/sites/{site_id}/alert-routes", create_site_route, body=CREATE,
          status=201, summary="Add an alert route for one site (audited)", tag="alerts"),
    write("DELETE", "/api/v1/alert-routes/{route_id}", delete_route,
          summary="Delete an alert route (audited)", tag="alerts"),
    read("GET", f"{PARTNER}/sla", get_sla, roles=READERS,
         summary="A partner's SLA timers: ack-within seconds per severity", tag="alerts"),
    write("PUT", f"{PARTNER}/sla", put_sla, body=SLA,
          summary="Set SLA timers per severity (0 turns one off; audited)", tag="alerts"),
    read("GET", "/api/v1/alerts/deliveries", list_deliveries, query=DELIVERY_QUERY,
         roles=READERS, summary="Alert deliveries per (incident, route) and their state",
         tag="alerts"),
]  # fmt: skip
