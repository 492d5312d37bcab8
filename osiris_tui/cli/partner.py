"""`osiris partner …`: partners (resellers) — list, add."""

from __future__ import annotations

import click

from ..columns import PARTNERS
from .base import JSON_OPT, client_of, emit_json, listing


@click.group()
def partner() -> None:
    """Partners (resellers): list, add."""


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
