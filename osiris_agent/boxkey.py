"""The appliance's box key: the X25519 key its credentials are sealed to (DESIGN §3.7).

Made at enrolment beside the signing keys (``<state_dir>/box.key``, 0600, base64 of the raw
32-byte private key); its public half is registered with the claim. Refused, like the other
key files, when group or other users could read or change it.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from nacl.public import PrivateKey

from osiris_core.errors import KeyFormatError
from osiris_core.files import read_private_file, write_private

NAME = "box.key"


def path_in(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / NAME


def load(path: str | os.PathLike[str]) -> PrivateKey:
    p = Path(path)
    data = read_private_file(p, "box key", max_bytes=256)
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"box key {p} is not base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"box key {p} is not 32 bytes")
    return PrivateKey(raw)


def load_or_create(path: str | os.PathLike[str]) -> PrivateKey:
    """The existing key (an interrupted enrolment re-uses it) or a new one, written 0600."""
    p = Path(path)
    if p.exists():
        return load(p)
    key = PrivateKey.generate()
    write_private(p, base64.b64encode(bytes(key)) + b"\n")
    return key
