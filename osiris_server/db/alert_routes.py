"""Alert routes (migration 13): where a partner's or a site's alerts go, and their SLA timers.

A route belongs to a partner (every site of it) or to one site; an incident goes to the union
of its site's routes and its partner's routes. ``level`` orders escalation: level 0 gets the
first alert, level k the k-th SLA breach (``routes_for_step``). The route's destination secret
(URL with its token, HMAC secret, PagerDuty routing key) is the vault token ``secret_enc``,
bound to the route id (``context``); listings never select it.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now

PUBLIC = "id, partner_id, site_id, name, preset, level, target, created_at, created_by"
# ack-within defaults (seconds) per severity: what an MSP on call is held to unless the partner
# says otherwise (PUT /partners/{id}/sla)
DEFAULT_SLA = {"critical": 900, "high": 3600}


def context(route_id: str) -> str:
    """The vault context of a route's secret: a token moved to another row does not open."""
    return f"alert_route:{route_id}"


def new_route_id() -> str:
    return new_id("art")


def insert(w: Writer, row: dict[str, Any]) -> None:
    w.insert("alert_routes", {**row, "created_at": now()})


def get(db: Database | Writer, route_id: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {PUBLIC} FROM alert_routes WHERE id = ?", [route_id])


def secret_of(db: Database | Writer, route_id: str) -> str | None:
    return db.scalar("SELECT secret_enc FROM alert_routes WHERE id = ?", [route_id])


def delete(w: Writer, route_id: str) -> bool:
    return w.execute("DELETE FROM alert_routes WHERE id = ?", [route_id]) > 0


def list_for(db: Database, partner_id: str | None, site_id: str | None) -> list[dict[str, Any]]:
    """The routes of exactly one scope: a partner's (site_id None) or a site's."""
    if site_id is not None:
        where, arg = "site_id = ?", site_id
    else:
        where, arg = "partner_id = ? AND site_id IS NULL", partner_id
    return db.query(
        f"SELECT {PUBLIC} FROM alert_routes WHERE {where} ORDER BY level, created_at, id", [arg]
    )


def for_site(db: Database | Writer, site_id: str) -> list[dict[str, Any]]:
    """Every route an incident of ``site_id`` may go to: the site's and its partner's."""
    return db.query(
        f"SELECT {PUBLIC} FROM alert_routes WHERE site_id = ? OR (site_id IS NULL AND"
        " partner_id = (SELECT partner_id FROM sites WHERE id = ?)) ORDER BY level, id",
        [site_id, site_id],
    )


def for_incident(w: Writer, incident_id: str) -> list[dict[str, Any]]:
    """``for_site`` of the incident's site (inside the incident's own transaction)."""
    site_id = w.scalar("SELECT site_id FROM incidents WHERE id = ?", [incident_id])
    return for_site(w, site_id) if site_id else []


def routes_for_step(routes: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """Step 0 (the first alert) goes to level 0; the k-th SLA breach to level k, or — when no
    route has that level — again to the highest level below it (a re-alert, not silence)."""
    levels = sorted({int(r["level"]) for r in routes if int(r["level"]) <= step})
    if not levels:
        return []
    return [r for r in routes if int(r["level"]) == levels[-1]]


# ---------------------------------------------------------------------------- SLA timers
def sla_of(db: Database | Writer, partner_id: str | None) -> dict[str, int]:
    """Severity → ack-within seconds for this partner (its own rows override the defaults)."""
    out = dict(DEFAULT_SLA)
    if partner_id is not None:
        for r in db.query(
            "SELECT severity, ack_within_s FROM partner_sla WHERE partner_id = ?", [partner_id]
        ):
            out[r["severity"]] = int(r["ack_within_s"])
    return {k: v for k, v in out.items() if v > 0}


def set_sla(w: Writer, partner_id: str, sla: dict[str, int]) -> None:
    """Replace the partner's SLA rows (0 switches a severity's timer off)."""
    w.execute("DELETE FROM partner_sla WHERE partner_id = ?", [partner_id])
    for severity, seconds in sorted(sla.items()):
        w.insert(
            "partner_sla",
            {"partner_id": partner_id, "severity": severity, "ack_within_s": int(seconds)},
        )


def configured_severities(db: Database) -> set[str]:
    rows = db.query("SELECT DISTINCT severity FROM partner_sla WHERE ack_within_s > 0")
    return {r["severity"] for r in rows}


def sla_candidates(db: Database, severities: list[str], max_level: int) -> list[dict[str, Any]]:
    """Open, unacknowledged incidents of a timed severity that have breaches left to escalate."""
    if not severities:
        return []
    marks = ",".join("?" for _ in severities)
    return db.query(
        "SELECT i.id, i.site_id, i.severity, i.first_seen_epoch, i.sla_level, s.partner_id"
        " FROM incidents i JOIN sites s ON s.id = i.site_id WHERE i.status = 'open'"
        f" AND i.acknowledged_at IS NULL AND i.sla_level < ? AND i.severity IN ({marks})"
        " ORDER BY i.first_seen_epoch, i.id LIMIT 500",
        [max_level, *severities],
    )


def raise_sla_level(w: Writer, incident_id: str, level: int) -> bool:
    """Record breach ``level`` once: only the first server to see it wins the UPDATE, and an
    acknowledgement committed first stops it."""
    return (
        w.execute(
            "UPDATE incidents SET sla_level = ? WHERE id = ? AND sla_level = ? AND status = 'open'"
            " AND acknowledged_at IS NULL",
            [level, incident_id, level - 1],
        )
        > 0
    )
