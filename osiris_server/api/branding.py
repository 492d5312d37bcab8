"""A partner's brand (issue 19): display name, colour and logo, set by the admin or the partner.

The rules of what is accepted live in osiris_server/branding.py (the portal uses the same). The
logo is served with its stored type, ``nosniff`` and, for SVG, a sandboxing CSP: opened directly
in a browser it still cannot run anything, should the sanitiser ever miss something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_server import branding
from osiris_server.api.common import audit, read, write
from osiris_server.db import branding as db_branding
from osiris_server.db import tenants as db_tenants
from osiris_server.http import F, Request, Response, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

BODY = {
    "display_name": F("string", nullable=True, max_len=1024, description="1..80 characters"),
    "colour": F("string", nullable=True, max_len=64, description="#rrggbb"),
    "logo_b64": F("string", nullable=True, max_len=branding.B64_MAX, description="base64"),
    "logo_type": F("string", nullable=True, enum=branding.LOGO_TYPES),
    "logo": F("string", nullable=True, max_len=0, description="null removes the logo"),
}
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _visible(req: Request, partner_id: str) -> None:
    """Who may read a partner may read its brand (as GET /partners/{id}); 404 otherwise."""
    p = req.principal
    if p.kind == "partner":
        if p.partner_id != partner_id:
            raise not_found("partner")
    elif not p.all_sites:
        raise not_found("partner")


def public(partner_id: str, row: dict[str, Any] | None) -> dict[str, Any]:
    """The brand as answered: never the logo bytes."""
    row = row or {}
    keys = ("display_name", "colour", "logo_type", "logo_sha256", "updated_by", "updated_at")
    return {"partner_id": partner_id, **{k: row.get(k) for k in keys}}


def get_branding(app: App, req: Request, partner_id: str) -> Response:
    _visible(req, partner_id)
    if not db_tenants.partner_exists(app.db, partner_id):
        raise not_found("partner")
    return json_response(public(partner_id, db_branding.get(app.db, partner_id)))


def put_branding(app: App, req: Request, partner_id: str) -> Response:
    """Validated before the transaction: a refused field changes nothing (not even the others).
    Audited with the fields set and the logo's sha256, never its bytes."""
    p = req.principal
    if p.kind == "partner" and p.partner_id != partner_id:
        raise not_found("partner")
    values = branding.fields_from(req.data)
    with app.db.write() as w:
        if not db_tenants.partner_exists(w, partner_id):
            raise not_found("partner")
        db_branding.put(w, partner_id, values, p.actor)
        detail: dict[str, Any] = {"fields": sorted(k for k in values if k != "logo_sha256")}
        if "logo" in values:
            detail["logo_sha256"] = values["logo_sha256"]
            detail["logo_type"] = values["logo_type"]
        audit(w, req, "partner.branding", partner_id, detail=detail)
        row = db_branding.get(w, partner_id)
    return json_response(public(partner_id, row))


def get_logo(app: App, req: Request, partner_id: str) -> Response:
    _visible(req, partner_id)
    hit = db_branding.logo(app.db, partner_id)
    if hit is None:
        raise not_found("logo")
    ctype, data = hit
    headers = []  # X-Content-Type-Options: nosniff is on every answer (app.py)
    if ctype == branding.SVG_TYPE:
        headers.append(("Content-Security-Policy", SVG_CSP))
    return Response(status=200, body=data, content_type=ctype, headers=headers)


ROUTES = [
    read(
        "GET",
        "/api/v1/partners/{partner_id}/branding",
        get_branding,
        summary="The partner's brand (display name, colour, logo type and sha256)",
        tag="partners",
    ),
    write(
        "PUT",
        "/api/v1/partners/{partner_id}/branding",
        put_branding,
        roles=("admin", "partner"),
        body=BODY,
        summary="Set the partner's display name, colour (#rrggbb) and logo (PNG/SVG, base64); "
        "null clears a field",
        tag="partners",
    ),
    read(
        "GET",
        "/api/v1/partners/{partner_id}/logo",
        get_logo,
        summary="The partner's logo bytes (image/png or sanitised image/svg+xml); 404 if none",
        tag="partners",
    ),
]
