"""The `osiris.evidence/1` bundle: what one check or action proves, signed and chained.

A bundle is plain data so that an auditor can re-check it with nothing but the published format
(docs/evidence-format.md). Every bundle an appliance signs carries its per-appliance `seq` and the
hash of the previous bundle, so dropping or reordering signed bundles before upload is visible.
Free text is scrubbed of PHI at creation time (never at verification: the signature covers the
scrubbed bytes). Envelopes are capped at 60 KiB so that each fits a tlog-tiles entry (≤ 65,535 B).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import canonical, ids, phi
from .errors import CanonicalError, SchemaError, SignatureError
from .keys import Signer, Verifier
from .schema import F, validate

SCHEMA = "osiris.evidence/1"
OUTCOMES = (
    "compliant",
    "healed",
    "failed",
    "reverted",
    "deferred",
    "alert",
    "escalated",
    "rejected",
    "expired",
)
# monitor: a check ran, nothing done; L1/L2/L3: healing tiers; order: an operator order.
TIERS = ("monitor", "L1", "L2", "L3", "order")
DEPLOYMENT_MODES = ("direct", "reseller")
GENESIS_HASH = "sha256:" + "0" * 64
MAX_ENVELOPE_BYTES = 60 * 1024

FIELDS = (
    "schema",
    "bundle_id",
    "site_id",
    "appliance_id",
    "host_id",
    "seq",
    "prev_hash",
    "check",
    "controls",
    "outcome",
    "tier",
    "runbook_id",
    "order_id",
    "action_taken",
    "pre_state",
    "post_state",
    "rollback_available",
    "started_at",
    "finished_at",
    "policy_version",
    "ruleset_hash",
    "nixos_revision",
    "derivation_digest",
    "agent_version",
    "deployment_mode",
    "reseller_id",
    "clock",
    "attachments",
)
_FIELD_SET = frozenset(FIELDS)

_MEDIA_TYPE = r"[a-z]+/[a-z0-9.+-]+"
_B64_SIG = r"[A-Za-z0-9+/]{86}=="


def _text(**kw: Any) -> F:
    """A required non-empty string of any length."""
    return F("string", required=True, min_len=1, max_len=None, **kw)


CLOCK: dict[str, F] = {
    "ntp_ok": F("boolean", required=True),
    "offset_ms": F("integer", required=True, nullable=True),
    "source": F("string", required=True, max_len=None),
}
ATTACHMENT: dict[str, F] = {
    "name": _text(description="a plain file name (no /)"),
    "sha256": F.of(ids.HEX64, required=True),
    "size": F("integer", required=True, minimum=0),
    "media_type": F("string", required=True, max_len=None, pattern=_MEDIA_TYPE),
}
# Every field is present in every bundle (DESIGN §3.2); "nullable" ones may be null.
BUNDLE: dict[str, F] = {
    "schema": F("string", required=True, enum=(SCHEMA,)),
    "bundle_id": F.of(ids.BUNDLE_ID, required=True),
    "site_id": F.of(ids.SITE_ID, required=True),
    "appliance_id": F.of(ids.APPLIANCE_ID, required=True),
    "host_id": F.of(ids.HOST_ID, required=True),
    "seq": F("integer", required=True, minimum=1, maximum=2**53 - 1),
    "prev_hash": F.of(ids.HASH, required=True),
    "check": F.of(ids.CHECK_ID, required=True),
    "controls": F("array", required=True, max_items=None, items=F.of(ids.CITATION)),
    "outcome": F("string", required=True, enum=OUTCOMES),
    "tier": F("string", required=True, enum=TIERS),
    "runbook_id": F.of(ids.RUNBOOK_ID, required=True, nullable=True),
    "order_id": F.of(ids.ORDER_REF, required=True, nullable=True),
    "action_taken": F("string", required=True, nullable=True, max_len=4096),
    "pre_state": F("object", required=True, nullable=True),
    "post_state": F("object", required=True, nullable=True),
    "rollback_available": F("boolean", required=True),
    "started_at": _text(),
    "finished_at": _text(),
    "policy_version": _text(),
    "ruleset_hash": F.of(ids.HASH, required=True, nullable=True),
    "nixos_revision": _text(nullable=True),
    "derivation_digest": _text(nullable=True),
    "agent_version": _text(),
    "deployment_mode": F("string", required=True, enum=DEPLOYMENT_MODES),
    "reseller_id": F.of(ids.RESELLER_ID, required=True, nullable=True),
    "clock": F("object", required=True, fields=CLOCK),
    "attachments": F("array", required=True, max_items=None, items=F("object", fields=ATTACHMENT)),
}
SIG: dict[str, F] = {
    "alg": F("string", required=True, enum=("ed25519",)),
    "key_id": F.of(ids.KEY_ID, required=True),
    "value": F("string", required=True, max_len=88, pattern=_B64_SIG),
}
ENVELOPE: dict[str, F] = {
    "bundle": F("object", required=True, description="an osiris.evidence/1 bundle (BUNDLE)"),
    "sig": F("object", required=True, fields=SIG),
}


def validate_bundle(bundle: Any) -> None:
    """Raise SchemaError unless `bundle` is a well-formed osiris.evidence/1 bundle.

    The shape is ``BUNDLE``; the rules beside it are the genesis link, the time order, the
    reseller a reseller deployment must name, and plain attachment names."""
    validate(BUNDLE, bundle, root="bundle")
    bundle_rules(bundle)


def bundle_rules(bundle: Mapping[str, Any]) -> None:
    """The rules of a bundle that already has the ``BUNDLE`` shape (``validate_bundle`` minus
    the shape check): one function, so the verifier's fast path applies exactly these."""
    if bundle["seq"] == 1 and bundle["prev_hash"] != GENESIS_HASH:
        raise SchemaError("prev_hash: the first bundle of a chain must link to the genesis hash")
    started = canonical.parse_time(bundle["started_at"])
    finished = canonical.parse_time(bundle["finished_at"])
    if finished < started:
        raise SchemaError("finished_at: is earlier than started_at")
    if bundle["deployment_mode"] == "reseller" and bundle["reseller_id"] is None:
        raise SchemaError("reseller_id: a reseller deployment must name its reseller")
    for i, a in enumerate(bundle["attachments"]):
        if "/" in a["name"]:
            raise SchemaError(f"attachments[{i}].name: must be a plain file name")


