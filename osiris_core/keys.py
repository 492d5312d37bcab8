"""Ed25519 keys in the C2SP signed-note text formats, and private key files on disk.

Keys travel as Go ``sumdb/note`` strings so that any signed-note tool can check our notes:

- vkey ``<name>+<hex8 key id>+<base64(type || public32)>``
- skey ``PRIVATE+KEY+<name>+<hex8 key id>+<base64(type || seed32)>``

with key id = SHA-256(name ‖ 0x0A ‖ type ‖ public)[:4]. Type 0x01 signs notes (checkpoints,
evidence); type 0x04 makes tlog-cosignature/v1 cosignatures. The key id commits to the name
and type, so a key cannot be reused under another name or purpose without the id changing.

Private key files are mode 0600 and written atomically: a crash never leaves a half-written key,
and a file other users could read or change is refused rather than trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from osiris_core.errors import KeyFormatError
from osiris_core.files import read_private_file, write_private

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_COSIGNATURE = 0x04
ED25519_TYPES = (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE)

_HEX = frozenset("0123456789abcdefABCDEF")


def validate_name(name: str) -> str:
    """Signed-note key names: non-empty, valid Unicode, no whitespace, no ``+``."""
    if not isinstance(name, str) or not name:
        raise KeyFormatError("key name must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name):
        raise KeyFormatError(f"key name {name!r} must not contain '+' or whitespace")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise KeyFormatError(f"key name {name!r} must not contain control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise KeyFormatError("key name is not valid Unicode") from None
    return name


def key_id(name: str, public: bytes, key_type: int = KEY_TYPE_ED25519) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ type ‖ public)[:4], the signed-note key hash."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public).digest()[:4]


def _b64decode(s: str) -> bytes:
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyFormatError("key material is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise KeyFormatError("key material is not canonical base64")
    return raw


def _parse_parts(name: str, hex_id: str, b64: str) -> tuple[str, int, bytes]:
    """Check name, id and material of a vkey/skey; return (name, type, 32-byte key)."""
    validate_name(name)
    if len(hex_id) != 8 or not set(hex_id) <= _HEX:
        raise KeyFormatError("key id must be 8 hex digits")
    raw = _b64decode(b64)
    if len(raw) != 33:
        raise KeyFormatError(f"key material must be 33 bytes, got {len(raw)}")
    key_type = raw[0]
    if key_type not in ED25519_TYPES:
        raise KeyFormatError(f"unsupported key type 0x{key_type:02x} (want 0x01 or 0x04)")
    return name, key_type, raw[1:]


class Verifier:
    """An Ed25519 public key with its note name; ``verify`` answers yes/no and never raises."""

    __slots__ = ("name", "public", "key_type", "key_id", "_vk")

    def __init__(self, name: str, public: bytes, key_type: int = KEY_TYPE_ED25519) -> None:
        validate_name(name)
        if key_type not in ED25519_TYPES:
            raise KeyFormatError(f"unsupported key type 0x{key_type:02x}")
        if not isinstance(public, bytes) or len(public) != 32:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        try:
            self._vk = VerifyKey(public)
        except (CryptoError, ValueError, TypeError):
            raise KeyFormatError("not an Ed25519 public key") from None
        self.name = name
        self.public = public
        self.key_type = key_type
        self.key_id = key_id(name, public, key_type)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex8>+<base64(type||pub)>``; the key id must match the key."""
        if not isinstance(vkey, str):
            raise KeyFormatError("vkey must be a string")
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("vkey must look like <name>+<hex8>+<base64>")
        name, key_type, public = _parse_parts(*parts)
        v = cls(name, public, key_type)
        if v.key_id != bytes.fromhex(parts[1]):
            raise KeyFormatError(f"vkey id {parts[1]} does not match key {v.key_id_hex}")
        return v

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    @property
    def vkey(self) -> str:
        b64 = base64.b64encode(bytes([self.key_type]) + self.public).decode("ascii")
        return f"{self.name}+{self.key_id_hex}+{b64}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """True iff ``sig`` is a valid Ed25519 signature of ``msg`` by this key."""
        if not isinstance(sig, bytes | bytearray) or len(sig) != 64:
            return False
        try:
            self._vk.verify(bytes(msg), bytes(sig))
        except (BadSignatureError, CryptoError, ValueError, TypeError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and (self.name, self.key_type, self.public) == (
            other.name,
            other.key_type,
            other.public,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.key_type, self.public))

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"


class Signer:
    """An Ed25519 signing key with its note name. ``repr`` never shows the seed."""

    __slots__ = ("name", "key_type", "public", "key_id", "_sk")

    def __init__(self, name: str, seed: bytes, key_type: int = KEY_TYPE_ED25519) -> None:
        validate_name(name)
        if key_type not in ED25519_TYPES:
            raise KeyFormatError(f"unsupported key type 0x{key_type:02x}")
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        self._sk = SigningKey(seed)
        self.name = name
        self.key_type = key_type
        self.public = bytes(self._sk.verify_key)
        self.key_id = key_id(name, self.public, key_type)

    @classmethod
    def generate(cls, name: str, key_type: int = KEY_TYPE_ED25519) -> Signer:
        """A fresh key from the OS CSPRNG."""
        return cls(name, os.urandom(32), key_type)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex8>+<base64(type||seed)>``; the id must match."""
        if not isinstance(skey, str):
            raise KeyFormatError("skey must be a string")
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise KeyFormatError("skey must look like PRIVATE+KEY+<name>+<hex8>+<base64>")
        name, key_type, seed = _parse_parts(*parts[2:])
        s = cls(name, seed, key_type)
        if s.key_id != bytes.fromhex(parts[3]):
            raise KeyFormatError(f"skey id {parts[3]} does not match key {s.key_id_hex}")
        return s

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    @property
    def vkey(self) -> str:
        return self.verifier().vkey

    @property
    def skey(self) -> str:
        b64 = base64.b64encode(bytes([self.key_type]) + bytes(self._sk)).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id_hex}+{b64}"

    def verifier(self) -> Verifier:
        """The matching public ``Verifier``."""
        return Verifier(self.name, self.public, self.key_type)

    def sign(self, msg: bytes) -> bytes:
        """64-byte Ed25519 signature (RFC 8032, deterministic)."""
        return self._sk.sign(bytes(msg)).signature

    def __repr__(self) -> str:
        return f"Signer({self.vkey!r})"


