"""Per-site and per-appliance runbook parameter values: the policy thresholds of a site.

Why: a check's threshold (days until a critical patch counts as overdue, the site's DNS
servers, …) is policy, and differs per clinic; before this every site ran on the catalogue
default. Values are checked with the catalogue's own ``Runbook.validate_params`` before a byte is
written (the agent checks them again against its catalogue), every change is audited, and the
site's (or appliance's) change generation is bumped so the next check-in delivers them inside
``runbooks.params``. Effective value per parameter: appliance ?? site ?? catalogue default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_core.errors import SchemaError
from osiris_server.api.common import appliance_for, audit, read, require_write, site_for, write
from osiris_server.db import runbooks as db_runbooks
from osiris_server.http import F, Request, Response, bad_request, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

MAX_CHANGES = 64

PARAMS_BODY = {
    "params": F(
        "object",
        required=True,
        description="{name: value | null}; null clears the value set at this scope",
    ),
}


def _runbook(app: App, runbook_id: str) -> Any:
    rb = app.catalog_runbooks().get(runbook_id)
    if rb is None:
        raise not_found("runbook")
    return rb


def schema(rb: Any) -> dict[str, dict[str, Any]]:
    """The catalogue's parameter schema as JSON, so a console can show and check values."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in rb.params.items():
        d: dict[str, Any] = {"type": p.type, "default": p.default, "description": p.description}
        for k in ("pattern", "min", "max"):
            if getattr(p, k) is not None:
                d[k] = getattr(p, k)
        out[name] = d
    return out


def _changes(rb: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Validated ``{name: value | None}``; a 400 naming the parameter, nothing written."""
    raw = body["params"]
    if len(raw) > MAX_CHANGES:
        raise bad_request("too many params", "E_SCHEMA")
    if not raw:
        raise bad_request("params is empty: name at least one parameter", "E_SCHEMA")
    setting = {k: v for k, v in raw.items() if v is not None}
    try:
        rb.validate_params(setting)  # unknown names, types, bounds, patterns
    except SchemaError as exc:
        raise bad_request(str(exc)[:300], "E_SCHEMA") from None
    for name in raw:
        if name not in rb.params:  # a null for a name the catalogue does not know
            raise bad_request(f"runbook {rb.id}: unknown param(s) {name}", "E_SCHEMA")
    return dict(raw)


def _view(
    app: App,
    rb: Any,
    site_id: str,
    site: dict[str, Any],
    appliance_id: str | None = None,
    own: dict[str, Any] | None = None,
) -> dict[str, Any]:
    defaults = {name: p.default for name, p in rb.params.items()}
    effective = {**defaults, **site, **(own or {})}
    out: dict[str, Any] = {
        "runbook_id": rb.id,
        "site_id": site_id,
        "schema": schema(rb),
        "defaults": defaults,
        "site": site,
        "effective": effective,
    }
    if appliance_id is not None:
        out["appliance_id"] = appliance_id
        out["appliance"] = own or {}
    return out


def _stored(app: App, scope: str, scope_id: str, rb: Any) -> dict[str, Any]:
    """Values stored at a scope, limited to what the catalogue still knows."""
    got = db_runbooks.param_settings(app.db, scope, scope_id).get(rb.id, {})
    return {k: v for k, v in got.items() if k in rb.params}


def get_site_params(app: App, req: Request, site_id: str, runbook_id: str) -> Response:
    site_for(app, req.principal, site_id)
    rb = _runbook(app, runbook_id)
    return json_response(_view(app, rb, site_id, _stored(app, "site", site_id, rb)))


def put_site_params(app: App, req: Request, site_id: str, runbook_id: str) -> Response:
    require_write(req.principal)
    site_for(app, req.principal, site_id)
    rb = _runbook(app, runbook_id)
    changes = _changes(rb, req.data)
    with app.db.write() as w:
        db_runbooks.apply_params(w, "site", site_id, rb.id, changes, req.principal.actor)
        audit(
            w, req, "runbook_params.site", f"{site_id}/{rb.id}", site_id,
            {"runbook_id": rb.id, "changes": changes},
        )  # fmt: skip
    return get_site_params(app, req, site_id, runbook_id)


def get_appliance_params(app: App, req: Request, appliance_id: str, runbook_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    rb = _runbook(app, runbook_id)
    site = _stored(app, "site", row["site_id"], rb)
    own = _stored(app, "appliance", appliance_id, rb)
    return json_response(_view(app, rb, row["site_id"], site, appliance_id, own))


def put_appliance_params(app: App, req: Request, appliance_id: str, runbook_id: str) -> Response:
    require_write(req.principal)
    row = appliance_for(app, req.principal, appliance_id)
    rb = _runbook(app, runbook_id)
    changes = _changes(rb, req.data)
    with app.db.write() as w:
        db_runbooks.apply_params(w, "appliance", appliance_id, rb.id, changes, req.principal.actor)
        audit(
            w, req, "runbook_params.appliance", f"{appliance_id}/{rb.id}", row["site_id"],
            {"runbook_id": rb.id, "changes": changes},
        )  # fmt: skip
    return get_appliance_params(app, req, appliance_id, runbook_id)


def get_site_all_params(app: App, req: Request, site_id: str) -> Response:
    """Every value set at the site, for the console's overview (defaults left implicit)."""
    site_for(app, req.principal, site_id)
    return json_response({"site_id": site_id, "params": _site_all(app, site_id)})


def _site_all(app: App, site_id: str) -> dict[str, dict[str, Any]]:
    known = app.catalog_runbooks()
    stored = db_runbooks.param_settings(app.db, "site", site_id)
    out = {}
    for rb_id, values in stored.items():
        rb = known.get(rb_id)
        if rb is not None:
            kept = {k: v for k, v in values.items() if k in rb.params}
            if kept:
                out[rb_id] = kept
    return out


SITE_PATH = "/api/v1/sites/{site_id}/runbooks/{runbook_id}/params"
APPLIANCE_PATH = "/api/v1/appliances/{appliance_id}/runbooks/{runbook_id}/params"

ROUTES = [
    read(
        "GET",
        "/api/v1/sites/{site_id}/runbook-params",
        get_site_all_params,
        summary="Every runbook parameter value set at a site",
        tag="runbooks",
    ),
    read(
        "GET",
        SITE_PATH,
        get_site_params,
        summary="A runbook's parameter schema, defaults, site values and effective values",
        tag="runbooks",
    ),
    write(
        "PUT",
        SITE_PATH,
        put_site_params,
        body=PARAMS_BODY,
        summary="Set or clear a runbook's parameter values for a site (validated, audited)",
        tag="runbooks",
    ),
    read(
        "GET",
        APPLIANCE_PATH,
        get_appliance_params,
        summary="A runbook's parameters at one appliance (appliance ?? site ?? default)",
        tag="runbooks",
    ),
    write(
        "PUT",
        APPLIANCE_PATH,
        put_appliance_params,
        body=PARAMS_BODY,
        summary="Set or clear a runbook's parameter values for one appliance",
        tag="runbooks",
    ),
]
