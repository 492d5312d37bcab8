"""Agent updates (issue 16 item 6): signed releases, rollouts site by site, the fleet's versions.

Why the rules are what they are:

* **A release is signed once, by the release key** (``POST /api/v1/releases``): the server
  signs ``osiris.release/1`` (with ``version``) with its *release* key (osiris_server/
  release_key.py), never the order key; or the admin posts ``{"envelope": …}`` already signed
  offline by that key (``osiris-server release sign``: the MSP keeps the private key off the
  server), which is verified against the server's release vkey and stored as is. Appliances
  pin the release vkey at enrolment, and then only it authorises a release, on the agent and
  in the root switch unit. A version is never re-signed for another system (409): a rollout
  names a version, and a version must mean one build.
* **Appliances enrolled before release keys** (``appliances.release_key_id`` NULL) trust the
  order key for releases; a rollout sends them the same release document signed by the order
  key, and everyone else the stored release-key envelope. An appliance that pinned another
  release key than the release's signer is refused (409) rather than sent a release it will
  reject.
* **A rollout names sites, not appliances** (``POST /api/v1/rollouts``): operators move a fleet
  site by site, watching each (``GET /api/v1/rollouts/{id}``) before the next. Each active
  appliance of each site gets one signed ``update_agent`` order carrying the release; it is
  disruptive (it waits for the site's maintenance window) unless the operator says
  ``outside_window``, and lives 24 h (``MAX_TTL_S``).
* **A downgrade must be meant twice**: the order says ``allow_downgrade`` only when the operator
  asked, and the server refuses (400) to ask for one the release does not allow; the agent
  checks both again and refuses a downgrade otherwise.
* **State per appliance is the signed evidence**, read at request time (``db/updates.py``).
* The generic ``POST …/orders`` refuses ``update_agent`` (api/orders.py): an update order only
  ever carries a release the server stored.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from osiris_core import canonical, ids
from osiris_core.errors import SchemaError
from osiris_core.orders import MAX_TTL_S, new_order, sign_order
from osiris_core.release import ReleaseRefused, make_release, sign_release, verify_release
from osiris_server.api.common import audit, read, site_for, visible_site_ids, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import orders as db_orders
from osiris_server.db import updates as db_updates
from osiris_server.db.util import jdump, jload, new_id
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

RELEASE_BODY = {
    "version": F.of(ids.RELEASE_VERSION, description="sign a release (with system)"),
    "system": F.of(ids.STORE_PATH),
    "name": F.of(ids.RELEASE_NAME),
    "allow_downgrade": F("boolean"),
    "envelope": F("object", description="instead: an osiris.release/1 envelope signed offline by "
                  "the release key (osiris-server release sign), stored as is"),
}  # fmt: skip
ROLLOUT_BODY = {
    "release": F.of(ids.RELEASE_VERSION, required=True),
    "sites": F("array", required=True, min_items=1, max_items=100, items=F.of(ids.SITE_ID)),
    "allow_downgrade": F("boolean"),
    "outside_window": F("boolean"),
}
# what the evidence of each step says (osiris_agent/update.py), newest last
STATES = ("pending", "delivered", "deferred", "requested", "switched", "healthy",
          "rolled_back", "refused", "failed", "expired")  # fmt: skip


def _release_view(row: dict[str, Any]) -> dict[str, Any]:
    rel = row["envelope"]["release"]
    return {"version": rel["version"], "system": rel["system"], "name": rel["name"],
            "allow_downgrade": rel.get("allow_downgrade") is True,
            "issued_at": rel["issued_at"], "key_id": row["envelope"]["sig"]["key_id"],
            "created_by": row["created_by"]}  # fmt: skip


def _presigned(app: App, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An offline-signed envelope: only the server's release key may have signed it."""
    if set(body) != {"envelope"}:
        raise bad_request("send either envelope alone or version and system", "E_SCHEMA")
    env = body["envelope"]
    try:
        rel = verify_release(env, [app.release.verifier])
    except ReleaseRefused as exc:
        mine = app.release.verifier.key_id_hex
        raise bad_request(f"{exc} (this server's release key is {mine})"[:400],
                          "E_RELEASE") from None  # fmt: skip
    if "version" not in rel:
        raise bad_request("an agent release must name its version", "E_RELEASE")
    return rel, env


