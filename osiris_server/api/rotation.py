"""``POST /api/v1/appliance/key-rotation``: an appliance moves to a new signing key.

The appliance sends an ``osiris.key-rotation/1`` statement (osiris_core.trust.make_rotation)
signed by its *old* key: "from ``effective_seq`` on I sign with ``new_vkey``". Bundles are bound
to keys by ``seq``, the chain's own order, never by time (an appliance's clock is its own claim).

Accepted only if, checked in this order:

1. the body is one well-formed statement (else 400 ``E_ROTATION_SCHEMA``) whose signature
   verifies with the ``old_vkey`` it names (else 400 ``E_ROTATION_SIG`` — e.g. one signed by the
   new key);
2. it names this token's appliance and site (else 403 ``E_ROTATION_IDENTITY``);
3. it is exactly a statement already accepted: 200 with the answer it got then (idempotent);
4. ``old_vkey`` is the appliance's current signing key (else 409 ``E_ROTATION_OLD_KEY``);
5. ``new_vkey`` was never a signing key of this appliance, nor is its cosigning key
   (else 409 ``E_ROTATION_KEY_REUSED``: a retired key must stay retired);
6. ``effective_seq`` is above every seq the server accepted for the appliance and above the
   previous rotation's ``effective_seq`` (and ≥ 2: the enrolment key signs seq 1)
   (else 409 ``E_ROTATION_SEQ``).

Then, in one transaction: the statement is stored (``appliance_key_rotations``), the appliance's
``signing_vkey`` becomes ``new_vkey``, and ``appliance.key_rotate`` is audited. A refused
statement changes nothing. The whole check runs under the appliance's lock (``ApplianceLocks``),
which evidence ingest holds too, so no bundle signed with the old key at a seq the rotation
claims can be accepted beside it — in this process or another worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.errors import KeyFormatError, OsirisError
from osiris_core.keys import Verifier
from osiris_core.trust import (
    AttestationError,
    key_epochs,
    open_rotation,
    original_key,
    validate_rotation_doc,
)
from osiris_server.api.common import audit
from osiris_server.db import appliances as db_appliances
from osiris_server.db import evidence as db_evidence
from osiris_server.db import rotations as db_rotations
from osiris_server.db.util import now
from osiris_server.http import F, HttpError, Request, Response, Route, json_response

if TYPE_CHECKING:
    from osiris_server.app import App

BODY = {
    "rotation": F(
        "object",
        required=True,
        description="an osiris.key-rotation/1 statement {rotation: {schema, appliance_id, "
        "site_id, old_vkey, new_vkey, effective_seq, rotated_at}, sig: {alg, key_id, value}}, "
        "signed by the old key",
    ),
}


def _schema(message: str) -> HttpError:
    return HttpError(400, "E_ROTATION_SCHEMA", message[:300])


def _parse(stmt: Any) -> tuple[dict[str, Any], str]:
    """The verified statement document and the statement's canonical JSON text."""
    if not isinstance(stmt, dict) or set(stmt) != {"rotation", "sig"}:
        raise _schema("a rotation statement is an object with exactly 'rotation' and 'sig'")
    sig = stmt["sig"]
    if (
        not isinstance(sig, dict)
        or set(sig) != {"alg", "key_id", "value"}
        or sig.get("alg") != "ed25519"
        or not all(isinstance(sig.get(k), str) for k in ("key_id", "value"))
    ):
        raise _schema("sig must be {alg: ed25519, key_id, value}")
    try:
        validate_rotation_doc(stmt["rotation"])
        text = canonical.dumps(stmt).decode("utf-8")
    except (AttestationError, OsirisError, UnicodeDecodeError) as exc:
        raise _schema(str(exc)) from None
    try:
        doc = open_rotation(stmt)
    except AttestationError as exc:
        raise HttpError(400, "E_ROTATION_SIG", str(exc)[:300]) from None
    return doc, text


def _answer(appliance_id: str, new_vkey: str, effective_seq: int) -> Response:
    return json_response(
        {"appliance_id": appliance_id, "signing_vkey": new_vkey, "effective_seq": effective_seq}
    )


def _public(vkey: str) -> bytes | None:
    try:
        return Verifier.from_vkey(vkey).public
    except KeyFormatError:
        return None


def rotate(app: App, req: Request) -> Response:
    p = req.principal
    stmt = req.data["rotation"]
    doc, text = _parse(stmt)
    if doc["appliance_id"] != p.id or doc["site_id"] != p.site_id:
        raise HttpError(403, "E_ROTATION_IDENTITY", "the statement names another appliance or site")
    seq = doc["effective_seq"]
    with app.appliance_locks.hold(p.id), app.db.write() as w:
        row = db_appliances.active_keys(w, p.id)
        if row is None:  # revoked between authentication and here
            raise HttpError(401, "E_AUTH", "missing or invalid credentials")
        history = db_rotations.for_appliance(w, p.id)
        for h in history:
            if h["statement"] == text:  # resent: the same answer, nothing written
                return _answer(p.id, h["new_vkey"], h["effective_seq"])
        if doc["old_vkey"] != row["signing_vkey"]:
            raise HttpError(
                409,
                "E_ROTATION_OLD_KEY",
                "old_vkey is not this appliance's current signing key",
            )
        statements = [canonical.loads(h["statement"]) for h in history]
        used = {original_key(row["signing_vkey"], statements), *(h["new_vkey"] for h in history)}
        new_pub = _public(doc["new_vkey"])
        if new_pub in {_public(v) for v in used} | {_public(row["cosign_vkey"])}:
            raise HttpError(
                409,
                "E_ROTATION_KEY_REUSED",
                "new_vkey was already a key of this appliance; rotate to a fresh key",
            )
        accepted = db_evidence.max_seq(w, p.id)
        floor = max(accepted, history[-1]["effective_seq"] if history else 1)
        if seq <= floor:
            raise HttpError(
                409,
                "E_ROTATION_SEQ",
                f"effective_seq {seq} must be above {floor} (the highest seq already accepted "
                "for this appliance, or the previous rotation's effective_seq)",
            )
        try:  # the stored history plus this statement must read as one key history
            key_epochs(original_key(doc["old_vkey"], statements), [*statements, stmt], p.id)
        except AttestationError as exc:
            raise HttpError(409, "E_ROTATION_SEQ", str(exc)[:300]) from None
        db_rotations.insert(
            w,
            {
                "appliance_id": p.id,
                "effective_seq": seq,
                "old_vkey": doc["old_vkey"],
                "new_vkey": doc["new_vkey"],
                "statement": text,
                "received_at": now(),
            },
        )
        changed = db_appliances.swap_signing_key(w, p.id, doc["old_vkey"], doc["new_vkey"])
        if changed != 1:  # pragma: no cover - guarded by the lock and the check above
            raise HttpError(409, "E_ROTATION_OLD_KEY", "the signing key changed meanwhile")
        audit(
            w,
            req,
            "appliance.key_rotate",
            p.id,
            p.site_id,
            {
                "effective_seq": seq,
                "old_key_id": stmt["sig"]["key_id"],
                "new_vkey": doc["new_vkey"],
                "highest_seq_accepted": accepted,
            },
        )
    return _answer(p.id, doc["new_vkey"], seq)


ROUTES = [
    Route(
        "POST",
        "/api/v1/appliance/key-rotation",
        rotate,
        "appliance",
        body=BODY,
        summary="Appliance: switch to a new signing key from effective_seq on (statement signed "
        "by the old key); idempotent",
        tag="appliance",
    ),
]
