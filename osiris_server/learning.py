"""The learning loop: L2 outcomes → candidates → signed L1 rules, canary first, disabled on failure.

Why each threshold:

- A pattern (``osiris_core/pattern.py``: check, masked observed shape, chosen runbook and params)
  becomes a **candidate** at ``MIN_OCCURRENCES`` (5) L2 outcomes with at least ``MIN_SUCCESS``
  (90 %) healed, from at least ``MIN_SITES`` (2) distinct sites. The site count is the defence
  against a hostile appliance: one appliance belongs to one site, so however many fake
  successes it reports it cannot create a candidate alone (and it cannot approve one: only an
  admin does). Fractions are always shown as ``k/n``, never as a bare percentage.
- A candidate can be approved only if its parameters pass the runbook's validator and bounds with
  *no* site allow-list, and it names no trust-redirecting (``trusted``) or ``release`` parameter:
  a learned rule that would weaken a control, or redirect trust, can never be signed.
- An approved candidate is signed into the rule set of its **canary** sites (a list, or a
  percentage of the sites chosen by a stable hash) at once; after ``soak_s`` with no failure of
  the promoted rule it goes to the whole **fleet**, on the server's tick (``tick``, run by the
  watchdog thread) or at a check-in, whichever comes first. Any server process moves it (the
  status UPDATE is conditional, so it moves once, with one audit row).
- A promoted rule whose failure rate after promotion exceeds ``DISABLE_RATE`` (20 %) over at
  least ``DISABLE_MIN_SAMPLE`` (5) firings is **disabled** automatically: the next rule sets
  leave it out and L2 (or L3) takes the finding again. A hostile appliance reporting fake
  failures can only get a rule disabled, never kept.

Every step is an audit row (actor ``server`` for the automatic ones); a site whose rule set
gains or loses a learned rule sees it as evidence from its own appliance (the agent records a
``policy_change`` bundle naming the rule, ``osiris_agent/learned_rules.py``).

Per-site rule sets: the signed rule set is the catalogue's baseline rules plus the learned rules
promoted for that site. ``RuleSets`` keeps them per set of learned rule ids (most sites share
one of very few), and re-reads the ``learning`` generation at most every ``REFRESH_S`` seconds,
so a promotion made by another process reaches every check-in within seconds, at no statement
cost per check-in.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from osiris_core import canonical, pattern
from osiris_core.canonical import parse_time, utc_now
from osiris_core.errors import SchemaError
from osiris_server.db import audit as db_audit
from osiris_server.db import learning as db_learning

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.db.engine import Writer

MIN_OCCURRENCES = 5
MIN_SUCCESS = (9, 10)  # k/n >= 9/10, compared in integers
MIN_SITES = 2
DISABLE_RATE = (1, 5)  # failures/n > 1/5
DISABLE_MIN_SAMPLE = 5
DEFAULT_SOAK_S = 86400
REFRESH_S = 2.0
RULE_PREFIX = "L1-LRN-"
RULE_PRIORITY = 5  # before the baseline rules: the pattern is what the baseline did not heal
SUCCESS = {"healed": True, "failed": False, "reverted": False}
_FIRED = re.compile(r"L1 rule (L1-LRN-[0-9A-F]{12})\b")


def rule_id(sha256: str) -> str:
    """The pattern's id = the id of the L1 rule it would become (``osiris_core.ids.RULE_ID``)."""
    return RULE_PREFIX + sha256[:12].upper()


def fraction(t: dict[str, int]) -> str:
    return f"{t['ok']}/{t['n']}"


def is_candidate(t: dict[str, int]) -> bool:
    return (
        t["n"] >= MIN_OCCURRENCES
        and t["ok"] * MIN_SUCCESS[1] >= t["n"] * MIN_SUCCESS[0]
        and t["sites"] >= MIN_SITES
    )


def should_disable(t: dict[str, int]) -> bool:
    fails = t["n"] - t["ok"]
    return t["n"] >= DISABLE_MIN_SAMPLE and fails * DISABLE_RATE[1] > t["n"] * DISABLE_RATE[0]


