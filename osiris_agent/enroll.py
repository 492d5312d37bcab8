"""``osiris-agent enroll``: make the appliance's keys, claim it, pin the server's keys.

Order of operations, chosen so that a crash at any point can be re-run safely:

1. Seeds first. The evidence key, the separate cosigning key and the box key (credentials are
   sealed to it) are generated (or reused if a previous, interrupted run already wrote them)
   and stored 0600 *before* the claim, under a provisional name — the server assigns the
   appliance id, and key names embed it.
2. ``POST /provision/claim`` with the public keys. The answer carries the appliance id, the bearer
   token and the server's log, order and release keys (``release_vkey``: the only key that may
   name a system to switch to, when the server sends one).
3. The keys are rewritten with their final names ``osiris/appliance/<id>`` (same seeds), then
   ``pins.json``, ``token`` (0600) and finally ``agent.toml``. Over https the claim also
   carries a CSR for the mTLS client key (``client.key``, made with the seeds); a certificate
   in the answer is checked against that key and stored as ``client.pem``
   (osiris_agent/client_cert.py). The config file is written last:
   its presence means "enrolled", and a re-run stops there without spending another claim code.

The token is a secret: it is written only to ``token`` (0600) and never printed or logged.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris_core.errors import ExitCode, KeyFormatError, OsirisError
from osiris_core.files import write_private
from osiris_core.keys import (
    KEY_TYPE_COSIGNATURE,
    KEY_TYPE_ED25519,
    Signer,
    Verifier,
    appliance_key_name,
    load_private_key,
    public_fingerprint,
    write_private_key,
)
from osiris_core.seal import public_b64

from . import boxkey, client_cert
from .client import ServerClient
from .config import AgentConfig, to_toml

PROVISIONAL_NAME = "osiris/appliance/unclaimed"
CONFIG_NAME = "agent.toml"
PINS_NAME = "pins.json"


class EnrollError(OsirisError):
    """The state dir cannot be enrolled (missing, unreadable or conflicting files): exit 2."""

    code = "E_ENROLL"
    exit_code = ExitCode.USAGE


class ClaimAnswerError(EnrollError):
    """The server's claim answer is unusable: the thing checked is bad (exit 1)."""

    exit_code = ExitCode.BAD


@dataclass
class EnrollResult:
    appliance_id: str
    site_id: str
    config_path: str
    already: bool
    quarantined: bool = False


def seed_of(signer: Signer) -> bytes:
    """The 32-byte seed inside an skey (to rename a key without changing it)."""
    raw = base64.b64decode(signer.skey.split("+", 4)[4])
    return raw[1:]


def renamed(signer: Signer, name: str) -> Signer:
    return Signer(name, seed_of(signer), signer.key_type)


def _key(path: Path, key_type: int) -> Signer:
    if path.exists():
        s = load_private_key(path)
        if s.key_type != key_type:
            raise KeyFormatError(f"{path} holds a key of type 0x{s.key_type:02x}")
        return s
    s = Signer.generate(PROVISIONAL_NAME, key_type)
    write_private_key(path, s)
    return s


def write_secret(path: Path, text: str) -> None:
    """Atomic 0600 write of ``text`` (:func:`osiris_core.files.write_private`)."""
    write_private(path, text.encode("utf-8"))


