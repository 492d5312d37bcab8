"""What a packet's bundles observed, per (host, check): observations, episodes and statements.

The report (osiris_core/report.py) judges HIPAA controls from these facts only, so the same
packet always yields the same report and a verifier can re-derive it byte for byte. Why its own
module: the rules that turn signed bundles into "this check was seen on this host that day" and
"this finding opened here and was healed there" are the report's evidence model, and the
control semantics on top of them should read without the bundle plumbing.

- An **observation** of (host, check) is a bundle whose ``check`` is that check (its signed
  outcome), or an entry of the scanner's hourly snapshot (``evidence_pipeline`` bundle whose
  ``post_state.runbooks`` lists every runbook's status: compliant, drift, error).
- A **finding** is a non-compliant observation: outcome ``alert``, ``failed``, ``reverted``,
  ``deferred`` or ``escalated`` (snapshot status ``drift`` or ``error``). ``compliant`` and
  ``healed`` are compliant; ``rejected`` and ``expired`` (a refused or stale order) observe the
  pipeline, not the host, and change no state.
- A snapshot bundle's own outcome (``alert`` when any entry drifts) only summarises its
  entries; as an observation of ``evidence_pipeline`` it counts as compliant (the record was
  made), and each entry is judged as an observation of its own check.
- An **episode** opens at the first finding of (host, check) while none is open and closes at
  the next compliant observation (its closer). A ``healed`` bundle with no open episode is an
  episode opened and closed by that one bundle (drift found and fixed in one run).
- **Statements** (``activity_review``, ``risk_acceptance``) and lifecycle bundles
  (``appliance_decommission``) are not observations of a host's check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FINDING_OUTCOMES = frozenset({"alert", "failed", "reverted", "deferred", "escalated"})
COMPLIANT_OUTCOMES = frozenset({"compliant", "healed"})
SNAPSHOT_CHECK = "evidence_pipeline"
SNAPSHOT_OUTCOME = {"compliant": "compliant", "drift": "alert", "error": "failed"}
REVIEW_CHECK = "activity_review"
ACCEPTANCE_CHECK = "risk_acceptance"
NOT_OBSERVATIONS = frozenset({REVIEW_CHECK, ACCEPTANCE_CHECK, "appliance_decommission"})
TIERS = ("L1", "L2", "L3", "order")


@dataclass(frozen=True, slots=True)
class Obs:
    """One observation of (host, check) at ``at`` by bundle (appliance_id, seq)."""

    at: str
    appliance_id: str
    seq: int
    host_id: str
    check: str
    outcome: str
    tier: str
    started_at: str
    snapshot: bool = False

    def ref(self) -> dict[str, Any]:
        return {
            "appliance_id": self.appliance_id,
            "seq": self.seq,
            "outcome": self.outcome,
            "tier": self.tier,
        }


@dataclass
class Episode:
    """One non-compliant stretch of (host, check): opener, every observation, closer."""

    opened: Obs
    seen: list[Obs] = field(default_factory=list)
    closed: Obs | None = None


@dataclass
class Tally:
    """Healing counts, incidents and policy identities of the period's action bundles."""

    by_tier: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    healed: int = 0
    failed: int = 0
    escalated: int = 0
    rulesets: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def add(self, b: dict[str, Any], check: str) -> None:
        if b.get("ruleset_hash"):
            self.rulesets.add(b["ruleset_hash"])
        if b.get("policy_version"):
            self.policies.add(b["policy_version"])
        if check in NOT_OBSERVATIONS:
            return
        if b["tier"] in self.by_tier:
            self.by_tier[b["tier"]] += 1
            self.healed += b["outcome"] == "healed"
            self.failed += b["outcome"] == "failed"
        self.escalated += b["outcome"] == "escalated"
        if b["outcome"] == "escalated" and b["tier"] == "L3":
            post = b.get("post_state") if isinstance(b.get("post_state"), dict) else {}
            inc = post.get("incident") if isinstance(post.get("incident"), dict) else {}
            sev = inc.get("severity") if isinstance(inc.get("severity"), str) else None
            self.incidents.append({
                "id": f"inc-{b['appliance_id']}-{b['seq']}", "host_id": b["host_id"],
                "check": check, "severity": sev, "at": b["finished_at"],
                "appliance_id": b["appliance_id"], "seq": b["seq"],
            })  # fmt: skip


