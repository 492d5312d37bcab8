"""LAB SIMULATOR ONLY — what RB-WIN-ENCRYPTION-001's remediate does to a lab host's BitLocker
state, step by step, as the real script does it (``remediate.ps1``'s comment names the steps).

Why its own module: the escrow protocol (protect → seal or AD DS backup → enable, or discard) is
more than one state assignment, and the lab must hold the line Windows-with-Osiris holds: a
volume is never enabled while its recovery password is known to nobody. So the model keeps, per
volume, every recovery password it generated and where each one went (``escrow``: protector id →
``"ad_ds"`` or ``"osiris_vault:<ref>"``), and :func:`enable` refuses a protector with no escrow.
The sealing is real RSA-OAEP (SHA-1, what ``RSACryptoServiceProvider.Encrypt(bytes, $true)``
does) to the modulus and exponent the agent sent, so the agent's unsealing is tested for real.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

from osiris_lab.windows import LabFault


def _volume(state: dict[str, Any], mp: str) -> dict[str, Any]:
    v = state["bitlocker"].get(mp)
    if v is None:
        raise LabFault(f"Cannot find the volume {mp}")
    v.setdefault("recovery", {})  # protector id -> recovery password (the disk's secret)
    v.setdefault("escrow", {})  # protector id -> where the password went
    return v


def _encrypted(v: dict[str, Any]) -> bool:
    return v["volume_status"] in ("FullyEncrypted", "EncryptionInProgress")


def _new_password() -> str:
    return "-".join(f"{secrets.randbelow(720896 // 11) * 11:06d}" for _ in range(8))


def _seal(password: str, seal_to: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        n = int.from_bytes(base64.b64decode(seal_to["n"], validate=True), "big")
        e = int.from_bytes(base64.b64decode(seal_to["e"], validate=True), "big")
        key = rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, TypeError, ValueError) as exc:
        raise LabFault(f"Exception calling ImportParameters: Bad Data ({exc})") from None
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return base64.b64encode(key.encrypt(password.encode("utf-8"), oaep)).decode("ascii")


def enable(state: dict[str, Any], p: dict[str, Any], protector_id: str) -> None:
    """``Enable-BitLocker -TpmProtector``, refused unless the recovery password was escrowed."""
    v = _volume(state, p["mount_point"])
    if protector_id not in v["escrow"]:
        raise LabFault(
            f"lab: refusing to enable BitLocker on {p['mount_point']}: recovery password "
            f"{protector_id} was never escrowed"
        )
    v.update(
        volume_status="EncryptionInProgress",
        protection_status="On",
        encryption_method=p["encryption_method"],
        protectors=sorted(set(v["protectors"]) | {"RecoveryPassword", "Tpm"}),
    )


def remediate(state: dict[str, Any], p: dict[str, Any], stdin: str) -> dict[str, Any]:
    """One step of the remediate script; returns the JSON result it prints."""
    try:
        req = json.loads(stdin) if stdin.strip() else None
    except ValueError:
        req = None
    if not isinstance(req, dict) or not req.get("step"):
        raise LabFault("no step on stdin: this script is run by the Osiris agent only")
    mp = p["mount_point"]
    v = _volume(state, mp)
    step = req["step"]
    if step == "protect":
        if _encrypted(v):
            return _done(False, f"{mp} is already encrypted")
        pid = "{" + str(uuid.uuid4()).upper() + "}"
        v["recovery"][pid] = _new_password()
        if "RecoveryPassword" not in v["protectors"]:
            v["protectors"] = sorted([*v["protectors"], "RecoveryPassword"])
        if state["part_of_domain"]:
            if state.get("ad_backup_fails"):
                raise LabFault(
                    "Backup-BitLockerKeyProtector: the recovery information could not be "
                    "backed up to Active Directory (0x8031006A)"
                )
            v["escrow"][pid] = "ad_ds"
            enable(state, p, pid)
            dom = state.get("domain", "clinic.example")
            return _result("compliant", {
                "changed": True, "escrow": "ad_ds", "protector_id": pid, "escrow_ref": dom,
                "action": f"recovery key backed up to AD DS ({dom}), BitLocker enabled on {mp}",
            })  # fmt: skip
        sealed = _seal(v["recovery"][pid], req.get("seal_to") or {})
        return _result("drift", {
            "changed": True,
            "action": f"recovery password protector added to {mp}; encryption waits for its escrow",
            "escrow_pending": {"protector_id": pid, "sealed": sealed},
        })  # fmt: skip
    pid = str(req.get("protector_id") or "")
    if step == "enable":
        if not req.get("escrow_ref"):
            raise LabFault("refusing to enable BitLocker: no escrow reference for the key")
        if pid not in v["recovery"]:
            raise LabFault(f"no recovery password protector {pid} on {mp}")
        v["escrow"][pid] = f"osiris_vault:{req['escrow_ref']}"
        if not _encrypted(v):
            enable(state, p, pid)
        return _result("compliant", {
            "changed": True, "escrow": "osiris_vault", "protector_id": pid,
            "escrow_ref": str(req["escrow_ref"]),
            "action": f"recovery key escrowed in the Osiris vault, BitLocker enabled on {mp}",
        })  # fmt: skip
    if step == "discard":
        if v["volume_status"] != "FullyDecrypted":
            raise LabFault(f"refusing to remove a protector of {mp}: it is {v['volume_status']}")
        if pid not in v["recovery"]:
            raise LabFault(f"no recovery password protector {pid} on {mp}")
        del v["recovery"][pid]
        if not v["recovery"]:
            v["protectors"] = [x for x in v["protectors"] if x != "RecoveryPassword"]
        return _done(True, f"un-escrowed recovery password protector removed from {mp}; "
                     "encryption stays off")  # fmt: skip
    raise LabFault(f"unknown step '{step}'")


def _result(status: str, observed: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "observed": observed, "expected": {}}


def _done(changed: bool, action: str) -> dict[str, Any]:
    return _result("compliant", {"changed": changed, "action": action})