def read_pins(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(state_dir) / PINS_NAME
    try:
        pins = json.loads(p.read_text())
    except FileNotFoundError:
        raise EnrollError(f"{p} is missing: run `osiris-agent enroll` first") from None
    except (OSError, ValueError) as e:
        raise EnrollError(f"{p} is unreadable: {e}") from None
    for k in ("appliance_id", "site_id", "log_vkey", "order_vkey"):
        if not isinstance(pins.get(k), str):
            raise EnrollError(f"{p}: {k} missing")
    return pins


def mac_address() -> str:
    n = uuid.getnode()
    return ":".join(f"{(n >> s) & 0xFF:02x}" for s in range(40, -1, -8))


def prepare_keys(state_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Make (or reuse) the seeds exactly as :func:`enroll` does, before any claim, so the setup
    screen can show their fingerprints; returns {what: fingerprint}."""
    sd = Path(state_dir).absolute()
    sd.mkdir(parents=True, exist_ok=True, mode=0o700)
    signing = _key(sd / "appliance.key", KEY_TYPE_ED25519)
    cosigning = _key(sd / "cosign.key", KEY_TYPE_COSIGNATURE)
    box = boxkey.load_or_create(boxkey.path_in(sd))
    return {
        "evidence signing key": public_fingerprint(signing.public),
        "cosigning key": public_fingerprint(cosigning.public),
        "box key": public_fingerprint(bytes(box.public_key)),
    }


def enroll(
    server: str,
    claim_code: str,
    state_dir: str | os.PathLike[str],
    *,
    hostname: str | None = None,
    mac: str | None = None,
    lab: bool = False,
    ca_file: str | None = None,
    agent_version: str = "0.1.0",
) -> EnrollResult:
    """Enroll this appliance (see the module docstring); re-running after success is a no-op."""
    sd = Path(state_dir).absolute()
    sd.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(sd, 0o700)
    cfg_path = sd / CONFIG_NAME
    if cfg_path.exists() and (sd / PINS_NAME).exists() and (sd / "token").exists():
        pins = read_pins(sd)
        if pins.get("server_url") not in (None, server.rstrip("/")):
            raise EnrollError(
                f"already enrolled with {pins['server_url']}; move {sd} away to enroll again"
            )
        return EnrollResult(pins["appliance_id"], pins["site_id"], str(cfg_path), True)

    # Validate the config we will write before spending the claim code.
    section: dict[str, Any] = {"state_dir": str(sd), "lab": lab}
    server_section: dict[str, Any] = {"url": server.rstrip("/")}
    if ca_file:
        server_section["ca_file"] = ca_file
    AgentConfig.from_dict({"server": server_section, "agent": section})
    tls = server.lower().startswith("https://")

    signing = _key(sd / "appliance.key", KEY_TYPE_ED25519)
    cosigning = _key(sd / "cosign.key", KEY_TYPE_COSIGNATURE)
    box = boxkey.load_or_create(boxkey.path_in(sd))  # credentials are sealed to it
    csr = client_cert.csr_for(sd) if tls else None  # mTLS key, also before the claim
    client = ServerClient(server, None, ca_file)
    try:
        answer = client.post(
            "/provision/claim",
            {
                "code": claim_code,
                "hostname": hostname or socket.gethostname(),
                "mac": mac or mac_address(),
                "signing_pub": base64.b64encode(signing.public).decode("ascii"),
                "cosign_pub": base64.b64encode(cosigning.public).decode("ascii"),
                "agent_version": agent_version,
                "box_pub": public_b64(box),
                **({"csr": csr} if csr is not None else {}),
            },
        )
    finally:
        client.close()
    try:
        appliance_id = str(answer["appliance_id"])
        site_id = str(answer["site_id"])
        token = answer["token"]
        log_v = Verifier.from_vkey(answer["log_vkey"])
        order_v = Verifier.from_vkey(answer["order_vkey"])
        # a server from before release keys answers without one: the order key stays the
        # release authority for this appliance (osiris_core.release.release_pin)
        raw_release = answer.get("release_vkey")
        release_v = Verifier.from_vkey(raw_release) if raw_release is not None else None
        interval = int(answer.get("checkin_interval_s") or 60)
        quarantined = bool(answer.get("quarantined"))
        name = appliance_key_name(appliance_id)
    except (KeyError, TypeError, ValueError, OsirisError) as e:
        raise ClaimAnswerError(f"the server's claim answer is malformed: {e}") from None
    issued = answer.get("client_cert")
    if issued is not None and not isinstance(issued, str):
        raise ClaimAnswerError("the server's client certificate is not PEM text")
    if not isinstance(token, str) or not token.startswith("oak_"):
        raise ClaimAnswerError("the server's claim answer has no appliance token")
    if release_v is not None and release_v.key_id_hex in (order_v.key_id_hex, log_v.key_id_hex):
        raise ClaimAnswerError("the server's release key must differ from its order and log keys")

    if issued is not None:
        try:
            client_cert.store(sd, issued)
        except KeyFormatError as e:
            raise ClaimAnswerError(str(e)) from None
    write_private_key(sd / "appliance.key", renamed(signing, name))
    write_private_key(sd / "cosign.key", renamed(cosigning, name))
    pins = {
        "appliance_id": appliance_id,
        "site_id": site_id,
        "log_vkey": log_v.vkey,
        "order_vkey": order_v.vkey,
        **({"release_vkey": release_v.vkey} if release_v is not None else {}),
        "server_origin": answer.get("server_origin") or log_v.name,
        "server_url": server.rstrip("/"),
    }
    write_secret(sd / PINS_NAME, json.dumps(pins, indent=2, sort_keys=True) + "\n")
    write_secret(sd / "token", token + "\n")
    section["checkin_interval_s"] = max(5, min(86400, interval))
    cfg = AgentConfig.from_dict({"server": server_section, "agent": section})
    write_secret(cfg_path, to_toml(cfg))
    return EnrollResult(appliance_id, site_id, str(cfg_path), False, quarantined)
