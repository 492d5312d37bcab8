"""Recovery-key escrow: an appliance hands in a BitLocker recovery password before it lets the
runbook turn encryption on; only an admin can read it back, audited.

Why the rules are what they are:

* **Upload is the appliance's own, for its own site.** The path names the appliance and must be
  the caller's token's (403 otherwise); the host must be one of the site's credentials (404
  otherwise), so an appliance cannot plant keys under another site's hosts. A quarantined
  appliance (enrolled from a code a non-admin made) is refused: the runbook then does not
  enable encryption at all (the agent escalates), which is the safe side.
* **Stored like credentials**: a vault token bound to site, appliance and row
  (``db/escrow.context``), never plaintext, never in a log or an audit detail.
* **Idempotent, never overwritten**: the same protector uploaded again with the same password
  answers the same ``escrow_ref`` (an agent that lost the answer retries); a *different*
  password for a protector already escrowed is refused (409) — the first one is the one that
  opens the disk, and a hostile or broken uploader must not replace it.
* **Read back only by an admin reveal** (``POST …/reveal``, audited). Listings show where and
  when, never the secret or its ciphertext; operators, auditors, partners and appliances cannot
  reveal.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_server.api.common import audit, read, site_for, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import credentials as db_creds
from osiris_server.db import escrow as db_escrow
from osiris_server.http import F, HttpError, Request, Response, Route, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

KINDS = ("bitlocker_recovery_password",)
# BitLocker's own formats: a protector id is a GUID in braces; a recovery password is 48 digits
# in eight groups of six
PROTECTOR_ID = r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
RECOVERY_PASSWORD = r"[0-9]{6}(-[0-9]{6}){7}"
UPLOAD = {
    "host_id": F.of(ids.HOST_ID, required=True),
    "kind": F("string", enum=KINDS, required=True),
    "protector_id": F("string", max_len=38, pattern=PROTECTOR_ID, required=True),
    "secret": F("string", max_len=55, pattern=RECOVERY_PASSWORD, required=True),
}


def upload(app: App, req: Request, appliance_id: str) -> Response:
    p = req.principal
    if appliance_id != p.id:
        raise HttpError(403, "E_IDENTITY", "an appliance escrows keys under its own id only")
    row = db_appliances.box_and_quarantine(app.db, p.id)
    if row is None or row["quarantined"]:
        raise HttpError(
            403, "E_QUARANTINED", "a quarantined appliance cannot escrow keys; an admin confirms it"
        )
    body = req.data
    site_id, host_id, protector = p.site_id, body["host_id"], body["protector_id"].upper()
    if db_creds.id_for_host(app.db, site_id, host_id) is None:
        raise not_found("host")
    with app.db.write() as w:
        have = db_escrow.find(w, site_id, host_id, protector)
        if have is not None:
            token = db_escrow.secret_of(w, site_id, have["id"])
            assert token is not None
            ctx = db_escrow.context(site_id, have["appliance_id"], have["id"])
            old = json.loads(app.vault.decrypt(token["secret_enc"], ctx))["secret"]
            if not hmac.compare_digest(old.encode(), body["secret"].encode()):
                raise HttpError(
                    409, "E_CONFLICT",
                    f"protector {protector} of {host_id} is already escrowed with another "
                    "recovery password; the first one is kept",
                )  # fmt: skip
            return json_response(_answer(have, stored=False))
        escrow_id = db_escrow.new_row_id()
        secret = json.dumps({"secret": body["secret"]}).encode()
        row = {
            "id": escrow_id, "site_id": site_id, "appliance_id": p.id, "host_id": host_id,
            "kind": body["kind"], "protector_id": protector,
            "secret_enc": app.vault.encrypt(secret, db_escrow.context(site_id, p.id, escrow_id)),
        }  # fmt: skip
        db_escrow.create(w, row)
        audit(w, req, "escrow.store", escrow_id, site_id,
              {"host_id": host_id, "kind": body["kind"], "protector_id": protector})  # fmt: skip
        stored = db_escrow.find(w, site_id, host_id, protector)
    assert stored is not None
    return json_response(_answer(stored, stored=True), 201)


def _answer(row: dict[str, Any], *, stored: bool) -> dict[str, Any]:
    return {"escrow_ref": row["id"], "host_id": row["host_id"],
            "protector_id": row["protector_id"], "stored": stored}  # fmt: skip


def list_escrow(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    return json_response({"escrow": db_escrow.for_site(app.db, site_id)})


def reveal(app: App, req: Request, site_id: str, escrow_id: str) -> Response:
    site_for(app, req.principal, site_id)
    row = db_escrow.secret_of(app.db, site_id, escrow_id)
    if row is None:
        raise not_found("escrowed key")
    ctx = db_escrow.context(site_id, row["appliance_id"], escrow_id)
    secret = json.loads(app.vault.decrypt(row.pop("secret_enc"), ctx))["secret"]
    with app.db.write() as w:
        audit(w, req, "escrow.reveal", escrow_id, site_id,
              {"host_id": row["host_id"], "protector_id": row["protector_id"]})  # fmt: skip
    return json_response({**row, "secret": secret})


ROUTES = [
    Route(
        "POST",
        "/api/v1/appliances/{appliance_id}/escrow",
        upload,
        "appliance",
        body=UPLOAD,
        summary="Appliance: escrow a BitLocker recovery password before encryption is enabled "
        "(stored encrypted; revealed only to an admin)",
        tag="appliance",
    ),
    read(
        "GET",
        "/api/v1/sites/{site_id}/escrow",
        list_escrow,
        summary="Escrowed recovery keys of a site: where and when, never the key",
        tag="escrow",
    ),
    write(
        "POST",
        "/api/v1/sites/{site_id}/escrow/{escrow_id}/reveal",
        reveal,
        roles=("admin",),
        body={},
        summary="Admin only: reveal an escrowed recovery key (audited)",
        tag="escrow",
    ),
]
