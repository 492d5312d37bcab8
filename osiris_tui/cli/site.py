"""`osiris site …`: sites (clinics) — list, show, add, rename, and their settings
(``site_settings``: window, check-in cadence, allow-lists)."""

from __future__ import annotations

import click

from ..columns import SITES
from . import site_hold
from .base import JSON_OPT, client_of, listing, show
from .site_contact import contact
from .site_settings import settings


@click.group()
def site() -> None:
    """Sites (clinics): list, show, add, rename, settings."""


site.add_command(settings)
site.add_command(contact)  # osiris_tui/cli/site_contact.py: portal contacts
for _cmd in site_hold.COMMANDS:  # osiris_tui/cli/site_hold.py: hold, unhold, holds
    site.add_command(_cmd)


@site.command("list")
@JSON_OPT
@click.pass_context
def site_list(ctx: click.Context, as_json: bool) -> None:
    """List the sites this token may see."""
    listing(client_of(ctx).sites(), as_json, SITES)


@site.command("show")
@click.argument("site_id")
@JSON_OPT
@click.pass_context
def site_show(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """Show one site."""
    show(client_of(ctx).site(site_id), as_json)


@site.command("add")
@click.argument("name")
@click.option("--id", "site_id", help="Choose the site id (default: generated).")
@click.option("--partner", help="Partner (reseller) id.")
@click.option("--interval", type=click.IntRange(10, 3600), help="Check-in interval, seconds.")
@JSON_OPT
@click.pass_context
def site_add(
    ctx: click.Context,
    name: str,
    site_id: str | None,
    partner: str | None,
    interval: int | None,
    as_json: bool,
) -> None:
    """Create a site."""
    show(client_of(ctx).create_site(name, site_id, partner, interval), as_json)


@site.command("rename")
@click.argument("site_id")
@click.argument("name")
@JSON_OPT
@click.pass_context
def site_rename(ctx: click.Context, site_id: str, name: str, as_json: bool) -> None:
    """Rename a site."""
    show(client_of(ctx).update_site(site_id, name=name), as_json)