_DEFAULTS: dict[str, Any] = {
    "controls": [],
    "tier": "monitor",
    "runbook_id": None,
    "order_id": None,
    "action_taken": None,
    "pre_state": None,
    "post_state": None,
    "rollback_available": False,
    "policy_version": "1",
    "ruleset_hash": None,
    "nixos_revision": None,
    "derivation_digest": None,
    "deployment_mode": "direct",
    "reseller_id": None,
    "clock": {"ntp_ok": False, "offset_ms": None, "source": "unchecked"},
    "attachments": [],
}


def new_bundle(**fields: Any) -> dict[str, Any]:
    """Build a bundle from fields, fill defaults, scrub free text, and validate it.

    `seq` and `prev_hash` normally come from a Chain; times default to now.
    """
    unknown = set(fields) - _FIELD_SET
    if unknown:
        raise SchemaError(f"bundle: unknown fields {sorted(unknown)}")
    now = canonical.utc_now()
    bundle: dict[str, Any] = {k: v for k, v in _DEFAULTS.items()}
    bundle.update(
        {
            "schema": SCHEMA,
            "bundle_id": str(uuid.uuid4()),
            "started_at": now,
            "finished_at": now,
            "agent_version": "0",
        }
    )
    bundle.update(fields)
    for key in ("action_taken", "pre_state", "post_state"):
        if bundle.get(key) is not None:
            bundle[key] = phi.scrub_obj(bundle[key])
    try:
        canonical.dumps(bundle)
    except CanonicalError as e:
        raise SchemaError(f"bundle: {e}") from e
    validate_bundle(bundle)
    return bundle


def bundle_hash(bundle: Mapping[str, Any]) -> str:
    """`sha256:` + hex SHA-256 of the canonical bundle: what `prev_hash` and receipts name."""
    return canonical.hash_str(canonical.dumps(bundle))


def sign_bundle(bundle: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Wrap a validated bundle in a signed envelope (signature over canonical(bundle))."""
    validate_bundle(bundle)
    sig = signer.sign(canonical.dumps(bundle))
    envelope = {
        "bundle": bundle,
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(sig).decode("ascii"),
        },
    }
    envelope_bytes(envelope)  # enforce the size cap at signing time
    return envelope


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """Canonical envelope bytes (the log leaf data), refusing envelopes over the 60 KiB cap."""
    data = canonical.dumps(envelope)
    if len(data) > MAX_ENVELOPE_BYTES:
        raise SchemaError(
            f"envelope: {len(data)} bytes exceeds the {MAX_ENVELOPE_BYTES}-byte cap; "
            "move large output into an attachment"
        )
    return data


def validate_envelope(envelope: Any) -> None:
    """Raise SchemaError unless `envelope` has the envelope shape (``ENVELOPE``) and a valid
    bundle."""
    validate(ENVELOPE, envelope, root="envelope")
    validate_bundle(envelope["bundle"])


def verify_envelope(
    envelope: Mapping[str, Any], verifiers: Mapping[str, Verifier], *, validate: bool = True
) -> Verifier:
    """Check the envelope's signature with the verifier its key id names; return that verifier.

    `verifiers` maps 8-hex key ids to appliance verifiers. The key must also be named for the
    bundle's appliance, so one appliance's key cannot vouch for another appliance's bundles.
    """
    if validate:
        validate_envelope(envelope)
    sig = envelope["sig"]
    verifier = verifiers.get(sig["key_id"])
    if verifier is None:
        raise SignatureError(f"signed by unknown key {sig['key_id']}")
    bundle = envelope["bundle"]
    expected_name = f"osiris/appliance/{bundle['appliance_id']}"
    if verifier.name != expected_name:
        raise SignatureError(f"key {sig['key_id']} belongs to {verifier.name}, not {expected_name}")
    raw = base64.b64decode(sig["value"])
    if not verifier.verify(canonical.dumps(bundle), raw):
        raise SignatureError("signature does not verify")
    return verifier


@dataclass
class Chain:
    """The head of one appliance's hash chain: the next bundle gets seq+1 and links to `head`."""

    appliance_id: str
    seq: int = 0
    head: str = GENESIS_HASH

    def next(self, **fields: Any) -> dict[str, Any]:
        """Build the next bundle of this chain (does not advance; call `advance` once stored)."""
        fields.setdefault("appliance_id", self.appliance_id)
        if fields["appliance_id"] != self.appliance_id:
            raise SchemaError("appliance_id: does not match this chain")
        return new_bundle(seq=self.seq + 1, prev_hash=self.head, **fields)

    def advance(self, bundle: Mapping[str, Any]) -> str:
        """Move the head to `bundle` (which must be the next link) and return its hash."""
        if bundle["seq"] != self.seq + 1 or bundle["prev_hash"] != self.head:
            raise SchemaError("bundle: is not the next link of this chain")
        h = bundle_hash(bundle)
        self.seq = bundle["seq"]
        self.head = h
        return h
