"""Orders: an operator queues one for an appliance; the server signs it (DESIGN §3.4) and hands
it out at the next check-in; evidence naming the ``order_id`` marks it done."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.orders import DEFAULT_TTL_S, KINDS, MAX_TTL_S, new_order, sign_order
from osiris_server.api import targets
from osiris_server.api.common import LIMIT, appliance_for, audit, read, write
from osiris_server.db import orders as db_orders
from osiris_server.http import F, Request, Response, bad_request, conflict, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

CREATE = {
    "kind": F("string", required=True, enum=KINDS),
    "params": F("object", description="per kind; run_runbook: {runbook_id, host_id[, parameters]}"),
    "disruptive": F("boolean"),
    "ttl_s": F("integer", minimum=1, maximum=MAX_TTL_S),
}


def create_order(app: App, req: Request, appliance_id: str) -> Response:
    row = appliance_for(app, req.principal, appliance_id)
    if row["revoked_at"]:
        raise conflict("appliance is revoked")
    body = req.data
    if body["kind"] == "update_agent":  # only ever a release the server stored (api/updates.py)
        raise bad_request("update_agent orders come from a rollout: POST /api/v1/rollouts",
                          "E_USE_ROLLOUT")  # fmt: skip
    if body["kind"] == "record_attestation":  # a statement names its author: never a body field
        raise bad_request("record_attestation orders are not issued through this route",
                          "E_NOT_ALLOWED")  # fmt: skip
    params = body.get("params", {})
    disruptive = body.get("disruptive")
    named = params if isinstance(params, dict) else {}  # any other shape: new_order refuses
    host_id = named.get("host_id")
    if body["kind"] == "run_runbook":
        # Targets first (osiris_server.api.targets): nothing is signed, queued or audited for
        # a runbook the catalogue lacks, a host the site lacks, or the wrong platform.
        runbooks = app.catalog_runbooks()
        rb = targets.check_runbook(runbooks, named.get("runbook_id"))
        if not isinstance(host_id, str) or not host_id:
            raise bad_request(
                "run_runbook needs params.host_id: "
                + _hosts_hint(app, row["site_id"], appliance_id),
                "E_NO_HOST",
            )
        platform, how = targets.check_host(app, row["site_id"], appliance_id, host_id)
        targets.check_platform(runbooks, rb, host_id, platform, how)
        values = params.get("parameters") or {}
        try:  # the catalogue's one validator: an order can only tighten, never redirect trust
            if isinstance(values, dict):  # (any other shape is refused by new_order)
                rb.validate_params(values)
        except SchemaError as exc:
            raise bad_request(f"runbook {rb.id}: {exc}"[:400], "E_SCHEMA") from None
        if disruptive is None:
            disruptive = bool(getattr(rb, "disruptive", False)) or bool(
                getattr(rb, "requires_maintenance_window", False)
            )
    elif isinstance(host_id, str) and host_id:  # collect_evidence narrowed to one host
        targets.check_host(app, row["site_id"], appliance_id, host_id)
    order = new_order(
        row["site_id"],
        appliance_id,
        body["kind"],
        params,
        bool(disruptive),
        body.get("ttl_s", DEFAULT_TTL_S),
    )
    envelope = sign_order(order, app.order_signer)
    with app.db.write() as w:
        db_orders.create(
            w,
            {
                "id": order["order_id"],
                "site_id": row["site_id"],
                "appliance_id": appliance_id,
                "kind": order["kind"],
                "params_json": json.dumps(order["params"]),
                "disruptive": int(order["disruptive"]),
                "envelope": canonical.dumps(envelope).decode(),
                "status": "pending",
                "created_at": order["issued_at"],
                "created_by": req.principal.actor,
                "expires_at": order["expires_at"],
                "expires_epoch": int(canonical.parse_time(order["expires_at"]).timestamp()),
            },
        )
        audit(
            w,
            req,
            "order.create",
            order["order_id"],
            row["site_id"],
            {"appliance_id": appliance_id, "kind": order["kind"]},
        )
    return json_response(db_orders.get(app.db, order["order_id"]), 201)


def _hosts_hint(app: App, site_id: str, appliance_id: str) -> str:
    hosts = sorted(h for h in targets.site_hosts(app, site_id, appliance_id) if h != appliance_id)
    return f"hosts at site {site_id}: {', '.join(hosts)}" if hosts else "the site has none yet"


def list_orders(app: App, req: Request, appliance_id: str) -> Response:
    appliance_for(app, req.principal, appliance_id)
    limit = req.params.get("limit", 100)
    return json_response({"orders": db_orders.list_for_appliance(app.db, appliance_id, limit)})


def get_order(app: App, req: Request, appliance_id: str, order_id: str) -> Response:
    appliance_for(app, req.principal, appliance_id)
    row = db_orders.get(app.db, order_id)
    if row is None or row["appliance_id"] != appliance_id:
        raise not_found("order")
    return json_response(row)


ROUTES = [
    write(
        "POST",
        "/api/v1/appliances/{appliance_id}/orders",
        create_order,
        body=CREATE,
        status=201,
        summary="Queue a signed order for an appliance",
        tag="orders",
    ),
    read(
        "GET",
        "/api/v1/appliances/{appliance_id}/orders",
        list_orders,
        query={"limit": LIMIT},
        summary="Orders of an appliance: pending, delivered, done, expired",
        tag="orders",
    ),
    read(
        "GET",
        "/api/v1/appliances/{appliance_id}/orders/{order_id}",
        get_order,
        summary="One order",
        tag="orders",
    ),
]
