"""``POST /api/v1/checkin``: the appliance's heartbeat, and everything it needs for one cycle.

Credentials are decrypted here, and only here, for an appliance of their own site, and leave
sealed to its box key — never to a quarantined appliance (``api/delivery.py``); each first
delivery of a credential version to an appliance is audited, once, ever. Rotations take
effect at the next check-in: the stored rows (ciphertexts, never plaintext) are cached per
site only while the site's change generation is unchanged (``CheckinCache``, ``db/gen.py``).
An appliance that names what it holds (``holds``, ``policy_version``) gets only the parts that
changed; the rest are named in ``unchanged`` (``api/checkin_delta.py``, docs/api.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_core import protocol
from osiris_core.canonical import utc_now
from osiris_core.errors import NoteError, OsirisError
from osiris_server.api import checkin_delta, delivery
from osiris_server.api import policy as api_policy
from osiris_server.db import audit as db_audit
from osiris_server.db import credentials as db_creds
from osiris_server.db import orders as db_orders
from osiris_server.db import runbooks as db_runbooks
from osiris_server.db import tenants as db_tenants
from osiris_server.db.engine import Writer
from osiris_server.http import HttpError, Request, Response, Route, raw_json_response

if TYPE_CHECKING:
    from osiris_server.app import App

TARGET_KIND = {"winrm": "winrm", "ssh_password": "ssh", "ssh_key": "ssh", "local": "local"}

Params = dict[str, dict[str, Any]]  # {runbook_id: {name: value}}


class CheckinCache:
    """Per-site and per-appliance check-in inputs, trusted only while their generation holds.

    Holds rows as stored — credential *ciphertexts* and non-secret fields, the site row, the
    toggles and runbook parameter values — never a decrypted secret: each check-in still
    decrypts its site's credentials (the derived subkeys are cached by the vault). Every write
    to those rows bumps a generation in the same transaction (``db/gen.py``), and each check-in
    reads the current generations first, so a change made by any process is seen at the next
    check-in.
    """

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._sites: dict[
            str, tuple[int, dict[str, Any], list[tuple], dict[str, bool], Params]
        ] = {}
        self._own: dict[str, tuple[int, dict[str, bool], Params]] = {}

    def site(self, app: App, site_id: str, generation: int):
        hit = self._sites.get(site_id)
        if hit is not None and hit[0] == generation:
            return hit
        site = db_tenants.get_site(app.db, site_id)
        if site is None:
            raise HttpError(404, "E_NOT_FOUND", "site not found")
        creds = []
        for c in db_creds.for_site(app.db, site_id):
            meta = {
                "host_id": c["host_id"],
                "kind": TARGET_KIND[c["kind"]],
                "address": c["address"],
                "port": c["port"],
                "lab": c["lab"],
                "username": c["username"],
                "host_key_fingerprints": c["host_key_fingerprints"],
                "use_tls": c["use_tls"],
                "verify_tls": c["verify_tls"],
                "sudo": c["sudo"],
                "ca_bundle": c["ca_bundle"],
                "cert_thumbprint": c["cert_thumbprint"],
                "auth": c["auth"],
            }
            creds.append(
                (meta, c["secret_enc"], db_creds.context(site_id, c["id"]), c["id"], c["version"])
            )
        entry = (
            generation,
            site,
            creds,
            db_runbooks.settings(app.db, "site", site_id),
            db_runbooks.param_settings(app.db, "site", site_id),
        )
        if len(self._sites) >= self.MAX_ENTRIES:
            self._sites.clear()
        self._sites[site_id] = entry
        return entry

    def own_toggles(self, app: App, appliance_id: str, generation: int) -> dict[str, bool]:
        return self.own(app, appliance_id, generation)[0]

    def own(self, app: App, appliance_id: str, generation: int) -> tuple[dict[str, bool], Params]:
        """The appliance's own toggles and parameter values (both bump its generation)."""
        if generation == 0:  # never changed: no per-appliance settings, no query
            return {}, {}
        hit = self._own.get(appliance_id)
        if hit is not None and hit[0] == generation:
            return hit[1], hit[2]
        own = db_runbooks.settings(app.db, "appliance", appliance_id)
        params = db_runbooks.param_settings(app.db, "appliance", appliance_id)
        if len(self._own) >= self.MAX_ENTRIES:
            self._own.clear()
        self._own[appliance_id] = (generation, own, params)
        return own, params


