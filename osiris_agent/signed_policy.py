"""The signed policy and rules: verify what the server delivers, put it in force or refuse it.

Why its own module: what the agent *does* (runbook toggles, parameters, the window, cadence, L2
limits, the L1 rules) comes only from a policy document signed by the pinned order key and the
signed rules it names by hash (DESIGN §3.6). Verifying, refusing once per document (a
``rejected`` bundle and an incident), signing a ``policy_change`` bundle for every
trust-redirecting change, and turning the document into the healing :class:`Policy` is one job;
the check-in only hands the answer's ``policy`` and ``rules`` over.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.controls import controls_for
from osiris_core.errors import OsirisError
from osiris_core.policy import AcceptedPolicy, PolicyRefused, envelope_sha256, verify_policy

from . import learned_rules
from .config import WindowConfig
from .healing.engine import Policy
from .healing.l1 import RuleSetRefused, verify_signed_rules

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

# Evidence about the signed policy itself: a refused document (outcome ``rejected``) and each
# change of a trust-redirecting value (outcome ``alert``, naming who changed what).
POLICY_CHECK = "policy"
POLICY_CHANGE_CHECK = "policy_change"
POLICY_DOC = "policy_doc"  # state.db: the envelope of the policy in force
POLICY_REJECTED = "policy_rejected"  # state.db: sha256 of the last refused envelope


def ruleset_hash(signed: Any) -> str:
    """``sha256:`` + hex SHA-256 of the canonical signed rules document (rules, version, sig)."""
    return "sha256:" + hashlib.sha256(canonical.dumps(signed)).hexdigest()


class PolicyKeeper:
    """Keeps the signed policy and rules in force on the context (``policy_in_force``,
    ``server_rules``, ``rules``, ``window``, ``policy``)."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        # The signed rules in force, as received and verified (memory only, like the targets:
        # a restarted agent names none in ``holds`` and receives them again). Their hash is
        # what the check-in sends as ``holds.rules``.
        self.held_rules: dict[str, Any] | None = None
        self.held_rules_hash: str | None = None

    def load(self) -> None:
        """The policy in force before this process started (state.db), verified again."""
        ctx = self.ctx
        env = ctx.db.get_json(POLICY_DOC)
        if env is None:
            return
        try:
            ctx.policy_in_force = verify_policy(
                env, ctx.order_verifier, appliance_id=ctx.appliance_id, site_id=ctx.site_id,
                catalog=ctx.catalog, release_verifiers=ctx.release_verifiers,
            )  # fmt: skip
        except PolicyRefused as e:
            log.error("the stored policy does not verify; running on catalogue defaults: %s", e)
            with ctx.db.tx():
                ctx.db.add_incident(
                    "policy_state_invalid", "critical",
                    f"the policy stored in state.db does not verify: {e}"[:500],
                    {"reason": str(e)[:500]},
                )  # fmt: skip
            return
        self.apply_policy()

    def apply_signed(self, env: Any, rules: dict[str, Any] | None, report: CycleReport) -> None:
        """Verify a delivered policy and the rules; put them in force together or not at all.

        A policy that does not verify (bad or unknown signature, other appliance or site,
        malformed, a lower version than the one in force, a parameter the catalogue refuses) is
        refused with a ``rejected`` bundle and an incident, once per document; so is one whose
        rules (named by ``ruleset_hash``) are refused. The previous policy and rules stay.
        ``rules`` None: the answer called them unchanged — the rules held (verified when they
        came) are checked against the policy like delivered ones, never trusted on the word."""
        ctx = self.ctx
        candidate: AcceptedPolicy | None = None
        if env is not None:
            try:
                candidate = verify_policy(
                    env, ctx.order_verifier, appliance_id=ctx.appliance_id,
                    site_id=ctx.site_id, catalog=ctx.catalog,
                    release_verifiers=ctx.release_verifiers, in_force=ctx.policy_in_force,
                )  # fmt: skip
            except PolicyRefused as e:
                self._reject_policy(env, str(e), report)
        target = candidate or ctx.policy_in_force
        if target is None:
            return  # no policy has ever been accepted: catalogue defaults, baseline rules only
        if rules is None:  # unchanged: what this process holds (checkin.py made sure of one)
            if self.held_rules is None:
                return
            rules = {"version": self.held_rules["version"], "signed": self.held_rules}
        signed = rules.get("signed")
        try:
            if signed is self.held_rules:
                parsed, got = list(ctx.server_rules), str(self.held_rules_hash)
            else:
                parsed = verify_signed_rules(signed, ctx.order_verifier, ctx.catalog)
                got = ruleset_hash(signed)
            if got != target.doc["ruleset_hash"]:
                raise RuleSetRefused(
                    f"rule set {got[:23]}… is not the one the signed policy "
                    f"names ({target.doc['ruleset_hash'][:23]}…)"
                )
        except RuleSetRefused as e:
            self._refuse_rules(rules, e)
            if candidate is not None and candidate is not ctx.policy_in_force:
                self._reject_policy(env, f"the rules it names were refused: {e}", report)
            return
        if candidate is not None and candidate is not ctx.policy_in_force:
            self._enforce(candidate, report)
        if signed is self.held_rules:
            return  # nothing new: the rules in force stay (the policy, if new, is enforced)
        ctx.server_rules = parsed
        ctx.rules = {"version": signed["version"], "rules": signed["rules"]}
        self.held_rules, self.held_rules_hash = signed, got
        with ctx.db.tx():
            ctx.db.set("rules_version", signed["version"])
        # a learned rule that enters or leaves the rules in force is evidence here
        learned_rules.record_changes(ctx, report, parsed, signed["version"], POLICY_CHANGE_CHECK)

    def _refuse_rules(self, rules: dict[str, Any], e: Exception) -> None:
        db = self.ctx.db
        version = str(rules.get("version", ""))[:128]
        if self._rules_refused == (version, str(e)):
            return
        self._rules_refused = (version, str(e))
        log.error("rules version %s refused, keeping the previous rules: %s", version, e)
        with db.tx():
            db.add_incident(
                "rules_refused",
                "high",
                f"received L1 rules that were refused; the previous rules stay: {e}"[:500],
                {"version": version, "reason": str(e)[:500],
                 "kept_version": db.get("rules_version")},
            )  # fmt: skip

    _rules_refused: tuple[str, str] | None = None

    def _reject_policy(self, env: Any, reason: str, report: CycleReport) -> None:
        """One ``rejected`` bundle (check ``policy``) and one incident per refused document."""
        ctx = self.ctx
        try:
            digest = envelope_sha256(env)
        except (OsirisError, RecursionError):
            digest = "not canonical JSON"
        if ctx.db.get(POLICY_REJECTED) == digest:
            return
        doc = env.get("policy") if isinstance(env, dict) else None
        version = doc.get("version") if isinstance(doc, dict) else None
        version = version if type(version) is int else None
        sig = env.get("sig") if isinstance(env, dict) else None
        key_id = sig.get("key_id") if isinstance(sig, dict) else None
        kept = ctx.policy_in_force.version if ctx.policy_in_force is not None else "default"
        log.error("policy v%s refused, policy %s stays in force: %s", version, kept, reason)
        now = canonical.utc_now()
        text = f"policy v{version} refused: {reason}; policy {kept} stays in force"
        ctx.record(
            report, host_id=ctx.appliance_id, check=POLICY_CHECK,
            controls=list(controls_for(POLICY_CHECK)), outcome="rejected", tier="monitor",
            action_taken=text[:1000],
            pre_state={
                "observed": {"version": version, "sha256": digest,
                             "key_id": key_id if isinstance(key_id, str) else None,
                             "reason": reason[:500]},
                "expected": {"signed_by": ctx.order_verifier.key_id_hex,
                             "appliance_id": ctx.appliance_id, "site_id": ctx.site_id,
                             "min_version": kept},
            },
            started_at=now, finished_at=now,
        )  # fmt: skip
        with ctx.db.tx():
            ctx.db.set(POLICY_REJECTED, digest)
            ctx.db.add_incident(
                "policy_rejected", "high",
                f"a policy was refused; policy {kept} stays in force: {reason}"[:500],
                {"version": version, "sha256": digest, "reason": reason[:500], "kept": kept},
            )  # fmt: skip

    def _enforce(self, new: AcceptedPolicy, report: CycleReport) -> None:
        """Put ``new`` in force (state.db first), then sign a ``policy_change`` bundle for every
        trust-redirecting value that changed, naming the change record the policy carries."""
        ctx = self.ctx
        old = ctx.policy_in_force
        before = old.trust_values(ctx.catalog) if old is not None else {}
        after = new.trust_values(ctx.catalog)
        with ctx.db.tx():
            ctx.db.set_json(POLICY_DOC, new.envelope)
        ctx.policy_in_force = new
        self.apply_policy()  # the bundles below already carry the new version
        records = {(c["runbook_id"], c["param"]): c for c in new.doc["changes"]}
        for rid in sorted(set(before) | set(after)):
            rb = ctx.catalog.runbooks[rid]
            for name in sorted(set(before.get(rid, {})) | set(after.get(rid, {}))):
                default = rb.params[name].default
                was = before.get(rid, {}).get(name, default)
                now_v = after.get(rid, {}).get(name, default)
                if was == now_v:
                    continue
                rec = records.get((rid, name))
                who = f"{rec['by']} at {rec['at']}" if rec else "an unrecorded change"
                ts = canonical.utc_now()
                ctx.record(
                    report, host_id=ctx.appliance_id, check=POLICY_CHANGE_CHECK,
                    controls=list(controls_for(POLICY_CHANGE_CHECK)), outcome="alert",
                    tier="monitor", runbook_id=rid,
                    action_taken=f"trust-redirecting {rid}.{name} changed by {who}: "
                    f"{was!r} -> {now_v!r} (policy v{new.version})"[:1000],
                    pre_state={"observed": {"param": name, "value": was}},
                    post_state={"observed": {"param": name, "value": now_v},
                                "change": rec, "policy_version": new.version},
                    started_at=ts, finished_at=ts,
                )  # fmt: skip
        if old is not None:
            self._record_schedule_changes(old, new, report)
        if new.skipped:
            names = ", ".join(f"{x['runbook_id']}.{x['param']}" for x in new.skipped[:10])
            with ctx.db.tx():
                ctx.db.add_incident(
                    "runbook_params_refused", "medium",
                    f"policy v{new.version} sets parameters this agent's catalogue does not "
                    f"know; their catalogue default applies: {names}"[:500],
                    {"skipped": new.skipped[:50], "policy_version": new.version},
                )  # fmt: skip

    def _record_schedule_changes(
        self, old: AcceptedPolicy, new: AcceptedPolicy, report: CycleReport
    ) -> None:
        """A ``policy_change`` bundle for a changed maintenance window or check-in cadence: when
        this appliance may disrupt the clinic, and how soon a silent one is noticed, are
        decisions an auditor must be able to read from the appliance's own evidence (old and
        new value, the policy version that made the change). The policy does not say who made
        it: the server's audit log does (``site.update``, old and new)."""
        ctx = self.ctx
        for key, label in (("window", "maintenance window"),
                           ("checkin_interval_s", "check-in interval (s)")):  # fmt: skip
            was, now_v = old.doc.get(key), new.doc.get(key)
            if was == now_v:
                continue
            ts = canonical.utc_now()
            ctx.record(
                report, host_id=ctx.appliance_id, check=POLICY_CHANGE_CHECK,
                controls=list(controls_for(POLICY_CHANGE_CHECK)), outcome="alert",
                tier="monitor", runbook_id=None,
                action_taken=f"site {label} changed by the signed policy v{new.version}: "
                f"{was!r} -> {now_v!r} (who: the server's audit log, site.update)"[:1000],
                pre_state={"observed": {"setting": key, "value": was}},
                post_state={"observed": {"setting": key, "value": now_v},
                            "policy_version": new.version},
                started_at=ts, finished_at=ts,
            )  # fmt: skip

    def apply_policy(self) -> None:
        """The healing policy from the signed policy in force (catalogue defaults without one):
        an explicit empty enabled list means nothing runs (never "everything")."""
        ctx = self.ctx
        known = set(ctx.catalog.runbooks)
        pol = ctx.policy_in_force
        if pol is None:
            ctx.window = ctx.cfg.window
            ctx.policy = Policy.default(
                ctx.catalog, in_window=ctx.in_window,
                allow_disruptive_outside_window=ctx.cfg.window.allow_disruptive_outside,
                l2=ctx.l2, policy_version="default",
            )  # fmt: skip
        else:
            doc = pol.doc
            self.apply_window(doc["window"])
            ctx.policy = Policy(
                enabled_runbooks=frozenset(doc["runbooks"]["enabled"]) & known,
                disabled_runbooks=frozenset(doc["runbooks"]["disabled"]) & known,
                rules=list(ctx.server_rules),
                in_window=ctx.in_window,
                allow_disruptive_outside_window=ctx.window.allow_disruptive_outside,
                l2=self._l2_under(doc["l2"]),
                policy_version=str(pol.version),
                ruleset_hash=doc["ruleset_hash"],
                params=pol.params,
                context=pol.context,
            )
        now = {"policy_version": ctx.policy.policy_version,
               "ruleset_hash": ctx.policy.ruleset_hash}  # fmt: skip
        if ctx.db.get_json("policy") != now:  # for status and the console; written on change
            with ctx.db.tx():
                ctx.db.set_json("policy", now)

    def _l2_under(self, limits: dict[str, Any]) -> Any:
        """The local L2 planner as the policy allows it: off, or with a confidence threshold no
        lower than the policy's (the policy can restrict L2, never enable it)."""
        ctx = self.ctx
        if ctx.l2 is None or not limits["allowed"]:
            return None
        if limits["min_confidence"] <= ctx.l2.min_confidence:
            return ctx.l2
        import copy

        stricter = copy.copy(ctx.l2)
        stricter.min_confidence = limits["min_confidence"]
        return stricter

    def apply_window(self, w: dict[str, Any]) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(w["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("server sent unknown time zone %r; keeping the configured window",
                        w["timezone"][:64])  # fmt: skip
            return
        self.ctx.window = WindowConfig(
            days=tuple(w["days"]),
            start=w["start"],
            duration_min=max(1, min(1440, w["duration_min"])),
            timezone=w["timezone"],
            allow_disruptive_outside=self.ctx.cfg.window.allow_disruptive_outside,
        )
