"""A person's signed statements (issue 17 item 4): an operator's activity review of a month
(HIPAA §164.308(a)(1)(ii)(D)) and an admin's risk acceptance of one host's exception
(§164.308(a)(1)(ii)(B)).

Why a route of their own, not the general order route (which refuses ``record_attestation``):
the statement names its author, and the author must be the calling token's name — never a body
field — and its time the server's clock. Each POST checks the statement, signs one
``record_attestation`` order per active appliance of the site (DESIGN §3.4: the appliance
verifies the server's signature, freshness and replay before it signs the statement as one
bundle; docs/evidence-format.md "Signed statements"), audits the post and answers 201 with the
order ids. The GETs read the statements back from the site's evidence (the appliance-signed
bundles are the record) beside the orders that have not produced one yet.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from osiris_core import canonical, ids, phi
from osiris_core.controls import check_controls
from osiris_core.orders import MAX_STATEMENT_LEN, MAX_TTL_S, new_order, sign_order
from osiris_server.api import targets
from osiris_server.api.common import audit, read, site_for, write
from osiris_server.db import appliances as db_appliances
from osiris_server.db import attestations as db_att
from osiris_server.db import orders as db_orders
from osiris_server.http import F, Request, Response, bad_request, conflict, json_response

if TYPE_CHECKING:
    from osiris_server.app import App

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates: a note an auditor reads must show what it says (no ESC sequences repainting a
# terminal, no right-to-left override reordering a reason).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MONTH = r"[0-9]{4}-(0[1-9]|1[0-2])"
NAME_LEN = 200  # osiris_core.orders: the signed statement's author field

REVIEW = {
    "month": F("string", required=True, pattern=_MONTH, max_len=7, description="YYYY-MM"),
    "note": F("string", max_len=MAX_STATEMENT_LEN, description="free text (no control chars)"),
    "packet_sha256": F.of(ids.HEX64, nullable=True, description="the packet zip reviewed"),
}
ACCEPT = {
    "host_id": F.of(ids.HOST_ID, required=True, description="the host whose exception it is"),
    "check": F.of(ids.CHECK_ID, required=True, description="a catalogue check id"),
    "reason": F("string", required=True, min_len=1, max_len=MAX_STATEMENT_LEN),
    "until": F.of(ids.TIME, required=True, description="when it lapses: ≤ 1 year ahead"),
    "exception_opened_at": F.of(ids.TIME, nullable=True, description="the episode accepted"),
}
KINDS = {"reviews": "activity_review", "risk-acceptances": "risk_acceptance"}


def _text(name: str, value: str) -> str:
    m = _CONTROL.search(value)
    if m:
        raise bad_request(
            f"{name}: control character U+{ord(m.group()):04X} at position {m.start()}"
            " (plain text only: no escape sequences)",
            "E_INPUT",
        )
    return value


def _author(req: Request) -> str:
    """The calling token's name (the statement's author); the actor id if it has none."""
    p = req.principal
    name = (p.name or p.actor).strip()
    return _text("token name", name)[:NAME_LEN]


def _one_year_after(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year + 1)
    except ValueError:  # 29 February
        return now.replace(year=now.year + 1, day=28)


def _issue(app: App, req: Request, site_id: str, params: dict[str, Any], what: str) -> Response:
    """One signed record_attestation order per active appliance of the site, audited."""
    appliances = db_appliances.active_ids(app.db, site_id)
    if not appliances:
        raise conflict(f"site {site_id} has no active appliance to sign the statement",
                       "E_NO_APPLIANCE")  # fmt: skip
    created = []
    with app.db.write() as w:
        for appliance_id in appliances:
            order = new_order(site_id, appliance_id, "record_attestation", params, False,
                              MAX_TTL_S)  # fmt: skip
            envelope = sign_order(order, app.order_signer)
            db_orders.create(w, {
                "id": order["order_id"], "site_id": site_id, "appliance_id": appliance_id,
                "kind": order["kind"], "params_json": json.dumps(order["params"]),
                "disruptive": 0, "envelope": canonical.dumps(envelope).decode(),
                "status": "pending", "created_at": order["issued_at"],
                "created_by": req.principal.actor, "expires_at": order["expires_at"],
                "expires_epoch": int(canonical.parse_time(order["expires_at"]).timestamp()),
            })  # fmt: skip
            created.append({"order_id": order["order_id"], "appliance_id": appliance_id})
        audit(w, req, what, ",".join(c["order_id"] for c in created), site_id,
              {k: v for k, v in params.items() if k != "kind"})  # fmt: skip
    statement = {k: v for k, v in params.items() if k != "kind"}
    return json_response({"site_id": site_id, "statement": statement, "orders": created}, 201)


def post_review(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    body = req.data
    now = datetime.now(UTC)
    if body["month"] > now.strftime("%Y-%m"):
        raise bad_request(f"month {body['month']} is in the future (now {now:%Y-%m})",
                          "E_INPUT")  # fmt: skip
    params = {
        "kind": "activity_review",
        "reviewer": _author(req),
        "reviewed_at": canonical.format_time(now),
        "month": body["month"],
        "note": _text("note", body.get("note") or ""),
        "packet_sha256": body.get("packet_sha256"),
    }
    return _issue(app, req, site_id, params, "review.create")


def _site_hosts(app: App, site_id: str) -> set[str]:
    """Every host the site's active appliances can name: credentials' hosts and themselves."""
    hosts: set[str] = set()
    for appliance_id in db_appliances.active_ids(app.db, site_id):
        hosts |= set(targets.site_hosts(app, site_id, appliance_id))
    return hosts


def post_acceptance(app: App, req: Request, site_id: str) -> Response:
    site_for(app, req.principal, site_id)
    body = req.data
    now = datetime.now(UTC)
    checks = check_controls()
    if body["check"] not in checks:
        near = targets.did_you_mean(body["check"], checks)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise bad_request(f'unknown check "{body["check"]}"{hint}', "E_NO_CHECK")
    hosts = _site_hosts(app, site_id)
    if body["host_id"] not in hosts:
        listed = ", ".join(sorted(hosts)[:20]) or "none yet"
        raise bad_request(f'no host "{body["host_id"]}" at site {site_id}; hosts: {listed}',
                          "E_NO_HOST")  # fmt: skip
    until = canonical.parse_time(body["until"])
    if until <= now:
        raise bad_request(f"until {body['until']} is not in the future", "E_INPUT")
    if until > _one_year_after(now) + timedelta(seconds=1):
        raise bad_request(f"until {body['until']} is more than one year ahead (an acceptance "
                          "lapses within a year; accept again then)", "E_INPUT")  # fmt: skip
    opened = body.get("exception_opened_at")
    if opened is not None and canonical.parse_time(opened) > now:
        raise bad_request(f"exception_opened_at {opened} is in the future", "E_INPUT")
    params = {
        "kind": "risk_acceptance",
        "by": _author(req),
        "reason": _text("reason", body["reason"]),
        "until": body["until"],
        "host_id": body["host_id"],
        "check": body["check"],
        "exception_opened_at": opened,
    }
    return _issue(app, req, site_id, params, "risk_acceptance.create")


def _listing(app: App, req: Request, site_id: str, kind: str) -> dict[str, Any]:
    site_for(app, req.principal, site_id)
    check = KINDS[kind]
    orders = db_att.orders(app.db, site_id, check)
    by_id = {o["id"]: o for o in orders}
    out = []
    for r in db_att.statements(app.db, site_id, check):
        b = canonical.loads(app.log.entry(r["log_index"]))["bundle"]
        o = by_id.get(r["order_id"])
        # matches_order: the bundle answers an order this server signed for this appliance and
        # says exactly what that order said (an appliance cannot invent a review unnoticed);
        # "exactly" after the PHI scrubber every bundle's text passes at signing (§4)
        said = {k: v for k, v in (o or {}).get("params", {}).items() if k != "kind"}
        matched = (
            o is not None
            and o["appliance_id"] == r["appliance_id"]
            and phi.scrub_obj(said) == b["post_state"]
        )
        out.append({**b["post_state"], "appliance_id": r["appliance_id"], "seq": r["seq"],
                    "bundle_hash": r["bundle_hash"], "order_id": r["order_id"],
                    "signed_at": b["finished_at"], "matches_order": matched})  # fmt: skip
    done = {s["order_id"] for s in out}
    waiting = [o for o in orders if o["id"] not in done]
    return {"site_id": site_id, "statements": out, "orders": waiting}


def list_reviews(app: App, req: Request, site_id: str) -> Response:
    return json_response(_listing(app, req, site_id, "reviews"))


def list_acceptances(app: App, req: Request, site_id: str) -> Response:
    return json_response(_listing(app, req, site_id, "risk-acceptances"))


SITE = "/api/v1/sites/{site_id}"
ROUTES = [
    write("POST", SITE + "/reviews", post_review, body=REVIEW, status=201, tag="attestations",
          summary="Record a signed activity review of a month (reviewer = the token's name)"),
    write("POST", SITE + "/risk-acceptances", post_acceptance, body=ACCEPT, status=201,
          roles=("admin",), tag="attestations",
          summary="Record a signed risk acceptance of a host's exception (admin; by = token)"),
    read("GET", SITE + "/reviews", list_reviews, tag="attestations",
         summary="Signed activity reviews of a site, and review orders not yet signed"),
    read("GET", SITE + "/risk-acceptances", list_acceptances, tag="attestations",
         summary="Signed risk acceptances of a site, and acceptance orders not yet signed"),
]  # fmt: skip