# ---------------------------------------------------------------------------- ingest
def observe(app: App, w: Writer, bundle: dict[str, Any], bundle_hash: str) -> None:
    """Count one accepted bundle if it is an L2 outcome or a learned rule firing; inside the
    ingest transaction, so the count and the evidence commit together. Other bundles: nothing."""
    outcome = bundle.get("outcome")
    if outcome not in SUCCESS:
        return
    if bundle.get("tier") == "L2":
        pre = bundle.get("pre_state") or {}
        l2 = pre.get("l2") if isinstance(pre, dict) else None
        sig = pattern.renormalise(l2.get("pattern")) if isinstance(l2, dict) else None
        if sig is None or sig["runbook_id"] != bundle.get("runbook_id"):
            return  # no signature, or one that does not describe this bundle: not counted
        if sig["check"] != bundle.get("check"):
            return
        pid = rule_id(sig["sha256"])
        db_learning.ensure_pattern(w, pid, sig)
        if db_learning.add_outcome(w, bundle_hash, pid, bundle, "L2", SUCCESS[outcome]):
            _judge_candidate(w, pid)
    elif bundle.get("tier") == "L1":
        m = _FIRED.search(str(bundle.get("action_taken") or ""))
        if m is None:
            return
        row = db_learning.pattern(w, m.group(1))
        if row is None or row["status"] not in db_learning.PROMOTED:
            return
        if row["status"] == "canary" and bundle.get("site_id") not in row["canary_sites"]:
            return  # the rule is not in force there: a firing reported from there is not one
        if db_learning.add_outcome(w, bundle_hash, row["id"], bundle, "L1", SUCCESS[outcome]):
            _judge_promoted(w, row)


def _judge_candidate(w: Writer, pid: str) -> None:
    row = db_learning.pattern(w, pid)
    if row is None:
        return
    if row["status"] != "observing":
        db_learning.touch(w, pid)
        return
    t = db_learning.tally(w, pid, "L2")
    if is_candidate(t) and db_learning.set_status(w, pid, "candidate", ("observing",)):
        db_audit.record(w, "server", "learning.candidate", pid, None, None,
                        {"l2": fraction(t), "sites": t["sites"], "appliances": t["appliances"],
                         "runbook_id": row["runbook_id"]})  # fmt: skip
    else:
        db_learning.touch(w, pid)


def _judge_promoted(w: Writer, row: dict[str, Any]) -> None:
    t = db_learning.tally(w, row["id"], "L1")
    if should_disable(t) and db_learning.set_status(
        w, row["id"], "disabled", db_learning.PROMOTED, disabled_at=utc_now()
    ):
        why = f"failure rate above {DISABLE_RATE[0]}/{DISABLE_RATE[1]}"
        detail = {"after_promotion": fraction(t), "was": row["status"], "why": why}
        db_audit.record(w, "server", "learning.disable", row["id"], None, None, detail)


def advance_due(app: App, rows: list[dict[str, Any]]) -> list[str]:
    """Canary rules whose soak is over with no failure go fleet-wide; the ids moved here (empty:
    none). ``rows`` may be stale: the conditional UPDATE re-checks under the writer lock, so of
    several processes advancing together one moves the rule and writes its audit row."""
    moved: list[str] = []
    now = parse_time(utc_now())
    for row in rows:
        if row["status"] != "canary" or not row.get("promoted_at"):
            continue
        if parse_time(row["promoted_at"]) + timedelta(seconds=int(row["soak_s"])) > now:
            continue
        with app.db.write() as w:
            t = db_learning.tally(w, row["id"], "L1")
            if t["n"] - t["ok"]:
                continue  # a failure in the canary: it stays there (and may be disabled)
            if db_learning.set_status(w, row["id"], "fleet", ("canary",), fleet_at=utc_now()):
                db_audit.record(w, "server", "learning.fleet", row["id"], None, None,
                                {"canary": fraction(t), "soak_s": int(row["soak_s"])})  # fmt: skip
                moved.append(row["id"])
    return moved


def tick(app: App) -> list[str]:
    """The server's timer (run by the watchdog thread, ``osiris_server/watchdog.py``): a canary
    rule whose soak ended reaches the fleet — and its ``learning.fleet`` audit row is written —
    within one tick, even when no canary site checks in (``RuleSets`` also advances lazily, at a
    check-in). One read when nothing is in canary. The automatic disable needs no timer: it is
    judged when the failing firing is ingested (``_judge_promoted``)."""
    rows = db_learning.patterns(app.db, ("canary",))
    moved = advance_due(app, rows) if rows else []
    if moved:
        app.rule_sets.invalidate()  # this process at once; the others at their next refresh
    return moved


