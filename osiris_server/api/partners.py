"""Partners (resellers) and their API keys (``opk_``), shown once at creation.

Vocabulary (osiris_core.partner): a partner is what the agent and the evidence call a
*reseller*; a bundle's ``reseller_id`` is its site's ``partner_id`` or null, and evidence ingest
refuses any other value (``E_RESELLER``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osiris_core import severity
from osiris_server import auth
from osiris_server.api.common import audit, read, write
from osiris_server.db import alert_threshold as db_threshold
from osiris_server.db import tenants as db_tenants
from osiris_server.db import tokens as db_tokens
from osiris_server.http import F, Request, Response, conflict, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

CREATE = {
    "name": F("string", required=True, min_len=1, max_len=128),
    "contact_email": F("string", max_len=254, pattern=r"[^@\s]+@[^@\s]+"),
}


def list_partners(app: App, req: Request) -> Response:
    p = req.principal
    only = p.partner_id if p.kind == "partner" else None
    if p.kind != "partner" and not p.all_sites:
        return json_response({"partners": []})
    return json_response({"partners": db_tenants.list_partners(app.db, only)})


def get_partner(app: App, req: Request, partner_id: str) -> Response:
    p = req.principal
    if (
        p.kind == "partner"
        and p.partner_id != partner_id
        or (p.kind != "partner" and not p.all_sites)
    ):
        raise not_found("partner")
    row = db_tenants.get_partner(app.db, partner_id)
    if row is None:
        raise not_found("partner")
    return json_response(row)


def _issue_key(app: App, w, req: Request, partner_id: str, name: str) -> tuple[str, dict]:
    token = auth.new_token(auth.PARTNER_PREFIX)
    row = db_tokens.create(
        w,
        "partner",
        auth.token_hash(token),
        "partner",
        name,
        req.principal.actor,
        partner_id=partner_id,
    )
    return token, row


def create_partner(app: App, req: Request) -> Response:
    body = req.data
    with app.db.write() as w:
        if db_tenants.partner_name_taken(w, body["name"]):
            raise conflict("a partner with this name exists")
        row = db_tenants.create_partner(w, body["name"], body.get("contact_email"))
        token, _ = _issue_key(app, w, req, row["id"], f"{body['name']} API key")
        audit(w, req, "partner.create", row["id"], detail={"name": body["name"]})
    return json_response({"partner": row, "api_key": token}, 201)


def rotate_key(app: App, req: Request, partner_id: str) -> Response:
    with app.db.write() as w:
        if not db_tenants.partner_exists(w, partner_id):
            raise not_found("partner")
        db_tokens.revoke_partner_keys(w, partner_id)
        token, row = _issue_key(app, w, req, partner_id, "API key")
        audit(w, req, "partner.key_rotate", partner_id)
    return json_response({"api_key": token, "key": row}, 201)


THRESHOLD = {"threshold": F("string", required=True, enum=severity.SEVERITIES)}


def set_alert_threshold(app: App, req: Request, partner_id: str) -> Response:
    """The lowest severity whose new incidents alert, for every site of the partner (issue 16).
    An admin sets any partner's; a partner key only its own (another's is 404, no existence
    hint). Audited with the old and new value."""
    p = req.principal
    if p.kind == "partner" and p.partner_id != partner_id:
        raise not_found("partner")
    new = req.data["threshold"]
    with app.db.write() as w:
        old = db_threshold.for_partner(w, partner_id)
        if old is None:
            raise not_found("partner")
        if db_threshold.set_for_partner(w, partner_id, new):
            detail = {"old": old, "new": new}
            audit(w, req, "partner.alert_threshold", partner_id, detail=detail)
    return json_response({"partner_id": partner_id, "alert_threshold": new})


ROUTES = [
    read("GET", "/api/v1/partners", list_partners, summary="List partners", tag="partners"),
    write(
        "POST",
        "/api/v1/partners",
        create_partner,
        roles=("admin",),
        body=CREATE,
        summary="Create a partner; its API key is returned once",
        tag="partners",
        status=201,
    ),
    read(
        "GET", "/api/v1/partners/{partner_id}", get_partner, summary="One partner", tag="partners"
    ),
    write(
        "POST",
        "/api/v1/partners/{partner_id}/keys",
        rotate_key,
        roles=("admin",),
        body={},
        summary="Replace the partner's API key (old keys revoked); returned once",
        tag="partners",
        status=201,
    ),
    write(
        "PUT",
        "/api/v1/partners/{partner_id}/alert-threshold",
        set_alert_threshold,
        roles=("admin", "partner"),
        body=THRESHOLD,
        summary="Set the partner's alert threshold (low|medium|high|critical; default high)",
        tag="partners",
    ),
]
