"""`osiris audit list`: the audit log (admin, auditor)."""

from __future__ import annotations

import click

from ..columns import AUDIT
from .base import JSON_OPT, client_of, listing


@click.group()
def audit() -> None:
    """The audit log (admin, auditor)."""


@audit.command("list")
@click.option("--site", "site_id", help="Only this site.")
@click.option("--action", help="Only this action (e.g. credential.reveal).")
@click.option("--before", type=int, help="Page: entries with an id below this.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def audit_list(
    ctx: click.Context,
    site_id: str | None,
    action: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List audit entries, newest first."""
    listing(client_of(ctx).audit(site_id, action, before, limit), as_json, AUDIT)