# ---------------------------------------------------------------------------- judging
def refusal(app: App, row: dict[str, Any]) -> str | None:
    """Why this pattern can never become a rule, or None."""
    rb = app.catalog_runbooks().get(row["runbook_id"])
    if rb is None:
        return f"runbook {row['runbook_id']} is not in this server's catalogue"
    if rb.check != row["check_id"] or "remediate" not in rb.phases:
        return f"runbook {rb.id} cannot remediate check {row['check_id']}"
    for name in row["params"]:
        p = rb.params.get(name)
        if p is not None and p.bound is not None and p.bound.kind in ("trusted", "release"):
            return f"param {name!r} redirects trust ({p.bound.kind}): never learned"
    try:
        rb.validate_params(row["params"])  # no allow-list: the strictest reading
    except SchemaError as exc:
        return f"params refused by the runbook's bounds: {exc}"[:300]
    try:
        from osiris_core.catalog import load_catalog
        from osiris_core.catalog.rules import parse_rule

        parse_rule(rule_doc(app, row), load_catalog(), "learned rule")
    except SchemaError as exc:
        return f"the rule would not load: {exc}"[:300]
    return None


def rule_doc(app: App, row: dict[str, Any]) -> dict[str, Any]:
    """The L1 rule a pattern becomes: the same detect runbook in drift, the shape's booleans and
    words as equalities (so it fires only on the pattern learned), the chosen runbook and
    params."""
    rb = app.catalog_runbooks().get(row["runbook_id"])
    conds: list[dict[str, Any]] = [
        {"field": "runbook_id", "op": "eq", "value": row["detect_runbook_id"]},
        {"field": "status", "op": "eq", "value": "drift"},
    ]
    for k, v in sorted((row["shape"] or {}).items()):
        if isinstance(v, bool) or (isinstance(v, str) and v not in pattern.MASKS):
            conds.append({"field": f"observed.{k}", "op": "eq", "value": v})
    return {
        "id": row["id"],
        "name": f"Learned: {row['check_id']} -> {row['runbook_id']}"[:120],
        "check": row["check_id"],
        "action": "run_runbook",
        "runbook_id": row["runbook_id"],
        "params": dict(row["params"]),
        "severity": getattr(rb, "severity", "medium") or "medium",
        "priority": RULE_PRIORITY,
        "cooldown_s": 3600,
        "max_attempts": 2,
        "conditions": conds,
    }


def canary_sites(app: App, pid: str, sites: list[str] | None, percent: int | None) -> list[str]:
    """The named sites, or ``percent`` % of all sites (at least one) by a stable hash."""
    from osiris_server.db import tenants as db_tenants

    every = db_tenants.site_ids(app.db)
    if sites:
        return sorted(set(sites))
    share = max(1, math.ceil(len(every) * int(percent or 0) / 100)) if every else 0
    ranked = sorted(every, key=lambda s: hashlib.sha256(f"{pid}|{s}".encode()).hexdigest())
    return sorted(ranked[:share])


# ---------------------------------------------------------------------------- rule sets
class RuleSets:
    """Per-site signed rule sets (baseline + the learned rules promoted for the site)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._checked = 0.0
        self._gen = -1
        self._rows: list[dict[str, Any]] = []
        self._docs: dict[tuple[str, ...], tuple[dict[str, Any], bytes, str]] = {}

    def _refresh(self) -> None:
        t = time.monotonic()
        if t - self._checked < REFRESH_S and self._gen >= 0:
            return
        self._checked = t
        g = db_learning.generation(self.app.db)
        if g != self._gen:
            self._rows = db_learning.patterns(self.app.db, db_learning.PROMOTED)
            self._gen = g
        if any(r["status"] == "canary" for r in self._rows) and advance_due(self.app, self._rows):
            self._gen = -1
            self._checked = 0.0
            self._refresh()

    def for_site(self, site_id: str) -> tuple[dict[str, Any], bytes, str]:
        """``(signed rules document, its canonical JSON, its sha256: hash)`` for one site."""
        with self._lock:
            self._refresh()
            rows = [r for r in self._rows
                    if r["status"] == "fleet" or site_id in r["canary_sites"]]  # fmt: skip
            key = tuple(sorted(r["id"] for r in rows))
            hit = self._docs.get(key)
            if hit is not None:
                return hit
            if not key:
                base = self.app.signed_rules
                hit = (base, self.app.signed_rules_json, _hash(base))
            else:
                from osiris_server.app import sign_rules

                baseline = list(self.app.signed_rules.get("signed", {}).get("rules", []))
                learned = [rule_doc(self.app, r) for r in rows if refusal(self.app, r) is None]
                signed = sign_rules(baseline + learned, self.app.order_signer)
                hit = (signed, canonical.dumps(signed), _hash(signed))
            if len(self._docs) > 256:
                self._docs.clear()
            self._docs[key] = hit
            return hit

    def invalidate(self) -> None:
        with self._lock:
            self._gen, self._checked = -1, 0.0


def _hash(signed: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical.dumps(signed.get("signed", {}))).hexdigest()
