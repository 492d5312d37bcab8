"""Clinic contacts for the portal: who may ask for a sign-in link to a site's portal.

Why an operator registers them (never the clinic itself, never the portal): a link is mailed
only to a registered address, so whoever may register an address decides who can read a
clinic's status. Admins, operators and the site's own partner may; a partner's request for
another partner's site is 404 like every other tenant miss. Removing a contact ends its unused
links and its open sessions at once. Every change is audited.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from osiris_server.api.common import audit, read, site_for, write
from osiris_server.db import portal as db_portal
from osiris_server.http import (
    F,
    Request,
    Response,
    bad_request,
    conflict,
    json_response,
    not_found,
)
from osiris_server.portal.signin import normalise_email

if TYPE_CHECKING:
    from osiris_server.app import App

CONTACT = {
    "id": F("string", required=True),
    "site_id": F("string", required=True),
    "email": F("string", required=True),
    "name": F("string"),
    "created_by": F("string", required=True),
    "created_at": F("string", required=True),
    "revoked_at": F("string"),
}
ADD = {
    "email": F("string", required=True, max_len=254, description="the contact's address"),
    "name": F("string", max_len=120, description="shown in the sign-in mail's greeting"),
}
STAFF = ("admin", "operator", "partner")


def add(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    email = normalise_email(req.data["email"])
    if email is None:
        raise bad_request("email is not an e-mail address", "E_SCHEMA")
    name = req.data.get("name")
    if name is not None and (not name.strip() or not name.isprintable()):
        raise bad_request("name must be printable text", "E_SCHEMA")
    with app.db.write() as w:
        if db_portal.live_contact(w, site_id, email) is not None:
            raise conflict("this address is already a contact of the site")
        row = db_portal.add_contact(w, site_id, email, name, req.principal.actor)
        audit(w, req, "portal.contact_add", row["id"], site_id, {"email": email})
    return json_response({"contact": row}, 201)


def listing(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response({"contacts": db_portal.contacts_of(app.db, site_id)})


def remove(app: App, req: Request, site_id: str, contact_id: str) -> Response:
    site_for(app, req.principal, site_id)
    row = db_portal.contact(app.db, contact_id)
    if row is None or row["site_id"] != site_id or row["revoked_at"] is not None:
        raise not_found("contact")
    with app.db.write() as w:
        db_portal.revoke_contact(w, contact_id, int(time.time()))
        audit(w, req, "portal.contact_remove", contact_id, site_id, {"email": row["email"]})
    return json_response({"removed": contact_id})


ROUTES = [
    write(
        "POST", "/api/v1/sites/{site_id}/contacts", add, roles=STAFF, body=ADD, status=201,
        response={"contact": F("object", required=True, fields=CONTACT)},
        summary="Register a clinic contact who may sign in to the site's portal by e-mail link",
        tag="portal",
    ),
    read(
        "GET", "/api/v1/sites/{site_id}/contacts", listing,
        response={"contacts": F("array", required=True, items=F("object", fields=CONTACT))},
        summary="The site's portal contacts", tag="portal",
    ),
    write(
        "DELETE", "/api/v1/sites/{site_id}/contacts/{contact_id}", remove, roles=STAFF,
        summary="Remove a portal contact (its links and sessions end at once)", tag="portal",
    ),
]  # fmt: skip