def create_release(app: App, req: Request) -> Response:
    body = req.data
    if "envelope" in body:
        rel, env = _presigned(app, body)
    else:
        if "version" not in body or "system" not in body:
            raise bad_request("version and system are required (or an envelope)", "E_SCHEMA")
        if app.release.signer is None:
            raise conflict("this server holds only the release vkey: sign the release offline "
                           "(osiris-server release sign) and POST {\"envelope\": ...}",
                           "E_NO_RELEASE_KEY")  # fmt: skip
        rel = make_release(
            body["system"], body.get("name") or f"osiris-{body['version']}",
            version=body["version"], allow_downgrade=body.get("allow_downgrade") is True,
        )  # fmt: skip
        env = sign_release(rel, app.release.signer)
    with app.db.write() as w:
        if not db_updates.put_release(w, rel, env, req.principal.actor):
            raise conflict(f"release {rel['version']} exists; a version names one build")
        detail = {"system": rel["system"], "allow_downgrade": rel.get("allow_downgrade", False),
                  "key_id": env["sig"]["key_id"], "presigned": "envelope" in body}  # fmt: skip
        audit(w, req, "release.create", rel["version"], None, detail)
    row = db_updates.release(app.db, rel["version"])
    assert row is not None
    return json_response(_release_view(row), 201)


def list_releases(app: App, req: Request) -> Response:
    return json_response({"releases": [_release_view(r) for r in db_updates.releases(app.db)]})


def step_state(order_status: str, expired: bool, outcomes: list[str]) -> str:
    """Where one appliance's update is, from its order row and its signed step evidence."""
    last = outcomes[-1] if outcomes else None
    if last is None:
        if expired and order_status in ("pending", "delivered"):
            return "expired"
        return order_status if order_status in STATES else "pending"
    named = {"rejected": "refused", "expired": "expired", "deferred": "deferred",
             "reverted": "rolled_back", "failed": "failed"}  # fmt: skip
    if last in named:
        return named[last]
    done = outcomes.count("compliant")
    return ("requested", "switched", "healthy")[min(done, 3) - 1] if done else "pending"


def _rollout_view(app: App, row: dict[str, Any]) -> dict[str, Any]:
    targets = db_updates.rollout_targets(app.db, row["id"])
    steps = db_updates.order_steps(app.db, [t["order_id"] for t in targets])
    now = time.time()
    appliances = []
    for t in targets:
        state = step_state(t["order_status"], t["expires_epoch"] < now,
                           steps.get(t["order_id"], []))  # fmt: skip
        appliances.append({
            "appliance_id": t["appliance_id"], "site_id": t["site_id"],
            "hostname": t["hostname"], "order_id": t["order_id"], "state": state,
            "agent_version": t["agent_version"], "last_seen_at": t["last_seen_at"],
        })  # fmt: skip
    counts = {s: 0 for s in STATES}
    for a in appliances:
        counts[a["state"]] += 1
    return {
        "rollout_id": row["id"], "release": row["version"], "system": row["system"],
        "sites": jload(row["sites_json"], []), "allow_downgrade": bool(row["allow_downgrade"]),
        "created_at": row["created_at"], "created_by": row["created_by"],
        "appliances": appliances, "counts": counts,
    }  # fmt: skip


def create_rollout(app: App, req: Request) -> Response:
    body = req.data
    sites = list(dict.fromkeys(body["sites"]))
    for s in sites:
        site_for(app, req.principal, s)  # 404 for a site this caller cannot see
    row = db_updates.release(app.db, body["release"])
    if row is None:
        raise not_found(f"release {body['release']}")
    env, rel = row["envelope"], row["envelope"]["release"]
    downgrade = body.get("allow_downgrade") is True
    if downgrade and rel.get("allow_downgrade") is not True:
        raise bad_request(f"release {rel['version']} does not allow a downgrade", "E_DOWNGRADE")
    legacy: dict[str, Any] | None = None  # the same release for appliances without the pin
    outside = body.get("outside_window") is True  # else it waits for the maintenance window
    rollout_id = new_id("ro")
    targets: list[dict[str, str]] = []
    with app.db.write() as w:
        for site_id in sites:
            for appliance_id, pinned in db_appliances.active_release_pins(w, site_id):
                if pinned is None and legacy is None:
                    ok = env["sig"]["key_id"] == app.order_signer.key_id_hex
                    legacy = env if ok else sign_release(rel, app.order_signer)
                if pinned is not None and pinned != env["sig"]["key_id"]:
                    raise conflict(f"appliance {appliance_id} trusts release key {pinned} only; "
                                   f"release {rel['version']} is signed by "
                                   f"{env['sig']['key_id']}: create the release again",
                                   "E_RELEASE_KEY")  # fmt: skip
                params: dict[str, Any] = {
                    "version": rel["version"],
                    "system": rel["system"],
                    "release": env if pinned is not None else legacy,
                }
                if downgrade:
                    params["allow_downgrade"] = True
                try:
                    order = new_order(site_id, appliance_id, "update_agent", params,
                                      not outside, MAX_TTL_S)  # fmt: skip
                except SchemaError as exc:
                    raise bad_request(f"release {rel['version']}: {exc}"[:300]) from None
                envelope = sign_order(order, app.order_signer)
                db_orders.create(w, {
                    "id": order["order_id"], "site_id": site_id, "appliance_id": appliance_id,
                    "kind": "update_agent", "params_json": jdump(order["params"]),
                    "disruptive": int(order["disruptive"]),
                    "envelope": canonical.dumps(envelope).decode(), "status": "pending",
                    "created_at": order["issued_at"], "created_by": req.principal.actor,
                    "expires_at": order["expires_at"],
                    "expires_epoch": int(canonical.parse_time(order["expires_at"]).timestamp()),
                })  # fmt: skip
                targets.append({"order_id": order["order_id"], "site_id": site_id,
                                "appliance_id": appliance_id})  # fmt: skip
        if not targets:
            raise bad_request("no active appliance at these sites", "E_NO_APPLIANCE")
        db_updates.create_rollout(w, {
            "id": rollout_id, "version": rel["version"], "system": rel["system"],
            "sites_json": jdump(sites), "allow_downgrade": int(downgrade),
            "created_at": canonical.utc_now(), "created_by": req.principal.actor,
        }, targets)  # fmt: skip
        for s in sites:
            audit(w, req, "rollout.create", rollout_id, s,
                  {"release": rel["version"], "appliances": len(targets)})  # fmt: skip
    made = db_updates.rollout(app.db, rollout_id)
    assert made is not None
    return json_response(_rollout_view(app, made), 201)


