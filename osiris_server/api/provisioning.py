"""Enrollment: operator-issued claim codes, the claim itself, and MAC-based requests.

* A claim code is 160 random bits, stored only as SHA-256, expiring, single use (the UPDATE that
  consumes it only matches an unused row, so two racing claims cannot both win).
* The claim registers the appliance's public keys under the name ``osiris/appliance/<id>``; the
  server picks the id first, so the agent sends raw base64 public keys, not vkeys.
* MAC-based enrollment: a poll only ever yields ``pending``, recorded per (MAC, requester) —
  the requester is a random secret the box chose (stored hashed). An operator approves one
  requester by its full fingerprint (256 bits, read off the box's console); there is no
  approval for a MAC nobody requested, and nobody is bound by polling first: a stranger who
  knows the MAC gets a request of its own that nobody approves. Knowing a MAC grants nothing
  (DESIGN §6). Pending requests expire and are capped per source address.
* Quarantine (DESIGN §3.7): an appliance claimed with a code an admin did not make (an
  operator's or a partner's) checks in and sends evidence but receives no credential until an
  admin confirms it; every enrolment raises an alert.
* Failed claims count against the source address's auth failure budget; MAC polling has its own
  per-address rate limit.

Why this file is long: claim codes and MAC-based requests are one enrolment flow (an approved MAC
gets a claim code, and the claim consumes it) under one OpenAPI tag and one routes table; apart,
each half would reach into the other's internals.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from osiris_core import canonical, ids
from osiris_core.errors import KeyFormatError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, KEY_TYPE_ED25519, Verifier, appliance_key_name
from osiris_server import auth, client_ca
from osiris_server.api.common import audit, read, visible_site_ids, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import provisions as db_prov
from osiris_server.db import tenants as db_tenants
from osiris_server.db.util import new_id, now
from osiris_server.http import (
    F,
    HttpError,
    Request,
    Response,
    Route,
    bad_request,
    conflict,
    json_response,
    not_found,
)

if TYPE_CHECKING:
    from osiris_server.app import App

CODE_PREFIX = "ocl_"
REQUEST_TTL_S = 24 * 3600  # a MAC request nobody approved is forgotten after a day
MAX_PENDING_PER_SOURCE = 16  # one source address cannot fill the approval queue for others
MAC_RE = ids.MAC.regex
MAX_TTL_S = 30 * 86400


def normalise_mac(mac: str) -> str:
    m = mac.strip().lower().replace("-", ":")
    if MAC_RE.fullmatch(m) is None:
        raise bad_request("not a MAC address (aa:bb:cc:dd:ee:ff)", "E_SCHEMA")
    return m


def _new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(20)


def _create_code(app: App, w, req: Request, site_id: str, ttl_s: int, mac: str | None):
    code = _new_code()
    epoch = int(time.time()) + ttl_s
    row = {
        "id": new_id("prv"),
        "code_hash": auth.token_hash(code),
        "site_id": site_id,
        "created_by": req.principal.actor,
        "created_at": now(),
        "expires_at": canonical.format_time(datetime.fromtimestamp(epoch, UTC)),
        "expires_epoch": epoch,
        "used_at": None,
        "appliance_id": None,
        "mac": mac,
        "admin_issued": 1 if req.principal.role == "admin" else 0,
    }
    db_prov.create(w, row)
    return code, row


CREATE = {
    "site_id": F.of(ids.SITE_ID, required=True),
    "ttl_s": F("integer", minimum=60, maximum=MAX_TTL_S),
}


def create_provision(app: App, req: Request) -> Response:
    from osiris_server.api.common import site_for

    body = req.data
    site_for(app, req.principal, body["site_id"])
    with app.db.write() as w:
        code, row = _create_code(app, w, req, body["site_id"], body.get("ttl_s", 86400), None)
        audit(w, req, "provision.create", row["id"], body["site_id"])
    return json_response(
        {"id": row["id"], "code": code, "site_id": row["site_id"], "expires_at": row["expires_at"]},
        201,
    )


def list_provisions(app: App, req: Request) -> Response:
    sites = visible_site_ids(app, req.principal)
    out = {"provisions": db_prov.list_for_sites(app.db, sites)}
    if req.principal.all_sites:
        out["mac_requests"] = [
            {**{k: v for k, v in r.items() if k not in ("requester_hash", "expires_epoch")},
             "requester_fingerprint": fingerprint(r["requester_hash"]),
             "expires_at": canonical.format_time(datetime.fromtimestamp(r["expires_epoch"], UTC))}
            for r in db_prov.mac_list(app.db)
        ]  # fmt: skip
    return json_response(out)


def delete_provision(app: App, req: Request, provision_id: str) -> Response:
    row = db_prov.get(app.db, provision_id)
    sites = visible_site_ids(app, req.principal)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise not_found("provision")
    with app.db.write() as w:
        if not db_prov.delete_unused(w, provision_id):
            raise conflict("this claim code was already used")
        audit(w, req, "provision.delete", provision_id, row["site_id"])
    return json_response({"deleted": provision_id})


B64KEY = r"[A-Za-z0-9+/]{43}="
CLAIM = {
    "code": F("string", required=True, max_len=128),
    "hostname": F.of(ids.HOSTNAME, required=True, min_len=1),
    "mac": F("string", max_len=17),
    "signing_pub": F(
        "string",
        required=True,
        pattern=B64KEY,
        max_len=44,
        description="raw Ed25519 public key, base64 (32 bytes)",
    ),
    "cosign_pub": F(
        "string",
        required=True,
        pattern=B64KEY,
        max_len=44,
        description="raw Ed25519 public key for cosignatures, base64 (32 bytes)",
    ),
    "agent_version": F("string", required=True, max_len=64),
    "box_pub": F(
        "string",
        pattern=B64KEY,
        max_len=44,
        description="raw X25519 public key, base64 (32 bytes): credentials are sealed to it; "
        "an appliance without one receives no credential at all",
    ),
    "csr": F(
        "string",
        max_len=client_ca.MAX_CSR_CHARS,
        description="PEM certificate request (EC P-256 or Ed25519) for the appliance's mTLS "
        "client certificate; only its public key is used. Required when the server runs with "
        "--client-ca and holds the client CA key",
    ),
}


def _pub(b64: str) -> bytes:
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("public key is not base64", "E_KEY") from None
    if len(raw) != 32:
        raise bad_request("public key must be 32 bytes", "E_KEY")
    return raw


def claim(app: App, req: Request) -> Response:
    body = req.data
    ip = req.remote_addr
    if app.auth_failures.blocked(ip):
        raise auth.too_many()
    mac = normalise_mac(body["mac"]) if body.get("mac") else None
    signing_raw, cosign_raw = _pub(body["signing_pub"]), _pub(body["cosign_pub"])
    if signing_raw == cosign_raw:
        raise bad_request("the signing and cosigning keys must differ", "E_KEY")
    box_pub = body.get("box_pub")
    if box_pub is not None:
        _pub(box_pub)
    appliance_id = new_id("app")
    client_cert, client_cert_sha256 = _client_cert(app, req, body.get("csr"), appliance_id)
    name = appliance_key_name(appliance_id)
    try:
        signing = Verifier(name, signing_raw, KEY_TYPE_ED25519)
        cosign = Verifier(name, cosign_raw, KEY_TYPE_COSIGNATURE)
    except KeyFormatError:
        raise bad_request("not an Ed25519 public key", "E_KEY") from None
    token = auth.new_token(auth.APPLIANCE_PREFIX)
    code_hash = auth.token_hash(body["code"])
    with app.db.write() as w:
        prov = db_prov.by_code_hash(w, code_hash)
        if prov is None or prov["used_at"] is not None or prov["expires_epoch"] < time.time():
            app.auth_failures.hit(ip)
            raise HttpError(401, "E_CLAIM", "claim code unknown, expired or already used")
        if not db_prov.mark_used(w, prov["id"], appliance_id):
            raise HttpError(401, "E_CLAIM", "claim code unknown, expired or already used")
        interval_s = db_tenants.checkin_interval(w, prov["site_id"])
        quarantined = not prov.get("admin_issued")
        db_appliances.create(
            w,
            {
                "id": appliance_id,
                "site_id": prov["site_id"],
                "hostname": body["hostname"],
                "mac": mac or prov["mac"],
                "signing_vkey": signing.vkey,
                "cosign_vkey": cosign.vkey,
                "agent_version": body["agent_version"],
                "token_hash": auth.token_hash(token),
                "created_at": now(),
                "log_size_seen": 0,
                "box_pub": box_pub,
                "quarantined": 1 if quarantined else 0,
                # the release key it pins now (api/updates.py sends it releases it verifies)
                "release_key_id": app.release.verifier.key_id_hex,
            },
        )
        db_prov.mac_forget_claimed(w, prov["id"])
        w.insert(
            "audit",
            {
                "at": now(),
                "actor": f"appliance:{appliance_id}",
                "action": "appliance.enroll",
                "target": appliance_id,
                "site_id": prov["site_id"],
                "source": ip,
                "detail_json": canonical.dumps(
                    {
                        "provision_id": prov["id"],
                        "hostname": body["hostname"],
                        "code_by": prov["created_by"],
                        "quarantined": quarantined,
                        "sealed_credentials": box_pub is not None,
                        "client_cert_sha256": client_cert_sha256,
                    }
                ).decode(),
            },
        )
    _alert_enrolled(app, appliance_id, prov, body["hostname"], quarantined, ip)
    return json_response(
        {
            "appliance_id": appliance_id,
            "site_id": prov["site_id"],
            "token": token,
            "signing_vkey": signing.vkey,
            "cosign_vkey": cosign.vkey,
            "log_vkey": app.log_signer.vkey,
            "order_vkey": app.order_signer.vkey,
            # the only key that may name a system for this appliance (issue 16 item 6)
            "release_vkey": app.release.verifier.vkey,
            "server_origin": app.cfg.origin,
            "checkin_interval_s": interval_s if interval_s is not None else 60,
            "quarantined": quarantined,
            # PEM, or null when this server issues none (no client CA key in its data dir)
            "client_cert": client_cert,
        },
        201,
    )


def _client_cert(
    app: App, req: Request, csr: str | None, appliance_id: str
) -> tuple[str | None, str | None]:
    """The mTLS client certificate for a new appliance, issued before the claim code is spent
    (a bad CSR changes nothing). Under mTLS with an issuing CA a claim without a CSR is refused:
    the appliance could never check in."""
    ca = client_ca.load(app.cfg.keys_dir)
    try:
        if csr is None:
            if ca is not None and req.environ.get("osiris.mtls"):
                raise bad_request(
                    "this server requires client certificates (mTLS): send a csr with the "
                    "claim (osiris-agent 0.2+ does)",
                    "E_CSR_REQUIRED",
                )
            return None, None
        if ca is None:
            client_ca.csr_public_key(csr)  # the same input is refused everywhere
            return None, None
        return ca.issue(csr, appliance_id)
    except client_ca.CsrError as e:
        raise bad_request(str(e), "E_CSR") from None


def _alert_enrolled(
    app: App, appliance_id: str, prov: dict, hostname: str, quarantined: bool, source: str
) -> None:
    """Every enrolment is news to the MSP: an incident on the site, alerted by mail/webhook
    whatever its severity (an enrolment nobody expected is how a rogue box gets in)."""
    from osiris_server.db import incidents as db_incidents

    summary = (
        f"appliance {appliance_id} ({hostname}) enrolled from {source} with a claim code by "
        f"{prov['created_by']}"
        + ("; QUARANTINED: no credentials until an admin confirms it" if quarantined else "")
    )
    with app.db.write() as w:
        row, _new = db_incidents.open_or_bump(
            w, prov["site_id"], appliance_id, appliance_id, "appliance_enrolled",
            "critical" if quarantined else "high", app.scrub(summary),
            {"provision_id": prov["id"], "quarantined": quarantined, "source": source},
        )  # fmt: skip
        app.alerter.queue(w, row["id"])  # in the incident's transaction: never lost
    app.alerter.kick()


# ---- MAC-based


ENROLL_SECRET_HEADER = "X-Osiris-Enroll-Secret"
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")


def requester_hash(secret: str) -> str:
    """What is stored for a MAC request's requester: a hash, never the secret itself."""
    return hashlib.sha256(b"osiris-enroll\n" + secret.encode("ascii")).hexdigest()


