"""Signing evidence: one bundle into the chain and the outbox, and the sinks built on it.

Why its own module: every part of the agent records evidence, and all of it must carry the
same defaults (site, clock verdict, agent version, deployment mode, the policy version and
ruleset hash in force), be refused the same way when the outbox is full (an incident, once) or
the chain is closed (decommissioned), and follow a key rotation another process committed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.controls import controls_for
from osiris_core.evidence import bundle_hash

from . import AGENT_VERSION, keyring
from .outbox import Decommissioned, OutboxFull

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

DECOMMISSION_CHECK = "appliance_decommission"


class Recorder:
    """Signs bundles for the context: defaults, outbox-full and decommissioned handling."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    def record(self, report: CycleReport | None = None, **fields: Any) -> dict[str, Any] | None:
        """Sign one bundle into the chain and the outbox; ``None`` if the outbox is full or the
        appliance was decommissioned (nothing is signed after the chain was closed)."""
        ctx = self.ctx
        fields.setdefault("site_id", ctx.site_id)
        fields.setdefault("controls", [])
        fields.setdefault("clock", ctx.clock_field())
        fields.setdefault("agent_version", AGENT_VERSION)
        fields.setdefault("deployment_mode", ctx.cfg.deployment.mode)
        fields.setdefault("reseller_id", ctx.cfg.deployment.reseller_id)
        for k, v in ctx.policy.evidence_fields().items():
            fields.setdefault(k, v)
        try:
            env = self.sign(fields)
        except OutboxFull as e:
            if report is not None:
                report.refused_full += 1
            self._outbox_full(str(e), fields)
            return None
        except Decommissioned as e:
            log.error("evidence NOT recorded: %s (%s on %s)", e, fields.get("check"),
                      fields.get("host_id"))  # fmt: skip
            if report is not None:
                report.errors.append(str(e))
            return None
        if report is not None:
            report.recorded += 1
        if ctx.reseller is not None:  # a copy leaves only once the bundle is committed
            ctx.db.after_commit(lambda r=ctx.reseller: r.emit(env))
        return env

    def sign(self, fields: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        try:
            return ctx.outbox.record(ctx.signer, ctx.appliance_id, **fields)
        except keyring.KeyRotated:
            # `osiris-agent rotate-key` committed a new key meanwhile: sign with it (the outbox
            # checks under its write lock, so the old key never signs at or past effective_seq).
            self.reload_signer()
            return ctx.outbox.record(ctx.signer, ctx.appliance_id, **fields)

    def reload_signer(self) -> None:
        """Load the signing key ``state.db`` now names (after another process rotated it)."""
        ctx = self.ctx
        ctx.signer = keyring.load_signer(ctx.cfg.agent.key_file, ctx.db.get(keyring.SIGNING_KEY))
        if ctx.reseller is not None:
            ctx.reseller.signer = ctx.signer
        log.warning("signing key reloaded after a rotation: %s+%s", ctx.signer.name,
                    ctx.signer.key_id_hex)  # fmt: skip

    def decommission(self) -> dict[str, Any]:
        """Sign the bundle that closes the chain and mark the state decommissioned, in one
        transaction: after it, :meth:`Outbox.record` refuses every bundle. Raises
        ``Decommissioned`` if that was already done, ``OutboxFull`` if it cannot be recorded."""
        ctx = self.ctx
        now = canonical.utc_now()
        with ctx.db.tx():
            seq, _head = ctx.outbox.head()
            env = self.sign(dict(
                site_id=ctx.site_id, host_id=ctx.appliance_id, check=DECOMMISSION_CHECK,
                controls=list(controls_for(DECOMMISSION_CHECK)), outcome="compliant",
                tier="monitor", action_taken="appliance decommissioned: evidence chain closed",
                pre_state={"observed": {"chain_seq": seq, "queued": ctx.outbox.depth()}},
                started_at=now, finished_at=now, clock=ctx.clock_field(),
                agent_version=AGENT_VERSION, deployment_mode=ctx.cfg.deployment.mode,
                reseller_id=ctx.cfg.deployment.reseller_id, **ctx.policy.evidence_fields(),
            ))  # fmt: skip
            ctx.db.set("decommissioned", str(env["bundle"]["seq"]))
        if ctx.reseller is not None:
            ctx.reseller.emit(env)
        return env

    def _outbox_full(self, why: str, fields: dict[str, Any]) -> None:
        db = self.ctx.db
        log.error("outbox full, evidence NOT recorded: %s (%s on %s)", why,
                  fields.get("check"), fields.get("host_id"))  # fmt: skip
        with db.tx():
            n = int(db.get("refused_full", "0") or 0) + 1
            db.set("refused_full", str(n))
            pending = [i for i in db.unsent_incidents() if i["kind"] == "outbox_full"]
            if not pending:
                db.add_incident(
                    "outbox_full",
                    "critical",
                    "the evidence outbox is full; new evidence is being refused",
                    {"reason": why, "refused_total": n, "depth": self.ctx.outbox.depth()},
                )


class AgentEvidence:
    """The healing engine's and scanner's ``EvidenceSink``: the outbox's record (sign, chain,
    queue in one fsync'd transaction). Remembers what it emitted during the current cycle so the
    cycle can update the last results (a heal makes the host compliant now, not next scan).
    ``report``: count into this report rather than the current cycle's."""

    def __init__(self, ctx: AgentContext, report: CycleReport | None = None) -> None:
        self.agent = ctx
        self.report = report
        self.emitted: list[dict[str, Any]] = []

    @property
    def refusing(self) -> bool:
        """The outbox is at its bound or the chain is closed: the healer acts on nothing, since
        its action could not be recorded (the outbox-full incident says why)."""
        ob = self.agent.outbox
        depth = ob.db.get("outbox_entries")  # the O(1) counter (outbox.py)
        full = (int(depth) if depth is not None else ob.depth()) >= ob.max_entries
        return full or ob.decommissioned is not None

    def emit(self, **fields: Any) -> str:
        report = self.report if self.report is not None else self.agent.report
        env = self.agent.record(report, **fields)
        if env is None:  # outbox full: an incident is already queued; nothing was signed
            return ""
        self.emitted.append(env["bundle"])
        return bundle_hash(env["bundle"])


class AgentIncidents:
    """The engine's ``IncidentSink``: the durable incident queue in ``state.db``, delivered by
    the flush (:mod:`osiris_agent.flush`) whenever the server is reachable (an L3 raised while
    the server is down waits there, it is not lost)."""

    def __init__(self, ctx: AgentContext) -> None:
        self.agent = ctx

    def raise_incident(
        self,
        *,
        kind: str,
        severity: str,
        host_id: str | None,
        check: str | None,
        summary: str,
        details: dict[str, Any],
    ) -> None:
        log.warning("incident %s (%s) on %s: %s", kind, severity, host_id, summary[:200])
        with self.agent.db.tx():
            self.agent.db.add_incident(
                kind, severity, summary, {**details, "host_id": host_id, "check": check}
            )
