"""``osiris-agent attest``: the clinic's attestation for auditors (DESIGN §3.3 trust roots).

The attestation (``osiris_core.trust.make_attestation``) is what an auditor trusts instead of
the keys inside an MSP-made export: signed on the appliance with its current signing key, it
names the appliance and site, both appliance vkeys, the log and order vkeys pinned at
enrolment (``pins.json``), the key history (``meta.key_history``), the chain head and the newest
checkpoint the appliance verified, with the appliance's own cosignature made now.

Only reads: ``state.db`` is opened read-only (one read transaction, so head, history and
checkpoint are one consistent moment) and works beside a running agent, without network.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core import note as notes
from osiris_core.agent_state import AgentStateError, read_agent_state
from osiris_core.errors import NoteError, OsirisError
from osiris_core.evidence import GENESIS_HASH
from osiris_core.files import write_atomic
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Verifier, load_private_key
from osiris_core.trust import fingerprint, make_attestation

from . import AGENT_VERSION, keyring
from .enroll import read_pins

_META_KEYS = (
    "chain_seq",
    "chain_head",
    keyring.HISTORY_KEY,
    keyring.SIGNING_KEY,
    "witness_checkpoint",
    "witness_size",
)


class AttestError(OsirisError):
    """The attestation cannot be made from this state (exit 2)."""

    code = "E_ATTEST"


@dataclass
class AttestSummary:
    """What a technician reads over the phone."""

    appliance_id: str
    site_id: str
    signing: str
    cosigning: str
    log: str
    order: str
    rotations: int
    head_seq: int
    head_hash: str
    checkpoint_size: int | None
    release: str | None = None  # the pinned release key; None: enrolled before release keys

    def lines(self) -> list[str]:
        cp = "none verified yet" if self.checkpoint_size is None else f"size {self.checkpoint_size}"
        return [
            f"appliance      {self.appliance_id}",
            f"site           {self.site_id}",
            f"signing key    {self.signing}",
            f"cosigning key  {self.cosigning}",
            f"log key        {self.log}",
            f"order key      {self.order}",
            f"release key    {self.release or 'none pinned (the order key signs releases)'}",
            f"key history    {self.rotations} rotation(s)",
            f"chain head     seq {self.head_seq} {self.head_hash[:23]}…",
            f"checkpoint     {cp} (cosigned now)",
        ]


def read_meta(state_dir: Path) -> dict[str, str]:
    """The meta rows the attestation needs, through the read-only state view (one read
    transaction, ``osiris_core.agent_state``); {} if there is no state.db yet."""
    if not (state_dir / "state.db").exists():
        return {}
    try:
        meta = read_agent_state(state_dir, evidence_limit=0).meta
    except AgentStateError as e:
        raise AttestError(str(e)) from None
    return {k: v for k, v in meta.items() if k in _META_KEYS}


def build(
    state_dir: str | os.PathLike[str],
    key_file: str | os.PathLike[str] | None = None,
    cosign_key_file: str | os.PathLike[str] | None = None,
    *,
    now: int | None = None,
) -> tuple[dict[str, Any], AttestSummary]:
    """The signed attestation envelope and its phone summary. Raises ``EnrollError`` (not
    enrolled), ``KeyFormatError``/``KeyMismatch`` (keys) or :class:`AttestError`."""
    sd = Path(state_dir)
    pins = read_pins(sd)
    key_file = Path(key_file) if key_file else sd / "appliance.key"
    cosign_key_file = Path(cosign_key_file) if cosign_key_file else sd / "cosign.key"
    for attempt in range(3):  # a rotation may commit and move its files between two reads
        meta = read_meta(sd)
        try:
            history = keyring.key_history(meta.get(keyring.HISTORY_KEY))
        except ValueError as e:
            raise AttestError(f"state.db: key_history unreadable: {e}") from None
        try:
            signer = keyring.load_signer(key_file, meta.get(keyring.SIGNING_KEY))
            break
        except keyring.KeyMismatch:
            if attempt == 2:
                raise
    cosigner = load_private_key(cosign_key_file)
    if cosigner.key_type != KEY_TYPE_COSIGNATURE:
        raise AttestError(f"{cosign_key_file} is not a cosignature key")
    log_v = Verifier.from_vkey(pins["log_vkey"])
    seq = int(meta.get("chain_seq", "0") or 0)
    head = {"seq": seq, "hash": meta.get("chain_head") or GENESIS_HASH}
    if seq == 0:
        head["hash"] = GENESIS_HASH
    size = int(meta.get("witness_size", "0") or 0)
    cp_note = meta.get("witness_checkpoint")
    cosigned: str | None = None
    if cp_note and size > 0:
        ts = int(time.time()) if now is None else now
        try:
            body = notes.open_note(cp_note, [log_v]).text
            line = notes.cosign(body, cosigner, ts)
            cosigned = notes.add_signature_lines(cp_note, [line])
        except NoteError as e:
            raise AttestError(f"the stored checkpoint does not verify: {e}") from None
    try:
        env = make_attestation(
            signer,
            appliance_id=pins["appliance_id"],
            site_id=pins["site_id"],
            cosign_vkey=cosigner.vkey,
            log_vkey=log_v.vkey,
            order_vkey=Verifier.from_vkey(pins["order_vkey"]).vkey,
            rotations=history,
            chain_head=head,
            cosigned_checkpoint=cosigned,
            attested_at=canonical.utc_now(),
            agent_version=AGENT_VERSION,
        )
    except OsirisError as e:
        raise AttestError(f"cannot attest this state: {e}") from None
    summary = AttestSummary(
        appliance_id=pins["appliance_id"],
        site_id=pins["site_id"],
        signing=fingerprint(signer.vkey),
        cosigning=fingerprint(cosigner.vkey),
        log=fingerprint(log_v.vkey),
        order=fingerprint(pins["order_vkey"]),
        rotations=len(history),
        head_seq=seq,
        head_hash=head["hash"],
        checkpoint_size=size if cosigned is not None else None,
        release=fingerprint(pins["release_vkey"]) if isinstance(pins.get("release_vkey"), str)
        else None,
    )  # fmt: skip
    return env, summary


def write(path: str | os.PathLike[str], env: dict[str, Any]) -> None:
    """Atomic 0644 write (temp file beside it, fsync, rename, fsync dir): public data only."""
    data = (json.dumps(env, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_atomic(path, data, mode=0o644)
