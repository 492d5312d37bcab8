"""`osiris token …`: operator tokens (admin) — list, add, rm. A secret is printed once."""

from __future__ import annotations

import click

from ..columns import TOKENS
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, listing


@click.group()
def token() -> None:
    """Operator tokens (admin): list, add, rm."""


@token.command("list")
@JSON_OPT
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never the secrets)."""
    listing(client_of(ctx).tokens(), as_json, TOKENS)


@token.command("add")
@click.option(
    "--role",
    type=click.Choice(["admin", "operator", "auditor", "client"]),
    required=True,
    help="What the token may do.",
)
@click.option("--name", required=True, help="Who or what holds it.")
@click.option("--site", "site_id", help="The one site of a client token.")
@click.pass_context
def token_add(ctx: click.Context, role: str, name: str, site_id: str | None) -> None:
    """Create a token; the secret is printed once (JSON)."""
    emit_json(client_of(ctx).create_token(role, name, site_id))


@token.command("rm")
@click.argument("token_id")
@YES_OPT
@click.pass_context
def token_rm(ctx: click.Context, token_id: str, yes: bool) -> None:
    """Revoke a token."""
    confirm(yes, f"Revoke token {token_id}")
    emit_json(client_of(ctx).revoke_token(token_id))
