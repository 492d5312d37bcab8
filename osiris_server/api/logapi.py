"""Read access to the transparency log: checkpoints, inclusion and consistency proofs, keys.

Any authenticated caller (appliance or staff) may read checkpoints and consistency proofs — they
reveal only sizes and hashes. An inclusion proof is tenant-scoped like the evidence it proves.

A checkpoint note is served with the cosignature lines of the appliances the caller may see and
no others (``served_checkpoint``): a cosigner's key name (``osiris/appliance/<id>``) says which
clinic's appliance vouched for the log, which is another tenant's business. Staff of every site
see every line; a partner, the appliances of its sites; a client or an appliance, those of its
own site. A note served for one site's evidence (inclusion proofs, bulk proofs) carries only
that site's appliances' lines.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_core.errors import ProofError
from osiris_core.keys import appliance_key_name
from osiris_server.api.common import visible_site_ids
from osiris_server.auth import Principal
from osiris_server.db import appliances as db_appliances
from osiris_server.db import evidence as db_evidence
from osiris_server.db import rotations as db_rotations
from osiris_server.http import F, HttpError, Request, Response, Route, json_response, not_found
from osiris_server.log import SignedCheckpoint

if TYPE_CHECKING:
    from osiris_server.app import App

ANY = ("admin", "operator", "auditor", "client", "partner", "appliance")


def cosigner_names(app: App, p: Principal, site_id: str | None = None) -> set[str] | None:
    """Cosigner key names whose lines ``p`` may see (None: all), narrowed to ``site_id``."""
    sites = [p.site_id] if p.kind == "appliance" else visible_site_ids(app, p)
    if site_id is not None:
        if sites is not None and site_id not in sites:
            return set()
        sites = [site_id]
    if sites is None:
        return None
    return {appliance_key_name(a) for a in db_appliances.ids_for_sites(app.db, sites)}


def served_checkpoint(
    app: App, p: Principal, size: int, site_id: str | None = None
) -> SignedCheckpoint | None:
    """The stored checkpoint of ``size`` as ``p`` may see it (see the module doc)."""
    return app.log.checkpoint_at(size, cosigner_names(app, p, site_id))


def _cp_out(cp: Any) -> dict[str, Any]:
    return {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "note": cp.note}


def checkpoint(app: App, req: Request) -> Response:
    p = req.principal
    size = req.params.get("size")
    site = req.params.get("cosigned_by_site")
    if site is not None:
        visible = visible_site_ids(app, p)
        if p.kind == "appliance" or (visible is not None and site not in visible):
            raise not_found("site")
        names = {appliance_key_name(a) for a in db_appliances.ids_for_sites(app.db, [site])}
        size = app.log.latest_cosigned(names)
        if size is None:
            raise not_found("checkpoint cosigned by an appliance of this site")
    if size is None:
        latest = app.log.latest_checkpoint()
        size = latest.size if latest is not None else None
    cp = served_checkpoint(app, p, size, site) if size is not None else None
    if cp is None:
        raise not_found("checkpoint")
    return json_response(_cp_out(cp))


HASH_Q = {
    "hash": F.of(ids.HASH, required=True, max_len=80),
    "size": F("integer", minimum=1),
}


def _visible(app: App, req: Request, site_id: str, appliance_id: str) -> bool:
    p = req.principal
    if p.kind == "appliance":
        return p.id == appliance_id
    sites = visible_site_ids(app, p)
    return sites is None or site_id in sites


def inclusion(app: App, req: Request) -> Response:
    q = req.params
    row = db_evidence.by_hash(app.db, q["hash"])
    if row is None or not _visible(app, req, row["site_id"], row["appliance_id"]):
        raise not_found("evidence")
    site = row["site_id"]
    if "size" in q:
        cp = served_checkpoint(app, req.principal, q["size"], site)
        if cp is None:
            raise not_found("checkpoint")
    else:
        latest = app.log.latest_checkpoint()
        cp = served_checkpoint(app, req.principal, latest.size, site) if latest else None
    if cp is None or row["log_index"] >= cp.size:
        if "size" in q:
            raise HttpError(409, "E_NOT_COVERED", "that checkpoint does not cover this entry")
        fresh = app.log.wait_checkpoint(row["log_index"] + 1)
        cp = served_checkpoint(app, req.principal, fresh.size, site) or fresh
    hashes = app.log.inclusion_proof(row["log_index"], cp.size)
    return json_response(
        {
            "bundle_hash": q["hash"],
            "index": row["log_index"],
            "size": cp.size,
            "hashes": [base64.b64encode(h).decode() for h in hashes],
            "checkpoint": cp.note,
            "receipt": app.log.tlog_proof(row["log_index"], cp),
        }
    )


CONS_Q = {
    "from": F("integer", required=True, minimum=0),
    "to": F("integer", required=True, minimum=0),
}


def consistency(app: App, req: Request) -> Response:
    old, new = req.params["from"], req.params["to"]
    if old > new or (new > app.log.size() and new > app.log.refresh()):
        raise HttpError(400, "E_INPUT", "need 0 <= from <= to <= log size")
    try:
        proof = app.log.consistency_proof(old, new) if 0 < old < new else []
    except ProofError as exc:
        raise HttpError(400, "E_PROOF", str(exc)) from None
    return json_response(
        {"from": old, "to": new, "proof": [base64.b64encode(h).decode() for h in proof]}
    )


def keys(app: App, req: Request) -> Response:
    p = req.principal
    out: dict[str, Any] = {
        "origin": app.cfg.origin,
        "log": app.log_signer.vkey,
        "order": app.order_signer.vkey,
        "release": app.release.verifier.vkey,  # what enrolment pins as release_vkey
        "appliances": [],
    }
    if p.kind == "appliance":
        # its own entry only: what the server holds for it (e.g. after an interrupted rotation)
        own = db_appliances.get(app.db, p.id)
        rows = [own] if own is not None else []
    else:
        rows = db_appliances.list_for_sites(app.db, visible_site_ids(app, p))
    if rows:
        history = db_rotations.for_appliances(app.db, [r["id"] for r in rows])
        out["appliances"] = [
            {
                "appliance_id": r["id"],
                "site_id": r["site_id"],
                "signing_vkey": r["signing_vkey"],
                "cosign_vkey": r["cosign_vkey"],
                "rotations": [json.loads(st) for st in history.get(r["id"], [])],
            }
            for r in rows
        ]
    return json_response(out)


ROUTES = [
    Route(
        "GET",
        "/api/v1/log/checkpoint",
        checkpoint,
        "any",
        ANY,
        query={
            "size": F("integer", minimum=0),
            "cosigned_by_site": F("string", max_len=80),
        },
        summary="Latest (or a stored historic, or the newest cosigned by a site's appliances) "
        "signed checkpoint with cosignatures",
        tag="log",
    ),
    Route(
        "GET",
        "/api/v1/log/proof/inclusion",
        inclusion,
        "any",
        ANY,
        query=HASH_Q,
        summary="Inclusion proof (and tlog-proof) for a bundle hash",
        tag="log",
    ),
    Route(
        "GET",
        "/api/v1/log/proof/consistency",
        consistency,
        "any",
        ANY,
        query=CONS_Q,
        summary="Consistency proof between two tree sizes",
        tag="log",
    ),
    Route(
        "GET",
        "/api/v1/log/keys",
        keys,
        "any",
        ANY,
        summary="Log and order public keys (+ appliance keys and key rotation statements "
        "visible to the caller; an appliance: its own)",
        tag="log",
    ),
]
