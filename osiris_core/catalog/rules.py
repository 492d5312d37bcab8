"""L1 rules as data: conditions over a check result, and one catalogue action.

Why strict loading: the earlier product silently lost 15 of 28 rules because one operator
(``exists``) was unknown to its loader (lesson A6). Here every operator, field, action and runbook
reference is checked when the rules are loaded; a bad rule fails the whole file loudly.

The result a rule sees is the detect script's JSON plus the fields the agent adds::

    {"check": "<check id>", "runbook_id": "<runbook whose detect ran>", "host": "...",
     "status": "compliant"|"drift"|"error", "observed": {...}, "expected": {...}}

Field paths are dot paths into that dict (``observed.service_active``). A path that does not
resolve makes every operator false except ``exists`` with ``value = false``: a rule never acts on
data that is not there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_core.catalog.model import SEVERITIES
from osiris_core.errors import SchemaError

if TYPE_CHECKING:
    from osiris_core.catalog.loader import Catalog

OPS = ("eq", "ne", "in", "not_in", "gt", "lt", "contains", "regex", "exists")
ACTIONS = ("run_runbook", "escalate", "alert")
RULE_ID_RE = re.compile(f"^{ids.RULE_ID.pattern}$")  # the one grammar (osiris_core.ids)
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op value``; ``regex`` conditions carry their compiled pattern."""

    field: str
    op: str
    value: Any
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Rule:
    """One L1 rule. Lower ``priority`` runs first; cooldown and attempts are per rule and host."""

    id: str
    name: str
    check: str
    conditions: tuple[Condition, ...]
    action: str
    runbook_id: str | None
    params: Mapping[str, Any]
    priority: int
    cooldown_s: int
    max_attempts: int
    severity: str
    phases: tuple[str, ...] = ()


def _resolve(result: Mapping[str, Any], path: str) -> Any:
    cur: Any = result
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality that does not let ``True == 1`` or ``"1" == 1`` match."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _holds(cond: Condition, result: Mapping[str, Any]) -> bool:
    actual = _resolve(result, cond.field)
    if cond.op == "exists":
        return (actual is not _MISSING) == cond.value
    if actual is _MISSING:
        return False
    op, value = cond.op, cond.value
    if op == "eq":
        return _same(actual, value)
    if op == "ne":
        return not _same(actual, value)
    if op == "in":
        return any(_same(actual, v) for v in value)
    if op == "not_in":
        return not any(_same(actual, v) for v in value)
    if op in ("gt", "lt"):
        if not _is_num(actual):
            return False
        return actual > value if op == "gt" else actual < value
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(value, str) and value in actual
        if isinstance(actual, list | tuple):
            return any(_same(a, value) for a in actual)
        if isinstance(actual, Mapping):
            return value in actual
        return False
    if op == "regex":
        assert cond.compiled is not None
        return isinstance(actual, str) and cond.compiled.search(actual) is not None
    raise SchemaError(f"unknown operator {op!r}")  # unreachable: ops are checked at load


def evaluate_conditions(rule: Rule, result: Mapping[str, Any]) -> bool:
    """True when every condition of ``rule`` holds for ``result`` (AND; no conditions → True)."""
    return all(_holds(c, result) for c in rule.conditions)


def match_rules(rules: Iterable[Rule], result: Mapping[str, Any]) -> list[Rule]:
    """Rules for ``result["check"]`` whose conditions hold, lowest priority number first."""
    check = result.get("check")
    hits = [r for r in rules if r.check == check and evaluate_conditions(r, result)]
    return sorted(hits, key=lambda r: (r.priority, r.id))


def _parse_condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: a condition must be a table")
    extra = sorted(set(raw) - {"field", "op", "value"})
    if extra:
        raise SchemaError(f"{where}: unknown condition field(s) {', '.join(extra)}")
    fld, op = raw.get("field"), raw.get("op")
    if not isinstance(fld, str) or not fld or any(not p for p in fld.split(".")):
        raise SchemaError(f"{where}: condition field must be a dot path")
    if op not in OPS:
        raise SchemaError(f"{where}: unknown operator {op!r} (known: {', '.join(OPS)})")
    if "value" not in raw:
        raise SchemaError(f"{where}: condition on {fld!r} has no value")
    value = raw["value"]
    compiled = None
    if op in ("in", "not_in") and not isinstance(value, list):
        raise SchemaError(f"{where}: {op} needs a list value")
    if op in ("gt", "lt") and not _is_num(value):
        raise SchemaError(f"{where}: {op} needs a number")
    if op == "exists" and not isinstance(value, bool):
        raise SchemaError(f"{where}: exists needs true or false")
    if op == "regex":
        if not isinstance(value, str):
            raise SchemaError(f"{where}: regex needs a string")
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise SchemaError(f"{where}: bad regex {value!r}: {exc}") from None
    if isinstance(value, list):
        value = tuple(value)
    return Condition(fld, op, value, compiled)


