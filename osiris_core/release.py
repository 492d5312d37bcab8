"""Signed release documents ``osiris.release/1``: which NixOS system an appliance may switch to.

Why: RB-NIX-GEN-001 makes a root unit switch the appliance to a store path. "It looks like a
NixOS system" is no authority — anything in ``/nix/store`` with a ``bin/switch-to-configuration``
does — so the desired system is accepted only when a release document signed by a key the
appliance pinned at enrolment names it. The agent checks that when it accepts a policy
(``osiris_core.policy``), and the root unit ``osiris-switch-system.service`` checks it *again*
before it switches (``python -m osiris_core.release switch-request``), so neither a hostile
server nor a compromised (non-root) agent can make root run an arbitrary system.

Format (canonical JSON, DESIGN §3.1)::

    release  = {"schema": "osiris.release/1", "system": "/nix/store/<32>-<name>",
                "name": "<label, ≤ 64>", "issued_at": "<RFC 3339 UTC, ms, Z>"
                [, "version": "<agent version, 1.2.3[-pre]>"[, "allow_downgrade": true]]}
    envelope = {"release": release, "sig": {"alg": "ed25519", "key_id": "<8 hex>",
                                            "value": "<base64 Ed25519 over canonical(release)>"}}

Signed by the server's *release key* (``DATA/keys/release.key``, separate from the order key;
or kept offline by the MSP, ``osiris-server release sign``), whose vkey the appliance pinned at
enrolment (``release_vkey`` in its pins). When that pin exists, ONLY the release key authorises
a release — on the agent (``AgentContext.release_verifiers``) and in the root unit
(:func:`seed_keys`) — so a server process holding the order key alone cannot name a system.
An appliance enrolled before release keys existed pins no ``release_vkey``; for it the order
key still signs releases, as before. A release names no site: one build serves the fleet;
which appliances may run it is the per-site allow-list inside the signed policy.

An *agent release* (what an ``update_agent`` order names, issue 16) also states the agent
``version`` the system carries, so the appliance can refuse a downgrade: moving to an older
version is accepted only when the release itself says ``allow_downgrade: true`` (its signer
meant it as a way back) *and* the order asks for it explicitly (:func:`downgrade_refusal`).

The switch request the agent writes to ``<state_dir>/switch/request.json`` is
``{"action": "switch", "release": envelope}`` or ``{"action": "rollback"}`` (back to the
system the root unit itself recorded before its last switch).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from osiris_core import canonical, ids
from osiris_core.errors import CanonicalError, OsirisError, SchemaError
from osiris_core.files import write_private
from osiris_core.keys import Signer, Verifier

SCHEMA = "osiris.release/1"
STORE_PATH = ids.STORE_PATH.regex  # the one grammar (osiris_core.ids)
_NAME = ids.RELEASE_NAME.regex
_KEY_ID = ids.KEY_ID.regex
_KEYS = frozenset({"schema", "system", "name", "issued_at"})
_OPTIONAL = frozenset({"version", "allow_downgrade"})
_VERSION = ids.RELEASE_VERSION.regex
MAX_REQUEST_BYTES = 16384


class ReleaseRefused(OsirisError):
    """A release document (or switch request) that must not be acted on; says why."""

    code = "E_RELEASE"


def validate_release(release: Any) -> None:
    """``SchemaError`` unless ``release`` is a well-formed ``osiris.release/1`` document."""
    if not isinstance(release, dict) or not _KEYS <= set(release) <= _KEYS | _OPTIONAL:
        raise SchemaError(
            f"release must have exactly {', '.join(sorted(_KEYS))}"
            f" (and optionally {', '.join(sorted(_OPTIONAL))})"
        )
    if "version" in release and (
        not isinstance(release["version"], str) or _VERSION.fullmatch(release["version"]) is None
    ):
        raise SchemaError("release version must be an agent version like 1.2.3")
    if "allow_downgrade" in release and (
        release["allow_downgrade"] is not True or "version" not in release
    ):
        raise SchemaError("release allow_downgrade is true (with a version) or absent")
    if release["schema"] != SCHEMA:
        raise SchemaError(f"release schema must be {SCHEMA!r}")
    system = release["system"]
    if not isinstance(system, str) or STORE_PATH.fullmatch(system) is None:
        raise SchemaError("release system must be a /nix/store path")
    if not isinstance(release["name"], str) or _NAME.fullmatch(release["name"]) is None:
        raise SchemaError("release name must be a short label")
    if not isinstance(release["issued_at"], str):
        raise SchemaError("release issued_at must be an RFC 3339 string")
    canonical.parse_time(release["issued_at"])


def make_release(
    system: str,
    name: str,
    issued_at: str | None = None,
    *,
    version: str | None = None,
    allow_downgrade: bool = False,
) -> dict[str, Any]:
    release: dict[str, Any] = {
        "schema": SCHEMA,
        "system": system,
        "name": name,
        "issued_at": issued_at or canonical.utc_now(),
    }
    if version is not None:
        release["version"] = version
    if allow_downgrade:
        release["allow_downgrade"] = True
    validate_release(release)
    return release


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Order of agent versions: numeric parts, then a ``-pre`` release before the release
    itself; ``+build`` metadata does not order (SemVer's rule, on our shorter grammar)."""
    if _VERSION.fullmatch(version) is None:
        raise SchemaError(f"not an agent version: {version[:64]!r}")
    core, sep, rest = version.partition("-") if "-" in version else version.partition("+")
    nums = tuple(int(p) for p in core.split("."))
    nums = nums + (0,) * (4 - len(nums))
    pre = sep == "-"
    return (nums, 0 if pre else 1, rest.split("+")[0] if pre else "")


