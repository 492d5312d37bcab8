"""The `osiris.evidence/1` bundle: what one check or action proves, signed and chained.

A bundle is plain data so that an auditor can re-check it with nothing but the published format
(docs/evidence-format.md). Every bundle an appliance signs carries its per-appliance `seq` and the
hash of the previous bundle, so dropping or reordering signed bundles before upload is visible.
Free text is scrubbed of PHI at creation time (never at verification: the signature covers the
scrubbed bytes). Envelopes are capped at 60 KiB so that each fits a tlog-tiles entry (≤ 65,535 B).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import canonical, phi
from .errors import CanonicalError, SchemaError, SignatureError
from .keys import Signer, Verifier

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

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
_CHECK_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RUNBOOK_RE = re.compile(r"^[A-Z][A-Z0-9-]{2,63}$")
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_KEYID_RE = re.compile(r"^[0-9a-f]{8}$")
_CITATION_RE = re.compile(r"^164\.\d{3}(\([0-9a-zA-Z]+\))*$")
_MEDIA_RE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
_B64_SIG_RE = re.compile(r"^[A-Za-z0-9+/]{86}==$")


def _req_str(b: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    v = b.get(key)
    if not isinstance(v, str) or not v:
        raise SchemaError(f"{key}: must be a non-empty string")
    if pattern is not None and not pattern.match(v):
        raise SchemaError(f"{key}: {v[:80]!r} is not a valid value")
    return v


def _opt_str(b: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> None:
    v = b.get(key)
    if v is None:
        return
    _req_str(b, key, pattern)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_bundle(bundle: Any) -> None:
    """Raise SchemaError unless `bundle` is a well-formed osiris.evidence/1 bundle."""
    if not isinstance(bundle, dict):
        raise SchemaError("bundle: must be an object")
    keys = set(bundle)
    missing = _FIELD_SET - keys
    if missing:
        raise SchemaError(f"bundle: missing fields {sorted(missing)}")
    extra = keys - _FIELD_SET
    if extra:
        raise SchemaError(f"bundle: unknown fields {sorted(extra)}")
    if bundle["schema"] != SCHEMA:
        raise SchemaError(f"schema: expected {SCHEMA!r}")
    _req_str(bundle, "bundle_id", _ID_RE)
    for key in ("site_id", "appliance_id", "host_id"):
        _req_str(bundle, key, _ID_RE)
    seq = bundle["seq"]
    if not _int(seq) or seq < 1 or seq > 2**53 - 1:
        raise SchemaError("seq: must be an integer ≥ 1")
    _req_str(bundle, "prev_hash", _HASH_RE)
    if seq == 1 and bundle["prev_hash"] != GENESIS_HASH:
        raise SchemaError("prev_hash: the first bundle of a chain must link to the genesis hash")
    _req_str(bundle, "check", _CHECK_RE)
    controls = bundle["controls"]
    if not isinstance(controls, list) or not all(
        isinstance(c, str) and _CITATION_RE.match(c) for c in controls
    ):
        raise SchemaError("controls: must be a list of HIPAA citations like '164.312(b)'")
    if bundle["outcome"] not in OUTCOMES:
        raise SchemaError(f"outcome: must be one of {', '.join(OUTCOMES)}")
    if bundle["tier"] not in TIERS:
        raise SchemaError(f"tier: must be one of {', '.join(TIERS)}")
    _opt_str(bundle, "runbook_id", _RUNBOOK_RE)
    _opt_str(bundle, "order_id", _ID_RE)
    action = bundle["action_taken"]
    if action is not None and (not isinstance(action, str) or len(action) > 4096):
        raise SchemaError("action_taken: must be null or a string of at most 4096 characters")
    for key in ("pre_state", "post_state"):
        if bundle[key] is not None and not isinstance(bundle[key], dict):
            raise SchemaError(f"{key}: must be null or an object")
    if not isinstance(bundle["rollback_available"], bool):
        raise SchemaError("rollback_available: must be a boolean")
    started = canonical.parse_time(_req_str(bundle, "started_at"))
    finished = canonical.parse_time(_req_str(bundle, "finished_at"))
    if finished < started:
        raise SchemaError("finished_at: is earlier than started_at")
    _req_str(bundle, "policy_version")
    _opt_str(bundle, "ruleset_hash", _HASH_RE)
    _opt_str(bundle, "nixos_revision")
    _opt_str(bundle, "derivation_digest")
    _req_str(bundle, "agent_version")
    if bundle["deployment_mode"] not in DEPLOYMENT_MODES:
        raise SchemaError("deployment_mode: must be 'direct' or 'reseller'")
    if bundle["deployment_mode"] == "reseller":
        _req_str(bundle, "reseller_id", _ID_RE)
    else:
        _opt_str(bundle, "reseller_id", _ID_RE)
    _validate_clock(bundle["clock"])
    _validate_attachments(bundle["attachments"])


def _validate_clock(clock: Any) -> None:
    if not isinstance(clock, dict) or set(clock) != {"ntp_ok", "offset_ms", "source"}:
        raise SchemaError("clock: must be {ntp_ok, offset_ms, source}")
    if not isinstance(clock["ntp_ok"], bool):
        raise SchemaError("clock.ntp_ok: must be a boolean")
    if clock["offset_ms"] is not None and not _int(clock["offset_ms"]):
        raise SchemaError("clock.offset_ms: must be null or an integer")
    if not isinstance(clock["source"], str):
        raise SchemaError("clock.source: must be a string")


def _validate_attachments(attachments: Any) -> None:
    if not isinstance(attachments, list):
        raise SchemaError("attachments: must be a list")
    for i, a in enumerate(attachments):
        if not isinstance(a, dict) or set(a) != {"name", "sha256", "size", "media_type"}:
            raise SchemaError(f"attachments[{i}]: must be {{name, sha256, size, media_type}}")
        if not isinstance(a["name"], str) or not a["name"] or "/" in a["name"]:
            raise SchemaError(f"attachments[{i}].name: must be a plain file name")
        if not isinstance(a["sha256"], str) or not _HEX64_RE.match(a["sha256"]):
            raise SchemaError(f"attachments[{i}].sha256: must be 64 lowercase hex digits")
        if not _int(a["size"]) or a["size"] < 0:
            raise SchemaError(f"attachments[{i}].size: must be a non-negative integer")
        if not isinstance(a["media_type"], str) or not _MEDIA_RE.match(a["media_type"]):
            raise SchemaError(f"attachments[{i}].media_type: must be a media type")


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
    """Raise SchemaError unless `envelope` has the envelope shape and a valid bundle."""
    if not isinstance(envelope, dict) or set(envelope) != {"bundle", "sig"}:
        raise SchemaError("envelope: must be exactly {bundle, sig}")
    sig = envelope["sig"]
    if not isinstance(sig, dict) or set(sig) != {"alg", "key_id", "value"}:
        raise SchemaError("sig: must be exactly {alg, key_id, value}")
    if sig["alg"] != "ed25519":
        raise SchemaError("sig.alg: only 'ed25519' is supported")
    if not isinstance(sig["key_id"], str) or not _KEYID_RE.match(sig["key_id"]):
        raise SchemaError("sig.key_id: must be 8 lowercase hex digits")
    if not isinstance(sig["value"], str) or not _B64_SIG_RE.match(sig["value"]):
        raise SchemaError("sig.value: must be a base64 Ed25519 signature")
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
