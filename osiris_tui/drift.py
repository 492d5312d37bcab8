"""Drift per (host, check) computed from an appliance's signed evidence chain.

The server keeps no drift table; what it keeps is the evidence, and that is what an auditor
trusts. So the Drift tab and `osiris appliance drift` replay the chain in `seq` order: each
bundle that observes a state moves its (host, check) to that state, and each healing bundle
(tier L1/L2/L3/order) counts as an attempt on the current drift episode. No Textual import: the
CLI and the console share this code.

State of a bundle, from `outcome` and `tier` (docs/evidence-format.md §4):
- `compliant`, `healed` → compliant;
- `alert`, `escalated`, `reverted`, `deferred`, and `failed` from a healing tier → drift
  (healing did not fix it);
- `failed` at tier `monitor` → error (the check itself could not run — never a silent pass);
- `rejected`, `expired` (an order that never ran) observe nothing: the state is unchanged;
- a healing-tier bundle about a check that could not run (its `pre_state.status` is `error`: the
  L3 incident "the check could not run") leaves it an error — escalating a failure to reach a
  host does not make the host drift (before issue 13 this read `▲ drift {}`).

Why it could not run is the bundle's `post_state.error` (`{"kind", "detail"}`; an older agent's
text `transport: …` reads as `unreachable`), worded by `REASON_TEXT`. A failure of the whole
host (a refused credential, no connection) is signed once, its `post_state.error.checks` naming
every check it stands for: each of them is an error from that bundle on.

The appliance's last check-in (`checkins`) then has the last word where the evidence cannot: a
pair it reports as `error` is an error (with its reason), and a pair not re-checked for
`records.STALE_INTERVALS` of its interval is `stale` (not known to be good). Hosts no longer
among the site's credentials (`hosts`) leave the view; their history stays in the evidence.

A bundle signed under a former check id (a catalogue alias) counts under its check's current id,
so a renamed check keeps one row and one history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from osiris_core.catalog import check_aliases

HEALING_TIERS = frozenset({"L1", "L2", "L3", "order"})
# osiris_core.protocol.ERROR_REASONS in words a technician reads at 2 a.m.
REASON_TEXT = {
    "auth": "auth refused",
    "unreachable": "unreachable",
    "hostkey": "host key mismatch",
    "tls": "TLS certificate refused",
    "timeout": "timeout",
    "no_result": "no result",
    "script": "check failed",
    "refused": "parameters refused",
    "crashed": "agent crashed",
}
# The agent's own pipeline: hourly monitoring snapshots and non-runbook orders, not a host check.
PIPELINE_CHECKS = frozenset({"evidence_pipeline"})
NO_OBSERVATION = frozenset({"rejected", "expired"})
DRIFT_OUTCOMES = frozenset({"alert", "escalated", "reverted", "deferred", "failed"})


def bundle_state(bundle: Mapping[str, Any]) -> str | None:
    """compliant / drift / error, or None when the bundle observes nothing."""
    outcome = bundle.get("outcome")
    tier = bundle.get("tier")
    if outcome in ("compliant", "healed"):
        return "compliant"
    if outcome == "failed" and tier not in HEALING_TIERS:
        return "error"
    if outcome in ("alert", "escalated") and _status_of(bundle.get("pre_state")) == "error":
        return "error"  # an alert or incident about a check that could not run
    if outcome in DRIFT_OUTCOMES:
        return "drift"
    return None


def _status_of(state: Any) -> Any:
    return state.get("status") if isinstance(state, Mapping) else None


def bundle_error(bundle: Mapping[str, Any]) -> tuple[str, str, list[str]] | None:
    """(reason, detail, checks it stands for) of a bundle about a check that could not run."""
    for key in ("post_state", "pre_state"):
        st = bundle.get(key)
        err = st.get("error") if isinstance(st, Mapping) else None
        if isinstance(err, Mapping):
            checks = err.get("checks")
            names = [str(c) for c in checks] if isinstance(checks, list) else []
            return str(err.get("kind") or "script"), str(err.get("detail") or ""), names
        if isinstance(err, str) and err:
            head, _, rest = err.partition(": ")
            if head == "transport":  # an agent before issue 13
                return "unreachable", rest, []
            return (head, rest, []) if head in REASON_TEXT else ("script", err, [])
    return None


def reason_text(reason: str | None) -> str:
    return REASON_TEXT.get(reason or "", reason or "")


def _observed(bundle: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """(observed, expected) from post_state, else pre_state; None when neither carries them."""
    for key in ("post_state", "pre_state"):
        s = bundle.get(key)
        if isinstance(s, Mapping) and ("observed" in s or "expected" in s):
            return s.get("observed"), s.get("expected")
    return None


@dataclass
class DriftRow:
    """One (host, check): its latest state per the evidence, since when, and healing so far."""

    host_id: str
    check: str
    state: str = "unknown"
    since: str | None = None  # finished_at of the bundle that entered `state`
    since_exact: bool = True  # False when the window of evidence starts inside this state
    drift_since: str | None = None  # start of the latest drift episode (None: never drifted)
    attempts: int = 0  # healing bundles since `drift_since`
    resolved_at: str | None = None  # when the latest drift episode ended (state → compliant)
    resolved_by: str | None = None  # the tier of the bundle that ended it (L1…, or monitor)
    last_outcome: str | None = None
    last_tier: str | None = None
    last_runbook: str | None = None
    last_seq: int = 0
    last_at: str | None = None
    observed: Any = None
    expected: Any = None
    bundles: int = 0
    source: str = "evidence"  # or "checkin" when no bundle names this pair yet
    reason: str | None = None  # state error: why the check could not run (ERROR_REASONS)
    detail: str | None = None  # state error: the transport's or script's own words
    stale: bool = False  # not re-checked for STALE_INTERVALS of its interval (state "stale")

    @property
    def status_text(self) -> str:
        """The state and, for an error, why: ``error auth refused``."""
        return f"{self.state} {reason_text(self.reason)}" if self.reason else self.state

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.state  # the name the check-in uses (state kept for old scripts)
        out["reason_text"] = reason_text(self.reason) or None
        return out


@dataclass
class _Acc:
    row: DriftRow
    seen_state: bool = False


def drift_rows(
    evidence: Iterable[Mapping[str, Any]],
    checkins: Iterable[Any] = (),
    *,
    window_start_seq: int = 1,
    aliases: Mapping[str, str] | None = None,
    hosts: Iterable[str] | None = None,
    now: float | None = None,
) -> list[DriftRow]:
    """Replay `evidence` rows (the server's `GET /evidence` rows, any order) into DriftRows.

    `checkins` (`records.CheckStatus`: the appliance's last check-in) fill in pairs no bundle
    names yet, turn a pair they report as `error` into one, and mark stale results (at `now`).
    `window_start_seq` is the first seq fetched: a pair whose first bundle in the window is
    already in its final state gets `since_exact=False`. `aliases` (former check id -> check
    id) defaults to the packaged catalogue's. `hosts`, when given, keeps only those hosts (the
    site's credentials and the appliance itself).
    """
    fold = check_aliases() if aliases is None else aliases
    rows = sorted(
        (r for r in evidence if isinstance(r.get("envelope"), Mapping)),
        key=lambda r: int(r.get("seq") or 0),
    )
    acc: dict[tuple[str, str], _Acc] = {}
    for r in rows:
        b = r["envelope"].get("bundle") or {}
        host, check = str(b.get("host_id", "")), str(b.get("check", ""))
        check = fold.get(check, check)
        if not check or check in PIPELINE_CHECKS:
            continue
        a = acc.get((host, check))
        if a is None:
            a = acc[(host, check)] = _Acc(DriftRow(host, check))
        row = a.row
        seq = int(b.get("seq") or r.get("seq") or 0)
        at = b.get("finished_at") or r.get("finished_at")
        row.bundles += 1
        row.last_outcome, row.last_tier = b.get("outcome"), b.get("tier")
        row.last_runbook = b.get("runbook_id") or row.last_runbook
        row.last_seq, row.last_at = seq, at
        obs = _observed(b)
        if obs is not None:
            row.observed, row.expected = obs
        # An order that was rejected or expired never ran: not an attempt.
        healing = b.get("tier") in HEALING_TIERS and b.get("outcome") not in NO_OBSERVATION
        if healing:
            if row.state in ("drift", "error") and row.drift_since is not None:
                row.attempts += 1
            else:
                # Healing while we last saw it compliant (or never): it drifted unobserved.
                row.drift_since, row.attempts = at, 1
        state = bundle_state(b)
        _enter(a, state, at, healing, b.get("tier"), window_start_seq)
        if state == "error":
            err = bundle_error(b)
            if err is not None:
                row.reason, row.detail = err[0], err[1] or None
                for other in err[2]:  # a whole-host failure names every check it stands for
                    other = fold.get(other, other)
                    if other == check or other in PIPELINE_CHECKS:
                        continue
                    o = acc.get((host, other))
                    if o is None:
                        o = acc[(host, other)] = _Acc(DriftRow(host, other))
                    _enter(o, "error", at, False, b.get("tier"), window_start_seq)
                    o.row.reason, o.row.detail = err[0], err[1] or None
        elif state is not None:
            row.reason = row.detail = None
    out = [a.row for a in acc.values()]
    by_pair = {(r.host_id, r.check): r for r in out}
    for c in checkins:
        check = fold.get(c.check, c.check)
        reason = getattr(c, "reason", None)
        row = by_pair.get((c.host_id, check))
        if row is None:
            row = DriftRow(c.host_id, check, state=c.status, since=c.since, source="checkin")
            row.reason = reason if c.status == "error" else None
            out.append(row)
            by_pair[(c.host_id, check)] = row
        elif c.status == "error" and row.state != "error":
            # the agent could not run it since its last bundle (a host failure it signed once)
            row.state, row.since, row.reason = "error", c.since, reason
        elif c.status == "error" and row.reason is None:
            row.reason = reason
        stale = getattr(c, "is_stale", None)
        if stale is not None and row.state != "error" and stale(now):
            row.state, row.stale = "stale", True
    if hosts is not None:
        keep = set(hosts)
        out = [r for r in out if r.host_id in keep]
    order = {"drift": 0, "error": 1, "stale": 2, "unknown": 3, "compliant": 4}
    out.sort(key=lambda d: (order.get(d.state, 3), d.host_id, d.check))
    return out


def _enter(
    a: _Acc, state: str | None, at: Any, healing: bool, tier: Any, window_start_seq: int
) -> None:
    """Move one pair to ``state`` (None: the bundle observed nothing), keeping its episode."""
    row = a.row
    if state is not None and state != row.state:
        entering_drift = state in ("drift", "error") and row.state not in ("drift", "error")
        if entering_drift and not healing:
            row.drift_since, row.attempts = at, 0
        if entering_drift:
            row.resolved_at = row.resolved_by = None
        if state == "compliant" and row.drift_since is not None:
            row.resolved_at, row.resolved_by = at, tier
        row.since_exact = a.seen_state or window_start_seq <= 1
        row.since = at
        row.state = state
    if state is not None:
        a.seen_state = True


def fetch_after(
    client: Any, site_id: str, appliance_id: str, after_seq: int, cap: int = 8000
) -> list[dict[str, Any]]:
    """Every bundle of one appliance after `after_seq` (paged by 1000, at most `cap`)."""
    out: list[dict[str, Any]] = []
    after = after_seq
    while len(out) < cap:
        page = client.evidence(site_id, appliance_id, after_seq=after, limit=1000)["evidence"]
        out.extend(page)
        if len(page) < 1000:
            break
        after = int(page[-1]["seq"])
    return out


def fetch_chain_tail(
    client: Any, site_id: str, appliance_id: str, head_seq: int | None, window: int = 2000
) -> tuple[list[dict[str, Any]], int]:
    """The newest `window` bundles of one appliance, and the first seq asked for.

    The server lists evidence oldest first (`after_seq` + `limit` ≤ 1000), so the tail starts
    at the appliance's reported chain head minus the window and pages forward to the end.
    """
    start = max(0, (head_seq or 0) - window)
    rows = fetch_after(client, site_id, appliance_id, start)
    if len(rows) > window:
        rows = rows[-window:]
        start = int(rows[0]["seq"]) - 1
    return rows, start + 1


def short(value: Any, width: int = 40) -> str:
    """Compact one-line JSON for a table cell (the full value is one `enter` away)."""
    import json

    text = "-" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def observed_text(row: DriftRow, width: int = 48) -> str:
    """One cell: for drift, the expected keys that differ (`public=false want true`); else the
    observed state. Only equality is judged here — the check itself decided the state."""
    obs, exp = row.observed, row.expected
    if row.state != "compliant" and isinstance(obs, Mapping) and isinstance(exp, Mapping):
        diffs = [
            f"{k}={short(obs.get(k), 16)} want {short(v, 16)}"
            for k, v in sorted(exp.items())
            if obs.get(k) != v
        ]
        if diffs:
            text = "; ".join(diffs)
            return text if len(text) <= width else text[: width - 1] + "…"
    if obs is None and exp is None:
        return "-"
    return short(obs, width)
