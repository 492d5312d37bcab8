"""The healing engine: drift → L1 rule → L2 plan → L3 incident, each step evidence.

How the agent uses it (small on purpose, so ``cycle.py`` can call it without knowing tiers)::

    engine = HealingEngine(catalog, transports, evidence_sink, incident_sink, db_path=state_db)
    for finding in scanner.run(targets, now):
        engine.handle(finding, policy)            # → bundle hashes it emitted
    engine.run_order(order, host_id, policy)      # an accepted, signed operator order

Every action goes through :class:`~osiris_agent.healing.executor.Executor` and its guards:
disabled runbooks are reported (``alert``), window-only or disruptive runbooks outside the window
are ``deferred``. L1 cooldowns and attempt counts are per rule, host and runbook and survive
restarts (``state.db``); a firing commits in the transaction that signs its bundle
(``_fired``), and nothing acts while the outbox refuses evidence. An issue L1 and L2 cannot fix
becomes an L3 incident (``escalated``), at most once per ``l3_cooldown_s`` per host and runbook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Catalog, Runbook, match_rules
from osiris_core.controls import controls_for
from osiris_core.errors import SchemaError

from .executor import ActionResult, Executor, PhaseResult, capped, short
from .l1 import RuleMemory, effective_rules
from .l3 import build_incident
from .policy import Policy
from .sinks import EvidenceSink, IncidentSink

__all__ = ["EvidenceSink", "Finding", "HealingEngine", "IncidentSink", "Policy"]


@dataclass(frozen=True)
class Finding:
    """One detect result for one host and runbook (what the scanner hands the engine)."""

    host_id: str
    check: str
    runbook_id: str
    status: str  # compliant | drift | error
    observed: dict[str, Any]
    expected: dict[str, Any]
    since: str  # RFC 3339: when this status began
    error: str | None = None

    def result(self) -> dict[str, Any]:
        """The dict L1 rule conditions and the L2 prompt see (catalog.rules docstring)."""
        return {
            "check": self.check,
            "runbook_id": self.runbook_id,
            "host": self.host_id,
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
        }

    def detect(self) -> PhaseResult:
        return PhaseResult("detect", self.status, self.observed, self.expected, 0, error=self.error)


class HealingEngine:
    """Decides and acts on findings; emits one bundle per decision or action."""

    def __init__(
        self,
        catalog: Catalog,
        transports: Callable[[str], Any],
        evidence: EvidenceSink,
        incidents: IncidentSink,
        clock: Callable[[], datetime] | None = None,
        *,
        db_path: Any = ":memory:",  # a path (tests) or the agent's StateDB
        l2_cooldown_s: int = 3600,
        l3_cooldown_s: int = 3600,
        timeout_s: float = 300.0,
    ) -> None:
        self.catalog = catalog
        self.evidence = evidence
        self.incidents = incidents
        self.clock = clock or (lambda: datetime.now(UTC))
        self.executor = Executor(catalog, transports, timeout_s=timeout_s, clock=self.clock)
        self.memory = RuleMemory(db_path)
        self.l2_cooldown_s = l2_cooldown_s
        self.l3_cooldown_s = l3_cooldown_s
        self._platform_hint: dict[str, str] = {}

    # -- evidence ---------------------------------------------------------------------------
    def _emit_action(
        self,
        policy: Policy,
        check: str,
        host_id: str,
        res: ActionResult,
        tier: str,
        order_id: str | None = None,
    ) -> str:
        return self.evidence.emit(
            **policy.evidence_fields(),
            check=check,
            host_id=host_id,
            controls=list(controls_for(check)),
            outcome=res.outcome,
            tier=tier,
            runbook_id=res.runbook_id,
            order_id=order_id,
            action_taken=res.action_taken,
            pre_state=res.pre_state,
            post_state=res.post_state,
            rollback_available=res.rollback_available,
            started_at=res.started_at,
            finished_at=res.finished_at,
        )

    def _emit(self, policy: Policy, finding: Finding, **fields: Any) -> str:
        now = canonical.format_time(self.clock())
        base: dict[str, Any] = {
            **policy.evidence_fields(),
            "check": finding.check,
            "host_id": finding.host_id,
            "controls": list(controls_for(finding.check)),
            "runbook_id": finding.runbook_id,
            "order_id": None,
            "pre_state": capped(finding.detect().state()),
            "post_state": None,
            "rollback_available": False,
            "started_at": now,
            "finished_at": now,
        }
        base.update(fields)
        return self.evidence.emit(**base)

    def _fired(
        self, emit: Callable[[], str], name: str, host_id: str, rb_id: str, ts: float, outcome: str
    ) -> str:
        """A firing is remembered in the transaction that signs its bundle, or not at all (the
        outbox refused it: nothing signed, so the tier may act again once it can be recorded)."""
        with self.memory.tx():
            h = emit()
            if h:
                self.memory.fired(name, host_id, rb_id, ts, outcome)
        return h

    # -- the tiers --------------------------------------------------------------------------
    def handle(self, finding: Finding, policy: Policy) -> list[str]:
        """Heal one finding if it needs it; returns the hashes of the bundles emitted."""
        if finding.status == "compliant":
            self.memory.resolved(finding.host_id, finding.runbook_id)
            return []
        if getattr(self.evidence, "refusing", False):
            return []  # the outbox is full (an incident says so): no action without its record
        try:
            rb = self.catalog.runbook(finding.runbook_id)
        except SchemaError:
            return []  # the scanner only produces catalogue ids; nothing to act on
        hashes: list[str] = []
        tried: list[dict[str, Any]] = []
        failed_runbooks: set[str] = set()
        now_ts = self.clock().timestamp()
        rules = effective_rules(policy.rules, self.catalog.rules)
        for rule in match_rules(rules, finding.result()):
            last, attempts = self.memory.get(rule.id, finding.host_id, rb.id)
            if last is not None and now_ts - last < rule.cooldown_s:
                return hashes  # acted recently: wait for the cooldown, emit nothing new
            if attempts >= rule.max_attempts:
                tried.append(
                    {"tier": "L1", "rule": rule.id, "outcome": "skipped",
                     "reason": f"{attempts} failed attempts (max {rule.max_attempts})"}
                )  # fmt: skip
                continue
            if rule.action == "alert":
                hashes.append(self._fired(lambda rule=rule: self._emit(
                    policy, finding, outcome="alert", tier="L1",
                    action_taken=f"L1 rule {rule.id}: alert only ({rule.name})",
                ), rule.id, finding.host_id, rb.id, now_ts, "alert"))  # fmt: skip
                return hashes
            if rule.action == "escalate":
                tried.append({"tier": "L1", "rule": rule.id, "outcome": "escalate"})
                why = f"rule {rule.id} escalates"
                with self.memory.tx():  # the rule's firing, the incident and its bundle
                    l3 = self._l3(policy, finding, rb, tried, why, force=True)
                    if any(l3):
                        self.memory.fired(rule.id, finding.host_id, rb.id, now_ts, "escalated")
                return hashes + l3
            target = self.catalog.runbook(rule.runbook_id or rb.id)
            res = self.executor.execute(
                finding.host_id,
                target,
                policy.params_for(target.id, rule.params),
                policy.guards(),
                pre=finding.detect() if target.id == rb.id else None,
                label=f"L1 rule {rule.id}",
            )
            act = lambda res=res: self._emit_action(policy, finding.check, finding.host_id, res,  # noqa: E731
                                                    "L1")  # fmt: skip
            hashes.append(self._fired(act, rule.id, finding.host_id, rb.id, now_ts, res.outcome))
            if res.outcome not in ("failed", "reverted"):
                return hashes  # healed, deferred or refused by policy: done for now
            tried.append(
                {"tier": "L1", "rule": rule.id, "runbook_id": target.id, "outcome": res.outcome}
            )
            failed_runbooks.add(target.id)
            break  # one L1 action per finding per cycle; a failure goes up a tier
        if finding.status == "drift" and policy.l2 is not None:
            done, l2_hashes = self._l2(finding, rb, policy, tried, failed_runbooks, now_ts)
            hashes += l2_hashes
            if done:
                return hashes
        reason = (
            "no L1 rule or L2 plan healed it"
            if finding.status == "drift"
            else (f"the check could not run: {finding.error or 'error'}")
        )
        hashes += self._l3(policy, finding, rb, tried, reason)
        return hashes

    def _eligible(self, rb: Runbook, policy: Policy, exclude: set[str]) -> list[Runbook]:
        return [
            r
            for r in self.catalog.runbooks_for(rb.check)
            if r.platform == rb.platform
            and "remediate" in r.phases
            and policy.enabled(r.id)
            and r.id not in exclude
        ]

    def _l2(
        self,
        finding: Finding,
        rb: Runbook,
        policy: Policy,
        tried: list[dict[str, Any]],
        exclude: set[str],
        now_ts: float,
    ) -> tuple[bool, list[str]]:
        assert policy.l2 is not None
        last, _ = self.memory.get("L2", finding.host_id, rb.id)
        if last is not None and now_ts - last < self.l2_cooldown_s:
            return False, []
        eligible = self._eligible(rb, policy, exclude)
        if not eligible:
            return False, []
        try:
            decision = policy.l2.plan(finding.result(), eligible)
        except Exception as exc:  # noqa: BLE001 - a broken planner is a refusal, not a crash
            from .l2 import L2Decision

            decision = L2Decision(False, getattr(policy.l2, "model", "?"), "", refusal=short(
                f"planner failed: {type(exc).__name__}", 200))  # fmt: skip
        record = decision.record(finding.result())
        if not decision.accepted or decision.runbook_id is None:
            pre = capped({**finding.detect().state(), "l2": record})
            h = self._fired(lambda: self._emit(
                policy, finding, outcome="escalated", tier="L2", pre_state=pre,
                action_taken=short(
                    f"L2 plan refused (model {decision.model}, prompt sha256:"
                    f"{decision.prompt_sha256[:16]}…): {decision.refusal}; escalated to L3"),
            ), "L2", finding.host_id, rb.id, now_ts, "planned")  # fmt: skip
            tried.append({"tier": "L2", "model": decision.model, "refusal": decision.refusal})
            return False, [h]
        target = self.catalog.runbook(decision.runbook_id)
        res = self.executor.execute(
            finding.host_id,
            target,
            policy.params_for(target.id, decision.params),
            policy.guards(),
            pre=finding.detect() if target.id == rb.id else None,
            label=(
                f"L2 plan (model {decision.model}, confidence {decision.confidence}, "
                f"prompt sha256:{decision.prompt_sha256[:16]}…)"
            ),
        )
        res.pre_state = capped({**(res.pre_state or finding.detect().state()), "l2": record})
        act = lambda: self._emit_action(policy, finding.check, finding.host_id, res, "L2")  # noqa: E731
        h = self._fired(act, "L2", finding.host_id, rb.id, now_ts, "planned")
        if res.outcome in ("failed", "reverted"):
            tried.append(
                {"tier": "L2", "model": decision.model, "runbook_id": target.id,
                 "outcome": res.outcome}
            )  # fmt: skip
            return False, [h]
        return True, [h]

    def _l3(
        self,
        policy: Policy,
        finding: Finding,
        rb: Runbook,
        tried: list[dict[str, Any]],
        reason: str,
        *,
        force: bool = False,
    ) -> list[str]:
        now_ts = self.clock().timestamp()
        last, _ = self.memory.get("L3", finding.host_id, rb.id)
        if not force and last is not None and now_ts - last < self.l3_cooldown_s:
            return []
        incident = build_incident(
            host_id=finding.host_id,
            check=finding.check,
            runbook_id=rb.id,
            escalation_severity=rb.escalation_severity,
            status=finding.status,
            observed=capped(finding.observed),
            tried=tried,
            reason=reason,
        )
        with self.memory.tx():  # the bundle, the incident and the L3 cooldown: one fact
            h = self._emit(
                policy, finding, outcome="escalated", tier="L3",
                action_taken=short(f"L3 incident ({incident['severity']}): {reason}"),
                post_state=capped({"incident": {"kind": incident["kind"],
                                                "severity": incident["severity"],
                                                "tried": tried}}),
            )  # fmt: skip
            if h:
                self.incidents.raise_incident(**incident)
                self.memory.fired("L3", finding.host_id, rb.id, now_ts, "escalated")
        return [h]

    # -- orders -----------------------------------------------------------------------------
    def run_order(self, order: Mapping[str, Any], target_host: str, policy: Policy) -> list[str]:
        """An accepted, signature-checked order through the same executor and guards.

        ``order`` is the order object (``osiris.order/1``); kinds handled here are
        ``run_runbook`` and ``collect_evidence`` (detect now, tier ``order``).
        """
        kind = order.get("kind")
        order_id = str(order.get("order_id"))
        params = order.get("params") or {}
        if kind == "collect_evidence":
            return self._collect(order_id, target_host, params, policy)
        if kind != "run_runbook":
            return []
        try:
            rb = self.catalog.runbook(params.get("runbook_id"))
        except SchemaError:
            return []  # validate_order already refused unknown ids; defensive
        guards = policy.guards()
        if order.get("disruptive") and not policy.allow_disruptive_outside_window:
            if not policy.in_window(self.clock()):
                now = canonical.format_time(self.clock())
                return [
                    self.evidence.emit(
                        **policy.evidence_fields(), check=rb.check, host_id=target_host,
                        controls=list(controls_for(rb.check)), outcome="deferred", tier="order",
                        runbook_id=rb.id, order_id=order_id,
                        action_taken="order is disruptive; deferred to the maintenance window",
                        pre_state=None, post_state=None,
                        rollback_available="rollback" in rb.phases,
                        started_at=now, finished_at=now,
                    )
                ]  # fmt: skip
        values = policy.params_for(rb.id, params.get("parameters") or {})
        if "remediate" not in rb.phases:
            return self._detect_bundle(policy, order_id, target_host, rb, values)
        res = self.executor.execute(target_host, rb, values, guards, label=f"order {order_id}")
        return [self._emit_action(policy, rb.check, target_host, res, "order", order_id)]

    def _detect_bundle(
        self, policy: Policy, order_id: str, host_id: str, rb: Runbook, values: Mapping[str, Any]
    ) -> list[str]:
        started = canonical.format_time(self.clock())
        pr = self.executor.run_phase(host_id, rb, "detect", values)
        outcome = {"compliant": "compliant", "drift": "alert"}.get(pr.status, "failed")
        return [
            self.evidence.emit(
                **policy.evidence_fields(),
                check=rb.check, host_id=host_id, controls=list(controls_for(rb.check)),
                outcome=outcome, tier="order", runbook_id=rb.id, order_id=order_id,
                action_taken=short(f"order {order_id}: {rb.id} detect {pr.status}"),
                pre_state=None, post_state=capped(pr.state()), rollback_available=False,
                started_at=started, finished_at=canonical.format_time(self.clock()),
            )
        ]  # fmt: skip

    def _collect(
        self, order_id: str, host_id: str, params: Mapping[str, Any], policy: Policy
    ) -> list[str]:
        checks = params.get("checks")
        wanted: Iterable[str] = checks if isinstance(checks, list) else self.catalog.checks
        platform = self._platform_hint.get(host_id)
        out: list[str] = []
        for check in wanted:
            for rb in self.catalog.runbooks_for(check):
                if platform is not None and rb.platform != platform:
                    continue
                out += self._detect_bundle(policy, order_id, host_id, rb, policy.params_for(rb.id))
        return out

    def set_platform(self, host_id: str, platform: str) -> None:
        """Which catalogue platform a host is (``windows``/``linux``/``nixos``), for orders
        that name checks rather than runbooks."""
        self._platform_hint[host_id] = platform
