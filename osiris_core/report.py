"""report.json (``osiris.packet-report/1``): the packet's report, derived from its own contents.

The report is a pure function of what the packet holds — the period's bundles (by chain
position, as the manifest counts them), the expected population the manifest records, the
checkpoint (and its TSA token, when present) — plus the packaged catalogue (which checks a
platform runs, which controls each check evidences). So ``osiris evidence verify --packet``
re-derives it and fails ``E_REPORT`` when report.json differs: a builder cannot turn
``partially_met`` into ``met`` by editing it. report.html / report.pdf are views of this JSON,
checked only for integrity (manifest sha256). Semantics: report_model.py (observations,
episodes), report_controls.py (control status), docs/auditor.md.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

from . import canonical
from .catalog.loader import load_catalog
from .report_controls import judge_controls
from .report_model import SNAPSHOT_CHECK as SNAPSHOT
from .report_model import acceptance_covers, collect, episodes

REPORT_SCHEMA = "osiris.packet-report/1"
APPLIANCE_PLATFORM = "nixos"
RETENTION = (
    "Evidence is kept at least 6 years (45 CFR 164.316(b)(2)(i)); nothing is pruned before it "
    "is in WORM storage and past retention (docs/server.md)."
)
VERIFY_COMMAND = "osiris evidence verify --packet <this packet>.zip --trust <attestation.json>"


# a site credential's kind -> the platform the agent scans that target as (the expected
# population's platform; the packet builder and the portal read the same table)
PLATFORM_OF_KIND = {"winrm": "windows", "ssh_password": "linux", "ssh_key": "linux",
                    "local": "nixos"}  # fmt: skip


def inferred_platform(checks: set[str]) -> str | None:
    """The platform a host without one is judged as: the one platform its platform-specific
    checks (catalogue checks of one platform) name, else None. So a builder who blanks a
    target's platform cannot shrink what is expected of it below what its evidence shows."""
    cat = load_catalog()
    plats = {cat.checks[c].platforms[0] for c in checks
             if c in cat.checks and len(cat.checks[c].platforms) == 1}  # fmt: skip
    return plats.pop() if len(plats) == 1 else None


