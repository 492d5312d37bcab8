"""The appliance's signing key across rotations (DESIGN §3.3, ``osiris_core.trust``).

Which key signs the next bundle is decided by ``state.db``, not by whatever file happens to be
at ``agent.key_file``: ``meta.signing_vkey`` names it, and :meth:`Outbox.record` refuses to sign
with any other key *inside its write transaction* (:class:`KeyRotated`). ``meta.key_history``
holds the rotation statements in order (the attestation's ``key_history``).

Files beside ``agent.key_file`` (``appliance.key``):

``appliance.key.new``
    a rotation's new key, written (0600, fsynced) before the server is asked about it;
``appliance.key.rotation``
    the pending rotation statement, so an interrupted ``rotate-key`` can be resumed;
``appliance.key.retired-<n>``
    the key retired by the n-th rotation (0600), kept for the record.

A rotation commits in ``state.db`` first (history + ``signing_vkey``), then the files are
moved (:func:`finish_rotation`, idempotent). Whoever finds a committed rotation whose files were
not moved yet — the agent at start, ``rotate-key``, ``attest`` — reads the new key from
``appliance.key.new`` (:func:`load_signer`), and the agent or ``rotate-key`` finish the move.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from osiris_core.errors import KeyFormatError, OsirisError
from osiris_core.files import write_private
from osiris_core.keys import KEY_TYPE_ED25519, Signer, load_private_key
from osiris_core.trust import fingerprint

HISTORY_KEY = "key_history"
SIGNING_KEY = "signing_vkey"
COSIGN_KEY = "cosign_vkey"


class KeyRotated(OsirisError):
    """The key offered for signing is not the one ``state.db`` says signs the next bundle."""

    code = "E_KEY_ROTATED"


class KeyMismatch(OsirisError):
    """No key file holds the signing key ``state.db`` names: the chain cannot continue."""

    code = "E_KEY_MISMATCH"


def new_key_path(key_file: str | os.PathLike[str]) -> Path:
    return Path(f"{key_file}.new")


def pending_path(key_file: str | os.PathLike[str]) -> Path:
    return Path(f"{key_file}.rotation")


def retired_path(key_file: str | os.PathLike[str], n: int) -> Path:
    return Path(f"{key_file}.retired-{n}")


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_signer(key_file: str | os.PathLike[str], expected_vkey: str | None) -> Signer:
    """The signing key ``state.db`` names (``expected_vkey``; None: whatever ``key_file`` holds).

    Looks at ``key_file`` and then at a committed rotation's ``.new`` file (the moment between
    the commit and the file move). Raises ``KeyFormatError`` for an unreadable key file and
    :class:`KeyMismatch` when neither file holds the expected key."""
    signer = load_private_key(key_file)
    if signer.key_type != KEY_TYPE_ED25519:
        raise KeyFormatError(f"{key_file} is not an Ed25519 signing key")
    if expected_vkey is None or signer.vkey == expected_vkey:
        return signer
    new = new_key_path(key_file)
    if new.exists():
        cand = load_private_key(new)
        if cand.vkey == expected_vkey:
            return cand
    raise KeyMismatch(
        f"{key_file} does not hold the signing key state.db names (fingerprint "
        f"{fingerprint(expected_vkey)}); restore that key file (docs/appliance.md, key rotation)"
    )


def finish_rotation(key_file: str | os.PathLike[str], n: int, new_vkey: str) -> None:
    """Move the files of the n-th, committed rotation into place; safe to repeat or race.

    The old key stays as ``<key_file>.retired-<n>`` (a hard link to the same 0600 inode), then
    ``<key_file>.new`` atomically replaces ``key_file``. A ``.new`` that does not hold
    ``new_vkey`` belongs to a rotation that never committed and is removed."""
    kf = Path(key_file)
    new = new_key_path(kf)
    if new.exists():
        try:
            cand = load_private_key(new)
        except KeyFormatError:
            cand = None
        if cand is None or cand.vkey != new_vkey:
            _discard_uncommitted(kf)
            return
        try:
            current = load_private_key(kf)
        except KeyFormatError:
            current = None
        if current is not None and current.vkey != new_vkey:
            with contextlib.suppress(FileExistsError):
                os.link(kf, retired_path(kf, n))
        with contextlib.suppress(FileNotFoundError):  # another process finished first
            os.replace(new, kf)
        _fsync_dir(kf.parent)
    pending_path(kf).unlink(missing_ok=True)


def _discard_uncommitted(kf: Path) -> None:
    new_key_path(kf).unlink(missing_ok=True)
    pending_path(kf).unlink(missing_ok=True)


def read_pending(key_file: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The statement of a rotation that was sent (or about to be) but never committed."""
    p = pending_path(key_file)
    try:
        doc = json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "rotation" in doc else None


def write_pending(key_file: str | os.PathLike[str], statement: dict[str, Any]) -> None:
    """Durably remember a statement before the server hears of it (0600 like the key)."""
    write_private(pending_path(key_file), (json.dumps(statement, sort_keys=True) + "\n").encode())


def discard_pending(key_file: str | os.PathLike[str]) -> None:
    _discard_uncommitted(Path(key_file))


def key_history(raw: str | None) -> list[dict[str, Any]]:
    """``meta.key_history`` as a list (empty when never rotated)."""
    if not raw:
        return []
    v = json.loads(raw)
    if not isinstance(v, list):
        raise OsirisError("state.db: key_history is not a list")
    return v


def signer_for(key_file: str | os.PathLike[str], db: Any) -> Signer:
    """The agent's signer at start: finish a committed rotation's file move, load the key
    ``state.db`` names, and pin it there (``signing_vkey``) if nothing was pinned yet."""
    expected = db.get(SIGNING_KEY)
    history = key_history(db.get(HISTORY_KEY))
    if expected is not None and history:
        finish_rotation(key_file, len(history), expected)
    signer = load_signer(key_file, expected)
    if expected is None:
        with db.tx():
            if db.get(SIGNING_KEY) is None:
                db.set(SIGNING_KEY, signer.vkey)
    return signer


__all__ = [
    "COSIGN_KEY",
    "HISTORY_KEY",
    "SIGNING_KEY",
    "KeyMismatch",
    "KeyRotated",
    "discard_pending",
    "finish_rotation",
    "key_history",
    "load_signer",
    "new_key_path",
    "pending_path",
    "read_pending",
    "retired_path",
    "signer_for",
    "write_pending",
]
