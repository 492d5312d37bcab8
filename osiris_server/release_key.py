"""The server's release key: the one key that may name a NixOS system for an appliance.

Why a key of its own (issue 16 item 6): an ``update_agent`` order makes root switch the
appliance's system. If the order key (which the server uses on every request: orders, rules,
policies) also signed releases, anyone who got that key — or a compromised server process —
could ship any build. So releases are signed by a separate Ed25519 key the appliance pins at
enrolment (``release_vkey``), and once pinned the order key no longer authorises a release
(``osiris_core.release.release_pin``).

Where it lives, in the order :func:`load` looks:

* ``DATA/keys/release.key`` (0600, refused when looser, like the other keys): the server signs
  releases itself (``POST /api/v1/releases`` with a version and a system, and the RB-NIX-GEN
  allow-list).
* else ``DATA/keys/release.vkey`` (the public key only): the MSP keeps the private key offline
  (``osiris-server init --release-vkey``); the server then accepts only envelopes already
  signed by it (``osiris-server release sign``, ``POST /api/v1/releases {"envelope": …}``).
* else (a data directory from before release keys) a new ``release.key`` is made on first start
  and a log line says so; appliances enrolled earlier keep their order-key pin and keep working.
  Several workers may start at once: the key is written whole to a temp file and linked into
  place, so exactly one key wins and every worker loads that one.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris_core.errors import KeyFormatError
from osiris_core.files import create_private, write_private
from osiris_core.keys import Signer, Verifier, load_private_key, write_private_key

KEY_FILE = "release.key"
VKEY_FILE = "release.vkey"


@dataclass(frozen=True)
class ReleaseKey:
    """The release vkey the server hands out at enrolment and checks envelopes against, and
    the private key when this server holds it (None: offline, pre-signed envelopes only)."""

    verifier: Verifier
    signer: Signer | None


def key_name(origin: str) -> str:
    return f"{origin.split('/', 1)[0]}/osiris/release"


def create(keys_dir: Path, origin: str) -> Signer:
    """A new release key at ``keys_dir/release.key`` (0600); refuses to replace one."""
    signer = Signer.generate(key_name(origin))
    path = keys_dir / KEY_FILE
    tmp = keys_dir / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}.new"
    write_private_key(tmp, signer)
    try:
        os.link(tmp, path)  # atomic, and never over an existing key
    finally:
        tmp.unlink(missing_ok=True)
    return signer


def write_vkey(keys_dir: Path, vkey: str) -> Verifier:
    """Record an offline release key's vkey (``init --release-vkey``): checked first."""
    try:
        v = Verifier.from_vkey(vkey.strip())
    except (KeyFormatError, ValueError) as exc:
        raise KeyFormatError(f"--release-vkey is not a vkey: {exc}") from None
    create_private(keys_dir / VKEY_FILE, (v.vkey + "\n").encode("utf-8"))
    return v


def load(keys_dir: Path, origin: str, emit: Any) -> ReleaseKey:
    """The server's release key (see the module docstring); ``emit`` gets the log line."""
    path = keys_dir / KEY_FILE
    if path.exists():
        signer = load_private_key(path)
        return ReleaseKey(signer.verifier(), signer)
    vpath = keys_dir / VKEY_FILE
    if vpath.exists():
        text = vpath.read_text("utf-8").strip()
        try:
            return ReleaseKey(Verifier.from_vkey(text), None)
        except (KeyFormatError, ValueError) as exc:
            raise KeyFormatError(f"{vpath} does not hold a vkey: {exc}") from None
    try:
        signer = create(keys_dir, origin)
    except FileExistsError:  # another worker made it first: use that one
        signer = load_private_key(path)
        return ReleaseKey(signer.verifier(), signer)
    note = (
        "a data dir from before release keys: releases are signed with this key from now "
        "on; appliances enrolled earlier keep their order-key pin. Servers sharing a "
        "PostgreSQL index need the same keys/release.key: copy this one to them"
    )
    emit({"event": "release_key_created", "path": str(path), "key_id": signer.key_id_hex,
          "note": note})  # fmt: skip
    return ReleaseKey(signer.verifier(), signer)


def export_vkey(path: Path) -> str:
    """The vkey of a release key file (to give a server ``--release-vkey``)."""
    return load_private_key(path).verifier().vkey


def keygen(path: Path, name: str) -> Signer:
    """A new offline release key at ``path`` (0600); refuses to overwrite a file."""
    if path.exists():
        raise FileExistsError(f"{path} exists; not overwriting a key")
    signer = Signer.generate(name)
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, (signer.skey + "\n").encode("utf-8"))
    return signer
