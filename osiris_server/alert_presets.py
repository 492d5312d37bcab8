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
``last_error`` is shown to operators. Calls block (the sender thread runs them, never a request).

Every webhook POST goes through ``post_pinned``: the URL's name is resolved and checked once
(``alert_targets.resolve``) and the connection goes to that checked address, the name kept for
``Host``, SNI and the certificate check, so a DNS answer that changes between check and connect
(rebinding) cannot steer the POST inward. Redirects are not followed (a 3xx is a failed send),
and environment proxies are not used (a proxy would resolve the name itself, outside the check;
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still name extra CAs). The ``generic`` preset's signature is
``alerts.sign_webhook``'s, the wire format of ``alerts.send_webhook``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from osiris_core import canonical
from osiris_core.errors import OsirisError
from osiris_server.alert_targets import Resolver, Target, TargetRefused, resolve, system_resolver
from osiris_server.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertError,
    SmtpConfig,
    send_email,
    sign_webhook,
)

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
    resolver: Resolver = system_resolver,
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
        target = resolve(url, allow_private, resolver)  # again at send time, and pinned
    except TargetRefused as exc:
        raise AlertError(f"route {name}: {exc}") from None
    body = payload(preset, inc, event, step, secret.get("routing_key", ""))
    headers = {"Content-Type": "application/json", "User-Agent": "osiris-server"}
    if preset == "generic":
        try:
            raw = canonical.dumps(body)
        except OsirisError:
            raise AlertError(f"route {name}: generic payload is not canonical JSON") from None
        ts = int(time.time())
        headers[TIMESTAMP_HEADER] = str(ts)
        headers[SIGNATURE_HEADER] = sign_webhook(secret["secret"].encode(), ts, raw)
    else:
        raw = json.dumps(body).encode()
    try:
        resp = post_pinned(target, raw, headers, TIMEOUT_S)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
        raise AlertError(f"route {name}: {preset} webhook failed: {type(exc).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise AlertError(f"route {name}: {preset} webhook answered HTTP {resp.status_code}")


def post_pinned(
    target: Target, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST ``body`` to the checked address of ``target``; the name is the Host header, the SNI
    and what the certificate must match (httpcore's ``sni_hostname`` is also the name its TLS
    handshake verifies). An IP-literal URL gets no SNI, as RFC 6066 asks."""
    ext = {} if target.host_is_ip else {"sni_hostname": target.host}
    ctx = httpx.create_ssl_context(trust_env=True)  # certifi, or SSL_CERT_FILE / SSL_CERT_DIR
    with httpx.Client(verify=ctx, trust_env=False, follow_redirects=False) as client:
        return client.post(
            target.connect_url,
            content=body,
            headers={**headers, "Host": target.host_header},
            timeout=timeout,
            extensions=ext,
        )
