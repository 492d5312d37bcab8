"""Per-site credentials: encrypted at rest, masked to operators, revealed only to admins.

The plaintext exists in memory only while a check-in of an appliance of the same site is being
answered, or for an explicit admin reveal; both are audited. Nothing here logs a secret.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_server.api import winrm_trust
from osiris_server.api.common import audit, read, site_for, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import credentials as db_creds
from osiris_server.http import F, Request, Response, bad_request, conflict, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

MASK = "********"
KINDS = ("winrm", "ssh_password", "ssh_key", "local")
FINGERPRINT = F("string", max_len=128, pattern=r"[A-Za-z0-9+/=:_-]{8,128}")
FIELDS = {
    "host_id": F.of(ids.HOST_ID),
    "kind": F("string", enum=KINDS),
    "address": F("string", min_len=1, max_len=255, pattern=r"[A-Za-z0-9._:\[\]-]{1,255}"),
    "port": F("integer", minimum=1, maximum=65535),
    "lab": F("boolean"),
    "username": F("string", max_len=256),
    "password": F("string", max_len=4096),
    "private_key": F("string", max_len=16384),
    "host_key_fingerprints": F("array", items=FINGERPRINT, max_items=16),
    "use_tls": F("boolean"),
    "verify_tls": F("boolean"),
    # SSH only: run phase scripts through ``sudo -S`` (the login may then be a named user, not
    # root — what lets PermitRootLogin no be healed without locking the agent out)
    "sudo": F("boolean"),
    # SSH + sudo only: the password sudo asks for when it is not the login's (a key login, or a
    # different sudo password); sealed with the rest of the secret, sent over stdin, never argv
    "become_password": F("string", max_len=4096),
    # WinRM only: how the listener's certificate is trusted, and how the agent logs in
    # (api/winrm_trust.py)
    **winrm_trust.FIELDS,
}
CREATE = {
    k: dataclasses.replace(v, required=k in ("host_id", "kind", "address"))
    for k, v in FIELDS.items()
}
# fields that decide where (and how protected) the stored secret is sent
DESTINATION = ("address", "port", "lab", "use_tls", "verify_tls", "host_key_fingerprints",
               "ca_bundle", "cert_thumbprint")  # fmt: skip
DEFAULT_PORT = {"winrm": 5986, "ssh_password": 22, "ssh_key": 22, "local": 1}
SSH_KINDS = ("ssh_password", "ssh_key")
SECRET_KEYS = ("password", "private_key", "become_password")


def context(site_id: str, cred_id: str) -> str:
    return db_creds.context(site_id, cred_id)


def _secret_of(kind: str, body: dict[str, Any], required: bool) -> dict[str, str] | None:
    want = {"winrm": "password", "ssh_password": "password", "ssh_key": "private_key"}.get(kind)
    other = {"password", "private_key"} - {want} if want else {"password", "private_key"}
    for k in other:
        if k in body:
            raise bad_request(f"a {kind} credential takes no {k}", "E_SCHEMA")
    if want is None:
        return {}
    if want not in body:
        if required:
            raise bad_request(f"a {kind} credential needs {want}", "E_SCHEMA")
        return None
    return {want: body[want]}


def _check_sudo(kind: str, sudo: bool, become: str | None) -> None:
    """``sudo`` and a become password mean something only to an SSH login: refused elsewhere
    rather than stored and silently ignored (a WinRM admin would believe it was in force)."""
    if sudo and kind not in SSH_KINDS:
        raise bad_request(f"sudo is for SSH credentials only, not {kind}", "E_SCHEMA")
    if become:
        if kind not in SSH_KINDS:
            raise bad_request(f"a {kind} credential takes no become_password", "E_SCHEMA")
        if not sudo:
            raise bad_request("become_password is used only with sudo true", "E_SCHEMA")


def _with_become(secret: dict[str, str], become: str | None, kind: str, sudo: bool):
    """The secret to store: the login secret plus the become password while sudo is on (a
    password nobody uses is not kept, nor sent to any appliance)."""
    out = {k: v for k, v in secret.items() if k in ("password", "private_key")}
    if become and sudo and kind in SSH_KINDS:
        out["become_password"] = become
    return out


def masked(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "secret_enc"}
    out["secret"] = MASK
    return out


def list_creds(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response({"credentials": [masked(r) for r in db_creds.for_site(app.db, site_id)]})


def get_cred(app: App, req: Request, site_id: str, cred_id: str) -> Response:
    site_for(app, req.principal, site_id)
    row = db_creds.get(app.db, site_id, cred_id)
    if row is None:
        raise not_found("credential")
    return json_response(masked(row))


def _check_local(app: App, site_id: str, kind: str, host_id: str) -> None:
    """A ``local`` credential means "the appliance itself": refused for any host id but an
    appliance of this site, or the agent would sign evidence about itself under a clinic
    host's name."""
    if kind != "local":
        return
    if not db_appliances.active_in_site(app.db, host_id, site_id):
        ids = db_appliances.active_ids(app.db, site_id)
        which = f": {', '.join(ids[:10])}" if ids else " (it has none enrolled yet)"
        raise bad_request(
            "a local credential is only for the appliance itself: host_id must be the id of "
            f"one of this site's appliances{which}",
            "E_LOCAL_HOST",
        )


