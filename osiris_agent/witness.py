"""The appliance as a witness of the server's transparency log (reference/evidence.md §6.3).

The MSP runs the server and is the party being audited, so the agent does not take a receipt on
the server's word. For every ``POST /evidence`` answer it checks, before acknowledging anything:

1. the checkpoint note carries a valid signature by the *pinned* log key (pinned at enrollment),
   and its origin is the pinned origin;
2. the new checkpoint is consistent with the last checkpoint this appliance verified (an RFC 9162
   consistency proof from our size) — a log that was rolled back or forked fails here;
3. every receipt (a C2SP tlog-proof) proves inclusion of exactly the bytes we sent, at the index
   the server claims, under that same checkpoint.

Only when the whole batch passes are its entries acknowledged and the new checkpoint stored, in one
transaction. On any failure nothing is acknowledged, a ``log_inconsistent`` incident is queued and
the witness stops trusting the server's checkpoints (persisted in ``state.db``) until a technician
clears it. At each check-in the agent cosigns (``cosignature/v1``, key type 0x04, its separate
cosigning key) the newest checkpoint it verified, so history cannot be rewritten without
contradicting a signature held at the clinic.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from osiris_core import note as notes
from osiris_core import tlog
from osiris_core.errors import NoteError, OsirisError, ProofError
from osiris_core.keys import Signer, Verifier

from .outbox import Pending
from .state import StateDB


class LogInconsistent(OsirisError):
    """The server's log answer failed a signature, consistency or inclusion check."""

    code = "E_LOG_INCONSISTENT"


@dataclass
class Ack:
    seq: int
    index: int
    receipt: str


@dataclass
class BatchVerdict:
    """What to do with one ``/evidence`` answer once it was verified."""

    acks: list[Ack] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    checkpoint: str | None = None
    size: int = 0
    root: bytes = b""


