"""Read access to the transparency log: checkpoints, inclusion and consistency proofs, keys.

Any authenticated caller (appliance or staff) may read checkpoints and consistency proofs — they
reveal only sizes and hashes. An inclusion proof is tenant-scoped like the evidence it proves.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from osiris_core.errors import ProofError
from osiris_server.api.common import visible_site_ids
from osiris_server.db import appliances as db_appliances
from osiris_server.db import evidence as db_evidence
from osiris_server.http import F, HttpError, Request, Response, Route, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

ANY = ("admin", "operator", "auditor", "client", "partner", "appliance")


def _cp_out(cp: Any) -> dict[str, Any]:
    return {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "note": cp.note}


def checkpoint(app: App, req: Request) -> Response:
    size = req.params.get("size")
    site = req.params.get("cosigned_by_site")
    if site is not None:
        visible = visible_site_ids(app, req.principal)
        if req.principal.kind == "appliance" or (visible is not None and site not in visible):
            raise not_found("site")
        names = [
            f"osiris/appliance/{a['id']}" for a in db_appliances.list_for_sites(app.db, [site])
        ]
        size = app.log.latest_cosigned(names)
        if size is None:
            raise not_found("checkpoint cosigned by an appliance of this site")
    if size is None:
        cp = app.log.latest_checkpoint()
        if cp is not None:
            cp = app.log.checkpoint_at(cp.size) or cp
    else:
        cp = app.log.checkpoint_at(size)
    if cp is None:
        raise not_found("checkpoint")
    return json_response(_cp_out(cp))


HASH_Q = {
    "hash": F("string", required=True, max_len=80, pattern=r"sha256:[0-9a-f]{64}"),
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
    if "size" in q:
        cp = app.log.checkpoint_at(q["size"])
        if cp is None:
            raise not_found("checkpoint")
    else:
        latest = app.log.latest_checkpoint()
        cp = app.log.checkpoint_at(latest.size) if latest else None
    if cp is None or row["log_index"] >= cp.size:
        cp = app.log.wait_checkpoint(row["log_index"] + 1) if "size" not in q else None
    if cp is None:
        raise HttpError(409, "E_NOT_COVERED", "that checkpoint does not cover this entry")
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
        "appliances": [],
    }
    if p.kind != "appliance":
        rows = db_appliances.list_for_sites(app.db, visible_site_ids(app, p))
        out["appliances"] = [
            {
                "appliance_id": r["id"],
                "site_id": r["site_id"],
                "signing_vkey": r["signing_vkey"],
                "cosign_vkey": r["cosign_vkey"],
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
            "size": F("integer", minimum=1),
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
        summary="Log and order public keys (+ appliance keys visible to the caller)",
        tag="log",
    ),
]
