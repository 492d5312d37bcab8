"""Per-site and per-appliance runbook parameter values: the policy thresholds of a site, and
the per-site allow-lists that bound the trust-redirecting ones.

Why: a check's threshold (days until a critical patch counts as overdue, the site's DNS
servers, …) is policy, and differs per clinic. Values are judged by the catalogue's one
validator (``Runbook.validate_params``: semantic bounds that can only tighten the control) before
a byte is written; the agent judges them again when it accepts the signed policy that carries
them. Effective value per parameter: appliance ?? site ?? catalogue default.

Trust-redirecting parameters (update server, DNS servers, pinned baseline, desired system) are
admin-only (any other key: 403) and must be on the site's allow-list, which only an admin edits
(``PUT /sites/{id}/allowlists/{runbook}/{param}``, audited); allow-listing a NixOS system signs
an ``osiris.release/1`` document for it with the order key. Every change of such a value is
recorded (who, old, new, when) and carried in the appliance's signed policy, whose agent then
signs a ``policy_change`` bundle. Every write bumps the site's (or appliance's) change
generation, so the next check-in delivers a new signed policy version.

Why this file is long: site and appliance parameters, the allow-lists that bound the trust-
redirecting ones and the policy they end up in are one write path (judge, record the trust change,
bump the generation); it is just over the limit, and splitting it would separate a value from the
allow-list that judges it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from osiris_core.errors import SchemaError
from osiris_core.release import make_release, sign_release
from osiris_server.api import policy as api_policy
from osiris_server.api import targets
from osiris_server.api.common import appliance_for, audit, read, require_write, site_for, write
from osiris_server.db import runbooks as db_runbooks
from osiris_server.http import (
    F,
    HttpError,
    Request,
    Response,
    bad_request,
    conflict,
    forbidden,
    json_response,
    not_found,
)

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
    runbooks = app.catalog_runbooks()
    rb = runbooks.get(runbook_id)
    if rb is None:  # a 404 (it is a path), saying which id was meant (api/targets.py)
        raise HttpError(404, "E_NOT_FOUND", targets.unknown_runbook(runbook_id, runbooks))
    return rb


ALLOW_BODY = {
    "values": F(
        "array",
        required=True,
        items=F("string", max_len=512),
        max_items=64,
        description="the complete allow-list (replaces the old one; [] clears it)",
    ),
}
L2_BODY = {
    "allowed": F("boolean", required=True, description="false: no L2 planner at this site"),
    "min_confidence": F(
        "integer",
        required=True,
        minimum=0,
        maximum=100,
        description="least L2 confidence (percent); the appliance uses its own if higher",
    ),  # fmt: skip
}


def schema(rb: Any) -> dict[str, dict[str, Any]]:
    """The catalogue's parameter schema as JSON, so a console can show and check values:
    form (pattern, min/max), semantic bound, and who may set it."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in rb.params.items():
        d: dict[str, Any] = {"type": p.type, "default": p.default, "description": p.description}
        for k in ("pattern", "min", "max"):
            if getattr(p, k) is not None:
                d[k] = getattr(p, k)
        if p.bound is not None:
            d["bound"] = p.bound.to_json()
            d["bound_text"] = p.describe_bound()
        d["set_by"] = p.set_by
        out[name] = d
    return out


def _context(app: App, site_id: str) -> Any:
    """The site's allow-lists and releases, read now (not from a cache)."""
    allow = db_runbooks.allowlists(app.db, site_id)
    systems = api_policy.release_systems(app, allow)
    return api_policy.context(
        app, {"allowlists": allow, "releases": db_runbooks.releases(app.db, systems)}
    )


