"""Credentials encrypted at rest (DESIGN §6 "Secrets").

The server stores site credentials (domain admin passwords, SSH keys) that it hands to the
appliances of the same site. A stolen database file must not reveal them, so every credential
column holds a *token* ``v1:<key_id>:<base64>`` produced here, and the keys live in a separate
keyring file (mode 0600) that is not in the database or its backups.

Design choices, and why:

* **XSalsa20-Poly1305 (PyNaCl ``SecretBox``)** with a random 24-byte nonce per encryption: no
  nonce bookkeeping, authenticated, already a dependency.
* **Context binding by key derivation.** ``SecretBox`` has no associated data, so each
  encryption uses a per-context subkey ``BLAKE2b(key=master, data=context, person="osiris-vault")``.
  A ciphertext copied into another row (another site's credential) is decrypted under a different
  subkey and fails authentication — the attacker who can write the database cannot move a secret
  from site A to site B. Derivation costs one BLAKE2b call, and leaves the plaintext format alone.
* **Key rotation without downtime.** ``rotate()`` adds a new primary; old keys stay for decrypt
  until ``rewrap()`` has moved every token and ``retire()`` drops the old key. Tokens name their
  key id, so ``needs_rewrap`` is a string check.
* **The keyring is written atomically** (tmp file, fsync, rename, fsync of the directory) so a
  crash never leaves a half-written keyring — losing it would lose every credential.
* **Nothing secret in messages.** ``repr``/``str`` show only key ids, and every failure is one
  ``VaultError`` with a generic message: neither key material nor plaintext can leak into logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import stat
import threading
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils

from osiris_core.errors import ExitCode, KeyFormatError, KeyPermissionError, OsirisError
from osiris_core.files import write_private

TOKEN_VERSION = "v1"
_PERSON = b"osiris-vault"  # BLAKE2b personalisation: domain-separates vault subkeys
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
MAX_CACHED_SUBKEYS = 100_000


class VaultError(OsirisError):
    """A token that cannot be decrypted or a keyring operation that is not allowed."""

    code = "E_VAULT"
    exit_code = ExitCode.USAGE  # a local file this binary cannot use (exit 2)


def _b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _check_perms(path: Path) -> None:
    """Refuse a keyring that group or others could read or change (like ssh does)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyPermissionError(
            f"vault keyring {path} has mode {mode:04o}; it must be readable by its owner only "
            f"(chmod 600 {path})"
        )


