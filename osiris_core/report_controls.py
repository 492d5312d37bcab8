"""Per-HIPAA-control status for a packet's report: met, partially_met, not_met, not_evidenced.

Why its own module: this is where "never a pass for missing data" is decided, and it should be
readable on one screen (docs/auditor.md "Status semantics" states the same rules in prose).

For a control, the **cells** are every (expected host, check mapped to the control by the
catalogue that applies to the host's platform, day of the period). A cell is evidenced when an
observation of that (host, check) finished that day (report_model.py). Then, in this order:

- ``not_evidenced``: no check maps to the control (nothing observes it), no expected host runs
  a mapped check, or not one cell is evidenced;
- ``not_met``: some episode of a mapped check is still open at the end of the period (its
  latest state is non-compliant) and no risk acceptance covers it — listed in ``unresolved``;
- ``met``: every cell is evidenced (and nothing is unresolved);
- ``partially_met``: otherwise; ``missing`` lists each (host, check) with exactly the days
  that lack evidence.

Information system activity review (164.308(a)(1)(ii)(D)) is judged from signed
``activity_review`` statements alone: met when the period holds one whose ``month`` is the
period's month or the month before (a review of month M is recorded during M or M+1, so each
packet shows the review of the month before it, or of its own month), else not_evidenced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .controls import CONTROLS
from .report_model import NOT_OBSERVATIONS, REVIEW_CHECK

REVIEW_CONTROL = "164.308(a)(1)(ii)(D)"
FAMILY = {
    "164.308": "Administrative",
    "164.310": "Physical",
    "164.312": "Technical",
    "164.316": "Documentation",
}


def family_of(citation: str) -> str:
    return FAMILY.get(citation[:7], "Other")


def _entry(cit: str, status: str, why: str, checks: list[str], **kw: Any) -> dict[str, Any]:
    c = CONTROLS[cit]
    out = {
        "citation": cit,
        "title": c.title,
        "required": c.required,
        "family": family_of(cit),
        "status": status,
        "why": why,
        "checks": checks,
        "expected_cells": 0,
        "evidenced_cells": 0,
        "missing": [],
        "unresolved": [],
        "daily": [],
    }
    out.update(kw)
    return out


def review_control(days: list[str], reviews: list[dict[str, Any]], months: set[str]) -> dict:
    hits = [r for r in reviews if r["month"] in months]
    met = bool(hits)
    first = min((str(r["reviewed_at"])[:10] for r in hits), default=None)
    daily = [
        {"date": d, "evidenced": int(first is not None and d >= first), "expected": 1,
         "findings": 0}
        for d in days
    ]  # fmt: skip
    why = (
        f"a signed activity review of {', '.join(sorted({str(r['month']) for r in hits}))} by "
        f"{', '.join(sorted({str(r['reviewer']) for r in hits}))} is in the period"
        if met
        else f"no signed activity review of {' or '.join(sorted(months))} is in the period"
    )
    return _entry(
        REVIEW_CONTROL, "met" if met else "not_evidenced", why, [REVIEW_CHECK],
        expected_cells=1, evidenced_cells=int(met), daily=daily,
    )  # fmt: skip


def judge_controls(
    *,
    days: list[str],
    expected: Mapping[str, list[str]],
    cells: Mapping[tuple[str, str], dict[str, str]],
    unresolved: Mapping[tuple[str, str], list[str]],
    check_controls: Mapping[str, tuple[str, ...]],
    reviews: list[dict[str, Any]],
    review_months: set[str],
) -> list[dict[str, Any]]:
    """``expected``: host -> its expected checks; ``cells``: (host, check) -> {day: ok|finding}
    for evidenced days; ``unresolved``: (host, check) -> exception ids open and unaccepted."""
    out = []
    for cit in sorted(CONTROLS):
        if cit == REVIEW_CONTROL:
            out.append(review_control(days, reviews, review_months))
            continue
        mapped = sorted(
            c for c, cits in check_controls.items() if cit in cits and c not in NOT_OBSERVATIONS
        )
        if not mapped:
            out.append(_entry(cit, "not_evidenced", "no check observes this control; it "
                              "needs evidence outside Osiris", []))  # fmt: skip
            continue
        pairs = [(h, c) for h in sorted(expected) for c in mapped if c in expected[h]]
        daily = []
        for d in days:
            ev = sum(1 for p in pairs if d in cells.get(p, {}))
            fi = sum(1 for p in pairs if cells.get(p, {}).get(d) == "finding")
            daily.append({"date": d, "evidenced": ev, "expected": len(pairs), "findings": fi})
        exp_n = len(pairs) * len(days)
        ev_n = sum(x["evidenced"] for x in daily)
        missing = []
        for h, c in pairs:
            gap = [d for d in days if d not in cells.get((h, c), {})]
            if gap:
                missing.append({"host_id": h, "check": c, "days": gap})
        unres = sorted(x for p in pairs for x in unresolved.get(p, []))
        kw = {"expected_cells": exp_n, "evidenced_cells": ev_n, "missing": missing,
              "unresolved": unres, "daily": daily}  # fmt: skip
        if not pairs:
            status, why = "not_evidenced", "no expected host runs a check mapped to this control"
        elif ev_n == 0:
            status, why = "not_evidenced", "no check mapped to this control produced evidence"
        elif unres:
            status = "not_met"
            why = f"{len(unres)} finding(s) still open at the end of the period, not accepted"
        elif ev_n == exp_n:
            status = "met"
            why = "every expected host has evidence for every mapped check every day; every " \
                  "finding was healed or accepted"  # fmt: skip
        else:
            status = "partially_met"
            why = f"{exp_n - ev_n} of {exp_n} host-check-days have no evidence"
        out.append(_entry(cit, status, why, mapped, **kw))
    return out