def _changes(app: App, req: Request, rb: Any, site_id: str) -> dict[str, Any]:
    """Validated ``{name: value | None}``; 400 naming the parameter (or 403 for a
    trust-redirecting one set by a non-admin), nothing written."""
    raw = req.data["params"]
    if len(raw) > MAX_CHANGES:
        raise bad_request("too many params", "E_SCHEMA")
    if not raw:
        raise bad_request("params is empty: name at least one parameter", "E_SCHEMA")
    for name in raw:
        if name not in rb.params:  # also a null for a name the catalogue does not know
            raise bad_request(_unknown_param(rb, name), "E_SCHEMA")
    trusted = sorted(n for n in raw if rb.params[n].trusted)
    if trusted and req.principal.role != "admin":
        raise forbidden(
            f"{rb.id}: {', '.join(trusted)} is trust-redirecting; only an admin may set it"
        )
    setting = {k: v for k, v in raw.items() if v is not None}
    try:  # types, forms, semantic bounds and the site's allow-lists: the one validator
        rb.validate_params(setting, _context(app, site_id))
    except SchemaError as exc:
        raise bad_request(f"runbook {rb.id}: {exc}"[:400], "E_SCHEMA") from None
    return dict(raw)


def _unknown_param(rb: Any, name: str) -> str:
    near = targets.did_you_mean(name, rb.params)
    known = ", ".join(sorted(rb.params)) or "none"
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return f"runbook {rb.id}: unknown param(s) {name[:80]}; {hint}(parameters: {known})"[:400]


