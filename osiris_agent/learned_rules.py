"""Learned L1 rules entering or leaving the rule set in force are evidence on this appliance.

Why: a learned rule (``L1-LRN-…``, promoted by the server's learning loop after an admin approved
it) changes what runs on this clinic's hosts without any local configuration change. So when a
verified rule set is put in force, every learned rule it adds or drops is signed as a
``policy_change`` bundle (outcome ``alert``, tier ``monitor``) naming the rule, its check, runbook
and params and the rule set version — the site's own record that the fleet's learning reached it.
The ids in force are kept in ``state.db`` (meta ``learned_rules``, in the transaction of the
bundles), so a restarted agent, which asks for its rules again, does not report them twice.
"""

from __future__ import annotations

from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Rule
from osiris_core.controls import controls_for

PREFIX = "L1-LRN-"
META_KEY = "learned_rules"


def record_changes(ctx: Any, report: Any, rules: list[Rule], version: str, check: str) -> list[str]:
    """Sign one bundle per learned rule added to or removed from the rule set in force;
    returns the ids in force now."""
    now_in = {r.id: r for r in rules if r.id.startswith(PREFIX)}
    before = ctx.db.get_json(META_KEY) or {}
    if not isinstance(before, dict):
        before = {}
    if set(before) == set(now_in):
        return sorted(now_in)
    ts = canonical.utc_now()
    with ctx.db.tx():  # the bundles and the ids they report: one fact
        for rid in sorted(set(now_in) | set(before)):
            if (rid in now_in) == (rid in before):
                continue
            added = rid in now_in
            rule = now_in.get(rid)
            desc = before.get(rid) or {}
            if rule is not None:
                desc = {"check": rule.check, "runbook_id": rule.runbook_id,
                        "params": dict(rule.params)}  # fmt: skip
            ctx.record(
                report, host_id=ctx.appliance_id, check=check,
                controls=list(controls_for(check)), outcome="alert", tier="monitor",
                runbook_id=desc.get("runbook_id"),
                action_taken=(
                    f"learned L1 rule {rid} {'added to' if added else 'removed from'} the rule "
                    f"set in force (v{version}): {desc.get('check')} -> {desc.get('runbook_id')}"
                )[:1000],
                pre_state={"observed": {"rule": rid, "in_force": not added}},
                post_state={"observed": {"rule": rid, "in_force": added},
                            "rules_version": version, "rule": desc},
                started_at=ts, finished_at=ts,
            )  # fmt: skip
        ctx.db.set_json(
            META_KEY,
            {rid: {"check": r.check, "runbook_id": r.runbook_id, "params": dict(r.params)}
             for rid, r in now_in.items()},
        )  # fmt: skip
    return sorted(now_in)