def fingerprint(req_hash: str | None) -> str | None:
    """The requester's full fingerprint (256 bits, 16 groups of 4 hex digits) that the box's
    console shows and an operator names when approving: no shortened form is accepted."""
    if not req_hash:
        return None
    return "-".join(req_hash[i : i + 4] for i in range(0, 64, 4))


_FP_RE = ids.HEX64.regex


def parse_fingerprint(text: str) -> str:
    h = text.strip().lower().replace("-", "").replace(":", "").replace(" ", "")
    if not _FP_RE.fullmatch(h):
        raise bad_request(
            "requester_fingerprint must be the requester's full fingerprint (64 hex digits, "
            "as the appliance's console shows it)",
            "E_SCHEMA",
        )
    return h


def mac_status(app: App, req: Request, mac: str) -> Response:
    """Poll a MAC enrolment: pending until an operator approves *this* requester, then its
    claim code. A request is one (MAC, requester secret) pair; anyone else who knows the MAC
    only ever creates a pending request of its own, which nobody will approve (DESIGN §6)."""
    if app.provision_limiter.hit(req.remote_addr):
        raise HttpError(429, "E_RATE_LIMIT", "too many requests; slow down")
    mac = normalise_mac(mac)
    secret = req.header(ENROLL_SECRET_HEADER) or ""
    if not _SECRET_RE.fullmatch(secret):
        raise bad_request(
            f"{ENROLL_SECRET_HEADER} must be 32-128 random URL-safe characters, the same on "
            "every poll",
            "E_SCHEMA",
        )
    mine = requester_hash(secret)
    pending = {"status": "pending", "fingerprint": fingerprint(mine)}
    row = db_prov.mac_get(app.db, mac, mine)
    if row is None:
        t = int(time.time())
        with app.db.write() as w:
            db_prov.mac_expire(w, t)
            if db_prov.mac_count_pending_from(w, req.remote_addr) >= MAX_PENDING_PER_SOURCE:
                raise HttpError(
                    429,
                    "E_RATE_LIMIT",
                    "too many pending enrolment requests from this address; they expire after "
                    f"{REQUEST_TTL_S // 3600} h",
                )
            db_prov.mac_request(w, mac, mine, req.remote_addr, t + REQUEST_TTL_S)
        return json_response(pending)
    if row["status"] != "approved" or not row["code_enc"]:
        return json_response(pending)
    code = app.vault.decrypt(row["code_enc"], db_prov.code_context(mac, mine)).decode()
    return json_response(
        {"status": "approved", "claim_code": code, "fingerprint": fingerprint(mine)}
    )