def downgrade_refusal(
    current: str | None, release: dict[str, Any], order_allows: bool
) -> str | None:
    """Why moving from ``current`` to ``release`` is refused, or None.

    A downgrade (older version) needs both signatures to mean it: the release signer's
    ``allow_downgrade`` and the operator's order. Without a version in the release, nothing
    can be compared, so it is refused as an agent update; the same version is a no-op, refused
    too (a replayed rollout must not re-run a switch)."""
    version = release.get("version")
    if not isinstance(version, str):
        raise SchemaError("an agent release must name its version")
    if current is None or _VERSION.fullmatch(current) is None:
        return None  # nothing to compare with: the first update of an unversioned build
    if version_key(version) == version_key(current):
        return f"already running version {current}"
    if version_key(version) > version_key(current):
        return None
    if not order_allows:
        return f"{version} is older than {current}: a downgrade needs allow_downgrade in the order"
    if release.get("allow_downgrade") is not True:
        return f"{version} is older than {current} and its release does not allow a downgrade"
    return None


def sign_release(release: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The signed envelope; refuses to sign a malformed release."""
    validate_release(release)
    return {
        "release": copy.deepcopy(release),
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(signer.sign(canonical.dumps(release))).decode("ascii"),
        },
    }


def verify_release(envelope: Any, verifiers: Iterable[Verifier]) -> dict[str, Any]:
    """The release inside ``envelope`` if one of ``verifiers`` signed it; ``ReleaseRefused``
    (never another exception) for anything else."""
    if not isinstance(envelope, dict) or set(envelope) != {"release", "sig"}:
        raise ReleaseRefused("release envelope must have exactly release and sig")
    sig, release = envelope["sig"], envelope["release"]
    if not isinstance(sig, dict) or set(sig) != {"alg", "key_id", "value"}:
        raise ReleaseRefused("release sig must have alg, key_id and value")
    if sig["alg"] != "ed25519":
        raise ReleaseRefused("release sig alg must be ed25519")
    if not isinstance(sig["key_id"], str) or _KEY_ID.fullmatch(sig["key_id"]) is None:
        raise ReleaseRefused("release sig key_id must be 8 hex digits")
    if not isinstance(sig["value"], str):
        raise ReleaseRefused("release sig value must be base64")
    try:
        raw = base64.b64decode(sig["value"].encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ReleaseRefused("release sig value is not base64") from None
    key = next((v for v in verifiers if v.key_id_hex == sig["key_id"]), None)
    if key is None:
        raise ReleaseRefused(f"release signed by an unknown key {sig['key_id']}")
    try:
        msg = canonical.dumps(release)
    except (CanonicalError, RecursionError) as exc:
        raise ReleaseRefused(f"release is not canonical JSON data: {exc}") from None
    if len(raw) != 64 or not key.verify(msg, raw):
        raise ReleaseRefused("release signature does not verify")
    try:
        validate_release(release)
    except SchemaError as exc:
        raise ReleaseRefused(f"release refused: {exc}") from None
    return release


# ---------------------------------------------------------------- the root unit's half


def _read_nofollow(path: str | os.PathLike[str], limit: int) -> bytes:
    """Read a regular file without following a symlink at its last component."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000) == 0o100000:
            raise ReleaseRefused(f"{path} is not a regular file")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ReleaseRefused(f"{path} is larger than {limit} bytes")
    return data


def load_keys(path: str | os.PathLike[str]) -> list[Verifier]:
    """One vkey per line (blank lines and ``#`` comments ignored)."""
    out = []
    for line in _read_nofollow(path, 65536).decode("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(Verifier.from_vkey(line))
    if not out:
        raise ReleaseRefused(f"{path} names no key")
    return out


def release_pin(pins: dict[str, Any]) -> list[str]:
    """The vkeys that authorise a release for an appliance with these pins: its pinned
    ``release_vkey`` alone when it has one (the order key then does NOT), else its
    ``order_vkey`` (an appliance enrolled before release keys existed)."""
    for k in ("release_vkey", "order_vkey"):
        if isinstance(pins.get(k), str):
            return [pins[k]]
    return []


def seed_keys(keys_file: Path, pins_file: Path) -> None:
    """First use without configured keys: copy the key the agent pinned at enrolment to
    authorise releases (:func:`release_pin`) into the root-owned keys file, once (trust on
    first use; set ``services.osiris-agent.privileges.releaseKeys`` to avoid it)."""
    if keys_file.exists():
        return
    pins = json.loads(_read_nofollow(pins_file, 65536))
    vkeys = release_pin(pins) if isinstance(pins, dict) else []
    for v in vkeys:
        Verifier.from_vkey(v)  # refuse garbage before writing anything
    if not vkeys:
        raise ReleaseRefused(f"{pins_file} pins no release or order key")
    text = "# seeded from the agent's pins on first switch (trust on first use)\n"
    write_private(keys_file, (text + "\n".join(vkeys) + "\n").encode("utf-8"))


def switch_target(request_file: Path, keys: list[Verifier], previous_file: Path) -> str:
    """The store path a switch request may switch to, or ``ReleaseRefused``."""
    try:
        req = canonical.loads(_read_nofollow(request_file, MAX_REQUEST_BYTES))
    except (CanonicalError, UnicodeDecodeError) as exc:
        raise ReleaseRefused(f"switch request is not JSON: {exc}") from None
    if not isinstance(req, dict) or req.get("action") not in ("switch", "rollback"):
        raise ReleaseRefused("switch request must name action switch or rollback")
    if req["action"] == "rollback":
        if set(req) != {"action"}:
            raise ReleaseRefused("a rollback request carries nothing else")
        try:
            prev = _read_nofollow(previous_file, 512).decode("ascii").strip()
        except FileNotFoundError:
            raise ReleaseRefused("no previous system recorded by this unit") from None
        if STORE_PATH.fullmatch(prev) is None:
            raise ReleaseRefused("recorded previous system is not a store path")
        return prev
    if set(req) != {"action", "release"}:
        raise ReleaseRefused("a switch request carries exactly action and release")
    return verify_release(req["release"], keys)["system"]


def main(argv: list[str] | None = None) -> int:
    """``python -m osiris_core.release switch-request --request F --keys F --previous F
    [--seed-from PINS]``: print the store path to switch to (exit 0) or why not (exit 1)."""
    ap = argparse.ArgumentParser(prog="python -m osiris_core.release")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sr = sub.add_parser("switch-request", help="check a switch request as the root unit does")
    sr.add_argument("--request", required=True, type=Path)
    sr.add_argument("--keys", required=True, type=Path)
    sr.add_argument("--previous", required=True, type=Path)
    sr.add_argument("--seed-from", type=Path, default=None)
    gd = sub.add_parser("guard", help="roll back a switch the new agent never confirmed (root)")
    gd.add_argument("--state", required=True, type=Path, help="the switch unit's state dir")
    gd.add_argument("--agent-state", required=True, type=Path)
    gd.add_argument("--deadline-s", type=int, default=900)
    gd.add_argument("--root", default="", help="path prefix (tests only)")
    gd.add_argument("--nix-env", default="nix-env")
    args = ap.parse_args(argv)
    if args.cmd == "guard":  # osiris_core.release_guard: the shared decision, NixOS's switch
        from osiris_core.release_guard import main_guard

        return main_guard(args.state, args.agent_state, args.deadline_s, args.root, args.nix_env)
    try:
        if args.seed_from is not None:
            seed_keys(args.keys, args.seed_from)
        target = switch_target(args.request, load_keys(args.keys), args.previous)
    except (OsirisError, OSError, ValueError) as exc:
        print(f"refusing: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
