"""Operator tokens (admin only), the audit log and the fleet statistics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from osiris_server import auth
from osiris_server.api.common import SITE_ID, audit, read, visible_site_ids, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import audit as db_audit
from osiris_server.db import incidents as db_incidents
from osiris_server.db import tenants as db_tenants
from osiris_server.db import tokens as db_tokens
from osiris_server.db.util import jload
from osiris_server.http import F, Request, Response, bad_request, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

CREATE = {
    "role": F("string", required=True, enum=auth.ROLES),
    "name": F("string", required=True, min_len=1, max_len=128),
    "site_id": SITE_ID,
}


def list_tokens(app: App, req: Request) -> Response:
    return json_response({"tokens": db_tokens.list_all(app.db)})


def create_token(app: App, req: Request) -> Response:
    body = req.data
    site_id = body.get("site_id")
    if (body["role"] == "client") != (site_id is not None):
        raise bad_request("a client token needs exactly one site_id; other roles take none")
    token = auth.new_token(auth.OPERATOR_PREFIX)
    with app.db.write() as w:
        if site_id is not None and not db_tenants.site_exists(w, site_id):
            raise not_found("site")
        row = db_tokens.create(
            w,
            "operator",
            auth.token_hash(token),
            body["role"],
            body["name"],
            req.principal.actor,
            site_id=site_id,
        )
        audit(w, req, "token.create", row["id"], site_id, {"role": body["role"]})
    return json_response({"token": token, **row}, 201)


def revoke_token(app: App, req: Request, token_id: str) -> Response:
    with app.db.write() as w:
        if not db_tokens.revoke(w, token_id):
            raise not_found("token")
        audit(w, req, "token.revoke", token_id)
    return json_response({"revoked": token_id})


AUDIT_QUERY = {
    "site": SITE_ID,
    "action": F("string", max_len=64),
    "before": F("integer", minimum=1),
    "limit": F("integer", minimum=1, maximum=1000),
}


def list_audit(app: App, req: Request) -> Response:
    q = req.params
    sites = None if "site" not in q else [q["site"]]
    rows = db_audit.list_rows(app.db, sites, q.get("action"), q.get("before"), q.get("limit", 100))
    return json_response({"audit": rows})


def stats(app: App, req: Request) -> Response:
    app.heartbeats.flush()
    sites = visible_site_ids(app, req.principal)
    now = int(time.time())
    online = offline = never = 0
    drift = {"hosts": 0, "checks": 0, "errors": 0}
    intervals = {s["id"]: s["checkin_interval_s"] for s in db_tenants.list_sites(app.db)}
    for a in db_appliances.list_for_sites(app.db, sites):
        if a["revoked_at"]:
            continue
        seen = a["last_seen_epoch"]
        if seen is None:
            never += 1
            offline += 1
        elif seen >= now - 3 * intervals.get(a["site_id"], app.cfg.checkin_interval_s):
            online += 1
        else:
            offline += 1
        status = jload(a["status_json"], None) or {}
        hosts = set()
        for c in status.get("checks", []):
            if c.get("status") == "drift":
                drift["checks"] += 1
                hosts.add(c.get("host_id"))
            elif c.get("status") == "error":
                drift["errors"] += 1
        drift["hosts"] += len(hosts)
    return json_response(
        {
            "appliances": {"online": online, "offline": offline, "never_seen": never},
            "drift": drift,
            "incidents_24h": db_incidents.count_since(app.db, sites, 86400),
            "sites": len(sites) if sites is not None else len(intervals),
        }
    )


ROUTES = [
    read(
        "GET",
        "/api/v1/tokens",
        list_tokens,
        roles=("admin",),
        summary="List operator tokens",
        tag="tokens",
    ),
    write(
        "POST",
        "/api/v1/tokens",
        create_token,
        roles=("admin",),
        body=CREATE,
        status=201,
        summary="Create an operator token (shown once)",
        tag="tokens",
    ),
    write(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        revoke_token,
        roles=("admin",),
        summary="Revoke a token",
        tag="tokens",
    ),
    read(
        "GET",
        "/api/v1/audit",
        list_audit,
        roles=("admin", "auditor"),
        query=AUDIT_QUERY,
        summary="The audit log, newest first",
        tag="audit",
    ),
    read(
        "GET",
        "/api/v1/stats",
        stats,
        summary="Appliances online/offline, drift, incidents 24 h",
        tag="stats",
    ),
]