APPROVE = {
    "site_id": F.of(ids.SITE_ID, required=True),
    "requester_fingerprint": F(
        "string",
        required=True,
        max_len=96,
        description="the requesting box's full fingerprint (64 hex digits, dashes allowed)",
    ),
    "ttl_s": F("integer", minimum=60, maximum=MAX_TTL_S),
}


def mac_approve(app: App, req: Request, mac: str) -> Response:
    from osiris_server.api.common import site_for

    mac = normalise_mac(mac)
    body = req.data
    requester = parse_fingerprint(body["requester_fingerprint"])
    site_for(app, req.principal, body["site_id"])
    with app.db.write() as w:
        db_prov.mac_expire(w, int(time.time()))
        old = db_prov.mac_get(w, mac, requester)
        if old is None:
            raise not_found(
                "enrolment request from that requester for this MAC (the box must poll first; "
                "compare the fingerprint its console shows)"
            )
        if old["provision_id"]:
            db_prov.delete_unused(w, old["provision_id"])
        ttl = body.get("ttl_s", 86400)
        code, row = _create_code(app, w, req, body["site_id"], ttl, mac)
        enc = app.vault.encrypt(code.encode(), db_prov.code_context(mac, requester))
        db_prov.mac_approve(
            w, mac, requester, body["site_id"], row["id"], enc, req.principal.actor,
            row["expires_epoch"],
        )  # fmt: skip
        audit(
            w, req, "provision.mac_approve", mac, body["site_id"],
            {"provision_id": row["id"], "requester_fingerprint": fingerprint(requester)},
        )  # fmt: skip
    return json_response(
        {
            "mac": mac,
            "status": "approved",
            "site_id": body["site_id"],
            "provision_id": row["id"],
            "requester_fingerprint": fingerprint(requester),
            "expires_at": row["expires_at"],
        },
        201,
    )


