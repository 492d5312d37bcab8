"""Synthetic evidence: a complete, correctly signed export built in memory.

Used by the benchmarks, the verifier's tests and the format documentation's worked example, so
they all exercise the same real code paths (keys, chain, Merkle log, signed checkpoint,
cosignatures) that the agent and the server use. Nothing here is used in production paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import canonical, tlog
from .evidence import Chain, bundle_hash, envelope_bytes, sign_bundle
from .export import write_export
from .keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name
from .note import Checkpoint, TlogProof, add_signature_lines, cosign, sign_note

ORIGIN = "cc.example.test/osiris/log"


@dataclass
class SynthLog:
    """A tiny in-memory transparency log with the server's exact hashing and note format."""

    signer: Signer
    origin: str = ORIGIN
    store: tlog.MemoryStore = field(default_factory=tlog.MemoryStore)
    entries: list[bytes] = field(default_factory=list)

    def append(self, entry: bytes) -> int:
        self.entries.append(entry)
        return self.store.append(tlog.leaf_hash(entry))

    def checkpoint(self, size: int | None = None) -> str:
        tree = tlog.MerkleTree(self.store)
        size = tree.size if size is None else size
        body = Checkpoint(self.origin, size, tree.root(size)).body()
        return sign_note(body, [self.signer])

    def proof(self, index: int, checkpoint_note: str) -> str:
        cp = Checkpoint.parse(checkpoint_note.split("\n\n", 1)[0] + "\n")
        hashes = tlog.MerkleTree(self.store).inclusion_proof(index, cp.size)
        return TlogProof(index=index, hashes=hashes, checkpoint=checkpoint_note).format()


@dataclass
class SynthExport:
    log: SynthLog
    appliances: dict[str, tuple[Signer, Signer]]
    envelopes: list[dict[str, Any]]
    proofs: dict[str, str]
    checkpoint: str

    @property
    def vkeys(self) -> list[str]:
        out = []
        for sign_key, cosign_key in self.appliances.values():
            out += [sign_key.vkey, cosign_key.vkey]
        return out

    def write(self, out: Path) -> Path:
        write_export(
            out,
            log_vkey=self.log.signer.vkey,
            appliance_vkeys=self.vkeys,
            envelopes=self.envelopes,
            proofs=self.proofs,
            checkpoint=self.checkpoint,
        )
        return out


def make_export(
    n_bundles: int = 20,
    n_appliances: int = 2,
    *,
    cosign_checkpoint: bool = True,
    start: datetime | None = None,
    log_signer: Signer | None = None,
    cosign_at: datetime | None = None,
) -> SynthExport:
    """Build `n_bundles` signed bundles spread round-robin over appliances, all in one log."""
    log = SynthLog(log_signer or Signer.generate(ORIGIN))
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    appliances: dict[str, tuple[Signer, Signer]] = {}
    chains: dict[str, Chain] = {}
    for a in range(n_appliances):
        app_id = f"app-{a:03d}"
        name = appliance_key_name(app_id)
        appliances[app_id] = (
            Signer.generate(name),
            Signer.generate(name, key_type=KEY_TYPE_COSIGNATURE),
        )
        chains[app_id] = Chain(app_id)
    envelopes: list[dict[str, Any]] = []
    app_ids = list(appliances)
    for i in range(n_bundles):
        app_id = app_ids[i % len(app_ids)]
        t = canonical.format_time(start + timedelta(seconds=i))
        chain = chains[app_id]
        bundle = chain.next(
            site_id="site-001",
            host_id=f"{app_id}-dc01",
            check="windows_firewall",
            controls=["164.312(a)(1)", "164.312(e)(1)"],
            outcome="healed" if i % 7 == 3 else "compliant",
            tier="L1" if i % 7 == 3 else "monitor",
            runbook_id="RB-WIN-FIREWALL-001" if i % 7 == 3 else None,
            action_taken="Set-NetFirewallProfile -Enabled True" if i % 7 == 3 else None,
            pre_state={"domain": False, "private": True, "public": True},
            post_state={"domain": True, "private": True, "public": True},
            started_at=t,
            finished_at=t,
            agent_version="0.1.0",
            clock={"ntp_ok": True, "offset_ms": 3, "source": "127.0.0.1"},
        )
        chain.advance(bundle)
        env = sign_bundle(bundle, appliances[app_id][0])
        log.append(envelope_bytes(env))
        envelopes.append(env)
    note = log.checkpoint()
    if cosign_checkpoint:
        body = note.split("\n\n", 1)[0] + "\n"
        ts = int((cosign_at or start + timedelta(seconds=n_bundles + 60)).timestamp())
        lines = [cosign(body, cos, ts) for _, cos in appliances.values()]
        note = add_signature_lines(note, lines)
    proofs = {bundle_hash(env["bundle"]): log.proof(i, note) for i, env in enumerate(envelopes)}
    return SynthExport(log, appliances, envelopes, proofs, note)
