"""The healing policy: which runbooks may run, when, with which parameters and rules.

Why its own module: the agent builds it from the signed policy in force
(``osiris_agent/signed_policy.py``); the scanner, the engine and the executor's guards only
read it. One value object, so every bundle emitted under it names the same policy version and
ruleset hash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from osiris_core.catalog import Catalog, Rule
from osiris_core.catalog.bounds import CheckedParams, TrustContext

from .executor import Guards
from .l2 import L2Planner


def _never(_: datetime) -> bool:
    return False


@dataclass
class Policy:
    """What the last check-in said (or :meth:`default` before the first one).

    A runbook may run only when it is in ``enabled_runbooks`` and not in ``disabled_runbooks``;
    an empty enabled set therefore means *nothing* runs (lesson D), never "everything".
    ``params`` holds the signed policy's parameter values per runbook id (thresholds such as
    ``critical_overdue_days``); rule, L2 and order parameters override them, but only within
    the catalogue's bounds, and never a trust-redirecting one: ``context`` (the policy's
    allow-lists and verified releases, with its trust values pinned) goes with every value
    set :meth:`params_for` hands out, so the executor's validator refuses a rule, plan or order
    that names another update server, DNS server or system than the signed policy.

    ``policy_version`` and ``ruleset_hash`` name the policy in force (DESIGN §3.6): every bundle
    the engine emits under this policy carries them (:meth:`evidence_fields`).
    """

    enabled_runbooks: frozenset[str]
    disabled_runbooks: frozenset[str] = frozenset()
    rules: list[Rule] = field(default_factory=list)
    in_window: Callable[[datetime], bool] = _never
    allow_disruptive_outside_window: bool = False
    l2: L2Planner | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    policy_version: str = "1"
    ruleset_hash: str | None = None
    context: TrustContext = field(default_factory=lambda: TrustContext(pinned={}))

    @classmethod
    def default(cls, catalog: Catalog, **kw: Any) -> Policy:
        """Catalogue defaults: ``default_enabled`` runbooks, baseline rules only, no window."""
        enabled = frozenset(r.id for r in catalog.runbooks.values() if r.default_enabled)
        return cls(enabled_runbooks=enabled, **kw)

    def evidence_fields(self) -> dict[str, Any]:
        """What every bundle emitted under this policy records about it."""
        return {"policy_version": self.policy_version, "ruleset_hash": self.ruleset_hash}

    def enabled(self, runbook_id: str) -> bool:
        return runbook_id in self.enabled_runbooks and runbook_id not in self.disabled_runbooks

    def guards(self) -> Guards:
        return Guards(self.enabled, self.in_window, self.allow_disruptive_outside_window)

    def params_for(self, runbook_id: str, extra: Mapping[str, Any] | None = None) -> CheckedParams:
        out = dict(self.params.get(runbook_id, {}))
        out.update(extra or {})
        return CheckedParams(runbook_id, out, self.context)
