"""`osiris partner …`: partners (resellers) — list, add, brand."""

from __future__ import annotations

from pathlib import Path

import click

from osiris_core.errors import ExitCode

from ..branding import BrandInputError, brand_body, get_brand, set_brand
from ..columns import PARTNERS
from .base import JSON_OPT, client_of, emit_json, fail, listing, show


@click.group()
def partner() -> None:
    """Partners (resellers): list, add, brand."""


@partner.command("list")
@JSON_OPT
@click.pass_context
def partner_list(ctx: click.Context, as_json: bool) -> None:
    """List partners."""
    listing(client_of(ctx).partners(), as_json, PARTNERS)


@partner.command("add")
@click.argument("name")
@click.option("--email", help="Contact e-mail.")
@click.pass_context
def partner_add(ctx: click.Context, name: str, email: str | None) -> None:
    """Create a partner; its API key is printed once (JSON)."""
    emit_json(client_of(ctx).create_partner(name, email))


@partner.command("brand")
@click.argument("partner_id")
@click.option("--name", help="Display name shown to clinics (1..80 characters).")
@click.option("--colour", help="Accent colour, #rrggbb.")
@click.option(
    "--logo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Logo file, .png (<= 256 KiB, <= 1024x1024) or .svg (<= 64 KiB; sanitised).",
)
@click.option("--no-logo", is_flag=True, help="Remove the logo.")
@click.option("--show", "show_only", is_flag=True, help="Only show the brand; change nothing.")
@JSON_OPT
@click.pass_context
def partner_brand(
    ctx: click.Context,
    partner_id: str,
    name: str | None,
    colour: str | None,
    logo: Path | None,
    no_logo: bool,
    show_only: bool,
    as_json: bool,
) -> None:
    """Set or show a partner's brand (display name, colour, logo) for its clinics' portal,
    packet reports and console. Setting: admin, or the partner's own key. With no option (or
    --show) it only shows the brand."""
    client = client_of(ctx)
    if not (name is not None or colour is not None or logo is not None or no_logo):
        show_only = True  # nothing to change: show it
    if show_only:
        if name is not None or colour is not None or logo is not None or no_logo:
            fail("--show changes nothing; drop --name/--colour/--logo/--no-logo", ExitCode.USAGE)
        show(get_brand(client, partner_id), as_json)
        return
    try:
        body = brand_body(name, colour, logo, no_logo)
    except BrandInputError as e:
        fail(str(e), ExitCode.USAGE)
    show(set_brand(client, partner_id, body), as_json)