def _check_tls(kind: str, fields: dict[str, Any]) -> None:
    """Plain HTTP or an unchecked certificate only towards a lab simulator: the agent refuses
    such a WinRM target anyway (hosts/winrm.py), so storing one would only leave a credential
    that can never be used — and a password that would travel in the clear."""
    if kind != "winrm" or fields.get("lab"):
        return
    if fields.get("use_tls") is not None and not fields["use_tls"]:
        raise bad_request(
            "use_tls false sends the password in the clear: only a lab host (lab true) may use "
            "plain HTTP",
            "E_SCHEMA",
        )
    if fields.get("verify_tls") is not None and not fields["verify_tls"]:
        raise bad_request(
            "verify_tls false trusts any certificate: only a lab host (lab true) may skip it",
            "E_SCHEMA",
        )


def _taken(w: Any, site_id: str, host_id: str) -> str:
    """One credential per host and site (what an order's target is judged by): say which one
    holds the host id, and what to type instead."""
    cred_id = db_creds.id_for_host(w, site_id, host_id) or "?"
    return (
        f"site {site_id} already has a credential for host {host_id} ({cred_id}): change it "
        f"with osiris cred rotate --site {site_id} {cred_id}, or remove it first "
        f"(osiris cred rm --site {site_id} {cred_id}), or choose another --host"
    )