def public_fingerprint(public: bytes) -> str:
    """What the box's setup screen shows and the operator's `osiris appliance show` prints, to
    compare by eye: SHA-256 of the raw public key, 16 groups of 4 hex digits. It does not change
    when the key is renamed at the claim (the vkey's key id does)."""
    h = hashlib.sha256(public).hexdigest()
    return "-".join(h[i : i + 4] for i in range(0, 64, 4))


def vkey_fingerprint(vkey: str | None) -> str | None:
    """:func:`public_fingerprint` of a vkey's public key; None for none or an unreadable one."""
    if not vkey:
        return None
    try:
        return public_fingerprint(Verifier.from_vkey(vkey).public)
    except KeyFormatError:
        return None


def appliance_key_name(appliance_id: str) -> str:
    """``osiris/appliance/<id>``: one name space per appliance in notes and key ids."""
    if not isinstance(appliance_id, str) or not appliance_id:
        raise KeyFormatError("appliance id must be a non-empty string")
    return validate_name(f"osiris/appliance/{appliance_id}")


def write_private_key(path: str | os.PathLike[str], signer: Signer) -> None:
    """Write ``signer.skey + "\\n"`` to ``path`` with mode 0600, atomically
    (:func:`osiris_core.files.write_private`: a crash leaves the old key or the new one, never
    a torn file, and the key is never briefly readable by others)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(p, (signer.skey + "\n").encode("utf-8"))


def load_private_key(path: str | os.PathLike[str]) -> Signer:
    """Read an skey file, refusing one that group or other users could read, write or run."""
    p = Path(path)
    data = read_private_file(p, "private key")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(f"key file {p} is not UTF-8 text") from None
    try:
        return Signer.from_skey(text.strip())
    except KeyFormatError as e:
        raise KeyFormatError(f"key file {p} does not hold an skey: {e}") from None
