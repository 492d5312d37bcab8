"""``POST /api/v1/checkin``: the appliance's heartbeat, and everything it needs for one cycle.

Credentials are decrypted here, and only here, for an appliance of their own site; each first
delivery of a credential version to an appliance is audited. Rotations take effect at the next
check-in because nothing is cached across check-ins except the decrypted-at-most-once audit set.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from osiris_core import protocol
from osiris_core.canonical import utc_now
from osiris_core.errors import NoteError, OsirisError
from osiris_server.api.meta import CHECKIN_REQUEST
from osiris_server.db import audit as db_audit
from osiris_server.db import credentials as db_creds
from osiris_server.db import orders as db_orders
from osiris_server.db import runbooks as db_runbooks
from osiris_server.http import HttpError, Request, Response, Route, dumps, raw_json_response

if TYPE_CHECKING:
    from osiris_server.app import App

TARGET_KIND = {"winrm": "winrm", "ssh_password": "ssh", "ssh_key": "ssh", "local": "local"}

_delivered: set[tuple[str, str, int]] = set()
_delivered_lock = threading.Lock()


def _targets(app: App, appliance_id: str, site_id: str) -> tuple[bytes, list]:
    """The site's targets with secrets, as JSON bytes; each first delivery of a credential
    version to an appliance is returned for the audit log."""
    rows = db_creds.for_site(app.db, site_id)
    out = []
    fresh = []
    for c in rows:
        t = {
            "host_id": c["host_id"],
            "kind": TARGET_KIND[c["kind"]],
            "address": c["address"],
            "port": c["port"],
            "lab": c["lab"],
            "username": c["username"],
            "host_key_fingerprints": c["host_key_fingerprints"],
            "use_tls": c["use_tls"],
            "verify_tls": c["verify_tls"],
        }
        secret = json.loads(app.vault.decrypt(c["secret_enc"], db_creds.context(site_id, c["id"])))
        t.update(secret)
        out.append(t)
        key = (appliance_id, c["id"], c["version"])
        if key not in _delivered:
            with _delivered_lock:
                if key not in _delivered:
                    _delivered.add(key)
                    fresh.append(c)
    return dumps(out), fresh


_effective_cache: dict[tuple, bytes] = {}


def _effective(app: App, site_t: dict[str, bool], own_t: dict[str, bool]) -> bytes:
    """Effective toggles as JSON; most appliances share a handful of settings, so memoise."""
    key = (id(app), tuple(sorted(site_t.items())), tuple(sorted(own_t.items())))
    hit = _effective_cache.get(key)
    if hit is None:
        hit = dumps(db_runbooks.effective(app.runbook_defaults(), site_t, own_t))
        if len(_effective_cache) > 10000:
            _effective_cache.clear()
        _effective_cache[key] = hit
    return hit


def checkin(app: App, req: Request) -> Response:
    p = req.principal
    body = req.json()
    try:
        protocol.validate_checkin_request(body)
    except OsirisError as exc:
        raise HttpError(400, exc.code, str(exc)) from None
    if body["appliance_id"] != p.id:
        raise HttpError(403, "E_IDENTITY", "appliance_id does not match this appliance's token")
    if body["log_size_seen"] > app.log.size():
        raise HttpError(409, "E_LOG_SIZE", "log_size_seen is beyond this log's size")
    app.heartbeats.record(p.id, body["status"], body["log_size_seen"], body["agent_version"])
    bad_cosigs = 0
    cosigner = None
    for cs in body.get("cosignatures", []):
        try:
            cosigner = cosigner or app.appliance_cosigner(p)
            app.log.add_cosignature(cs["size"], cs["line"], cosigner)
        except (NoteError, OsirisError):
            bad_cosigs += 1
    site = app.site_cached(p.site_id)
    targets, fresh = _targets(app, p.id, p.site_id)
    toggles = app.db.query(
        "SELECT scope, runbook_id, enabled FROM runbook_toggles WHERE"
        " (scope = 'site' AND scope_id = ?) OR (scope = 'appliance' AND scope_id = ?)",
        [p.site_id, p.id],
    )
    site_t = {r["runbook_id"]: bool(r["enabled"]) for r in toggles if r["scope"] == "site"}
    own_t = {r["runbook_id"]: bool(r["enabled"]) for r in toggles if r["scope"] == "appliance"}
    runbooks = _effective(app, site_t, own_t)
    pending = db_orders.pending_envelopes(app.db, p.id)
    if pending or fresh or bad_cosigs:
        with app.db.write() as w:
            if pending:
                db_orders.mark_delivered(w, [oid for oid, _ in pending])
            for c in fresh:
                db_audit.record(
                    w,
                    p.actor,
                    "credential.deliver",
                    c["id"],
                    p.site_id,
                    req.remote_addr,
                    {"host_id": c["host_id"], "version": c["version"]},
                )
            if bad_cosigs:
                db_audit.record(
                    w,
                    p.actor,
                    "cosignature.rejected",
                    p.id,
                    p.site_id,
                    req.remote_addr,
                    {"count": bad_cosigs},
                )
    waiting = pending or db_orders.awaiting_result(app.db, p.id)
    interval = app.cfg.order_checkin_s if waiting else site["checkin_interval_s"]
    parts = {
        "server_time": dumps(utc_now()),
        "next_checkin_s": dumps(interval),
        "targets": targets,
        "runbooks": runbooks,
        "rules": app.signed_rules_json,  # serialised once at start
        "window": dumps(site["window"]),
        "orders": b"[" + b",".join(env.encode() for _, env in pending) + b"]",
    }
    return raw_json_response(parts)


ROUTES = [
    Route(
        "POST",
        "/api/v1/checkin",
        checkin,
        "appliance",
        body=None,
        body_schema=CHECKIN_REQUEST,
        summary="Appliance: heartbeat + status; returns targets, runbooks, rules, window, orders",
        tag="appliance",
    ),
]