class Vault:
    """A keyring of symmetric keys; encrypts credentials bound to the row they belong to."""

    def __init__(self, path: Path, primary: str, keys: dict[str, bytes]) -> None:
        self._path = Path(path)
        self._primary = primary
        self._keys = dict(keys)
        self._lock = threading.Lock()
        # derived per-context subkeys (never plaintext): the master keys are in memory anyway,
        # and deriving costs a BLAKE2b call per decrypt on the check-in hot path
        self._boxes: dict[tuple[str, str], nacl.secret.SecretBox] = {}

    # ----------------------------------------------------------------- files
    @classmethod
    def create(cls, path: Path) -> Vault:
        """Make a new keyring with one key; refuses to overwrite an existing file."""
        path = Path(path)
        if path.exists():
            raise VaultError(f"vault keyring {path} already exists; refusing to overwrite it")
        kid = secrets.token_hex(4)
        vault = cls(path, kid, {kid: nacl.utils.random(KEY_BYTES)})
        vault._save()
        return vault

    @classmethod
    def open(cls, path: Path) -> Vault:
        """Load a keyring; refuses one readable by group/others (``KeyPermissionError``)."""
        path = Path(path)
        try:
            _check_perms(path)
            raw = path.read_bytes()
        except FileNotFoundError:
            raise VaultError(f"vault keyring {path} does not exist") from None
        try:
            doc = json.loads(raw)
            primary = doc["primary"]
            keys = {str(k): _b64d(v) for k, v in doc["keys"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise KeyFormatError(f"vault keyring {path} is not a valid keyring") from None
        if not isinstance(primary, str) or primary not in keys:
            raise KeyFormatError(f"vault keyring {path} names a primary key it does not hold")
        if any(len(k) != KEY_BYTES for k in keys.values()):
            raise KeyFormatError(f"vault keyring {path} holds a key of the wrong length")
        return cls(path, primary, keys)

    def _save(self) -> None:
        doc = {
            "primary": self._primary,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self._keys.items()},
        }
        write_private(self._path, json.dumps(doc, sort_keys=True).encode("utf-8") + b"\n")

    # ----------------------------------------------------------------- info
    @property
    def primary(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def __repr__(self) -> str:
        return f"Vault(path={str(self._path)!r}, primary={self._primary!r}, keys={self.key_ids})"

    __str__ = __repr__

    # ----------------------------------------------------------------- crypto
    def _box(self, key_id: str, context: str) -> nacl.secret.SecretBox:
        """The SecretBox for one (key, context); caller holds ``_lock``."""
        box = self._boxes.get((key_id, context))
        if box is not None:
            return box
        master = self._keys[key_id]
        sub = hashlib.blake2b(
            context.encode("utf-8"), key=master, digest_size=KEY_BYTES, person=_PERSON
        ).digest()
        box = nacl.secret.SecretBox(sub)
        if len(self._boxes) >= MAX_CACHED_SUBKEYS:
            self._boxes.clear()
        self._boxes[(key_id, context)] = box
        return box

    def encrypt(self, plaintext: bytes, context: str) -> str:
        """Encrypt ``plaintext`` for one row, e.g. context ``"site:<id>/cred:<id>"``."""
        if not isinstance(plaintext, bytes | bytearray):
            raise VaultError("vault encrypt needs bytes")
        if not isinstance(context, str) or not context:
            raise VaultError("vault encrypt needs a non-empty context")
        with self._lock:
            kid = self._primary
            box = self._box(kid, context)
        ct = box.encrypt(bytes(plaintext))  # nonce || ciphertext || tag
        return f"{TOKEN_VERSION}:{kid}:{base64.b64encode(bytes(ct)).decode('ascii')}"

    def _split(self, token: str) -> tuple[str, bytes]:
        if not isinstance(token, str):
            raise VaultError("vault token is not a string")
        parts = token.split(":")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION:
            raise VaultError("vault token is malformed")
        try:
            blob = _b64d(parts[2])
        except (ValueError, binascii.Error):
            raise VaultError("vault token is malformed") from None
        return parts[1], blob

    def decrypt(self, token: str, context: str) -> bytes:
        """Decrypt a token made for ``context``; any failure is a ``VaultError``."""
        kid, blob = self._split(token)
        with self._lock:
            if kid not in self._keys:
                raise VaultError(f"vault token uses unknown key {kid!r}")
            box = self._box(kid, context)
        try:
            return box.decrypt(blob)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise VaultError(
                "vault token does not decrypt (tampered, wrong context or wrong key)"
            ) from None

    # ----------------------------------------------------------------- keys
    def rotate(self) -> str:
        """Add a new primary key and persist it; older keys remain for decrypt."""
        with self._lock:
            kid = secrets.token_hex(4)
            while kid in self._keys:
                kid = secrets.token_hex(4)
            self._keys[kid] = nacl.utils.random(KEY_BYTES)
            old = self._primary
            self._primary = kid
            try:
                self._save()
            except BaseException:
                self._primary = old
                del self._keys[kid]
                raise
            return kid

    def needs_rewrap(self, token: str) -> bool:
        """True when ``token`` was made with a key other than the primary."""
        kid, _ = self._split(token)
        return kid != self._primary

    def rewrap(self, token: str, context: str) -> str:
        """Re-encrypt ``token`` under the primary key (a no-op copy if already there)."""
        if not self.needs_rewrap(token):
            self.decrypt(token, context)  # still prove it is valid for this context
            return token
        return self.encrypt(self.decrypt(token, context), context)

    def retire(self, key_id: str) -> None:
        """Drop an old key once nothing uses it; the primary cannot be retired."""
        with self._lock:
            if key_id == self._primary:
                raise VaultError("cannot retire the primary vault key; rotate first")
            if key_id not in self._keys:
                raise VaultError(f"vault has no key {key_id!r}")
            removed = self._keys.pop(key_id)
            self._boxes = {k: v for k, v in self._boxes.items() if k[0] != key_id}
            try:
                self._save()
            except BaseException:
                self._keys[key_id] = removed
                raise