def mac_delete(app: App, req: Request, mac: str) -> Response:
    mac = normalise_mac(mac)
    fp = req.params.get("requester_fingerprint")
    requester = parse_fingerprint(fp) if fp else None
    with app.db.write() as w:
        if not db_prov.mac_delete(w, mac, requester):
            raise not_found("enrollment request")
        audit(w, req, "provision.mac_delete", mac, None, {"requester_fingerprint": fp})
    return json_response({"deleted": mac})


def confirm_appliance(app: App, req: Request, appliance_id: str) -> Response:
    """An admin vouches for a quarantined appliance: from its next check-in on it receives its
    site's credentials (sealed to its box key)."""
    from osiris_server.db import gen

    row = db_appliances.get(app.db, appliance_id)
    if row is None or row.get("revoked_at"):
        raise not_found("appliance")
    with app.db.write() as w:
        changed = db_appliances.confirm(w, appliance_id, req.principal.actor)
        if changed:
            gen.bump(w, gen.appliance_scope(appliance_id))
            audit(w, req, "appliance.confirm", appliance_id, row["site_id"],
                  {"hostname": row["hostname"]})  # fmt: skip
    return json_response(
        {
            "appliance_id": appliance_id,
            "site_id": row["site_id"],
            "quarantined": False,
            "confirmed": changed,
        }  # fmt: skip
    )


