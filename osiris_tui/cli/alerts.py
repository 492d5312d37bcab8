"""`osiris alerts …`: where a partner's or a site's alerts go (routes), what happened to each
delivery, and the partners' SLA timers (issue 16; docs/server.md "Alert routing").

A route's destination secret — a Slack/Teams webhook URL (the URL *is* the token), the generic
webhook's signing secret, a PagerDuty routing key — never comes from argv (visible in `ps`):
`add-route` reads it from a hidden prompt, or from stdin with `--secret-stdin` (one value per
line, in the order the preset needs: URL, then secret; or the routing key). Listings are masked
by the server.
"""

from __future__ import annotations

import sys

import click

from osiris_core.errors import ExitCode

from .. import alert_calls
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, emit_table, fail

PRESETS = ("email", "generic", "slack", "teams", "pagerduty")
STATES = ("pending", "sending", "sent", "retrying", "dead")
SLA_SEVERITIES = ("low", "medium", "high", "critical")
# which secret values each preset reads, in order (stdin lines or prompts)
SECRETS = {
    "email": (),
    "generic": (("url", "Webhook URL"), ("secret", "Signing secret (16+ characters)")),
    "slack": (("url", "Slack incoming-webhook URL"),),
    "teams": (("url", "Teams incoming-webhook URL"),),
    "pagerduty": (("routing_key", "PagerDuty routing key"),),
}


def _scope_opts(f):  # type: ignore[no-untyped-def]
    f = click.option("--site", "site_id", help="A site's own routes.")(f)
    return click.option("--partner", "partner_id", help="A partner's routes (all its sites).")(f)


def _one_scope(partner_id: str | None, site_id: str | None) -> None:
    if (partner_id is None) == (site_id is None):
        fail("name exactly one of --partner or --site", ExitCode.USAGE)


@click.group()
def alerts() -> None:
    """Alert routes (e-mail, webhooks, Slack, Teams, PagerDuty), deliveries and SLA timers."""


@alerts.command("routes")
@_scope_opts
@JSON_OPT
@click.pass_context
def routes_cmd(ctx: click.Context, partner_id: str | None, site_id: str | None, as_json: bool):
    """List the routes of a partner or of a site (destinations masked)."""
    _one_scope(partner_id, site_id)
    rows = alert_calls.routes(client_of(ctx), partner_id, site_id)
    if as_json:
        emit_json([{k: r.get(k) for k in alert_calls.ROUTE_KEYS} for r in rows])
        return
    cols = ("id", "name", "preset", "level", "target", "created_by")
    emit_table([[r.get(c, "") for c in cols] for r in rows],
               ["ID", "NAME", "PRESET", "LEVEL", "TARGET", "BY"])  # fmt: skip


def _read_secrets(preset: str, from_stdin: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, label in SECRETS[preset]:
        if from_stdin:
            value = sys.stdin.readline().rstrip("\r\n")
            if not value:
                fail(f"--secret-stdin: {label.lower()} missing on stdin", ExitCode.USAGE)
        elif not sys.stdin.isatty():
            fail(f"{label.lower()} needed: use --secret-stdin (no terminal)", ExitCode.USAGE)
        else:
            value = click.prompt(label, hide_input=True, err=True)
        out[key] = value
    return out


@alerts.command("add-route")
@_scope_opts
@click.option("--name", required=True, help="What operators call this route.")
@click.option("--preset", required=True, type=click.Choice(PRESETS), help="Payload and channel.")
@click.option(
    "--level",
    type=click.IntRange(0, 5),
    default=0,
    show_default=True,
    help="Escalation level: 0 gets the first alert, k the k-th SLA breach.",
)
@click.option("--email", "emails", multiple=True, help="A recipient (email preset; repeatable).")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the URL / signing secret / routing key from stdin, one per line.",
)
@JSON_OPT
@click.pass_context
def add_route(ctx: click.Context, partner_id: str | None, site_id: str | None, name: str,
              preset: str, level: int, emails: tuple[str, ...], secret_stdin: bool,
              as_json: bool) -> None:  # fmt: skip
    """Add a route; its URL, secret or routing key is read without argv (prompt or stdin)."""
    _one_scope(partner_id, site_id)
    if emails and preset != "email":
        fail("--email is for the email preset", ExitCode.USAGE)
    body: dict[str, object] = {"name": name, "preset": preset, "level": level}
    if preset == "email":
        body["emails"] = list(emails)
    body.update(_read_secrets(preset, secret_stdin))
    row = alert_calls.add_route(client_of(ctx), partner_id, site_id, body)
    if as_json:
        emit_json({k: row.get(k) for k in alert_calls.ROUTE_KEYS})
    else:
        click.echo(f"{row['id']}\t{row['preset']}\t{row['target']}")


@alerts.command("rm-route")
@click.argument("route_id")
@YES_OPT
@JSON_OPT
@click.pass_context
def rm_route(ctx: click.Context, route_id: str, yes: bool, as_json: bool) -> None:
    """Delete a route (audited); its queued deliveries are then dead."""
    confirm(yes, f"Delete alert route {route_id}")
    out = alert_calls.delete_route(client_of(ctx), route_id)
    emit_json(out) if as_json else click.echo(f"deleted {out['deleted']}")


@alerts.command("deliveries")
@click.option("--site", "site_id", help="Only this site's incidents.")
@click.option("--state", type=click.Choice(STATES), help="Only deliveries in this state.")
@click.option("--incident", "incident_id", help="Only this incident's deliveries.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="At most this many, newest first.",
)
@JSON_OPT
@click.pass_context
def deliveries(ctx: click.Context, site_id: str | None, state: str | None,
               incident_id: str | None, limit: int, as_json: bool) -> None:  # fmt: skip
    """Each (incident, route) delivery: state, attempts, next attempt, last error."""
    rows = alert_calls.deliveries(client_of(ctx), site_id, state, incident_id, limit)
    if as_json:
        emit_json([{k: r.get(k) for k in alert_calls.DELIVERY_KEYS} for r in rows])
        return
    cols = ("incident_id", "route_name", "preset", "event", "state", "attempts", "last_error")
    heads = ["INCIDENT", "ROUTE", "PRESET", "EVENT", "STATE", "TRIES", "LAST ERROR"]
    emit_table([["" if r.get(c) is None else r.get(c) for c in cols] for r in rows], heads)


@alerts.command("sla")
@click.option("--partner", "partner_id", required=True, help="Partner id.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="SEVERITY=SECONDS",
    help="Acknowledge-within time for a severity (0 turns it off; repeatable).",
)
@JSON_OPT
@click.pass_context
def sla(ctx: click.Context, partner_id: str, values: tuple[str, ...], as_json: bool) -> None:
    """Show (or with --set change, audited) a partner's SLA timers per severity."""
    c = client_of(ctx)
    if values:
        parsed: dict[str, int] = {}
        for item in values:
            sev, _, secs = item.partition("=")
            if sev not in SLA_SEVERITIES or not secs.isdigit():
                fail(f"--set {item!r}: expected SEVERITY=SECONDS, severity one of "
                     f"{', '.join(SLA_SEVERITIES)}", ExitCode.USAGE)  # fmt: skip
            parsed[sev] = int(secs)
        out = alert_calls.set_sla(c, partner_id, parsed)
    else:
        out = alert_calls.sla(c, partner_id)
    if as_json:
        emit_json(out)
        return
    emit_table([[k, v] for k, v in sorted(out["sla"].items())], ["SEVERITY", "ACK WITHIN (S)"])