class Witness:
    """Verifies receipts against the pinned log key and the last verified checkpoint."""

    def __init__(self, db: StateDB, log_verifier: Verifier, origin: str | None = None) -> None:
        self.db = db
        self.log = log_verifier
        self.origin = origin

    # -- stored state -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return int(self.db.get("witness_size", "0") or 0)

    @property
    def root(self) -> bytes:
        v = self.db.get("witness_root")
        return base64.b64decode(v) if v else tlog.EMPTY_ROOT

    @property
    def checkpoint(self) -> str | None:
        return self.db.get("witness_checkpoint")

    @property
    def trusted(self) -> bool:
        return self.db.get("witness_distrust") is None

    @property
    def distrust_reason(self) -> str | None:
        return self.db.get("witness_distrust")

    def distrust(self, reason: str, details: dict[str, Any]) -> None:
        """Stop trusting the server's checkpoints and queue a ``log_inconsistent`` incident."""
        with self.db.tx():
            if self.db.get("witness_distrust") is None:
                self.db.set("witness_distrust", reason[:500])
            self.db.add_incident(
                "log_inconsistent",
                "critical",
                f"transparency log check failed: {reason}"[:500],
                {**details, "last_verified_size": self.size},
            )

    def reset_trust(self) -> None:
        """A technician's decision after investigating (``osiris-agent witness reset``)."""
        with self.db.tx():
            self.db.delete("witness_distrust")

    # -- verification -------------------------------------------------------------------------

    def _open_checkpoint(self, note_text: Any, what: str) -> tuple[notes.Checkpoint, str]:
        if not isinstance(note_text, str):
            raise LogInconsistent(f"{what}: not a signed note")
        try:
            opened = notes.open_note(note_text, [self.log])
        except NoteError as e:
            raise LogInconsistent(f"{what}: signature by the pinned log key fails: {e}") from None
        if self.log.name not in opened.verified:
            raise LogInconsistent(f"{what}: not signed by the pinned log key")
        try:
            cp = notes.Checkpoint.parse(opened.text)
        except NoteError as e:
            raise LogInconsistent(f"{what}: malformed checkpoint: {e}") from None
        if self.origin is not None and cp.origin != self.origin:
            raise LogInconsistent(f"{what}: origin {cp.origin!r} is not {self.origin!r}")
        return cp, opened.text

    def verify_batch(self, response: Any, sent: list[Pending]) -> BatchVerdict:
        """Check one ``/evidence`` answer for the bundles in ``sent``; raise on any failure."""
        if not self.trusted:
            raise LogInconsistent(f"not trusting this server's log: {self.distrust_reason}")
        if not isinstance(response, dict):
            raise LogInconsistent("evidence answer is not an object")
        results = response.get("results")
        if not isinstance(results, list) or len(results) != len(sent):
            raise LogInconsistent("evidence answer does not have one result per bundle sent")
        verdict = BatchVerdict()
        to_check: list[tuple[Pending, dict[str, Any]]] = []
        for p, r in zip(sent, results, strict=True):
            if not isinstance(r, dict):
                raise LogInconsistent("a result is not an object")
            if r.get("bundle_hash") not in (None, p.bundle_hash):
                raise LogInconsistent("a result names a bundle we did not send")
            status = r.get("status")
            if status == "rejected":
                verdict.rejected.append((p.seq, _error_text(r.get("error"))))
            elif status in ("accepted", "duplicate") and r.get("bundle_hash") == p.bundle_hash:
                to_check.append((p, r))
            else:
                raise LogInconsistent(f"unexpected result {status!r} for {p.bundle_hash}")
        if not to_check and response.get("checkpoint") is None:
            return verdict  # everything was rejected and the log is empty: nothing to witness

        cp, body = self._open_checkpoint(response.get("checkpoint"), "checkpoint")
        old_size, old_root = self.size, self.root
        cons = response.get("consistency")
        proof: list[bytes] = []
        if old_size > 0:
            if not isinstance(cons, dict):
                raise LogInconsistent(f"no consistency proof from our size {old_size}")
            if cons.get("from") != old_size or cons.get("to") != cp.size:
                raise LogInconsistent(
                    f"consistency proof is {cons.get('from')}->{cons.get('to')}, "
                    f"expected {old_size}->{cp.size}"
                )
            proof = _hashes(cons.get("proof"), "consistency proof")
        try:
            tlog.verify_consistency(old_size, cp.size, old_root, cp.root, proof)
        except ProofError as e:
            kind = "rolled back" if cp.size < old_size else "forked"
            raise LogInconsistent(
                f"log {kind}: checkpoint {cp.size} is not consistent with verified {old_size}: {e}"
            ) from None
        verdict.checkpoint, verdict.size, verdict.root = response["checkpoint"], cp.size, cp.root

        for p, r in to_check:
            receipt = r.get("receipt")
            try:
                tp = notes.TlogProof.parse(receipt)
            except NoteError as e:
                raise LogInconsistent(f"receipt for {p.bundle_hash}: malformed: {e}") from None
            rcp, rbody = self._open_checkpoint(tp.checkpoint, "receipt checkpoint")
            if rbody != body:
                raise LogInconsistent(
                    f"receipt for {p.bundle_hash} is against checkpoint {rcp.size}, "
                    f"not the answer's checkpoint {cp.size}"
                )
            if r.get("index") != tp.index:
                raise LogInconsistent(f"receipt index {tp.index} != result index {r.get('index')}")
            try:
                tlog.verify_inclusion(tlog.leaf_hash(p.data), tp.index, cp.size, tp.hashes, cp.root)
            except ProofError as e:
                raise LogInconsistent(f"inclusion of {p.bundle_hash} fails: {e}") from None
            verdict.acks.append(Ack(p.seq, tp.index, receipt))
        return verdict

    def commit(self, verdict: BatchVerdict, outbox_ack: Any) -> None:
        """Store the verified checkpoint and acknowledge the entries in one transaction."""
        with self.db.tx():
            if verdict.checkpoint is not None and verdict.size >= self.size:
                self.db.set("witness_checkpoint", verdict.checkpoint)
                self.db.set("witness_size", str(verdict.size))
                self.db.set("witness_root", base64.b64encode(verdict.root).decode("ascii"))
            for a in verdict.acks:
                outbox_ack(a.seq, a.index, a.receipt)

    # -- cosigning ----------------------------------------------------------------------------

    def cosignatures(self, cosigner: Signer, now: int | None = None) -> list[dict[str, Any]]:
        """A ``cosignature/v1`` line over the newest verified checkpoint (none if untrusted)."""
        cp_note = self.checkpoint
        if not self.trusted or cp_note is None or self.size == 0:
            return []
        body = notes.open_note(cp_note, [self.log]).text
        line = notes.cosign(body, cosigner, int(time.time()) if now is None else now)
        return [{"size": self.size, "line": line.rstrip("\n")}]


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        return f"{err.get('code', 'E_REJECTED')}: {err.get('message', '')}"[:500]
    return str(err or "rejected by the server")[:500]


def _hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise LogInconsistent(f"{what}: not a list")
    out = []
    for h in value:
        try:
            raw = base64.b64decode(h, validate=True)
        except (ValueError, TypeError):
            raise LogInconsistent(f"{what}: bad base64") from None
        if len(raw) != 32:
            raise LogInconsistent(f"{what}: hash is not 32 bytes")
        out.append(raw)
    return out