_RULE_FIELDS = {
    "id",
    "name",
    "check",
    "conditions",
    "action",
    "runbook_id",
    "params",
    "priority",
    "cooldown_s",
    "max_attempts",
    "severity",
    "phases",
}


def _int(raw: Mapping[str, Any], key: str, default: int, lo: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise SchemaError(f"{where}: {key} must be an integer >= {lo}")
    return value


def parse_rule(raw: Any, catalog: Catalog, source: str = "rules") -> Rule:
    """Validate one rule against the catalogue (check, runbook, params, operators)."""
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{source}: a rule must be a table")
    rid = raw.get("id")
    where = f"{source}: rule {rid!r}"
    if not isinstance(rid, str) or not RULE_ID_RE.match(rid):
        raise SchemaError(f"{where}: id must look like L1-XXX-001")
    extra = sorted(set(raw) - _RULE_FIELDS)
    if extra:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(extra)}")
    check = raw.get("check")
    if check not in catalog.checks:
        raise SchemaError(f"{where}: unknown check {check!r}")
    action = raw.get("action")
    if action not in ACTIONS:
        raise SchemaError(f"{where}: action must be one of {ACTIONS}")
    runbook_id = raw.get("runbook_id")
    params_raw = raw.get("params", {})
    if not isinstance(params_raw, Mapping):
        raise SchemaError(f"{where}: params must be a table")
    phases_raw = raw.get("phases", [])
    if not isinstance(phases_raw, list) or not all(isinstance(p, str) for p in phases_raw):
        raise SchemaError(f"{where}: phases must be a list of strings")
    phases = tuple(phases_raw)
    params: dict[str, Any] = dict(params_raw)
    if runbook_id is not None:
        if runbook_id not in catalog.runbooks:
            raise SchemaError(f"{where}: unknown runbook {runbook_id!r}")
        rb = catalog.runbooks[runbook_id]
        if rb.check != check:
            raise SchemaError(f"{where}: runbook {runbook_id} belongs to check {rb.check!r}")
        bad = sorted(set(phases) - set(rb.phases))
        if bad:
            raise SchemaError(f"{where}: runbook {runbook_id} has no phase(s) {', '.join(bad)}")
    if action == "run_runbook":
        if runbook_id is None:
            raise SchemaError(f"{where}: run_runbook needs a runbook_id")
        rb = catalog.runbooks[runbook_id]
        if "remediate" not in rb.phases:
            raise SchemaError(f"{where}: runbook {runbook_id} cannot remediate")
        try:
            rb.validate_params(params)
        except SchemaError as exc:
            raise SchemaError(f"{where}: {exc.message}") from None
        phases = phases or ("remediate", "verify")
    elif phases:
        raise SchemaError(f"{where}: only run_runbook rules take phases")
    conds_raw = raw.get("conditions", [])
    if not isinstance(conds_raw, list) or not conds_raw:
        raise SchemaError(f"{where}: needs at least one condition")
    severity = raw.get("severity", "medium")
    if severity not in SEVERITIES:
        raise SchemaError(f"{where}: severity must be one of {SEVERITIES}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}: needs a name")
    return Rule(
        id=rid,
        name=name,
        check=check,
        conditions=tuple(_parse_condition(c, where) for c in conds_raw),
        action=action,
        runbook_id=runbook_id,
        params=MappingProxyType(params),
        priority=_int(raw, "priority", 100, 0, where),
        cooldown_s=_int(raw, "cooldown_s", 300, 0, where),
        max_attempts=_int(raw, "max_attempts", 3, 1, where),
        severity=severity,
        phases=phases,
    )


def parse_rules(data: Mapping[str, Any], catalog: Catalog, source: str = "rules") -> list[Rule]:
    """Validate a rules document ``{"rule": [...]}``; duplicate ids fail the whole document."""
    if not isinstance(data, Mapping):
        raise SchemaError(f"{source}: must be a table")
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise SchemaError(f"{source}: unknown top-level key(s) {', '.join(extra)}")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise SchemaError(f"{source}: 'rule' must be an array of tables")
    rules = [parse_rule(r, catalog, source) for r in raw_rules]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise SchemaError(f"{source}: rule id {r.id} appears twice")
        seen.add(r.id)
    return rules
