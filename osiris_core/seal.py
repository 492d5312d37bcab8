"""Credentials sealed to one appliance (DESIGN §3.7): NaCl sealed boxes to its box key.

At enrolment the appliance makes an X25519 key pair and registers the public half; at each
check-in the server seals every credential's secret fields (password, private key) to that
key. TLS already protects the wire, so why seal: so a credential is readable by the one box it
is for and by nobody who sits in between — a TLS-terminating proxy, a log of response bodies,
a debugging operator — and so that a token stolen without the box key yields nothing.

``seal`` uses an ephemeral key per message (libsodium ``crypto_box_seal``): the sender keeps no
secret and two seals of the same secret differ.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from .errors import OsirisError

SECRET_FIELDS = ("password", "private_key", "become_password")


class SealError(OsirisError):
    """A sealed secret cannot be opened with this box key (or is malformed)."""

    code = "E_SEAL"


def public_b64(key: PrivateKey) -> str:
    return base64.b64encode(bytes(key.public_key)).decode("ascii")


def seal(box_pub_b64: str, secret: dict[str, Any]) -> str:
    """The secret fields of one credential, sealed to the appliance's box key (base64)."""
    try:
        pub = PublicKey(base64.b64decode(box_pub_b64, validate=True))
    except (binascii.Error, ValueError, TypeError) as e:
        raise SealError(f"box key is not a base64 X25519 public key: {e}") from None
    data = json.dumps(
        {k: secret[k] for k in SECRET_FIELDS if secret.get(k) is not None}, sort_keys=True
    ).encode("utf-8")
    return base64.b64encode(SealedBox(pub).encrypt(data)).decode("ascii")


def open_sealed(key: PrivateKey, sealed_b64: str) -> dict[str, str]:
    """Open one sealed secret; only the known secret fields, each a string, come back."""
    try:
        data = SealedBox(key).decrypt(base64.b64decode(sealed_b64, validate=True))
        obj = json.loads(data.decode("utf-8"))
    except (binascii.Error, ValueError, CryptoError, UnicodeDecodeError) as e:
        raise SealError(f"cannot open a sealed credential with this box key: {e}") from None
    if not isinstance(obj, dict) or set(obj) - set(SECRET_FIELDS):
        raise SealError("a sealed credential holds unexpected fields")
    if not all(isinstance(v, str) for v in obj.values()):
        raise SealError("a sealed credential field is not text")
    return obj


__all__ = ["SECRET_FIELDS", "SealError", "open_sealed", "public_b64", "seal"]
