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
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import canonical
from .errors import KeyFormatError, OsirisError, SchemaError
from .evidence import GENESIS_HASH
from .keys import KEY_TYPE_COSIGNATURE, KEY_TYPE_ED25519, Signer, Verifier, appliance_key_name

ATTESTATION_SCHEMA = "osiris.attestation/1"
ROTATION_SCHEMA = "osiris.key-rotation/1"
APPLIANCE_PREFIX = "osiris/appliance/"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_ROTATIONS = 1000
MAX_TRUST_FILE = 4 << 20


class TrustFileError(OsirisError):
    """A trust file (attestation, keys file, trust store) cannot be used: a usage error (exit 2)."""

    code = "E_TRUST_FILE"


class AttestationError(OsirisError):
    """An attestation or rotation statement is malformed or its signature does not verify."""

    code = "E_ATTESTATION"


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
    return rest if _ID_RE.match(rest) else None


# ------------------------------------------------------------------ signed documents


def _sign_doc(key: str, doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    data = canonical.dumps(doc)
    sig = base64.b64encode(signer.sign(data)).decode("ascii")
    return {key: doc, "sig": {"alg": "ed25519", "key_id": signer.key_id_hex, "value": sig}}


def _open_doc(key: str, env: Any, verifier: Verifier, what: str) -> dict[str, Any]:
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


def _vkey(doc: Mapping[str, Any], field_name: str, what: str, key_type: int) -> Verifier:
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


def _str(doc: Mapping[str, Any], name: str, what: str) -> str:
    v = doc.get(name)
    if not isinstance(v, str) or not _ID_RE.match(v):
        raise AttestationError(f"{what}: {name} missing or malformed")
    return v


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
    return _sign_doc("rotation", doc, old)


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
    app = _str(doc, "appliance_id", what)
    _str(doc, "site_id", what)
    old = _vkey(doc, "old_vkey", what, KEY_TYPE_ED25519)
    new = _vkey(doc, "new_vkey", what, KEY_TYPE_ED25519)
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
    return _open_doc("rotation", env, old, what)


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
    env = _sign_doc("attestation", doc, signer)
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
    app = _str(doc, "appliance_id", what)
    site = _str(doc, "site_id", what)
    signing = _vkey(doc, "signing_vkey", what, KEY_TYPE_ED25519)
    cosign = _vkey(doc, "cosign_vkey", what, KEY_TYPE_COSIGNATURE)
    log = _vkey(doc, "log_vkey", what, KEY_TYPE_ED25519)
    order = _vkey(doc, "order_vkey", what, KEY_TYPE_ED25519)
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
    if not isinstance(h, str) or not _HASH_RE.match(h) or (seq == 0 and h != GENESIS_HASH):
        raise AttestationError(f"{what}: chain_head.hash malformed")
    cp = doc.get("cosigned_checkpoint")
    if cp is not None and not isinstance(cp, str):
        raise AttestationError(f"{what}: cosigned_checkpoint must be a note or null")
    try:
        canonical.parse_time(doc.get("attested_at"))
    except (OsirisError, TypeError, ValueError):
        raise AttestationError(f"{what}: attested_at is not a canonical time") from None
    _open_doc("attestation", env, signing, what)
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
    p = path or store_path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps({"entries": entries}, indent=2) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)


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
    "read_store",
    "store_path",
    "store_roots",
    "write_store",
]
