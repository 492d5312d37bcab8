"""Incidents: appliances report them, the server dedups repeats and alerts on those at or above
the site's partner alert threshold (default high; db/alert_threshold.py)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from osiris_core import ids, severity
from osiris_server.api.common import (
    LIMIT,
    SITE_ID,
    audit,
    read,
    site_for,
    visible_site_ids,
    write,
)
from osiris_server.db import alert_threshold
from osiris_server.db import incidents as db_incidents
from osiris_server.http import (
    F,
    Request,
    Response,
    Route,
    conflict,
    json_response,
    not_found,
)

if TYPE_CHECKING:
    from osiris_server.app import App

INCIDENT = {
    "kind": F("string", required=True, pattern=ids.CHECK_ID.pattern, max_len=64),
    "severity": F("string", required=True, enum=db_incidents.SEVERITIES),
    "host_id": F.of(ids.HOST_ID),
    "summary": F("string", required=True, max_len=1024),
    "details": F("object"),
}
POST = {"incidents": F("array", required=True, max_items=100, items=F("object", fields=INCIDENT))}


def post_incidents(app: App, req: Request) -> Response:
    p = req.principal
    out = []
    alerts = []
    with app.db.write() as w:
        for inc in req.data["incidents"]:
            details = inc.get("details", {})
            # One scale (osiris_core/severity.py); an older agent's info/warning carries its own
            # word in details.agent_severity, which wins.
            sev = severity.normalise(inc["severity"], details.get("agent_severity"))
            row, new = db_incidents.open_or_bump(
                w,
                p.site_id,
                p.id,
                inc.get("host_id", "appliance"),
                inc["kind"],
                sev,
                app.scrub(inc["summary"]),
                app.scrub_obj(details),
            )
            out.append({**row, "new": new})
            if new and alert_threshold.alerts(w, p.site_id, sev):
                app.alerter.queue(w, row["id"])  # in the incident's transaction: never lost
                alerts.append(row["id"])
    if alerts:
        app.alerter.kick()
    return json_response({"incidents": out}, 201)


QUERY = {
    "site": SITE_ID,
    "status": F("string", enum=("open", "resolved")),
    "limit": LIMIT,
}


def list_incidents(app: App, req: Request) -> Response:
    q = req.params
    if "site" in q:
        site_for(app, req.principal, q["site"])
        sites = [q["site"]]
    else:
        sites = visible_site_ids(app, req.principal)
    rows = db_incidents.list_rows(app.db, sites, q.get("status"), q.get("limit", 100))
    return json_response({"incidents": rows})


def _visible(app: App, req: Request, incident_id: str) -> dict:
    row = db_incidents.get(app.db, incident_id)
    sites = visible_site_ids(app, req.principal)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise not_found("incident")
    return row


def get_incident(app: App, req: Request, incident_id: str) -> Response:
    return json_response(_visible(app, req, incident_id))


# Who works on an incident: a person's name or e-mail address as the team writes it (not a token
# id: technicians hand incidents to people). Printable, no markup-looking brackets, short.
ASSIGNEE = F("string", min_len=1, max_len=64, pattern=r"[A-Za-z0-9][A-Za-z0-9 ._@+'-]{0,63}")
ASSIGN = {"assignee": dataclasses.replace(ASSIGNEE, required=True, nullable=True)}
RESOLVE = {"note": F("string", max_len=1024)}


def _open(app: App, req: Request, incident_id: str) -> dict:
    row = _visible(app, req, incident_id)
    if row["status"] != "open":
        raise conflict(f"incident {incident_id} is already resolved", "E_CONFLICT")
    return row


def resolve_incident(app: App, req: Request, incident_id: str) -> Response:
    row = _visible(app, req, incident_id)
    note = req.data.get("note")
    note = app.scrub(note) if note else None
    with app.db.write() as w:
        changed = db_incidents.resolve(w, incident_id, req.principal.actor, note)
        if changed:
            detail = {"note": note} if note else None
            audit(w, req, "incident.resolve", incident_id, row["site_id"], detail)
            app.alerter.follow_up(w, incident_id, "resolve")  # PagerDuty closes its incident
    if changed:
        app.alerter.kick()
    return json_response(db_incidents.get(app.db, incident_id))


def acknowledge_incident(app: App, req: Request, incident_id: str) -> Response:
    row = _open(app, req, incident_id)
    with app.db.write() as w:
        acked = db_incidents.acknowledge(w, incident_id, req.principal.actor)
        if acked:  # also stops the SLA timer (api/alert_fanout.py requires acknowledged_at NULL)
            audit(w, req, "incident.acknowledge", incident_id, row["site_id"])
            app.alerter.follow_up(w, incident_id, "acknowledge")
    if acked:
        app.alerter.kick()
    return json_response(db_incidents.get(app.db, incident_id))


def assign_incident(app: App, req: Request, incident_id: str) -> Response:
    row = _open(app, req, incident_id)
    assignee = req.data["assignee"]
    with app.db.write() as w:
        if db_incidents.assign(w, incident_id, assignee):
            detail = {"old": row.get("assignee"), "new": assignee}
            audit(w, req, "incident.assign", incident_id, row["site_id"], detail)
    return json_response(db_incidents.get(app.db, incident_id))


ROUTES = [
    Route(
        "POST",
        "/api/v1/incidents",
        post_incidents,
        "appliance",
        body=POST,
        status=201,
        summary="Appliance: report incidents (repeats of an open one are counted)",
        tag="incidents",
    ),
    read(
        "GET",
        "/api/v1/incidents",
        list_incidents,
        query=QUERY,
        summary="Incidents",
        tag="incidents",
    ),
    read(
        "GET",
        "/api/v1/incidents/{incident_id}",
        get_incident,
        summary="One incident",
        tag="incidents",
    ),
    write(
        "POST",
        "/api/v1/incidents/{incident_id}/resolve",
        resolve_incident,
        body=RESOLVE,
        summary="Resolve an incident (optional note, audited)",
        tag="incidents",
    ),
    write(
        "POST",
        "/api/v1/incidents/{incident_id}/acknowledge",
        acknowledge_incident,
        body={},
        summary="Acknowledge an open incident (who looked first, audited)",
        tag="incidents",
    ),
    write(
        "POST",
        "/api/v1/incidents/{incident_id}/assign",
        assign_incident,
        body=ASSIGN,
        summary="Assign an open incident to a person (null clears; audited)",
        tag="incidents",
    ),
]