def _visible(app: App, req: Request, row: dict[str, Any]) -> bool:
    seen = visible_site_ids(app, req.principal)
    return seen is None or bool(set(jload(row["sites_json"], [])) & set(seen))


def list_rollouts(app: App, req: Request) -> Response:
    rows = [r for r in db_updates.rollouts(app.db) if _visible(app, req, r)]
    out = []
    for r in rows[:200]:
        view = _rollout_view(app, r)
        view.pop("appliances")
        out.append(view)
    return json_response({"rollouts": out})


def get_rollout(app: App, req: Request, rollout_id: str) -> Response:
    row = db_updates.rollout(app.db, rollout_id)
    if row is None or not _visible(app, req, row):
        raise not_found("rollout")
    view = _rollout_view(app, row)
    seen = visible_site_ids(app, req.principal)
    if seen is not None:
        view["appliances"] = [a for a in view["appliances"] if a["site_id"] in seen]
    return json_response(view)


def fleet_versions(app: App, req: Request) -> Response:
    app.heartbeats.flush()
    rows = [r for r in db_appliances.list_for_sites(app.db, visible_site_ids(app, req.principal))
            if not r["revoked_at"]]  # fmt: skip
    latest = db_updates.latest_targets(app.db, [r["id"] for r in rows])
    steps = db_updates.order_steps(app.db, [t["order_id"] for t in latest.values()])
    orders = {t["order_id"]: db_orders.get(app.db, t["order_id"]) for t in latest.values()}
    now = time.time()
    out, versions = [], {}
    for r in rows:
        versions[r["agent_version"]] = versions.get(r["agent_version"], 0) + 1
        t = latest.get(r["id"])
        update = None
        if t is not None:
            o = orders.get(t["order_id"]) or {}
            state = step_state(o.get("status", "pending"), o.get("expires_epoch", now) < now,
                               steps.get(t["order_id"], []))  # fmt: skip
            update = {"rollout_id": t["rollout_id"], "release": t["version"], "state": state}
        out.append({"appliance_id": r["id"], "site_id": r["site_id"],
                    "hostname": r["hostname"], "agent_version": r["agent_version"],
                    "last_seen_at": r["last_seen_at"], "update": update})  # fmt: skip
    return json_response({"appliances": out, "versions": versions})


ROUTES = [
    write(
        "POST",
        "/api/v1/releases",
        create_release,
        roles=("admin",),
        body=RELEASE_BODY,
        summary="Admin only: sign an agent release (version + NixOS system) with the release"
        " key, or store one signed offline by it ({envelope})",
        tag="updates",
    ),
    read("GET", "/api/v1/releases", list_releases, summary="Signed agent releases", tag="updates"),
    write(
        "POST",
        "/api/v1/rollouts",
        create_rollout,
        body=ROLLOUT_BODY,
        summary="Roll an agent release out to sites: one signed update_agent order per "
        "active appliance",
        tag="updates",
    ),
    read(
        "GET",
        "/api/v1/rollouts",
        list_rollouts,
        summary="Rollouts and their counts per state",
        tag="updates",
    ),
    read(
        "GET",
        "/api/v1/rollouts/{rollout_id}",
        get_rollout,
        summary="One rollout: each appliance's update state, from its signed evidence",
        tag="updates",
    ),
    read(
        "GET",
        "/api/v1/fleet/versions",
        fleet_versions,
        summary="Agent versions across the fleet, and each appliance's newest update",
        tag="updates",
    ),
]
