"""What one alert route sends: the payload of each preset, and the one POST or e-mail.

Presets, so a route works with what the MSP already runs without a relay of its own:

* ``email`` — plain text through the server's ``[smtp]`` relay to the route's addresses.
* ``generic`` — today's signed webhook (``alerts.send_webhook``: canonical JSON, HMAC-SHA256
  over ``"<timestamp>." + body``) with the route's own secret; the body is unchanged
  (``{"event": "incident", "incident": {…}}``) plus ``"escalation": k`` on an SLA re-alert.
* ``slack`` — an incoming-webhook message: ``{"text": …, "blocks": [section, context]}``.
* ``teams`` — an Office 365 connector MessageCard (``@type``, ``@context``, ``summary``,
  ``themeColor``, ``title``, ``sections[].facts``), what Teams incoming webhooks accept.
* ``pagerduty`` — Events API v2: ``routing_key``, ``event_action`` (trigger / acknowledge /
  resolve), ``dedup_key`` = the incident id (so PagerDuty folds re-alerts and closes the
  incident it opened), ``payload.summary/severity/source`` on a trigger.

An ``AlertError`` names the route and the cause but never the URL, the token or the key:
``last_error`` is shown to operators. Redirects are not followed. Calls block (the sender
thread runs them, never a request).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from osiris_server.alert_targets import TargetRefused, check_url
from osiris_server.alerts import AlertError, SmtpConfig, send_email, send_webhook

PRESETS = ("email", "generic", "slack", "teams", "pagerduty")
WEBHOOK_PRESETS = PRESETS[1:]
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
TIMEOUT_S = 5.0
# PagerDuty knows critical/error/warning/info; the agent's high is PagerDuty's error
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "warning": "warning",
               "low": "info", "info": "info"}  # fmt: skip
TEAMS_COLOUR = {"critical": "D70000", "high": "FF8C00", "warning": "FFC800"}
INCIDENT_KEYS = ("id", "site_id", "appliance_id", "host_id", "kind", "severity", "summary")


def subject(inc: dict[str, Any], event: str, step: int) -> str:
    what = {"acknowledge": "ACKNOWLEDGED", "resolve": "RESOLVED"}.get(event, "")
    tag = f" SLA BREACH {step}" if event == "escalate" else ""
    head = what or inc["severity"].upper()
    return f"[osiris] {head}{tag} {inc['kind']} at site {inc['site_id']}"


def text_body(inc: dict[str, Any], event: str, step: int) -> str:
    lines = [
        f"Incident {inc['id']}",
        f"Site: {inc['site_id']}",
        f"Appliance: {inc['appliance_id']}",
        f"Host: {inc['host_id']}",
        f"Kind: {inc['kind']}",
        f"Severity: {inc['severity']}",
        f"First seen: {inc['first_seen']}",
    ]
    if event == "escalate":
        lines.append(f"Not acknowledged within its SLA (breach {step})")
    if event in ("acknowledge", "resolve"):
        who = inc.get("acknowledged_by") if event == "acknowledge" else inc.get("resolved_by")
        lines.append(f"{event.capitalize()}d by: {who}")
    return "\n".join(lines) + f"\n\n{inc['summary']}\n"


def payload(preset: str, inc: dict[str, Any], event: str, step: int, routing_key: str = ""):
    """The JSON body ``preset`` sends for this incident and event."""
    head = subject(inc, event, step)
    if preset == "generic":
        body: dict[str, Any] = {
            "event": "incident" if event in ("trigger", "escalate") else f"incident.{event}",
            "incident": {k: inc[k] for k in (*INCIDENT_KEYS, "first_seen")},
        }
        if event == "escalate":
            body["escalation"] = step
        return body
    if preset == "slack":
        detail = (
            f"*{inc['severity'].upper()}* `{inc['kind']}` on host `{inc['host_id']}`"
            f" (site `{inc['site_id']}`)\n{inc['summary']}"
        )
        return {
            "text": head,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": detail}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"incident {inc['id']} · {event}"}],
                },
            ],
        }
    if preset == "teams":
        facts = [{"name": k.replace("_", " ").capitalize(), "value": str(inc[k])}
                 for k in ("id", "site_id", "host_id", "kind", "severity")]  # fmt: skip
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": head,
            "themeColor": TEAMS_COLOUR.get(inc["severity"], "0078D7"),
            "title": head,
            "sections": [{"activityTitle": inc["summary"], "facts": facts}],
        }
    if preset == "pagerduty":
        action = {"acknowledge": "acknowledge", "resolve": "resolve"}.get(event, "trigger")
        body = {"routing_key": routing_key, "event_action": action, "dedup_key": inc["id"]}
        if action == "trigger":
            body["payload"] = {
                "summary": head[:1024],
                "severity": PD_SEVERITY.get(inc["severity"], "error"),
                "source": f"{inc['site_id']}/{inc['host_id']}",
                "component": inc["kind"],
                "custom_details": {k: inc[k] for k in INCIDENT_KEYS},
            }
        return body
    raise AlertError(f"unknown preset {preset!r}")


def send(
    route: dict[str, Any],
    secret: dict[str, str],
    inc: dict[str, Any],
    event: str,
    step: int,
    smtp: SmtpConfig | None,
    allow_private: bool,
) -> None:
    """Deliver one event of ``inc`` on one route; raises ``AlertError`` (no secret in it)."""
    name, preset = route["name"], route["preset"]
    if preset == "email":
        if smtp is None:
            raise AlertError(f"route {name}: the server has no [smtp] relay")
        rcpt = [a.strip() for a in route["target"].split(",") if a.strip()]
        cfg = SmtpConfig(**{**smtp.__dict__, "recipients": rcpt})
        send_email(cfg, subject(inc, event, step), text_body(inc, event, step))
        return
    url = secret.get("url") or (PAGERDUTY_URL if preset == "pagerduty" else "")
    try:
        check_url(url, allow_private)  # again at send time: a name may now resolve inward
    except TargetRefused as exc:
        raise AlertError(f"route {name}: {exc}") from None
    body = payload(preset, inc, event, step, secret.get("routing_key", ""))
    if preset == "generic":
        try:
            send_webhook(url, secret["secret"].encode(), body, timeout=TIMEOUT_S)
        except AlertError as exc:
            raise AlertError(f"route {name}: {_cause(exc, secret)}") from None
        return
    try:
        resp = httpx.post(
            url,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "osiris-server"},
            timeout=TIMEOUT_S,
        )
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise AlertError(f"route {name}: {preset} webhook failed: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise AlertError(f"route {name}: {preset} webhook answered HTTP {resp.status_code}")


def _cause(exc: AlertError, secret: dict[str, str]) -> str:
    """``send_webhook``'s message without the URL (its path may be the token)."""
    text = str(exc)
    for value in secret.values():
        if value:
            text = text.replace(value, "[REDACTED]")
    if " answered " in text:
        return "generic webhook answered" + text.split(" answered", 1)[1]
    if " failed: " in text:
        return "generic webhook failed: " + text.rsplit(" failed: ", 1)[1]
    return "generic webhook failed"