@dataclass
class Evidence:
    """Everything the report needs from the period's bundles, gathered in one streaming pass.

    ``obs`` keeps, per (host, check), only the observations episodes can turn on (findings,
    heals, the first compliant one after either); ``cells`` the latest state per day."""

    obs: dict[tuple[str, str], list[Obs]] = field(default_factory=dict)
    cells: dict[tuple[str, str], dict[str, tuple[str, str]]] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    acceptances: list[dict[str, Any]] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {h for h, _c in self.obs}

    def observe(self, o: Obs) -> None:
        key = (o.host_id, o.check)
        day = self.cells.setdefault(key, {})
        state = "finding" if o.outcome in FINDING_OUTCOMES else "ok"
        prev = day.get(o.at[:10])
        if prev is None or o.at >= prev[0]:
            day[o.at[:10]] = (o.at, state)
        lst = self.obs.setdefault(key, [])
        plain = o.outcome not in FINDING_OUTCOMES and (o.outcome != "healed" or o.snapshot)
        if plain and lst and lst[-1].outcome == "compliant":
            return  # one more compliant observation after a compliant one changes nothing
        lst.append(o)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def collect(period_bundles: Iterable[dict[str, Any]], aliases: Mapping[str, str]) -> Evidence:
    """Observations and statements of the period's bundles (already in chain order)."""
    ev = Evidence()
    for b in period_bundles:
        check = aliases.get(b["check"], b["check"])
        ev.tally.add(b, check)
        base = (b["finished_at"], b["appliance_id"], b["seq"])
        post = b.get("post_state") if isinstance(b.get("post_state"), dict) else {}
        if check == REVIEW_CHECK:
            ev.reviews.append({"bundle": b, "post": post})
            continue
        if check == ACCEPTANCE_CHECK:
            ev.acceptances.append({"bundle": b, "post": post})
            continue
        if check in NOT_OBSERVATIONS:
            continue
        snap = check == SNAPSHOT_CHECK and isinstance(post.get("runbooks"), dict)
        # a snapshot's own outcome only summarises its entries, which are judged one by one:
        # as an observation of evidence_pipeline it says the record was made
        outcome = "compliant" if snap else b["outcome"]
        o = Obs(*base, b["host_id"], check, outcome, b["tier"], b["started_at"])
        ev.observe(o)
        if snap:
            seen: set[str] = set()
            for entry in post["runbooks"].values():
                if not isinstance(entry, dict):
                    continue
                c, status = _str(entry.get("check")), _str(entry.get("status"))
                if c is None or status not in SNAPSHOT_OUTCOME:
                    continue
                c = aliases.get(c, c)
                outcome = SNAPSHOT_OUTCOME[status]
                key = (c, outcome)
                if key in seen:
                    continue
                seen.add(key)
                ev.observe(Obs(*base, b["host_id"], c, outcome, "monitor", b["started_at"], True))
    for lst in ev.obs.values():
        lst.sort(key=lambda o: (o.at, o.appliance_id, o.seq, o.outcome))
    return ev


def episodes(observations: list[Obs]) -> list[Episode]:
    """The non-compliant episodes of one (host, check), in time order."""
    out: list[Episode] = []
    cur: Episode | None = None
    for o in observations:
        if o.outcome in FINDING_OUTCOMES:
            if cur is None:
                cur = Episode(o)
                out.append(cur)
            cur.seen.append(o)
        elif o.outcome in COMPLIANT_OUTCOMES:
            if cur is not None:
                cur.closed = o
                cur.seen.append(o)
                cur = None
            elif o.outcome == "healed" and not o.snapshot:
                out.append(Episode(o, [o], o))
    return out


def acceptance_covers(acc: dict[str, Any], ep: Episode, host: str, check: str, end: str) -> bool:
    """A risk acceptance covers an episode when it names its (host, check), names the episode's
    opening time or none (then: the episode open when it was signed, or any opening before
    ``until``), and has not lapsed by the end of the period (``until`` >= period end)."""
    post, b = acc["post"], acc["bundle"]
    until = _str(post.get("until"))
    if post.get("host_id") != host or post.get("check") != check or until is None:
        return False
    if until < end:
        return False
    opened_at = post.get("exception_opened_at")
    if opened_at is not None:
        return bool(opened_at == ep.opened.at)
    open_when_signed = ep.opened.at <= b["finished_at"] and (
        ep.closed is None or ep.closed.at >= b["finished_at"]
    )
    return open_when_signed or ep.opened.at < until
