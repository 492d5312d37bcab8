"""Trust roots an auditor gets from the clinic, not from the MSP (DESIGN §3.3).

An export's ``keys.json`` is written by whoever ran ``osiris evidence pull`` — the MSP — so its
keys are claims. What an auditor can believe comes from outside the export:

* a **clinic attestation** ``osiris.attestation/1``, written on the appliance by
  ``osiris-agent attest`` and signed with the appliance's *current* signing key. It names the
  appliance and site, both its vkeys, the log and order vkeys it pinned at enrolment, its key
  history (rotation statements), its chain head and the newest checkpoint it cosigned;
* a **key rotation statement** ``osiris.key-rotation/1``, signed by the *old* key: from
  ``effective_seq`` on, the appliance signs with ``new_vkey``. Bundles are bound to keys by
  ``seq`` (the chain's own order), not by time, because an appliance's clock is its own claim;
* plain keys: a ``--log-key`` vkey or a keys file ``{"log": …, "appliances": […]}`` pinned by
  other means, and the user's trust store (``osiris trust``), which holds the same items.

:class:`TrustRoots` is the merged view the verifier uses; every key remembers where it came
from so the verifier can say what it trusted.

Rotation statements and key histories live in :mod:`osiris_core.rotation`, the signed-document
envelope both kinds of statement share in :mod:`osiris_core.signed_doc`; their names are
re-exported here because every reader of trust (verifier, server, console) wants both.

Why this file is long: it holds the three ways a key becomes trusted — a clinic attestation, a
pinned keys file or vkey, the user's trust store — and the one ``TrustRoots`` they all fill;
each loader is short, and apart they would each need the others' validation (an attestation
is also a trust-store item) and the roots' merge rules.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import canonical, ids
from .errors import KeyFormatError, OsirisError, SchemaError
from .evidence import GENESIS_HASH
from .files import write_private
from .keys import KEY_TYPE_COSIGNATURE, KEY_TYPE_ED25519, Signer, Verifier, appliance_key_name
from .rotation import (
    ROTATION_SCHEMA,
    KeyEpoch,
    key_epochs,
    make_rotation,
    open_rotation,
    original_key,
    validate_rotation_doc,
)
from .signed_doc import AttestationError, id_field, open_doc, sign_doc, vkey_field

ATTESTATION_SCHEMA = "osiris.attestation/1"
APPLIANCE_PREFIX = "osiris/appliance/"
MAX_TRUST_FILE = 4 << 20


class TrustFileError(OsirisError):
    """A trust file (attestation, keys file, trust store) cannot be used: a usage error (exit 2)."""

    code = "E_TRUST_FILE"


def fingerprint(vkey: str) -> str:
    """A fingerprint a person can read over the phone: SHA-256 of the vkey text, 4 groups of 4.

    Over the whole vkey (name, key id and public key), so a key with the same bytes under
    another name has another fingerprint."""
    import hashlib

    h = hashlib.sha256(vkey.encode("utf-8")).hexdigest()[:16].upper()
    return "-".join(h[i : i + 4] for i in range(0, 16, 4))


def appliance_of(name: str) -> str | None:
    """``osiris/appliance/<id>`` → ``<id>``; None for any other key name."""
    if not name.startswith(APPLIANCE_PREFIX):
        return None
    rest = name[len(APPLIANCE_PREFIX) :]
    return rest if ids.APPLIANCE_ID.match(rest) else None


# ------------------------------------------------------------------ attestation


def make_attestation(
    signer: Signer,
    *,
    appliance_id: str,
    site_id: str,
    cosign_vkey: str,
    log_vkey: str,
    order_vkey: str,
    rotations: list[dict[str, Any]],
    chain_head: dict[str, Any],
    cosigned_checkpoint: str | None,
    attested_at: str,
    agent_version: str,
) -> dict[str, Any]:
    """The clinic's attestation, signed with the appliance's current signing key."""
    doc = {
        "schema": ATTESTATION_SCHEMA,
        "appliance_id": appliance_id,
        "site_id": site_id,
        "signing_vkey": signer.vkey,
        "cosign_vkey": cosign_vkey,
        "log_vkey": log_vkey,
        "order_vkey": order_vkey,
        "key_history": rotations,
        "chain_head": chain_head,
        "cosigned_checkpoint": cosigned_checkpoint,
        "attested_at": attested_at,
        "agent_version": agent_version,
    }
    env = sign_doc("attestation", doc, signer)
    open_attestation(env)  # never write what we would refuse to read
    return env


@dataclass(frozen=True)
class Attestation:
    appliance_id: str
    site_id: str
    signing: Verifier
    cosign: Verifier
    log: Verifier
    order: Verifier
    epochs: list[KeyEpoch]
    rotations: list[dict[str, Any]]
    head_seq: int
    head_hash: str
    cosigned_checkpoint: str | None
    attested_at: str


def open_attestation(env: Any, what: str = "attestation") -> Attestation:
    """Parse and verify an attestation: shape, key history, signature by the current key."""
    doc = env.get("attestation") if isinstance(env, dict) else None
    if not isinstance(doc, dict) or doc.get("schema") != ATTESTATION_SCHEMA:
        raise AttestationError(f"{what}: not an {ATTESTATION_SCHEMA} document")
    app = id_field(doc, "appliance_id", what)
    site = id_field(doc, "site_id", what)
    signing = vkey_field(doc, "signing_vkey", what, KEY_TYPE_ED25519)
    cosign = vkey_field(doc, "cosign_vkey", what, KEY_TYPE_COSIGNATURE)
    log = vkey_field(doc, "log_vkey", what, KEY_TYPE_ED25519)
    order = vkey_field(doc, "order_vkey", what, KEY_TYPE_ED25519)
    name = appliance_key_name(app)
    if signing.name != name or cosign.name != name:
        raise AttestationError(f"{what}: appliance keys must be named {name}")
    rotations = doc.get("key_history")
    if not isinstance(rotations, list):
        raise AttestationError(f"{what}: key_history must be a list")
    epochs = key_epochs(original_key(signing.vkey, rotations), rotations, what)
    if epochs[-1].verifier.vkey != signing.vkey:
        raise AttestationError(f"{what}: key history does not end at signing_vkey")
    for r in rotations:
        if r["rotation"]["appliance_id"] != app or r["rotation"]["site_id"] != site:
            raise AttestationError(f"{what}: a rotation names another appliance or site")
    head = doc.get("chain_head")
    if not isinstance(head, dict):
        raise AttestationError(f"{what}: chain_head must be an object")
    seq, h = head.get("seq"), head.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise AttestationError(f"{what}: chain_head.seq must be a non-negative integer")
    if not isinstance(h, str) or not ids.HASH.match(h) or (seq == 0 and h != GENESIS_HASH):
        raise AttestationError(f"{what}: chain_head.hash malformed")
    cp = doc.get("cosigned_checkpoint")
    if cp is not None and not isinstance(cp, str):
        raise AttestationError(f"{what}: cosigned_checkpoint must be a note or null")
    try:
        canonical.parse_time(doc.get("attested_at"))
    except (OsirisError, TypeError, ValueError):
        raise AttestationError(f"{what}: attested_at is not a canonical time") from None
    open_doc("attestation", env, signing, what)
    return Attestation(
        appliance_id=app,
        site_id=site,
        signing=signing,
        cosign=cosign,
        log=log,
        order=order,
        epochs=epochs,
        rotations=rotations,
        head_seq=seq,
        head_hash=h,
        cosigned_checkpoint=cp,
        attested_at=doc["attested_at"],
    )


# ------------------------------------------------------------------ trust roots


@dataclass
class TrustedAppliance:
    appliance_id: str
    site_id: str | None
    epochs: list[KeyEpoch]
    cosign: list[Verifier]
    source: str
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoint: tuple[str, int, bytes] | None = None  # (origin, size, root) it cosigned


@dataclass
class TrustRoots:
    """Keys pinned from outside an export, each with where it came from."""

    logs: dict[str, tuple[Verifier, str]] = field(default_factory=dict)  # vkey → (v, source)
    appliances: dict[str, TrustedAppliance] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.logs and not self.appliances

    def add_log(self, v: Verifier, source: str) -> None:
        if v.key_type != KEY_TYPE_ED25519:
            raise TrustFileError(f"{source}: a log key must be an Ed25519 vkey")
        self.logs.setdefault(v.vkey, (v, source))

    def add_attestation(self, a: Attestation, source: str) -> None:
        self.add_log(a.log, source)
        known = self.appliances.get(a.appliance_id)
        if known is not None and known.head_seq > a.head_seq:
            return  # keep the newer attestation of the same appliance
        cp = None
        if a.cosigned_checkpoint:
            from .note import Checkpoint

            try:
                body = a.cosigned_checkpoint[: a.cosigned_checkpoint.index("\n\n") + 1]
                parsed = Checkpoint.parse(body)
                cp = (parsed.origin, parsed.size, parsed.root)
            except (ValueError, OsirisError):
                raise TrustFileError(f"{source}: cosigned_checkpoint is not a checkpoint") from None
        self.appliances[a.appliance_id] = TrustedAppliance(
            a.appliance_id, a.site_id, a.epochs, [a.cosign], source, a.head_seq, a.head_hash, cp
        )

    def add_appliance_key(self, v: Verifier, source: str, site_id: str | None = None) -> None:
        app = appliance_of(v.name)
        if app is None:
            raise TrustFileError(f"{source}: {v.name} is not an osiris/appliance/<id> key")
        t = self.appliances.get(app)
        if t is None:
            t = self.appliances[app] = TrustedAppliance(app, site_id, [], [], source)
        if v.key_type == KEY_TYPE_COSIGNATURE:
            if v not in t.cosign:
                t.cosign.append(v)
        elif not any(e.verifier == v for e in t.epochs):
            # a bare key carries no history: valid for every seq of that appliance
            t.epochs.append(KeyEpoch(v, 1, None))

    def merge(self, other: TrustRoots) -> None:
        for v, src in other.logs.values():
            self.add_log(v, src)
        for app, t in other.appliances.items():
            if app not in self.appliances or not self.appliances[app].epochs:
                self.appliances[app] = t

    def for_site(self, site_id: str) -> list[TrustedAppliance]:
        return [t for t in self.appliances.values() if t.site_id == site_id]


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_TRUST_FILE:
            raise TrustFileError(f"{path}: larger than {MAX_TRUST_FILE} bytes")
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise TrustFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TrustFileError(f"{path}: unreadable: {e}") from None


def load_trust_item(obj: Any, source: str, roots: TrustRoots) -> None:
    """Add one attestation envelope, keys file object or list of them to ``roots``."""
    try:
        if isinstance(obj, list):
            for item in obj:
                load_trust_item(item, source, roots)
        elif isinstance(obj, dict) and "attestation" in obj:
            roots.add_attestation(open_attestation(obj, source), source)
        elif isinstance(obj, dict) and ("log" in obj or "appliances" in obj):
            if "log" in obj:
                if not isinstance(obj["log"], str):
                    raise TrustFileError(f"{source}: 'log' must be a vkey")
                roots.add_log(Verifier.from_vkey(obj["log"]), source)
            apps = obj.get("appliances", [])
            if not isinstance(apps, list):
                raise TrustFileError(f"{source}: 'appliances' must be a list")
            site = obj.get("site_id")
            for v in apps:
                if isinstance(v, str):
                    roots.add_appliance_key(Verifier.from_vkey(v), source, site)
                elif isinstance(v, dict) and isinstance(v.get("vkey"), str):
                    roots.add_appliance_key(
                        Verifier.from_vkey(v["vkey"]), source, v.get("site_id", site)
                    )
                else:
                    raise TrustFileError(f"{source}: an appliance entry is not a vkey")
        else:
            raise TrustFileError(f"{source}: neither an attestation nor a keys file")
    except (KeyFormatError, AttestationError, SchemaError) as e:
        raise TrustFileError(f"{source}: {e}") from None


def load_trust_file(path: str | os.PathLike[str]) -> TrustRoots:
    p = Path(path)
    roots = TrustRoots()
    load_trust_item(_read_json(p), str(p), roots)
    return roots


def log_key_arg(value: str) -> Verifier:
    """``--log-key``: a vkey, or a file holding one (or a keys file with a 'log' vkey)."""
    text = value.strip()
    if "+" in text and "\n" not in text and not Path(text).exists():
        try:
            return Verifier.from_vkey(text)
        except KeyFormatError as e:
            raise TrustFileError(f"--log-key: {e}") from None
    p = Path(value)
    try:
        raw = p.read_text("utf-8").strip()
    except FileNotFoundError:
        raise TrustFileError(f"--log-key: {value!r} is neither a vkey nor a file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TrustFileError(f"--log-key {p}: unreadable: {e}") from None
    if raw.startswith("{"):
        try:
            obj = json.loads(raw)
            raw = obj["log"]
        except (ValueError, KeyError, TypeError):
            raise TrustFileError(f"--log-key {p}: a JSON file must carry a 'log' vkey") from None
    try:
        return Verifier.from_vkey(raw)
    except (KeyFormatError, TypeError) as e:
        raise TrustFileError(f"--log-key {p}: {e}") from None


# ------------------------------------------------------------------ the user's trust store


def store_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "osiris" / "trust.json"


def _check_private(path: Path) -> None:
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise TrustFileError(
            f"{path}: readable or writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run chmod 600 {path}"
        )


def read_store(path: Path | None = None) -> list[dict[str, Any]]:
    """The trust store's entries: ``{"name", "kind", "item", "added_at"}``; [] if none yet."""
    p = path or store_path()
    if not p.exists():
        return []
    _check_private(p)
    raw = _read_json(p)
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise TrustFileError(f"{p}: not an osiris trust store")
    return list(raw["entries"])


