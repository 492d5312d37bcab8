"""Escrow first, then enable: the agent's half of RB-WIN-ENCRYPTION-001's remediate.

Why the agent drives it in steps (the script's own comment names them): BitLocker's recovery
password is the only way back into a disk whose TPM state changed, so encryption must never be
turned on while that password is known to nobody but the disk. On a domain-joined host the
script backs it up to AD DS itself before enabling. Otherwise:

1. ``protect`` — the agent makes a one-run RSA-3072 key and sends its public half on the
   script's stdin (not a parameter: no policy, order or operator can choose the key). The script
   adds the protector and prints the password only RSA-OAEP-sealed to that key, with encryption
   still off.
2. The agent opens it in memory, drops the sealed blob from the result (it never reaches
   evidence, a log or the console), and hands the password to the server's vault
   (``POST /appliances/{id}/escrow``, ``osiris_agent/escrow_upload.py``).
3. ``enable`` — only after the server answered with an ``escrow_ref``. If the escrow fails, a
   ``discard`` step removes the protector again, the remediate is an error (nothing encrypted)
   and the engine takes the failure up to L3.

The evidence keeps only where the key went: ``{"escrow": "ad_ds"|"osiris_vault",
"protector_id", "escrow_ref"}`` (``PhaseResult.summary``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any, Protocol

from .executor import PhaseResult, error_text

# runbook id -> the kind of secret its remediate escrows
ESCROWED = {"RB-WIN-ENCRYPTION-001": "bitlocker_recovery_password"}
RECOVERY_PASSWORD = re.compile(r"[0-9]{6}(-[0-9]{6}){7}")
PROTECTOR_ID = re.compile(r"\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}")
RSA_BITS = 3072


class EscrowSink(Protocol):
    """Stores one secret where an admin can get it back; returns its reference, or raises."""

    def __call__(self, host_id: str, kind: str, protector_id: str, secret: str) -> str: ...


class EscrowFailed(Exception):
    """The secret could not be escrowed (message names why; never the secret)."""


def _b64(n: int) -> str:
    return base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode("ascii")


def escrowed_remediate(
    run: Callable[[str], PhaseResult], host_id: str, kind: str, sink: EscrowSink | None
) -> list[PhaseResult]:
    """The remediate's steps in order; the last one is the remediate's verdict."""
    if sink is None:
        why = "no escrow path for the recovery key on this appliance; encryption not enabled"
        return [PhaseResult("remediate", "error", {}, {}, None, error=error_text("refused", why))]
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pub = key.public_key().public_numbers()
    first = run(json.dumps({"step": "protect", "seal_to": {"n": _b64(pub.n), "e": _b64(pub.e)}}))
    pending = first.observed.pop("escrow_pending", None)  # never kept, whatever happens next
    if first.status == "error" or pending is None:
        return [first]  # already encrypted, AD DS path done, or the script failed
    pid = str(pending.get("protector_id", "")) if isinstance(pending, dict) else ""
    first.phase = "protect"
    steps = [first]
    try:
        if not PROTECTOR_ID.fullmatch(pid):
            raise EscrowFailed("the script named no valid protector id")
        try:
            sha1 = hashes.SHA1()  # what RSACryptoServiceProvider.Encrypt(bytes, $true) uses
            oaep = padding.OAEP(mgf=padding.MGF1(sha1), algorithm=sha1, label=None)
            secret = key.decrypt(base64.b64decode(str(pending.get("sealed", ""))), oaep).decode()
        except (ValueError, UnicodeDecodeError):
            raise EscrowFailed("the sealed recovery password could not be opened") from None
        if not RECOVERY_PASSWORD.fullmatch(secret):
            raise EscrowFailed("the sealed value is not a BitLocker recovery password")
        try:
            ref = sink(host_id, kind, pid, secret)
        except Exception as exc:  # noqa: BLE001 - any failure means: do not enable
            why = f"the server did not take it ({type(exc).__name__}: {exc})"
            raise EscrowFailed(why) from None
        finally:
            secret = ""
    except EscrowFailed as exc:
        if PROTECTOR_ID.fullmatch(pid):
            discard = run(json.dumps({"step": "discard", "protector_id": pid}))
            discard.phase = "discard"
            steps.append(discard)
        why = f"escrow of the recovery key failed: {exc}; encryption not enabled"
        steps.append(
            PhaseResult(
                "remediate",
                "error",
                {"escrow": "failed", "protector_id": pid},
                {},
                None,
                error=error_text("refused", why),
            )  # fmt: skip
        )
        return steps
    steps.append(run(json.dumps({"step": "enable", "protector_id": pid, "escrow_ref": ref})))
    return steps


def remediate_steps(executor: Any, host_id: str, runbook: Any, values: Any) -> list[PhaseResult]:
    """The remediate phase as the executor runs it: one run, or the escrow steps."""
    if runbook.id not in ESCROWED:
        return [executor.run_phase(host_id, runbook, "remediate", values)]
    return escrowed_remediate(
        lambda stdin: executor.run_phase(host_id, runbook, "remediate", values, stdin=stdin),
        host_id, ESCROWED[runbook.id], executor.escrow,
    )  # fmt: skip