def _record_trust(
    w: Any, req: Request, rb: Any, site_id: str, scope: str, scope_id: str,
    before: dict[str, Any], changes: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """A change record for every trust-redirecting value this write changes."""
    out = []
    for name, new in sorted(changes.items()):
        old = before.get(name)
        if rb.params[name].trusted and old != new:
            actor = req.principal.actor
            rec = db_runbooks.record_trust_change(
                w, site_id, scope, scope_id, rb.id, name, old, new, actor
            )
            out.append(rec)
    return out


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
    changes = _changes(app, req, rb, site_id)
    before = _stored(app, "site", site_id, rb)
    with app.db.write() as w:
        db_runbooks.apply_params(w, "site", site_id, rb.id, changes, req.principal.actor)
        trust = _record_trust(w, req, rb, site_id, "site", site_id, before, changes)
        detail: dict[str, Any] = {"runbook_id": rb.id, "changes": changes}
        if trust:
            detail["trust_changes"] = trust
        audit(w, req, "runbook_params.site", f"{site_id}/{rb.id}", site_id, detail)
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
    changes = _changes(app, req, rb, row["site_id"])
    before = _stored(app, "appliance", appliance_id, rb)
    with app.db.write() as w:
        db_runbooks.apply_params(w, "appliance", appliance_id, rb.id, changes, req.principal.actor)
        trust = _record_trust(
            w, req, rb, row["site_id"], "appliance", appliance_id, before, changes
        )
        detail: dict[str, Any] = {"runbook_id": rb.id, "changes": changes}
        if trust:
            detail["trust_changes"] = trust
        audit(w, req, "runbook_params.appliance", f"{appliance_id}/{rb.id}", row["site_id"], detail)
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


# ---- allow-lists of trust-redirecting parameters (admin only), releases, L2 limits, policy

_STORE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


def _allow_view(app: App, site_id: str) -> dict[str, Any]:
    allow = db_runbooks.allowlists(app.db, site_id)
    trusted = {
        rid: {n: allow.get(rid, {}).get(n, []) for n in names}
        for rid, names in api_policy.trusted_names(app).items()
    }
    return {
        "site_id": site_id,
        "allowlists": trusted,
        "releases": db_runbooks.releases(app.db, api_policy.release_systems(app, allow)),
        "changes": db_runbooks.trust_history(app.db, site_id),
    }


def get_allowlists(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response(_allow_view(app, site_id))


def put_allowlist(app: App, req: Request, site_id: str, runbook_id: str, param: str) -> Response:
    """Replace one trust-redirecting parameter's allow-list (admin only, audited)."""
    if req.principal.role != "admin":  # the route says so too; never rely on one check
        raise forbidden("only an admin edits the allow-lists of trust-redirecting parameters")
    site_for(app, req.principal, site_id)
    rb = _runbook(app, runbook_id)
    p = rb.params.get(param)
    if p is None:
        raise not_found("parameter")
    if not p.trusted:
        raise bad_request(f"{rb.id}.{param} is not trust-redirecting: it takes no allow-list",
                          "E_SCHEMA")  # fmt: skip
    values = req.data["values"]
    if len(set(values)) != len(values):
        raise bad_request("values lists an entry twice", "E_SCHEMA")
    for v in values:
        sep = p.bound.split
        if v == "" or (sep and sep in v):
            raise bad_request(f"{v!r}: an allow-list entry is one non-empty value", "E_SCHEMA")
        try:
            p.check(v)  # the parameter's own form and bound
        except SchemaError as exc:
            raise bad_request(f"{rb.id}: {exc}"[:400], "E_SCHEMA") from None
    signed: list[str] = []
    signer = app.release.signer  # releases are the release key's, never the order key's
    if p.bound.kind == "release" and signer is None:
        stored = {e["release"]["system"] for e in db_runbooks.releases(app.db, list(values))}
        if set(values) - stored:
            raise conflict("this server holds only the release vkey: it cannot sign a release "
                           "for a new system", "E_NO_RELEASE_KEY")  # fmt: skip
    with app.db.write() as w:
        old = db_runbooks.set_allowlist(w, site_id, rb.id, param, list(values), req.principal.actor)
        if p.bound.kind == "release":
            for system in values:
                name = _STORE_NAME.sub("-", system.split("-", 1)[1])[:64].strip("-.") or "system"
                if signer is None:
                    continue  # already stored (checked above)
                env = sign_release(make_release(system, name), signer)
                if db_runbooks.put_release(w, system, env, req.principal.actor):
                    signed.append(system)
        audit(
            w, req, "allowlist.site", f"{site_id}/{rb.id}/{param}", site_id,
            {"runbook_id": rb.id, "param": param, "old": old, "new": list(values),
             "releases_signed": signed},
        )  # fmt: skip
    return json_response(_allow_view(app, site_id))


def get_l2(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response({"site_id": site_id, **db_runbooks.l2_settings(app.db, site_id)})


def put_l2(app: App, req: Request, site_id: str) -> Response:
    """L2 limits of a site: they can only restrict the appliance's own L2 configuration."""
    require_write(req.principal)
    site_for(app, req.principal, site_id)
    allowed, conf = req.data["allowed"], req.data["min_confidence"]
    with app.db.write() as w:
        db_runbooks.set_l2(w, site_id, allowed, conf, req.principal.actor)
        audit(w, req, "l2.site", site_id, site_id, {"allowed": allowed, "min_confidence": conf})
    return get_l2(app, req, site_id)


def get_appliance_policy(app: App, req: Request, appliance_id: str) -> Response:
    """The appliance's current signed policy, exactly as its next check-in delivers it."""
    row = appliance_for(app, req.principal, appliance_id)
    version, env_json = api_policy.for_appliance(app, row)
    return json_response(
        {"appliance_id": appliance_id, "version": version, "policy": json.loads(env_json)}
    )


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
    read(
        "GET",
        "/api/v1/sites/{site_id}/allowlists",
        get_allowlists,
        summary="Allow-lists of the trust-redirecting parameters, their releases and changes",
        tag="runbooks",
    ),
    write(
        "PUT",
        "/api/v1/sites/{site_id}/allowlists/{runbook_id}/{param}",
        put_allowlist,
        body=ALLOW_BODY,
        roles=("admin",),
        summary="Replace a trust-redirecting parameter's allow-list (admin only, audited)",
        tag="runbooks",
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/l2",
        get_l2,
        summary="The site's L2 limits (they only restrict the appliance's own L2 settings)",
        tag="runbooks",
    ),
    write(
        "PUT",
        "/api/v1/sites/{site_id}/l2",
        put_l2,
        body=L2_BODY,
        summary="Set the site's L2 limits (audited)",
        tag="runbooks",
    ),
    read(
        "GET",
        "/api/v1/appliances/{appliance_id}/policy",
        get_appliance_policy,
        summary="The appliance's current signed policy (osiris.policy/1)",
        tag="runbooks",
    ),
]