def write_store(entries: list[dict[str, Any]], path: Path | None = None) -> None:
    """Replace the trust store (0600, atomically: a crash keeps the old store)."""
    p = path or store_path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(p, (json.dumps({"entries": entries}, indent=2) + "\n").encode("utf-8"))


def store_roots(path: Path | None = None) -> TrustRoots:
    p = path or store_path()
    roots = TrustRoots()
    for e in read_store(p):
        if not isinstance(e, dict) or "item" not in e:
            raise TrustFileError(f"{p}: an entry has no item")
        load_trust_item(e["item"], f"trust store: {e.get('name', '?')}", roots)
    return roots


def describe_item(obj: Any) -> list[dict[str, str]]:
    """What a trust item pins, for ``osiris trust list``: kind, name, fingerprint, site."""
    roots = TrustRoots()
    load_trust_item(obj, "item", roots)
    out = [
        {"kind": "log", "name": v.name, "fingerprint": fingerprint(k), "site_id": ""}
        for k, (v, _s) in roots.logs.items()
    ]
    for t in roots.appliances.values():
        for e in t.epochs:
            out.append(
                {
                    "kind": "appliance",
                    "name": e.verifier.name,
                    "fingerprint": fingerprint(e.verifier.vkey),
                    "site_id": t.site_id or "",
                }
            )
    return out


__all__ = [
    "ATTESTATION_SCHEMA",
    "ROTATION_SCHEMA",
    "Attestation",
    "AttestationError",
    "KeyEpoch",
    "TrustFileError",
    "TrustRoots",
    "TrustedAppliance",
    "appliance_of",
    "describe_item",
    "fingerprint",
    "key_epochs",
    "load_trust_file",
    "load_trust_item",
    "log_key_arg",
    "make_attestation",
    "make_rotation",
    "open_attestation",
    "open_rotation",
    "original_key",
    "read_store",
    "store_path",
    "store_roots",
    "validate_rotation_doc",
    "write_store",
]