def period_days(period: tuple[str, str]) -> list[str]:
    """UTC dates the period touches (end exclusive)."""
    start = canonical.parse_time(period[0])
    end = canonical.parse_time(period[1])
    d, last = start.date(), (end - timedelta(milliseconds=1)).date()
    out = []
    while d <= last:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def _review_months(period: tuple[str, str], month: str | None, days: list[str]) -> set[str]:
    first = date.fromisoformat(days[0])
    prev = (first.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    months = {d[:7] for d in days} if month is None else {month}
    return months | {prev}


def expected_checks() -> dict[str, set[str]]:
    """platform -> the checks the agent scans there by default (catalogue runbooks enabled by
    default, and the checks the appliance judges from its own facts)."""
    cat = load_catalog()
    out: dict[str, set[str]] = {}
    for rb in cat.runbooks.values():
        if rb.default_enabled:
            out.setdefault(rb.platform, set()).add(rb.check)
    for cid, chk in cat.checks.items():
        if chk.fact is not None and APPLIANCE_PLATFORM in chk.platforms:
            out.setdefault(APPLIANCE_PLATFORM, set()).add(cid)
    return out


Edges = dict[str, tuple[int, str, int, str]]  # appliance -> first seq, its time, last seq, …


def chain_edges(bundles: Iterable[dict[str, Any]]) -> Edges:
    """Per appliance, its first and last bundle (seq, finished_at): where the boundaries are."""
    out: Edges = {}
    for b in bundles:
        app, seq, fin = b["appliance_id"], b["seq"], b["finished_at"]
        e = out.get(app)
        if e is None:
            out[app] = (seq, fin, seq, fin)
        else:
            lo = (seq, fin) if seq < e[0] else (e[0], e[1])
            hi = (seq, fin) if seq > e[2] else (e[2], e[3])
            out[app] = (*lo, *hi)
    return out


def period_bundles(
    bundles: Iterable[dict[str, Any]], period: tuple[str, str], edges: Edges
) -> Iterator[dict[str, Any]]:
    """The period's bundles by chain position: per appliance, without its start boundary (its
    first bundle, if it finished before the period) and end boundary (its last, if at or after
    the period's end). Streams: a month of a large site never sits in memory at once."""
    for b in bundles:
        first, first_at, last, last_at = edges[b["appliance_id"]]
        if b["seq"] == first and first_at < period[0]:
            continue
        if b["seq"] == last and last_at >= period[1]:
            continue
        yield b


def _secs(a: str, b: str) -> int:
    return int((canonical.parse_time(b) - canonical.parse_time(a)).total_seconds())


def _population(
    given: list[dict[str, Any]], appliances: list[str], seen: set[str]
) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in given:
        out.setdefault(p["host_id"], dict(p))
    for a in appliances:
        out.setdefault(a, {"host_id": a, "platform": APPLIANCE_PLATFORM, "source": "appliance"})
    for h in seen:
        out.setdefault(h, {"host_id": h, "platform": None, "source": "evidence only"})
    return [out[h] for h in sorted(out)]


def build_report(
    *,
    bundles: Iterable[dict[str, Any]],
    period: tuple[str, str],
    month: str | None,
    site_id: str,
    population: list[dict[str, Any]],
    appliances: list[str],
    checkpoint_note: str,
    checkpoint_size: int,
    tsa: dict[str, Any] | None = None,
    site_name: str | None = None,
    partner: dict[str, Any] | None = None,
    tool_version: str,
    aliases: Mapping[str, str] | None = None,
    check_controls: Mapping[str, tuple[str, ...]] | None = None,
    edges: Edges | None = None,
) -> dict[str, Any]:
    """The ``osiris.packet-report/1`` dict (docs/evidence-format.md "report.json").

    ``bundles``: the packet's bundles with boundaries, in any order; with ``edges``
    (:func:`chain_edges` of the same bundles) it is streamed once, else read into a list."""
    if aliases is None:
        aliases = load_catalog().aliases
    if check_controls is None:
        from .controls import check_controls as _cc

        check_controls = _cc()
    days = period_days(period)
    if edges is None:
        bundles = list(bundles)
        edges = chain_edges(bundles)
    ev = collect(period_bundles(bundles, period, edges), aliases)
    pop = _population(population, appliances, ev.hosts())
    per_platform = expected_checks()
    expected: dict[str, list[str]] = {}
    seen_checks: dict[str, set[str]] = {}
    for h, c in ev.obs:
        seen_checks.setdefault(h, set()).add(c)
    for p in pop:
        seen = seen_checks.get(p["host_id"], set())
        platform = p["platform"] or inferred_platform(seen)
        if platform is None:  # nothing says what it runs: judge what it was seen running
            expected[p["host_id"]] = sorted(seen)
        else:  # the platform's scanned checks and the hourly snapshot that lists them
            expected[p["host_id"]] = sorted(per_platform.get(platform, set()) | {SNAPSHOT} | seen)
    cells = {k: {d: st for d, (_at, st) in v.items()} for k, v in ev.cells.items()}
    # exceptions
    acceptances = sorted(ev.acceptances, key=lambda a: (a["bundle"]["finished_at"],))
    exceptions: list[dict[str, Any]] = []
    unresolved: dict[tuple[str, str], list[str]] = {}
    closed_days: dict[str, set[str]] = {}
    for (host, check), lst in sorted(ev.obs.items()):
        for ep in episodes(lst):
            o = ep.opened
            eid = f"exc-{o.appliance_id}-{o.seq}"
            inc = None
            for s in ep.seen:
                if s.outcome == "escalated" and s.tier == "L3" and not s.snapshot:
                    inc = f"inc-{s.appliance_id}-{s.seq}"
                    break
            acc = next(
                (a for a in acceptances if acceptance_covers(a, ep, host, check, period[1])),
                None,
            )
            if ep.closed is not None:
                status = "healed"
                tier = ep.closed.tier
                owner = f"Osiris ({tier})" if tier in ("L1", "L2") else "the MSP"
                start = o.started_at if ep.closed is o else o.at
                ttf: int | None = _secs(start, ep.closed.at)
                closed_days.setdefault(host, set()).add(ep.closed.at[:10])
            else:
                ttf = None
                if acc is not None:
                    status, owner = "accepted", str(acc["post"].get("by"))
                elif any(s.outcome == "escalated" for s in ep.seen):
                    status = "escalated"
                    owner = (partner or {}).get("name") or "the MSP (escalated)"
                else:
                    status, owner = "open", "the MSP"
                if acc is None:
                    unresolved.setdefault((host, check), []).append(eid)
            accepted = None
            if acc is not None:
                ab, ap = acc["bundle"], acc["post"]
                accepted = {"by": ap.get("by"), "reason": ap.get("reason"),
                            "until": ap.get("until"), "appliance_id": ab["appliance_id"],
                            "seq": ab["seq"]}  # fmt: skip
            exceptions.append({
                "id": eid, "host_id": host, "check": check, "opened_at": o.at,
                "closed_at": ep.closed.at if ep.closed else None, "time_to_fix_s": ttf,
                "opened_by": o.ref(), "closed_by": ep.closed.ref() if ep.closed else None,
                "status": status, "owner": owner, "accepted": accepted, "incident_id": inc,
            })  # fmt: skip
    exceptions.sort(key=lambda e: (e["opened_at"], e["id"]))
    t = ev.tally
    by_tier, healed, failed, escalated = t.by_tier, t.healed, t.failed, t.escalated
    rulesets, policies, incidents = t.rulesets, t.policies, t.incidents
    fixes = sorted(e["time_to_fix_s"] for e in exceptions if e["time_to_fix_s"] is not None)
    reviews = []
    for r in ev.reviews:
        b, p = r["bundle"], r["post"]
        reviews.append({
            "reviewer": p.get("reviewer"), "reviewed_at": p.get("reviewed_at") or b["finished_at"],
            "month": p.get("month"), "note": p.get("note"),
            "appliance_id": b["appliance_id"], "seq": b["seq"],
        })  # fmt: skip
    controls = judge_controls(
        days=days, expected=expected, cells=cells, unresolved=unresolved,
        check_controls=check_controls, reviews=reviews,
        review_months=_review_months(period, month, days),
    )  # fmt: skip
    # heat map: host x day
    hosts = [p["host_id"] for p in pop]
    grid = []
    for h in hosts:
        row = []
        for d in days:
            states = [cells.get((h, c), {}).get(d) for c in expected[h]]
            if not expected[h] or None in states:
                row.append("missing")
            elif "finding" in states:
                row.append("finding" if d not in closed_days.get(h, set()) else "healed")
            elif d in closed_days.get(h, set()):
                row.append("healed")
            else:
                row.append("ok")
        grid.append(row)
    with_ev = sorted(h for h in hosts if any(cells.get((h, c)) for c in expected[h]))
    missing_hosts = [h for h in hosts if h not in with_ev]
    body = checkpoint_note[: checkpoint_note.index("\n\n") + 1]
    return {
        "schema": REPORT_SCHEMA,
        "site_id": site_id,
        "site_name": site_name,
        "partner": partner,
        "period": {"start": period[0], "end": period[1], "month": month, "days": days},
        "tool_version": tool_version,
        "checkpoint": {
            "size": checkpoint_size,
            "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            "tsa": tsa,
        },
        "population": {
            "expected": pop,
            "with_evidence": with_ev,
            "missing": missing_hosts,
            "note": f"{len(pop)} hosts expected (the site's targets, its appliances and any host "
            f"seen only in evidence); {len(missing_hosts)} sent no evidence for an expected "
            "check in the period and fail every control that applies to them",
        },
        "controls": controls,
        "exceptions": exceptions,
        "healing": {
            "by_tier": by_tier,
            "healed": healed,
            "failed": failed,
            "escalated": escalated,
            "median_time_to_remediate_s": statistics.median_low(fixes) if fixes else None,
        },
        "incidents": incidents,
        "heatmap": {"hosts": hosts, "days": days, "cells": grid},
        "reviews": reviews,
        "policy": {"ruleset_hashes": sorted(rulesets), "policy_versions": sorted(policies)},
        "retention": RETENTION,
        "verify_command": VERIFY_COMMAND,
    }


__all__ = [
    "REPORT_SCHEMA",
    "build_report",
    "chain_edges",
    "expected_checks",
    "period_bundles",
    "period_days",
]
