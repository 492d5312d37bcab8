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
- `rejected`, `expired` (an order that never ran) observe nothing: the state is unchanged.

A bundle signed under a former check id (a catalogue alias) counts under its check's current id,
so a renamed check keeps one row and one history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from osiris_core.catalog import check_aliases

HEALING_TIERS = frozenset({"L1", "L2", "L3", "order"})
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
    if outcome in DRIFT_OUTCOMES:
        return "drift"
    return None


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

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


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
) -> list[DriftRow]:
    """Replay `evidence` rows (the server's `GET /evidence` rows, any order) into DriftRows.

    `checkins` (objects with host_id, check, status, since — the appliance's last check-in) fill
    in pairs no bundle names yet. `window_start_seq` is the first seq fetched: a pair whose
    first bundle in the window is already in its final state gets `since_exact=False`.
    `aliases` (former check id -> check id) defaults to the packaged catalogue's.
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
        if state is not None and state != row.state:
            entering_drift = state in ("drift", "error") and row.state not in ("drift", "error")
            if entering_drift and not healing:
                row.drift_since, row.attempts = at, 0
            if entering_drift:
                row.resolved_at = row.resolved_by = None
            if state == "compliant" and row.drift_since is not None:
                row.resolved_at, row.resolved_by = at, b.get("tier")
            row.since_exact = a.seen_state or window_start_seq <= 1
            row.since = at
            row.state = state
        if state is not None:
            a.seen_state = True
    out = [a.row for a in acc.values()]
    for c in checkins:
        check = fold.get(c.check, c.check)
        if (c.host_id, check) not in acc:
            out.append(DriftRow(c.host_id, check, state=c.status, since=c.since, source="checkin"))
    order = {"drift": 0, "error": 1, "unknown": 2, "compliant": 3}
    out.sort(key=lambda d: (order.get(d.state, 2), d.host_id, d.check))
    return out


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
