"""What every real-host runbook test does: detect, heal through the real engine, sign and check
the evidence, and look at the host through its own eyes (``DebianHost.exec``).

Why a kit: the per-runbook proofs (``test_runbook_proofs.py``), the older single-case tests
(``test_linux_runbooks.py``) and the lock-out tests share one way of driving the agent's own
``Executor``/``HealingEngine`` over its own ``SshTransport`` — nothing here stands in for them.
The evidence is signed with a real appliance key and checked the way the verifier checks it:
each envelope's signature (``verify_envelope``) and the hash chain (``prev_hash`` is the
previous bundle's hash, ``seq`` counts up).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import Executor
from osiris_agent.hosts.ssh import SshTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.errors import SignatureError
from osiris_core.evidence import GENESIS_HASH, Chain, bundle_hash, sign_bundle, verify_envelope
from osiris_core.keys import Signer, appliance_key_name

CAT = load_catalog()
APPLIANCE = "app-1"


class Sinks:
    """The engine's evidence and incident sinks: each bundle validated, chained and signed."""

    def __init__(self) -> None:
        self.chain = Chain(APPLIANCE)
        self.signer = Signer.generate(appliance_key_name(APPLIANCE))
        self.bundles: list[dict[str, Any]] = []
        self.envelopes: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        b = self.chain.next(site_id="site-1", **fields)  # validates the bundle
        self.envelopes.append(sign_bundle(b, self.signer))
        self.bundles.append(b)
        return self.chain.advance(b)

    def raise_incident(self, **kw: Any) -> None:
        self.incidents.append(kw)

    def outcomes(self) -> list[tuple[str, str, str | None]]:
        return [(b["outcome"], b["tier"], b["runbook_id"]) for b in self.bundles]


def check_evidence(sinks: Sinks) -> None:
    """Every envelope verifies under the appliance key, the chain links, and a changed byte in
    any bundle is caught (the check can fail)."""
    assert sinks.envelopes, "no evidence was recorded"
    keys = {sinks.signer.key_id_hex: sinks.signer.verifier()}
    prev, seq = GENESIS_HASH, 0
    for env in sinks.envelopes:
        verify_envelope(env, keys)
        b = env["bundle"]
        assert b["prev_hash"] == prev and b["seq"] == seq + 1, "the hash chain is broken"
        prev, seq = bundle_hash(b), b["seq"]
    forged = copy.deepcopy(sinks.envelopes[0])
    forged["bundle"]["action_taken"] += " (edited)"
    with pytest.raises(SignatureError):
        verify_envelope(forged, keys)


def detect(tr: SshTransport, rid: str, params: dict | None = None) -> Finding:
    pr = Executor(CAT, lambda h: tr).run_phase("deb-1", CAT.runbook(rid), "detect", params)
    return Finding(
        "deb-1", CAT.runbook(rid).check, rid, pr.status, pr.observed, pr.expected,
        canonical.utc_now(), pr.error,
    )  # fmt: skip


def heal(tr: SshTransport, f: Finding, policy: Policy | None = None) -> Sinks:
    sinks = Sinks()
    HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC)).handle(
        f, policy or Policy.default(CAT)
    )
    if sinks.bundles:
        check_evidence(sinks)
    return sinks


def run_order(tr: SshTransport, rid: str) -> Sinks:
    """What an operator does for a runbook the baseline only escalates (patching, MAC): an
    accepted ``run_runbook`` order, run in an open maintenance window through the same executor
    and guards as a heal."""
    sinks = Sinks()
    policy = Policy.default(CAT, in_window=lambda now: True)
    order = {"kind": "run_runbook", "order_id": "ord-realhost-1", "disruptive": True,
             "params": {"runbook_id": rid}}  # fmt: skip
    HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC)).run_order(
        order, "deb-1", policy
    )
    check_evidence(sinks)
    return sinks


def phases(bundle: dict[str, Any]) -> list[str]:
    return [p["phase"] for p in (bundle.get("post_state") or {}).get("phases", [])]
