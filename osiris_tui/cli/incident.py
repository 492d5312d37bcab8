"""`osiris incident …`: incidents reported by appliances — list, show, ack, assign, resolve
(the console's Incidents tab keys a, s and x do the same three changes)."""

from __future__ import annotations

import click

from osiris_core.errors import ExitCode

from ..columns import INCIDENTS
from .base import JSON_OPT, client_of, fail, listing, show


@click.group()
def incident() -> None:
    """Incidents reported by appliances: list, show, ack, assign, resolve."""


@incident.command("list")
@click.option("--site", "site_id", help="Only this site.")
@click.option("--status", type=click.Choice(["open", "resolved"]), help="Filter by status.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def incident_list(
    ctx: click.Context, site_id: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List incidents, newest first."""
    listing(client_of(ctx).incidents(site_id, status, limit), as_json, INCIDENTS)


@incident.command("show")
@click.argument("incident_id")
@JSON_OPT
@click.pass_context
def incident_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Show one incident."""
    show(client_of(ctx).incident(incident_id), as_json)


@incident.command("ack")
@click.argument("incident_id")
@JSON_OPT
@click.pass_context
def incident_ack(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Acknowledge an open incident (it stays open; the server records who, audited)."""
    show(client_of(ctx).acknowledge_incident(incident_id), as_json)


@incident.command("assign")
@click.argument("incident_id")
@click.argument("assignee", required=False)
@click.option("--clear", is_flag=True, help="Remove the assignee instead.")
@JSON_OPT
@click.pass_context
def incident_assign(
    ctx: click.Context, incident_id: str, assignee: str | None, clear: bool, as_json: bool
) -> None:
    """Assign an open incident to a person (a name or e-mail address), or --clear it."""
    if bool(assignee) == clear:
        fail("give an ASSIGNEE or --clear (not both)", ExitCode.USAGE)
    show(client_of(ctx).assign_incident(incident_id, None if clear else assignee), as_json)


@incident.command("resolve")
@click.argument("incident_id")
@click.option("--note", help="What was done (kept with the incident, audited).")
@JSON_OPT
@click.pass_context
def incident_resolve(ctx: click.Context, incident_id: str, note: str | None, as_json: bool) -> None:
    """Mark an incident resolved."""
    show(client_of(ctx).resolve_incident(incident_id, note), as_json)