def create_cred(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    body = dict(req.data)
    kind = body["kind"]
    secret = _secret_of(kind, body, required=True)
    if kind in ("winrm", "ssh_password", "ssh_key") and not body.get("username"):
        raise bad_request(f"a {kind} credential needs username", "E_SCHEMA")
    _check_local(app, site_id, kind, body["host_id"])
    sudo = bool(body.get("sudo", False))
    _check_sudo(kind, sudo, body.get("become_password"))
    secret = _with_become(secret or {}, body.get("become_password"), kind, sudo)
    fields = {
        "host_id": body["host_id"],
        "kind": kind,
        "address": body["address"],
        "port": body.get("port", DEFAULT_PORT[kind]),
        "lab": body.get("lab", False),
        "username": body.get("username", ""),
        "host_key_fingerprints": body.get("host_key_fingerprints", []),
        "use_tls": body.get("use_tls", kind == "winrm"),
        "verify_tls": body.get("verify_tls", True),
        "sudo": sudo,
    }
    _check_tls(kind, fields)
    fields.update(winrm_trust.check(kind, {**body, "lab": fields["lab"]}))
    cred_id = db_creds.new_row_id()
    token = app.vault.encrypt(json.dumps(secret).encode(), context(site_id, cred_id))
    with app.db.write() as w:
        if db_creds.host_taken(w, site_id, fields["host_id"]):
            raise conflict(_taken(w, site_id, fields["host_id"]))
        db_creds.create(w, cred_id, site_id, fields, token)
        audit(
            w,
            req,
            "credential.create",
            cred_id,
            site_id,
            {"host_id": fields["host_id"], "kind": kind},
        )
    return json_response(masked(db_creds.get(app.db, site_id, cred_id) or {}), 201)


def update_cred(app: App, req: Request, site_id: str, cred_id: str) -> Response:
    """Rotation: a new password/key takes effect at each appliance's next check-in."""
    site_for(app, req.principal, site_id)
    row = db_creds.get(app.db, site_id, cred_id)
    if row is None:
        raise not_found("credential")
    body = dict(req.data)
    kind = body.get("kind", row["kind"])
    secret = _secret_of(kind, body, required=kind != row["kind"])
    _check_local(app, site_id, kind, body.get("host_id", row["host_id"]))
    _check_tls(kind, {k: body.get(k, row.get(k)) for k in ("lab", "use_tls", "verify_tls")})
    # a kind change starts the WinRM fields afresh (an SSH row's defaults are no WinRM trust)
    was = row if kind == row["kind"] else {"lab": row.get("lab")}
    trust = winrm_trust.check(
        kind, {k: body.get(k, was.get(k)) for k in (*winrm_trust.KEYS, "lab")}
    )
    body.update({k: v for k, v in trust.items() if k in body or kind != row["kind"]})
    redirected = sorted(k for k in DESTINATION if k in body and body[k] != row.get(k))
    if redirected and secret is None and _secret_of(kind, {}, required=False) is None:
        # Without this, an operator or partner (who may not reveal secrets) could point the
        # stored password at a host of their own — plain HTTP, validation off — and collect it
        # at the appliance's next check-in: a reveal that bypasses the admin-only rule.
        raise conflict(
            f"changing {', '.join(redirected)} sends the secret elsewhere: give it again",
            "E_SECRET_REQUIRED",
        )
    sudo = bool(body.get("sudo", row["sudo"]))
    _check_sudo(kind, sudo, body.get("become_password"))
    token = None
    old_become = None
    if secret is not None or "become_password" in body or sudo != row["sudo"]:
        old = json.loads(app.vault.decrypt(row["secret_enc"], context(site_id, cred_id)))
        old_become = old.get("become_password")
        become = body["become_password"] if "become_password" in body else old_become
        new = _with_become(secret if secret is not None else old, become, kind, sudo)
        if secret is not None or new != old:
            token = app.vault.encrypt(json.dumps(new).encode(), context(site_id, cred_id))
    if redirected and old_become and sudo and "become_password" not in body:
        # the same rule for the sudo password: it would follow the login secret elsewhere
        raise conflict(
            f"changing {', '.join(redirected)} sends the become password elsewhere: give it again",
            "E_SECRET_REQUIRED",
        )
    fields = {k: v for k, v in body.items() if k not in SECRET_KEYS}
    with app.db.write() as w:
        if "host_id" in fields and db_creds.host_taken(w, site_id, fields["host_id"], cred_id):
            raise conflict(_taken(w, site_id, fields["host_id"]))
        db_creds.update(w, cred_id, fields, token)
        audit(
            w,
            req,
            "credential.update",
            cred_id,
            site_id,
            {"fields": sorted(body), "secret_changed": token is not None},
        )
    return json_response(masked(db_creds.get(app.db, site_id, cred_id) or {}))


def delete_cred(app: App, req: Request, site_id: str, cred_id: str) -> Response:
    site_for(app, req.principal, site_id)
    with app.db.write() as w:
        if not db_creds.delete(w, site_id, cred_id):
            raise not_found("credential")
        audit(w, req, "credential.delete", cred_id, site_id)
    return json_response({"deleted": cred_id})


def reveal_cred(app: App, req: Request, site_id: str, cred_id: str) -> Response:
    site_for(app, req.principal, site_id)
    row = db_creds.get(app.db, site_id, cred_id)
    if row is None:
        raise not_found("credential")
    secret = json.loads(app.vault.decrypt(row["secret_enc"], context(site_id, cred_id)))
    with app.db.write() as w:
        audit(w, req, "credential.reveal", cred_id, site_id, {"host_id": row["host_id"]})
    out = masked(row)
    out.pop("secret")
    out.update(secret)
    return json_response(out)


ROUTES = [
    read(
        "GET",
        "/api/v1/sites/{site_id}/credentials",
        list_creds,
        summary="Credentials of a site (secrets masked)",
        tag="credentials",
    ),
    write(
        "POST",
        "/api/v1/sites/{site_id}/credentials",
        create_cred,
        body=CREATE,
        status=201,
        summary="Add a credential (encrypted at rest)",
        tag="credentials",
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/credentials/{cred_id}",
        get_cred,
        summary="One credential (secret masked)",
        tag="credentials",
    ),
    write(
        "PATCH",
        "/api/v1/sites/{site_id}/credentials/{cred_id}",
        update_cred,
        body=FIELDS,
        summary="Change or rotate a credential (effective at next check-in)",
        tag="credentials",
    ),
    write(
        "DELETE",
        "/api/v1/sites/{site_id}/credentials/{cred_id}",
        delete_cred,
        summary="Delete a credential",
        tag="credentials",
    ),
    write(
        "POST",
        "/api/v1/sites/{site_id}/credentials/{cred_id}/reveal",
        reveal_cred,
        roles=("admin",),
        body={},
        summary="Admin only: reveal the secret (audited)",
        tag="credentials",
    ),
]
