"""Evidence ingest (appliances) and query (operators).

Ingest, per envelope and without writing anything for a rejected one: canonical form, size cap,
schema, appliance/site identity = the token's appliance, the bundle's ``reseller_id`` = its
site's partner at ingest time or null (``E_RESELLER``; osiris_core.partner), signature by the
appliance's key *for that seq* (the key epoch containing it: after a key rotation, bundles below its
``effective_seq`` — still in the agent's outbox — verify with the old key, bundles from it on
only with the new one; api/rotation.py), and chain continuity (``seq``/``prev_hash``).
Accepted envelopes go to the one Merkle log in one fsync'd batch, then into the evidence index;
every answer carries a receipt (tlog-proof) against a freshly signed checkpoint (the log's
signature only, no cosignature lines) plus a consistency proof from the appliance's
``log_size_seen``.

Idempotent: a resent envelope is found by bundle hash and answered ``duplicate`` with its
original index. Crash-safe: the log append is durable before the index insert; after a crash
between the two, the resend finds the leaf already in the log (same index) and the index row is
written then.

Query: a row whose body retention pruned (osiris_server/retention.py) answers ``envelope: null``
and ``pruned`` (the prune, the WORM keys holding the envelope) — its proof is served as before.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from osiris_core import canonical, ids
from osiris_core import evidence as ev
from osiris_core.errors import OsirisError
from osiris_core.keys import Verifier
from osiris_core.partner import RESELLER_FIELD, check_reseller
from osiris_core.trust import KeyEpoch
from osiris_server import learning, retention
from osiris_server.api.common import LIMIT, read, site_for
from osiris_server.api.logapi import served_checkpoint
from osiris_server.db import evidence as db_evidence
from osiris_server.db import incidents as db_incidents
from osiris_server.db import orders as db_orders
from osiris_server.db import tenants as db_tenants
from osiris_server.db.util import now
from osiris_server.http import F, HttpError, Request, Response, Route, json_response, not_found

if TYPE_CHECKING:
    from osiris_server.app import App

MAX_BATCH = 500
POST = {
    "envelopes": F(
        "array",
        required=True,
        max_items=MAX_BATCH,
        items=F("any"),
        description="signed envelopes, each a JSON object or its canonical JSON text",
    ),
    "log_size_seen": F("integer", minimum=0, description="the appliance's last verified size"),
}


def _key_for(epochs: list[KeyEpoch], seq: int) -> tuple[Verifier, KeyEpoch]:
    for e in epochs:
        if seq >= e.first_seq and (e.last_seq is None or seq <= e.last_seq):
            return e.verifier, e
    raise Reject("E_SIG", f"no signing key of this appliance covers seq {seq}")


class Reject(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse(item: Any) -> tuple[dict[str, Any], bytes]:
    if isinstance(item, str):
        data = item.encode("utf-8", "surrogatepass")
        if len(data) > ev.MAX_ENVELOPE_BYTES:
            raise Reject("E_SCHEMA", "envelope exceeds the size cap")
        obj = canonical.loads_canonical(data)
    elif isinstance(item, dict):
        obj = item
    else:
        raise Reject("E_SCHEMA", "an envelope is a JSON object or its canonical text")
    data = ev.envelope_bytes(obj)
    return obj, data


def _checked(item: Any, p: Any, epochs: list[KeyEpoch]) -> tuple[Any, Any]:
    """``(item, (env, data, bundle, bundle_hash))`` when the envelope passes every check that
    needs no index row (form, schema, identity, key for its seq, signature), else
    ``(item, Reject)``."""
    try:
        env, data = _parse(item)
        ev.validate_envelope(env)
        bundle = env["bundle"]
        if bundle["appliance_id"] != p.id or bundle["site_id"] != p.site_id:
            raise Reject("E_IDENTITY", "bundle names another appliance or site")
        verifier, epoch = _key_for(epochs, bundle["seq"])
        if env["sig"]["key_id"] != verifier.key_id_hex:
            raise Reject(
                "E_SIG",
                f"seq {bundle['seq']} must be signed with key {verifier.key_id_hex} "
                f"(this appliance's key from seq {epoch.first_seq}), not "
                f"{env['sig']['key_id']}",
            )
        ev.verify_envelope(env, {verifier.key_id_hex: verifier}, validate=False)
        return item, (env, data, bundle, ev.bundle_hash(bundle))
    except Reject as exc:
        return item, exc
    except OsirisError as exc:
        return item, Reject(exc.code, str(exc))


def ingest(app: App, req: Request) -> Response:
    p = req.principal
    body = req.data
    seen = body.get("log_size_seen", 0)
    if seen > app.log.size() and seen > app.log.refresh():  # refresh: another worker
        raise HttpError(409, "E_LOG_SIZE", "log_size_seen is beyond this log's size")
    results: list[dict[str, Any]] = []
    staged: list[tuple[int, bytes, dict[str, Any], str, bool]] = []  # i, data, bundle, hash, gap
    # chain checks, key choice and the writes of one appliance run alone (other processes too:
    # a key rotation holds the same lock); different appliances run in parallel
    with app.appliance_locks.hold(p.id):
        epochs = app.signing_epochs(p.id)  # read now: a rotation may postdate authentication
        site = db_tenants.get_site(app.db, p.site_id)  # its partner now, not at authentication
        site_partner = site["partner_id"] if site else None
        # The checks that need no index first, then every index row the chain checks can ask
        # about in one statement each (under the lock this appliance's rows cannot change),
        # then the per-envelope decisions in order, exactly as one lookup each would decide.
        checked: list[tuple[Any, Any]] = [_checked(item, p, epochs) for item in body["envelopes"]]
        good = [c for _item, c in checked if not isinstance(c, Reject)]
        known_hashes = db_evidence.by_hashes(app.db, [c[3] for c in good])
        near = {c[2]["seq"] + d for c in good for d in (-1, 0, 1)}
        indexed = db_evidence.by_seqs(app.db, p.id, near) if good else {}
        batch_seq: dict[int, tuple[str, str]] = {}  # seq -> (bundle_hash, prev_hash)

        def at(seq: int) -> tuple[str, str] | None:
            if seq in batch_seq:
                return batch_seq[seq]
            row = indexed.get(seq)
            return (row["bundle_hash"], row["prev_hash"]) if row else None

        for i, (item, c) in enumerate(checked):
            try:
                if isinstance(c, Reject):
                    raise c
                data, bundle, bh = c[1], c[2], c[3]
                res: dict[str, Any] = {"bundle_hash": bh, "index": None, "receipt": None}
                known = known_hashes.get(bh)
                if known is not None:
                    res.update(status="duplicate", index=known["log_index"])
                    results.append(res)
                    continue
                # A signed claim an auditor will believe: it must name this site's partner.
                check_reseller(bundle[RESELLER_FIELD], site_partner)
                seq = bundle["seq"]
                same = at(seq)
                if same is not None:
                    if same[0] == bh:
                        res["status"] = "duplicate"  # resolved to its index below
                        results.append(res)
                        staged.append((i, data, bundle, bh, False))
                        continue
                    raise Reject("E_CHAIN", f"seq {seq} is already taken by another bundle")
                gap = False
                if seq > 1:
                    prev = at(seq - 1)
                    if prev is None:
                        gap = True
                    elif prev[0] != bundle["prev_hash"]:
                        raise Reject("E_CHAIN", f"prev_hash does not link to seq {seq - 1}")
                nxt = at(seq + 1)
                if nxt is not None and nxt[1] != bh:
                    raise Reject("E_CHAIN", f"seq {seq + 1} does not link to this bundle")
                batch_seq[seq] = (bh, bundle["prev_hash"])
                res["status"] = "accepted"
                results.append(res)
                staged.append((i, data, bundle, bh, gap))
            except Reject as exc:
                results.append(_rejected(item, exc.code, exc.message))
            except OsirisError as exc:
                results.append(_rejected(item, exc.code, str(exc)))
        if staged:
            _commit(app, p, staged, results)
    return json_response(_receipts(app, results, seen))


def _rejected(item: Any, code: str, message: str) -> dict[str, Any]:
    bh = None
    if isinstance(item, dict) and isinstance(item.get("bundle"), dict):
        try:
            bh = ev.bundle_hash(item["bundle"])
        except OsirisError:
            bh = None
    return {
        "bundle_hash": bh,
        "index": None,
        "receipt": None,
        "status": "rejected",
        "error": {"code": code, "message": message[:300]},
    }


def _commit(app: App, p: Any, staged: list, results: list[dict[str, Any]]) -> None:
    appended = app.log.append([s[1] for s in staged])
    rows = []
    by_pos = {}
    for (i, _data, bundle, bh, _gap), ar in zip(staged, appended, strict=True):
        by_pos[i] = ar.index
        rows.append(
            {
                "bundle_hash": bh,
                "log_index": ar.index,
                "site_id": bundle["site_id"],
                "appliance_id": bundle["appliance_id"],
                "seq": bundle["seq"],
                "prev_hash": bundle["prev_hash"],
                "host_id": bundle["host_id"],
                "check_id": bundle["check"],
                "outcome": bundle["outcome"],
                "order_id": bundle["order_id"],
                "finished_at": bundle["finished_at"],
                "received_at": now(),
            }
        )
    for i, idx in by_pos.items():
        results[i]["index"] = idx
    alerts: list[str] = []
    with app.db.write() as w:
        db_evidence.insert(w, rows)
        for _i, _data, bundle, bh, gap in staged:
            if bundle["tier"] in ("L1", "L2"):  # the learning loop's counts (learning.py)
                learning.observe(app, w, bundle, bh)
            if bundle["order_id"]:
                db_orders.mark_done(w, p.id, bundle["order_id"], bh, bundle["outcome"])
            if gap:
                last = db_evidence.max_seq(w, p.id, below=bundle["seq"])
                inc, new = db_incidents.open_or_bump(
                    w,
                    p.site_id,
                    p.id,
                    "appliance",
                    "chain_gap",
                    "critical",
                    f"evidence chain gap: seq {last + 1}..{bundle['seq'] - 1} missing",
                    {"seq": bundle["seq"], "last_seq_before": last},
                )
                if new:
                    app.alerter.queue(w, inc["id"])  # in the incident's transaction: never lost
                    alerts.append(inc["id"])
    if alerts:
        app.alerter.kick()


def _receipts(app: App, results: list[dict[str, Any]], seen: int) -> dict[str, Any]:
    indices = [r["index"] for r in results if r["index"] is not None]
    if indices:
        cp = app.log.wait_checkpoint(max(max(indices) + 1, seen))
    else:
        cp = app.log.latest_checkpoint()
        if cp is not None and cp.size < seen:
            cp = app.log.wait_checkpoint(seen)
    if cp is None:
        return {"results": results, "checkpoint": None, "consistency": None}
    covered = [r for r in results if r["index"] is not None]
    for r, receipt in zip(
        covered, app.log.tlog_proofs([r["index"] for r in covered], cp), strict=True
    ):
        r["receipt"] = receipt
    proof: list[bytes] = []
    if 0 < seen < cp.size:
        proof = app.log.consistency_proof(seen, cp.size)
    return {
        "results": results,
        "checkpoint": cp.note,
        "consistency": {
            "from": seen,
            "to": cp.size,
            "proof": [base64.b64encode(h).decode() for h in proof],
        },
    }


QUERY = {
    "site": F.of(ids.SITE_ID, required=True),
    "appliance": F.of(ids.APPLIANCE_ID),
    "after_seq": F("integer", minimum=0),
    "limit": LIMIT,
    "proof_size": F(
        "integer",
        minimum=0,
        description="also return each row's inclusion proof against the stored checkpoint "
        "of this size (one request instead of one /log/proof/inclusion per bundle)",
    ),
}


def query(app: App, req: Request) -> Response:
    q = req.params
    site_for(app, req.principal, q["site"])
    cp = None
    if "proof_size" in q:
        cp = served_checkpoint(app, req.principal, q["proof_size"], q["site"])
        if cp is None:
            raise not_found("checkpoint")
    rows = db_evidence.query(
        app.db, q["site"], q.get("appliance"), q.get("after_seq"), q.get("limit", 100)
    )
    out = []
    pruned = retention.pruned_notes(app.db, rows)
    for r in rows:
        gone = pruned.get(r["log_index"])
        env = None if gone else canonical.loads(app.log.entry(r["log_index"]))
        out.append(
            {
                "bundle_hash": r["bundle_hash"],
                "index": r["log_index"],
                "appliance_id": r["appliance_id"],
                "seq": r["seq"],
                "host_id": r["host_id"],
                "check": r["check_id"],
                "outcome": r["outcome"],
                "order_id": r["order_id"],
                "finished_at": r["finished_at"],
                "envelope": env,
            }
        )
        if gone:
            out[-1]["pruned"] = gone  # never a silent gap: where the body is instead
        if cp is not None:
            idx = r["log_index"]
            out[-1]["proof"] = (
                {
                    "index": idx,
                    "size": cp.size,
                    "hashes": [
                        base64.b64encode(h).decode() for h in app.log.inclusion_proof(idx, cp.size)
                    ],
                }
                if idx < cp.size
                else None  # appended after that checkpoint: not covered by it
            )
    doc: dict[str, Any] = {"evidence": out}
    if cp is not None:
        doc["checkpoint"] = {"size": cp.size, "note": cp.note}
    return json_response(doc)


def get_bundle(app: App, req: Request, bundle_hash: str) -> Response:
    row = db_evidence.by_hash(app.db, bundle_hash)
    if row is None:
        raise not_found("evidence")
    site_for(app, req.principal, row["site_id"])
    gone = retention.pruned_notes(app.db, [row]).get(row["log_index"])
    if gone:
        doc = {"bundle_hash": bundle_hash, "index": row["log_index"], "envelope": None}
        return json_response({**doc, "pruned": gone})
    env = canonical.loads(app.log.entry(row["log_index"]))
    return json_response({"bundle_hash": bundle_hash, "index": row["log_index"], "envelope": env})


ROUTES = [
    Route(
        "POST",
        "/api/v1/evidence",
        ingest,
        "appliance",
        body=POST,
        summary="Appliance: submit a batch of signed evidence envelopes; receipts returned",
        tag="evidence",
    ),
    read(
        "GET",
        "/api/v1/evidence",
        query,
        query=QUERY,
        summary="Evidence envelopes of a site (with bundle hash and log index)",
        tag="evidence",
    ),
    read(
        "GET",
        "/api/v1/evidence/{bundle_hash}",
        get_bundle,
        summary="One envelope by hash",
        tag="evidence",
    ),
]
