"""Checking and healing: run what is due on every host, hand drift to the healing engine, and
keep the last result per (host, check) for status, check-in and the console.

Why its own module: detecting (the scanner), fixing (the healing engine) and remembering the
outcome are one step of the cycle; the result the agent reports is the one *after* any heal (a
fixed host is compliant now, not at the next scan).

A check that could not run is stored as ``error`` with its reason where the console reads it
(``observed[runbook] = {"error": {"kind", "detail"}}``; the check-in sends the kind as the
check's ``reason``); a host the scanner found unworkable (``Scanner.host_errors``) has *every*
check stored as ``error``, not only the one that tried.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from osiris_core import canonical

from .healing.executor import error_record
from .recorder import AgentEvidence

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport
    from .healing.engine import Finding

log = logging.getLogger("osiris.agent")


class Healer:
    """The cycle's check and heal step on the context."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    def facts(self) -> dict[str, Any]:
        """What the agent measured about the appliance this cycle, by catalogue fact name."""
        return {"appliance.clock": self.ctx.clock}

    def run_checks(
        self, report: CycleReport, host_id: str | None = None, only: list[str] | None = None
    ) -> None:
        """The appliance's fact-judged checks (``timesync``), every cycle and on a
        ``collect_evidence`` order: the scanner judges and signs, and the verdict is the last
        result, in the same transaction. A ``host_id`` other than the appliance has none."""
        ctx = self.ctx
        if host_id is not None and host_id != ctx.appliance_id:
            return
        sink = AgentEvidence(ctx, report)
        with ctx.db.tx():
            for check, v, finished in ctx.scanner.judge_facts(
                ctx.appliance_id, self.facts(), only, evidence=sink
            ):
                observed = v.observed
                if v.status == "error":  # say why, as a detect script's error does
                    kind = "crashed" if v.detail == "check crashed" else "script"
                    observed = {**observed, "error": error_record(f"{kind}: {v.detail}")}
                ctx.db.set_result(ctx.appliance_id, check, v.status, observed, v.expected, finished)

    def scan_targets(self) -> list[Any]:
        """What the scanner looks at: the site's targets, plus the appliance itself on NixOS."""
        from .hosts.base import Target

        ctx = self.ctx
        out = list(ctx.targets)
        if ctx.scan_self:
            out.append(Target(host_id=ctx.appliance_id, kind="local", address="localhost"))
        return out

    def heal(self, report: CycleReport) -> None:
        """Detect what is due on every target and hand each finding to the healing engine."""
        ctx = self.ctx
        targets = self.scan_targets()
        if not targets:
            return
        try:
            findings = ctx.scanner.run(targets, ctx.now(), ctx.policy)
        except Exception as e:  # noqa: BLE001 - a scanner bug must not stop the cycle
            log.exception("scan crashed")
            report.errors.append(f"scan: {type(e).__name__}")
            return
        healed: dict[tuple[str, str], dict[str, Any]] = {}
        sink = ctx.evidence_sink
        for f in findings:
            mark = len(sink.emitted)
            try:
                ctx.engine.handle(f, ctx.policy)
            except Exception as e:  # noqa: BLE001
                log.exception("healing %s on %s crashed", f.runbook_id, f.host_id)
                report.errors.append(f"heal {f.runbook_id}: {type(e).__name__}")
                continue
            for b in sink.emitted[mark:]:
                if b["outcome"] == "healed" and b["runbook_id"] == f.runbook_id:
                    healed[(f.host_id, f.runbook_id)] = b.get("post_state") or {}
        self.store_findings(findings, healed, ctx.scanner.host_errors)

    def store_findings(
        self,
        findings: list[Finding],
        healed: dict[tuple[str, str], dict[str, Any]],
        host_errors: dict[str, tuple[str, list[str]]] | None = None,
    ) -> None:
        """Last result per (host, check) for status, check-in and the console: the worst status
        of the check's runbooks, with observed/expected per runbook (after any heal); every
        check of a host in ``host_errors`` (host id → (error, its check ids)) is an error."""
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            groups.setdefault((f.host_id, f.check), []).append(f)
        now = canonical.utc_now()
        db = self.ctx.db
        with db.tx():
            for (host, check), fs in groups.items():
                statuses, observed, expected = [], {}, {}
                for f in fs:
                    status, obs = f.status, f.observed
                    post = healed.get((host, f.runbook_id))
                    if post is not None:
                        status = "compliant"
                        obs = post.get("observed", obs) if isinstance(post, dict) else obs
                    elif status == "error" and f.error:
                        obs = {"error": error_record(f.error)}
                    statuses.append(status)
                    observed[f.runbook_id] = obs
                    expected[f.runbook_id] = f.expected
                worst = next((s for s in ("drift", "error") if s in statuses), "compliant")
                db.set_result(host, check, worst, observed, expected, now)
            for host, (error, checks) in (host_errors or {}).items():
                for check in checks:
                    if (host, check) not in groups:
                        db.set_result(host, check, "error", {"error": error_record(error)}, {}, now)
