"""`osiris escrow …`: recovery keys appliances escrowed before enabling BitLocker — list (where and
when, never the key) and reveal (admin only; the server audits every reveal)."""

from __future__ import annotations

import click

from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, emit_table


@click.group()
def escrow() -> None:
    """Escrowed BitLocker recovery keys of a site: list, reveal (admin)."""


@escrow.command("list")
@click.option("--site", "site_id", required=True, help="Site id.")
@JSON_OPT
@click.pass_context
def escrow_list(ctx: click.Context, site_id: str, as_json: bool) -> None:
    """Which host's protector is escrowed, by which appliance, when (never the key)."""
    rows = client_of(ctx).escrowed_keys(site_id)
    if as_json:
        emit_json(rows)
        return
    cols = ("id", "host_id", "protector_id", "appliance_id", "created_at")
    emit_table([[r.get(c, "") for c in cols] for r in rows],
               ["ID", "HOST", "PROTECTOR", "APPLIANCE", "ESCROWED"])  # fmt: skip


@escrow.command("reveal")
@click.option("--site", "site_id", required=True, help="Site id.")
@click.argument("escrow_id")
@YES_OPT
@click.pass_context
def escrow_reveal(ctx: click.Context, site_id: str, escrow_id: str, yes: bool) -> None:
    """Admin only: print the recovery password (the server audits the reveal)."""
    confirm(yes, f"Reveal the recovery key {escrow_id} (this is audited)")
    emit_json(client_of(ctx).reveal_escrowed_key(site_id, escrow_id))
