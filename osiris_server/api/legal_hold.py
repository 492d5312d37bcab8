"""Legal hold per site: while a site is held, retention prunes nothing of it (retention.py).

Placing and releasing a hold is an admin's act (``roles=("admin",)``): an operator or a partner
asking is 403 and nothing changes — a hold is what stops evidence from being destroyed, so the
people a dispute may be about must not be able to lift it. Each change is audited
(``legal_hold.place`` with the reason, ``legal_hold.release`` with the hold it ended); the
status (who, when, why) is readable by anyone who may see the site. A hold already in place is
409 (its reason is not silently replaced: release it and place a new one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_server.api.common import audit, read, site_for, visible_site_ids, write
from osiris_server.db import legal_holds
from osiris_server.http import (
    F,
    Request,
    Response,
    bad_request,
    conflict,
    json_response,
    not_found,
)

if TYPE_CHECKING:
    from osiris_server.app import App

PLACE = {
    "reason": F(
        "string",
        required=True,
        min_len=1,
        max_len=500,
        description="why the site's evidence must be kept (matter, counsel, ticket)",
    ),
}


def _view(site_id: str, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"site_id": site_id, "held": False, "reason": None, "held_by": None, "held_at": None}
    return {"held": True, **row}


def get_hold(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response(_view(site_id, legal_holds.get(app.db, site_id)))


def list_holds(app: App, req: Request) -> Response:
    rows = legal_holds.all_rows(app.db, visible_site_ids(app, req.principal))
    return json_response({"holds": [_view(r["site_id"], r) for r in rows]})


def place_hold(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    reason = req.data["reason"].strip()
    if not reason:
        raise bad_request("reason: must say why the site is held", "E_SCHEMA")
    with app.db.write() as w:
        old = legal_holds.get(w, site_id)
        if old is not None:
            raise conflict(f"site {site_id} is already under legal hold since {old['held_at']}")
        row = legal_holds.place(w, site_id, reason, req.principal.actor)
        audit(w, req, "legal_hold.place", site_id, site_id, {"reason": reason})
    return json_response(_view(site_id, row))


def release_hold(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    with app.db.write() as w:
        old = legal_holds.get(w, site_id)
        if old is None or not legal_holds.release(w, site_id):
            raise not_found("legal hold")
        audit(w, req, "legal_hold.release", site_id, site_id, {"ended": old})
    return json_response({**_view(site_id, None), "released": old})


ROUTES = [
    read("GET", "/api/v1/legal-holds", list_holds,
         summary="Sites under legal hold that this caller may see (who, when, why)",
         tag="retention"),
    read("GET", "/api/v1/sites/{site_id}/legal-hold", get_hold,
         summary="A site's legal hold status (who, when, why)", tag="retention"),
    write("POST", "/api/v1/sites/{site_id}/legal-hold", place_hold, roles=("admin",),
          body=PLACE, status=201,
          summary="Admin only: place a legal hold (nothing of the site is pruned; audited)",
          tag="retention"),
    write("DELETE", "/api/v1/sites/{site_id}/legal-hold", release_hold, roles=("admin",),
          summary="Admin only: release a site's legal hold (audited)", tag="retention"),
]  # fmt: skip
