"""``/learning/candidates``: the learning loop's patterns, the evidence behind each, and the
admin's decision (approve → a signed L1 rule for the canary sites; reject, with a reason).

The rules of the loop (thresholds, canary, soak, automatic disabling) are in
``osiris_server/learning.py``; this module is the HTTP face: listing and showing for every staff
role (a partner or client sees only patterns with evidence from its own sites, and only that
evidence), deciding for admins only. Every decision is audited in its own transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osiris_core import ids
from osiris_server import learning
from osiris_server.api.common import SITE_ID, audit, read, visible_site_ids, write
from osiris_server.db import learning as db_learning
from osiris_server.db import tenants as db_tenants
from osiris_server.db.util import jdump, now
from osiris_server.http import (
    F,
    HttpError,
    Request,
    Response,
    Route,
    conflict,
    json_response,
    not_found,
)

if TYPE_CHECKING:
    from osiris_server.app import App

STATUSES = ("observing", "candidate", "rejected", "canary", "fleet", "disabled")
LIST_QUERY = {
    "site": SITE_ID,
    "status": F("string", enum=(*STATUSES, "all"), description="default: all but observing"),
}
APPROVE = {
    "canary_sites": F("array", items=F.of(ids.SITE_ID), max_items=1000,
                      description="the canary sites (or canary_percent)"),
    "canary_percent": F("integer", minimum=1, maximum=100,
                        description="this share of all sites, chosen by a stable hash (10)"),
    "soak_s": F("integer", minimum=0, maximum=90 * 86400,
                description="canary time with no failure before the fleet (86400)"),
}  # fmt: skip
REJECT = {"reason": F("string", required=True, min_len=1, max_len=500)}


def _tally(t: dict[str, int] | None) -> dict[str, Any]:
    t = t or {"n": 0, "ok": 0, "sites": 0, "appliances": 0}
    return {**t, "fraction": learning.fraction(t)}


def _record(app: App, row: dict[str, Any], tallies: dict[tuple[str, str], dict[str, int]]):
    why = learning.refusal(app, row)
    return {
        **row,
        "l2": _tally(tallies.get((row["id"], "L2"))),
        "after_promotion": _tally(tallies.get((row["id"], "L1"))),
        "approvable": row["status"] == "candidate" and why is None,
        "refusal": why,
    }


def _visible(app: App, req: Request) -> set[str] | None:
    sites = visible_site_ids(app, req.principal)
    return None if sites is None else set(sites)


def list_candidates(app: App, req: Request) -> Response:
    status = req.params.get("status")
    wanted = STATUSES if status == "all" else (status,) if status else STATUSES[1:]
    rows = db_learning.patterns(app.db, wanted)
    seen = _visible(app, req)
    site = req.params.get("site")
    if seen is not None or site:
        where = db_learning.pattern_sites(app.db)
        rows = [r for r in rows
                if (seen is None or where.get(r["id"], set()) & seen)
                and (not site or site in where.get(r["id"], set()))]  # fmt: skip
    tallies = db_learning.tallies(app.db)
    return json_response({"candidates": [_record(app, r, tallies) for r in rows]})


def _row(app: App, req: Request, candidate_id: str) -> dict[str, Any]:
    if not ids.RULE_ID.match(candidate_id):
        raise not_found("learning candidate")
    row = db_learning.pattern(app.db, candidate_id)
    seen = _visible(app, req)
    if row is not None and seen is not None:
        if not db_learning.pattern_sites(app.db).get(candidate_id, set()) & seen:
            row = None
    if row is None:
        raise not_found("learning candidate")
    return row


def show_candidate(app: App, req: Request, candidate_id: str) -> Response:
    row = _row(app, req, candidate_id)
    seen = _visible(app, req)
    out = _record(app, row, db_learning.tallies(app.db))
    out["rule"] = learning.rule_doc(app, row)
    out["evidence"] = [e for e in db_learning.outcomes(app.db, candidate_id)
                       if seen is None or e["site_id"] in seen]  # fmt: skip
    out["thresholds"] = {
        "min_occurrences": learning.MIN_OCCURRENCES,
        "min_success": f"{learning.MIN_SUCCESS[0]}/{learning.MIN_SUCCESS[1]}",
        "min_sites": learning.MIN_SITES,
        "disable_above": f"{learning.DISABLE_RATE[0]}/{learning.DISABLE_RATE[1]}",
        "disable_min_sample": learning.DISABLE_MIN_SAMPLE,
    }
    return json_response(out)


def approve(app: App, req: Request, candidate_id: str) -> Response:
    row = _row(app, req, candidate_id)
    if row["status"] != "candidate":
        raise conflict(f"{candidate_id} is {row['status']}, not a candidate", "E_CONFLICT")
    why = learning.refusal(app, row)
    if why is not None:
        raise conflict(f"{candidate_id} can never be approved: {why}", "E_REFUSED")
    body = req.data
    if body.get("canary_sites") and body.get("canary_percent"):
        raise HttpError(400, "E_INPUT", "name canary_sites or canary_percent, not both")
    named = body.get("canary_sites") or []
    if named:
        known = set(db_tenants.site_ids(app.db))
        missing = sorted(set(named) - known)
        if missing:
            raise HttpError(400, "E_INPUT", f"unknown canary site(s): {', '.join(missing[:5])}")
    canary = learning.canary_sites(app, candidate_id, named, body.get("canary_percent") or 10)
    soak = int(body.get("soak_s", learning.DEFAULT_SOAK_S))
    t = db_learning.tally(app.db, candidate_id, "L2")
    with app.db.write() as w:
        at = now()
        if not db_learning.set_status(
            w, candidate_id, "canary", ("candidate",), decided_by=req.principal.actor,
            decided_at=at, canary_json=jdump(canary), soak_s=soak, promoted_at=at,
        ):  # fmt: skip
            raise conflict(f"{candidate_id} was decided meanwhile", "E_CONFLICT")
        audit(w, req, "learning.approve", candidate_id, None,
              {"l2": learning.fraction(t), "runbook_id": row["runbook_id"],
               "params": row["params"], "canary_sites": canary, "soak_s": soak})  # fmt: skip
    app.rule_sets.invalidate()
    return show_candidate(app, req, candidate_id)


def reject(app: App, req: Request, candidate_id: str) -> Response:
    row = _row(app, req, candidate_id)
    reason = app.scrub(req.data["reason"]).strip()
    if not reason:
        raise HttpError(400, "E_SCHEMA", "reason: a reason is required")
    with app.db.write() as w:
        if not db_learning.set_status(
            w, candidate_id, "rejected", ("observing", "candidate"),
            decided_by=req.principal.actor, decided_at=now(), reason=reason,
        ):  # fmt: skip
            raise conflict(f"{candidate_id} is {row['status']}: nothing to reject", "E_CONFLICT")
        audit(w, req, "learning.reject", candidate_id, None,
              {"reason": reason, "was": row["status"]})  # fmt: skip
    return show_candidate(app, req, candidate_id)


CID = "/api/v1/learning/candidates/{candidate_id}"
ROUTES: list[Route] = [
    read("GET", "/api/v1/learning/candidates", list_candidates, query=LIST_QUERY,
         summary="Learning: L2 patterns aggregated across sites (k/n healed), newest first",
         tag="learning"),
    read("GET", CID, show_candidate, tag="learning",
         summary="Learning: one pattern, its rule, thresholds and the evidence bundles behind it"),
    write("POST", CID + "/approve", approve, roles=("admin",), body=APPROVE, tag="learning",
          summary="Admin only: sign the candidate into the canary sites' rule sets (audited)"),
    write("POST", CID + "/reject", reject, roles=("admin",), body=REJECT, tag="learning",
          summary="Admin only: reject a pattern, with a reason (audited)"),
]  # fmt: skip