def _record(app: App, w: Writer, req: Request, pending: list, fresh: list, bad_cosigs: int) -> None:
    """The check-in's writes: orders handed out, first credential deliveries, bad cosigs."""
    p = req.principal
    if pending:
        db_orders.mark_delivered(w, [oid for oid, _ in pending])
    if fresh:
        delivery.record_deliveries(w, app, p, fresh, req.remote_addr)
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


def checkin(app: App, req: Request) -> Response:
    p = req.principal
    body = req.json()
    try:
        protocol.validate_checkin_request(body)
    except OsirisError as exc:
        raise HttpError(400, exc.code, str(exc)) from None
    if body["appliance_id"] != p.id:
        raise HttpError(403, "E_IDENTITY", "appliance_id does not match this appliance's token")
    if body["log_size_seen"] > app.log.size() and body["log_size_seen"] > app.log.refresh():
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
    # generations and the open-order count came with the token lookup (one statement)
    _, site, creds, site_t, site_p = app.checkin_cache.site(app, p.site_id, p.g_site)
    own_t, own_p = app.checkin_cache.own(app, p.id, p.g_own)
    # Parts the agent holds in their current version are left out (api/checkin_delta.py):
    # unchanged targets are neither decrypted nor sealed.
    holds = body.get("holds")
    t_hash = checkin_delta.targets_hash(app, p, creds) if holds is not None else ""
    if holds is not None and holds.get("targets") == t_hash:
        targets, fresh = None, []
    else:
        targets, fresh, _quarantined = delivery.targets_for(app, p, creds)
    # The signed policy (DESIGN §3.6): all the appliance does comes from it; left out when the
    # appliance already has the current version.
    _version, policy_env = api_policy.current(
        app, p.id, site, p.g_site, p.g_own, site_t, site_p, own_t, own_p,
        have=body.get("policy_version"),
    )  # fmt: skip
    pending, awaiting = db_orders.for_checkin(app.db, p.id) if p.open_orders else ([], 0)
    if pending or fresh or bad_cosigs:
        # durable before the response leaves, but shared with concurrent check-ins (one fsync)
        app.db.write_grouped(lambda w: _record(app, w, req, pending, fresh, bad_cosigs))
        delivery.after_commit(app, fresh)
    waiting = pending or awaiting
    interval = app.cfg.order_checkin_s if waiting else site["checkin_interval_s"]
    parts = {
        "server_time": b'"' + utc_now().encode("ascii") + b'"',
        "next_checkin_s": str(int(interval)).encode("ascii"),
        "orders": b"[" + b",".join(env.encode() for _, env in pending) + b"]",
    }
    _rules, rules_json, rules_hash = app.rule_sets.for_site(p.site_id)
    unchanged = checkin_delta.unchanged_parts(holds, rules_hash, t_hash, policy_env is None)
    if holds is not None:  # only an agent that sent holds understands these two fields
        parts["unchanged"] = json_list(unchanged)
        if targets is not None:
            parts["targets_hash"] = b'"' + t_hash.encode("ascii") + b'"'
    if targets is not None:
        parts["targets"] = targets
    if "rules" not in unchanged:
        parts["rules"] = rules_json  # serialised once per rule set (learning.RuleSets)
    if policy_env is not None:
        parts["policy"] = policy_env.encode("ascii")
    return raw_json_response(parts)


def json_list(words: list[str]) -> bytes:
    """A JSON array of plain ASCII words (the part names)."""
    return b"[" + b",".join(b'"' + w.encode("ascii") + b'"' for w in words) + b"]"


ROUTES = [
    Route(
        "POST",
        "/api/v1/checkin",
        checkin,
        "appliance",
        body=None,
        body_spec=protocol.CHECKIN_REQUEST,  # validated by the handler: protocol's post-checks
        response=protocol.CHECKIN_RESPONSE,
        summary="Appliance: heartbeat + status; returns orders, and the targets, rules and "
        "signed policy unless the appliance holds their current version (holds, unchanged)",
        tag="appliance",
    ),
]