STAFF = ("admin", "operator")
ROUTES = [
    write(
        "POST",
        "/api/v1/appliances/{appliance_id}/confirm",
        confirm_appliance,
        roles=("admin",),
        summary="Admin: lift an appliance's quarantine (it then receives its site's credentials)",
        tag="provisioning",
    ),
    write(
        "POST",
        "/api/v1/provisions",
        create_provision,
        body=CREATE,
        status=201,
        summary="Create a single-use claim code for a site",
        tag="provisioning",
    ),
    read(
        "GET",
        "/api/v1/provisions",
        list_provisions,
        summary="Claim codes (never the codes) and MAC enrollment requests",
        tag="provisioning",
    ),
    write(
        "DELETE",
        "/api/v1/provisions/{provision_id}",
        delete_provision,
        summary="Withdraw an unused claim code",
        tag="provisioning",
    ),
    Route(
        "POST",
        "/api/v1/provision/claim",
        claim,
        "none",
        body=CLAIM,
        status=201,
        summary="Appliance: exchange a claim code + public keys for an appliance token",
        tag="provisioning",
    ),
    Route(
        "GET",
        "/api/v1/provision/{mac}",
        mac_status,
        "none",
        summary="Appliance: MAC enrollment status (pending until an operator approves)",
        tag="provisioning",
    ),
    write(
        "POST",
        "/api/v1/provision/{mac}",
        mac_approve,
        roles=STAFF,
        body=APPROVE,
        status=201,
        summary="Approve a MAC for a site (creates its claim code)",
        tag="provisioning",
    ),
    write(
        "DELETE",
        "/api/v1/provision/{mac}",
        mac_delete,
        roles=STAFF,
        query={"requester_fingerprint": F("string", max_len=96)},
        summary="Remove a MAC enrollment request or approval",
        tag="provisioning",
    ),
]
