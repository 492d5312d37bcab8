"""Signed JSON documents: ``{<key>: doc, "sig": {"alg": "ed25519", "key_id", "value"}}``.

The clinic's attestation and the appliance's key rotation statements share this envelope: the
signature is over the canonical JSON of ``doc`` (``osiris_core.canonical``), so any
implementation that canonicalises the same way can check it. The field readers raise
:class:`AttestationError` naming the document and the field, never a bare ``KeyError``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from . import canonical, ids
from .errors import KeyFormatError, OsirisError
from .keys import Signer, Verifier

# The id fields these documents carry, each of its kind in the one grammar (osiris_core.ids).
ID_KINDS = {"appliance_id": ids.APPLIANCE_ID, "site_id": ids.SITE_ID}


class AttestationError(OsirisError):
    """An attestation or rotation statement is malformed or its signature does not verify."""

    code = "E_ATTESTATION"


def sign_doc(key: str, doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    data = canonical.dumps(doc)
    sig = base64.b64encode(signer.sign(data)).decode("ascii")
    return {key: doc, "sig": {"alg": "ed25519", "key_id": signer.key_id_hex, "value": sig}}


def open_doc(key: str, env: Any, verifier: Verifier, what: str) -> dict[str, Any]:
    if not isinstance(env, dict) or set(env) != {key, "sig"}:
        raise AttestationError(f"{what}: must be an object with exactly {key!r} and 'sig'")
    doc, sig = env[key], env["sig"]
    if not isinstance(doc, dict):
        raise AttestationError(f"{what}: {key!r} must be an object")
    if (
        not isinstance(sig, dict)
        or sig.get("alg") != "ed25519"
        or not isinstance(sig.get("key_id"), str)
        or not isinstance(sig.get("value"), str)
    ):
        raise AttestationError(f"{what}: sig must be {{alg: ed25519, key_id, value}}")
    if sig["key_id"] != verifier.key_id_hex:
        raise AttestationError(f"{what}: signed by key {sig['key_id']}, not {verifier.key_id_hex}")
    try:
        raw = base64.b64decode(sig["value"], validate=True)
        data = canonical.dumps(doc)
    except (binascii.Error, ValueError, OsirisError) as e:
        raise AttestationError(f"{what}: unreadable: {e}") from None
    if not verifier.verify(data, raw):
        raise AttestationError(f"{what}: signature does not verify")
    return doc


def vkey_field(doc: Mapping[str, Any], field_name: str, what: str, key_type: int) -> Verifier:
    v = doc.get(field_name)
    if not isinstance(v, str):
        raise AttestationError(f"{what}: {field_name} missing")
    try:
        ver = Verifier.from_vkey(v)
    except KeyFormatError as e:
        raise AttestationError(f"{what}: {field_name}: {e}") from None
    if ver.key_type != key_type:
        raise AttestationError(f"{what}: {field_name} has key type 0x{ver.key_type:02x}")
    return ver


def id_field(doc: Mapping[str, Any], name: str, what: str) -> str:
    v = doc.get(name)
    if not ID_KINDS[name].match(v):
        raise AttestationError(f"{what}: {name} missing or malformed")
    return v


__all__ = ["ID_KINDS", "AttestationError", "id_field", "open_doc", "sign_doc", "vkey_field"]
