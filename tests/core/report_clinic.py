"""A clinic whose evidence a test writes bundle by bundle: real keys, real chain, real log.

The report tests (tests/core/test_report*.py) need months of evidence shaped exactly: a host
silent on three given days, a finding healed by a given bundle, a risk acceptance, a review.
Each bundle is built by osiris_core.evidence.Chain, signed with the appliance's Ed25519 key,
appended to a SynthLog (the server's hashing and note format), and the checkpoint is cosigned
by the appliance, so a packet of it verifies strictly against the appliance's attestation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.controls import controls_for
from osiris_core.evidence import Chain, bundle_hash, envelope_bytes, sign_bundle
from osiris_core.export import write_export
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name
from osiris_core.note import add_signature_lines, cosign
from osiris_core.report import expected_checks
from osiris_core.synth import ORIGIN, SynthLog
from osiris_core.trust import TrustRoots, load_trust_item, make_attestation

SITE = "site-001"
APP = "app-1"
WINDOWS = sorted(expected_checks()["windows"])
NIXOS = sorted(expected_checks()["nixos"])


def days_of(month: str) -> list[str]:
    y, m = (int(x) for x in month.split("-"))
    d, out = date(y, m, 1), []
    while d.month == m:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


class Clinic:
    """One appliance (``app-1``, platform nixos) signing evidence for its hosts."""

    def __init__(self) -> None:
        name = appliance_key_name(APP)
        self.signer = Signer.generate(name)
        self.cosigner = Signer.generate(name, key_type=KEY_TYPE_COSIGNATURE)
        self.chain = Chain(APP)
        self.log = SynthLog(Signer.generate(ORIGIN))
        self.envelopes: list[dict[str, Any]] = []

    def add(
        self, host: str, check: str, outcome: str, at: str, *, tier: str = "monitor",
        post_state: dict[str, Any] | None = None, started_at: str | None = None,
        order_id: str | None = None,
    ) -> int:  # fmt: skip
        """Sign one bundle; returns its seq."""
        b = self.chain.next(
            site_id=SITE, host_id=host, check=check, controls=list(controls_for(check)),
            outcome=outcome, tier=tier, runbook_id=None, order_id=order_id,
            action_taken=None, pre_state=None, post_state=post_state,
            started_at=started_at or at, finished_at=at, agent_version="0.1.0",
            clock={"ntp_ok": True, "offset_ms": 2, "source": "127.0.0.1"},
        )  # fmt: skip
        self.chain.advance(b)
        env = sign_bundle(b, self.signer)
        self.log.append(envelope_bytes(env))
        self.envelopes.append(env)
        return b["seq"]

    def snapshot(self, host: str, at: str, checks: list[str], bad: dict[str, str] | None = None):
        """The scanner's hourly snapshot of ``host``: every check compliant unless in ``bad``
        (check -> drift|error)."""
        bad = bad or {}
        runbooks = {
            f"RB-{c}": {"check": c, "status": bad.get(c, "compliant"), "since": at,
                        "last_seen": at}
            for c in checks
        }  # fmt: skip
        counts: dict[str, int] = {}
        for r in runbooks.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        outcome = "compliant" if set(counts) == {"compliant"} else "alert"
        return self.add(
            host, "evidence_pipeline", outcome, at,
            post_state={"counts": counts, "runbooks": runbooks},
        )  # fmt: skip

    def statement(self, check: str, post: dict[str, Any], at: str) -> int:
        return self.add(APP, check, "compliant", at, tier="order", post_state=post,
                        order_id="ord-" + at[:10])  # fmt: skip

    def month(
        self,
        month: str,
        hosts: dict[str, list[str]],
        *,
        skip: dict[str, set[str]] | None = None,
        drift: dict[str, tuple[str, dict[str, str]]] | None = None,
        on_day: Callable[[str], None] | None = None,
    ) -> None:
        """A boundary bundle the day before, a snapshot of every host at 06:00 each day of the
        month (except the days in ``skip[host]``; from day D on, ``drift[host] = (D, {check:
        status})`` in its snapshots), ``on_day(day)`` after each day's snapshots, and nothing
        after: call :meth:`close`."""
        days = days_of(month)
        before = (date.fromisoformat(days[0]) - timedelta(days=1)).isoformat()
        self.snapshot(APP, f"{before}T23:00:00.000Z", NIXOS)
        for d in days:
            for h, checks in sorted(hosts.items()):
                if d not in (skip or {}).get(h, set()):
                    since, bad = (drift or {}).get(h, ("9999", {}))
                    self.snapshot(h, f"{d}T06:00:00.000Z", checks, bad if d > since else None)
            if on_day is not None:
                on_day(d)

    def close(self, month: str) -> None:
        """The end boundary: a bundle on the first day after the month."""
        after = (date.fromisoformat(days_of(month)[-1]) + timedelta(days=1)).isoformat()
        self.snapshot(APP, f"{after}T01:00:00.000Z", NIXOS)

    def export(self, out: Path) -> Path:
        note = self.log.checkpoint()
        body = note.split("\n\n", 1)[0] + "\n"
        ts = int(canonical.parse_time(self.envelopes[-1]["bundle"]["finished_at"]).timestamp())
        note = add_signature_lines(note, [cosign(body, self.cosigner, ts + 60)])
        proofs = {
            bundle_hash(e["bundle"]): self.log.proof(i, note) for i, e in enumerate(self.envelopes)
        }
        write_export(
            out, log_vkey=self.log.signer.vkey,
            appliance_vkeys=[self.signer.vkey, self.cosigner.vkey],
            envelopes=self.envelopes, proofs=proofs, checkpoint=note,
        )  # fmt: skip
        return out

    def trust(self) -> TrustRoots:
        head = self.envelopes[-1]["bundle"]
        att = make_attestation(
            self.signer, appliance_id=APP, site_id=SITE, cosign_vkey=self.cosigner.vkey,
            log_vkey=self.log.signer.vkey, order_vkey=self.log.signer.vkey, rotations=[],
            chain_head={"seq": head["seq"], "hash": bundle_hash(head)},
            cosigned_checkpoint=None, attested_at=canonical.utc_now(), agent_version="0.1.0",
        )  # fmt: skip
        roots = TrustRoots()
        load_trust_item(att, f"attestation {APP}", roots)
        return roots
