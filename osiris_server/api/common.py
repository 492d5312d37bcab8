"""Helpers shared by the resource modules: tenant-scoped lookups, audit, route building."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_server.auth import READ_ROLES, WRITE_ROLES, Principal, can_see_site
from osiris_server.db import appliances as db_appliances
from osiris_server.db import audit as db_audit
from osiris_server.db import tenants as db_tenants
from osiris_server.db.engine import Writer
from osiris_server.http import F, Request, Route, forbidden, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

SITE_ID = F.of(ids.SITE_ID)  # the one id grammar: osiris_core.ids
LIMIT = F("integer", minimum=1, maximum=1000)


def site_for(app: App, p: Principal, site_id: str) -> dict[str, Any]:
    """The site if this principal may see it; 404 otherwise (never 403: no existence hint)."""
    site = db_tenants.get_site(app.db, site_id)
    if not can_see_site(p, site):
        raise not_found("site")
    assert site is not None
    return site


def appliance_for(app: App, p: Principal, appliance_id: str) -> dict[str, Any]:
    app.heartbeats.flush()
    row = db_appliances.get(app.db, appliance_id)
    if row is None:
        raise not_found("appliance")
    site = db_tenants.get_site(app.db, row["site_id"])
    if not can_see_site(p, site):
        raise not_found("appliance")
    return row


def visible_site_ids(app: App, p: Principal) -> list[str] | None:
    """None means every site (MSP staff); otherwise the list this principal may see."""
    if p.all_sites:
        return None
    if p.kind == "partner":
        return db_tenants.site_ids(app.db, p.partner_id)
    return [p.site_id] if p.site_id else []


def require_write(p: Principal) -> None:
    if p.role not in WRITE_ROLES:
        raise forbidden()


def audit(
    w: Writer,
    req: Request,
    action: str,
    target: str,
    site_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    p: Principal = req.principal
    db_audit.record(
        w, p.actor if p else "anonymous", action, target, site_id, req.remote_addr, detail
    )


def read(method: str, template: str, handler: Any, **kw: Any) -> Route:
    return Route(method, template, handler, "staff", kw.pop("roles", READ_ROLES), **kw)


def write(method: str, template: str, handler: Any, **kw: Any) -> Route:
    return Route(method, template, handler, "staff", kw.pop("roles", WRITE_ROLES), **kw)
