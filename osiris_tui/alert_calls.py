"""The alert-routing calls of the API (issue 16), shared by `osiris alerts …` and the console.

Kept beside ``client.py`` rather than in it: one room per resource, and every call here answers
plain JSON with the server's stable keys (routes are masked by the server: a listing never
holds a URL's token, an HMAC secret or a routing key, so nothing here needs hiding).
"""

from __future__ import annotations

from typing import Any

from .transport import Transport, seg

ROUTE_KEYS = ("id", "scope", "partner_id", "site_id", "name", "preset", "level", "target",
              "created_at", "created_by")  # fmt: skip
DELIVERY_KEYS = ("id", "incident_id", "site_id", "route_id", "route_name", "preset", "event",
                 "step", "state", "attempts", "next_attempt_at", "last_error", "created_epoch",
                 "sent_epoch")  # fmt: skip


def _scope(partner_id: str | None, site_id: str | None) -> str:
    if (partner_id is None) == (site_id is None):
        raise ValueError("name exactly one of a partner or a site")
    return f"/partners/{seg(partner_id)}" if partner_id else f"/sites/{seg(site_id or '')}"


def routes(c: Transport, partner_id: str | None, site_id: str | None) -> list[dict[str, Any]]:
    return list(c.get(f"{_scope(partner_id, site_id)}/alert-routes")["routes"])


def add_route(
    c: Transport, partner_id: str | None, site_id: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    return dict(c.post(f"{_scope(partner_id, site_id)}/alert-routes", body))


def delete_route(c: Transport, route_id: str) -> dict[str, Any]:
    return dict(c.delete(f"/alert-routes/{seg(route_id)}"))


def sla(c: Transport, partner_id: str) -> dict[str, Any]:
    return dict(c.get(f"/partners/{seg(partner_id)}/sla"))


def set_sla(c: Transport, partner_id: str, values: dict[str, int]) -> dict[str, Any]:
    return dict(c.put(f"/partners/{seg(partner_id)}/sla", values))


def deliveries(
    c: Transport,
    site_id: str | None = None,
    state: str | None = None,
    incident_id: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    q = {"site": site_id, "state": state, "incident": incident_id, "limit": limit}
    return list(
        c.get("/alerts/deliveries", **{k: v for k, v in q.items() if v is not None})["deliveries"]
    )
