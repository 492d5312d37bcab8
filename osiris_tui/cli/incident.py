"""`osiris incident …`: incidents reported by appliances — list, show, resolve."""

from __future__ import annotations

import click

from ..columns import INCIDENTS
from .base import JSON_OPT, client_of, listing, show


@click.group()
def incident() -> None:
    """Incidents reported by appliances: list, show, resolve."""


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


@incident.command("resolve")
@click.argument("incident_id")
@JSON_OPT
@click.pass_context
def incident_resolve(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """Mark an incident resolved."""
    show(client_of(ctx).resolve_incident(incident_id), as_json)
