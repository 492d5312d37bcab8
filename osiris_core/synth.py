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
    rotated: dict[str, Signer] = field(default_factory=dict)  # appliance → its new key
    rotations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    site_id: str = "site-001"

    @property
    def vkeys(self) -> list[str]:
        out = []
        for app, (sign_key, cosign_key) in self.appliances.items():
            out += [sign_key.vkey, cosign_key.vkey]
            if app in self.rotated:
                out.append(self.rotated[app].vkey)
        return out

    def pins(self) -> dict[str, Any]:
        """A plain keys file pinning this export's log and appliance keys (site-scoped)."""
        return {"log": self.log.signer.vkey, "appliances": self.vkeys, "site_id": self.site_id}

    def attestation(self, app_id: str, head_seq: int | None = None) -> dict[str, Any]:
        """The attestation this appliance would write (chain head: its newest bundle here)."""
        from .trust import make_attestation

        sign_key, cosign_key = self.appliances[app_id]
        current = self.rotated.get(app_id, sign_key)
        mine = [e["bundle"] for e in self.envelopes if e["bundle"]["appliance_id"] == app_id]
        if head_seq is not None:
            mine = [b for b in mine if b["seq"] <= head_seq]
        head = (
            {"seq": mine[-1]["seq"], "hash": bundle_hash(mine[-1])}
            if mine
            else {"seq": 0, "hash": "sha256:" + "0" * 64}
        )
        return make_attestation(
            current,
            appliance_id=app_id,
            site_id=self.site_id,
            cosign_vkey=cosign_key.vkey,
            log_vkey=self.log.signer.vkey,
            order_vkey=self.log.signer.vkey,
            rotations=self.rotations.get(app_id, []),
            chain_head=head,
            cosigned_checkpoint=self.checkpoint,
            attested_at=canonical.utc_now(),
            agent_version="0.1.0",
        )

    def write(self, out: Path, envelopes: list[dict[str, Any]] | None = None) -> Path:
        """Write the export (or only `envelopes`, a subset, with the same checkpoint)."""
        write_export(
            out,
            log_vkey=self.log.signer.vkey,
            appliance_vkeys=self.vkeys,
            envelopes=self.envelopes if envelopes is None else envelopes,
            proofs=self.proofs,
            checkpoint=self.checkpoint,
            rotations=self.rotations,
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
    step_s: int = 1,
    rotate_at: int | None = None,
    site_id: str = "site-001",
    last_check: str | None = None,
) -> SynthExport:
    """Build `n_bundles` signed bundles spread round-robin over appliances, all in one log.

    `step_s` seconds between bundles; `rotate_at`: every appliance rotates its signing key so
    that bundles from that seq on are signed by a new key (statements in `rotations`);
    `last_check`: the check id of each appliance's last bundle (e.g. a decommission)."""
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
    rotated: dict[str, Signer] = {}
    rotations: dict[str, list[dict[str, Any]]] = {}
    last_i = {a: max(i for i in range(n_bundles) if app_ids[i % len(app_ids)] == a)
              for a in app_ids[: min(n_bundles, len(app_ids))]}  # fmt: skip
    for i in range(n_bundles):
        app_id = app_ids[i % len(app_ids)]
        t = canonical.format_time(start + timedelta(seconds=i * step_s))
        chain = chains[app_id]
        signer = appliances[app_id][0]
        if rotate_at is not None and chain.seq + 1 >= rotate_at:
            if app_id not in rotated:
                from .trust import make_rotation

                new = Signer.generate(appliance_key_name(app_id))
                rotations[app_id] = [
                    make_rotation(signer, new, appliance_id=app_id, site_id=site_id,
                                  effective_seq=chain.seq + 1, at=t)
                ]  # fmt: skip
                rotated[app_id] = new
            signer = rotated[app_id]
        bundle = chain.next(
            site_id=site_id,
            host_id=f"{app_id}-dc01",
            check=last_check if last_check and i == last_i[app_id] else "windows_firewall",
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
        env = sign_bundle(bundle, signer)
        log.append(envelope_bytes(env))
        envelopes.append(env)
    note = log.checkpoint()
    if cosign_checkpoint:
        body = note.split("\n\n", 1)[0] + "\n"
        ts = int((cosign_at or start + timedelta(seconds=n_bundles * step_s + 60)).timestamp())
        lines = [cosign(body, cos, ts) for _, cos in appliances.values()]
        note = add_signature_lines(note, lines)
    proofs = {bundle_hash(env["bundle"]): log.proof(i, note) for i, env in enumerate(envelopes)}
    return SynthExport(log, appliances, envelopes, proofs, note, rotated, rotations, site_id)
