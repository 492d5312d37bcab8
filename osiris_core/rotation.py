"""Key rotation statements ``osiris.key-rotation/1`` and the key history they make.

A statement is signed by the appliance's *old* key and says: from ``effective_seq`` on, the
appliance signs with ``new_vkey``. Bundles are bound to keys by ``seq`` (the chain's own order),
not by time, because an appliance's clock is its own claim. :func:`key_epochs` follows a history
from the enrolment key and refuses any break (a statement not signed by the key before it, or a
seq that does not move forward); the verifier, the server and the attestation all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import canonical
from .errors import KeyFormatError, OsirisError
from .keys import KEY_TYPE_ED25519, Signer, Verifier, appliance_key_name
from .signed_doc import AttestationError, id_field, open_doc, sign_doc, vkey_field

ROTATION_SCHEMA = "osiris.key-rotation/1"
MAX_ROTATIONS = 1000


def make_rotation(
    old: Signer, new: Signer, *, appliance_id: str, site_id: str, effective_seq: int, at: str
) -> dict[str, Any]:
    """A rotation statement: signed by ``old``, naming ``new`` from ``effective_seq`` on."""
    doc = {
        "schema": ROTATION_SCHEMA,
        "appliance_id": appliance_id,
        "site_id": site_id,
        "old_vkey": old.vkey,
        "new_vkey": new.vkey,
        "effective_seq": effective_seq,
        "rotated_at": at,
    }
    validate_rotation_doc(doc)
    return sign_doc("rotation", doc, old)


def validate_rotation_doc(doc: Any, what: str = "rotation") -> tuple[Verifier, Verifier]:
    if not isinstance(doc, dict) or doc.get("schema") != ROTATION_SCHEMA:
        raise AttestationError(f"{what}: not an {ROTATION_SCHEMA} document")
    extra = set(doc) - {
        "schema",
        "appliance_id",
        "site_id",
        "old_vkey",
        "new_vkey",
        "effective_seq",
        "rotated_at",
    }
    if extra:
        raise AttestationError(f"{what}: unknown fields {sorted(extra)}")
    app = id_field(doc, "appliance_id", what)
    id_field(doc, "site_id", what)
    old = vkey_field(doc, "old_vkey", what, KEY_TYPE_ED25519)
    new = vkey_field(doc, "new_vkey", what, KEY_TYPE_ED25519)
    name = appliance_key_name(app)
    if old.name != name or new.name != name:
        raise AttestationError(f"{what}: both keys must be named {name}")
    if old.public == new.public:
        raise AttestationError(f"{what}: the new key is the old key")
    seq = doc.get("effective_seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise AttestationError(f"{what}: effective_seq must be a positive integer")
    try:
        canonical.parse_time(doc.get("rotated_at"))
    except (OsirisError, TypeError, ValueError):
        raise AttestationError(f"{what}: rotated_at is not a canonical time") from None
    return old, new


def open_rotation(env: Any, what: str = "rotation") -> dict[str, Any]:
    """Check a rotation statement's shape and its signature by the *old* key it names."""
    doc = env.get("rotation") if isinstance(env, dict) else None
    old, _new = validate_rotation_doc(doc, what)
    return open_doc("rotation", env, old, what)


@dataclass(frozen=True)
class KeyEpoch:
    """One signing key of an appliance and the seqs it may sign: ``[first_seq, last_seq]``."""

    verifier: Verifier
    first_seq: int
    last_seq: int | None  # None: still current


def key_epochs(original_vkey: str, rotations: Iterable[Any], what: str) -> list[KeyEpoch]:
    """Follow a key history from the enrolment key; raises AttestationError on any break.

    Each statement must be signed by the key before it, effective seqs must strictly grow.
    """
    try:
        current = Verifier.from_vkey(original_vkey)
    except KeyFormatError as e:
        raise AttestationError(f"{what}: {e}") from None
    epochs: list[KeyEpoch] = []
    first = 1
    for i, env in enumerate(rotations):
        if i >= MAX_ROTATIONS:
            raise AttestationError(f"{what}: more than {MAX_ROTATIONS} rotations")
        doc = open_rotation(env, f"{what}: rotation {i + 1}")
        if doc["old_vkey"] != current.vkey:
            raise AttestationError(
                f"{what}: rotation {i + 1} is signed by a key that was not current"
            )
        if doc["effective_seq"] <= first:
            raise AttestationError(f"{what}: rotation {i + 1} does not move the chain forward")
        epochs.append(KeyEpoch(current, first, doc["effective_seq"] - 1))
        current = Verifier.from_vkey(doc["new_vkey"])
        first = doc["effective_seq"]
    epochs.append(KeyEpoch(current, first, None))
    return epochs


def original_key(current_vkey: str, rotations: list[Any]) -> str:
    """The enrolment key of a history whose newest key is ``current_vkey``."""
    if not rotations:
        return current_vkey
    doc = rotations[0].get("rotation") if isinstance(rotations[0], dict) else None
    if not isinstance(doc, dict) or not isinstance(doc.get("old_vkey"), str):
        raise AttestationError("rotation 1: old_vkey missing")
    return doc["old_vkey"]


__all__ = [
    "MAX_ROTATIONS",
    "ROTATION_SCHEMA",
    "KeyEpoch",
    "key_epochs",
    "make_rotation",
    "open_rotation",
    "original_key",
    "validate_rotation_doc",
]
