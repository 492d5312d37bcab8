"""Routed alerts: fan an incident out to its routes, deliver with retries, escalate on SLA.

* **Fan-out** (``queue_routes``): in the incident's own transaction, one ``alert_deliveries``
  row per level-0 route of the site and its partner. A site with no route at all keeps the
  global ``server.toml`` channels (``alert_queue``, the fallback) — the caller decides.
* **Delivery** (``send_due``): every server's sender thread claims due rows with a lease, so
  several processes share the queue and each (alert, route) goes out once. A failure is
  retried after ``base · 2^(attempt-1)`` seconds, capped, and after ``alert_max_attempts`` the
  row is ``dead``; ``last_error`` is the route-named cause, never the URL, key or secret.
* **SLA** (``sweep_sla``): an open incident not acknowledged within its partner's ack-within
  time for its severity breaches; breach k (at first_seen + k·SLA) is recorded once by the
  conditional UPDATE of ``sla_level`` (whichever server wins), audited as
  ``incident.sla_breach`` by ``server``, and sent to the level-k routes (or re-sent to the
  highest level below). Acknowledging stops it: the UPDATE requires ``acknowledged_at IS
  NULL``. At most ``MAX_BREACHES`` escalations per incident. An incident below its partner's
  alert threshold (``db/alert_threshold.py``) was never alerted and is not escalated either.
* **Follow-ups** (``queue_follow_up``): acknowledging or resolving tells every PagerDuty route
  that was sent the trigger (Events v2 acknowledge / resolve with the same ``dedup_key``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from osiris_server import alert_presets
from osiris_server.alerts import AlertError
from osiris_server.db import alert_deliveries as db_dlv
from osiris_server.db import alert_routes as db_routes
from osiris_server.db import alert_threshold
from osiris_server.db import audit as db_audit
from osiris_server.db import incidents as db_incidents

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.db.engine import Writer

MAX_BREACHES = 3


def queue_routes(w: Writer, incident_id: str, event: str = "trigger", step: int = 0) -> bool:
    """Queue ``incident_id`` to its site's routes for ``step``; False when the site has no
    route at all (the caller then uses the global channels)."""
    routes = db_routes.for_incident(w, incident_id)
    if not routes:
        return False
    at = int(time.time())
    for route in db_routes.routes_for_step(routes, step):
        db_dlv.enqueue(w, incident_id, route, event, step, at)
    return True


def queue_follow_up(w: Writer, incident_id: str, event: str) -> int:
    """Acknowledge/resolve events for the PagerDuty routes that got this incident's trigger."""
    sent_to = set(db_dlv.triggered_routes(w, incident_id))
    n = 0
    at = int(time.time())
    for route_id in sorted(sent_to):
        route = db_routes.get(w, route_id)
        if route is not None and route["preset"] == "pagerduty":
            n += db_dlv.enqueue(w, incident_id, route, event, 0, at) is not None
    return n


def retry_delay(cfg: Any, attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: exponential from the base, capped."""
    delay = float(cfg.alert_retry_base_s) * 2 ** max(0, attempts - 1)
    return max(0, int(min(delay, float(cfg.alert_retry_cap_s))))


def send_due(app: App, claimer: str, lease_s: int, stopping: Any) -> bool:
    """Claim and deliver one batch of due route deliveries; False when none was due."""
    won = db_dlv.claim(app.db, claimer, int(time.time()), lease_s)
    for row in won:
        if stopping():
            break  # the lease runs out and another process sends it
        _deliver(app, claimer, row)
    return bool(won)


def _deliver(app: App, claimer: str, row: dict[str, Any]) -> None:
    cfg = app.cfg
    error = None
    try:
        inc = db_incidents.get(app.db, row["incident_id"])
        route = db_routes.get(app.db, row["route_id"])
        if inc is None or route is None:
            raise AlertError(f"route {row['route_name']} or its incident is gone")
        token = db_routes.secret_of(app.db, route["id"])
        secret = json.loads(app.vault.decrypt(token or "", db_routes.context(route["id"])))
        alert_presets.send(
            route, secret, inc, row["event"], int(row["step"]), cfg.smtp,
            cfg.allow_private_webhooks,
        )  # fmt: skip
    except AlertError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a vault or payload fault is this row's failure
        error = f"route {row['route_name']}: {type(exc).__name__}"
    at = int(time.time())
    attempts = int(row["attempts"])
    if error is None:
        db_dlv.finish(app.db, row["id"], claimer, "sent", at, at, None)
        return
    gone = "is gone" in error
    state = "dead" if gone or attempts >= int(cfg.alert_max_attempts) else "retrying"
    db_dlv.finish(app.db, row["id"], claimer, state, at, at + retry_delay(cfg, attempts), error)
    app.alerter.log_failure(f"route:{row['preset']}", error, state)


def sweep_sla(app: App, at: int | None = None) -> list[str]:
    """Escalate every incident whose next SLA breach is due; the incident ids escalated here."""
    at = int(time.time()) if at is None else at
    sla_by_partner: dict[Any, dict[str, int]] = {}
    severities = sorted(set(db_routes.DEFAULT_SLA) | db_routes.configured_severities(app.db))
    escalated = []
    for inc in db_routes.sla_candidates(app.db, severities, MAX_BREACHES):
        pid = inc["partner_id"]
        if pid not in sla_by_partner:
            sla_by_partner[pid] = db_routes.sla_of(app.db, pid)
        within = sla_by_partner[pid].get(inc["severity"])
        if not within or not alert_threshold.alerts(app.db, inc["site_id"], inc["severity"]):
            continue  # no timer for it, or below the partner's alert threshold: never alerted
        level = int(inc["sla_level"]) + 1
        if at < int(inc["first_seen_epoch"]) + level * within:
            continue
        if _escalate(app, inc, level, within):
            escalated.append(inc["id"])
    if escalated:
        app.alerter.kick()
    return escalated


def _escalate(app: App, inc: dict[str, Any], level: int, within: int) -> bool:
    with app.db.write() as w:
        if not db_routes.raise_sla_level(w, inc["id"], level):
            return False  # another server escalated this breach, or someone acknowledged
        routed = queue_routes(w, inc["id"], "escalate", level)
        if not routed and app.alerter.enabled:
            app.alerter.queue(w, inc["id"], fallback_only=True)
        detail = {"breach": level, "ack_within_s": within, "routed": routed}
        db_audit.record(w, "server", "incident.sla_breach", inc["id"], inc["site_id"], None, detail)
    return True
