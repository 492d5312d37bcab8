"""`osiris learn …`: learned-rule candidates, read-only (promotion is not in the server's API)."""

from __future__ import annotations

import click

from ..columns import LEARNING
from .base import JSON_OPT, client_of, listing


@click.group()
def learn() -> None:
    """Learned-rule candidates (read-only: the server lists them; promotion is not in its API)."""


@learn.command("list")
@click.option("--site", "site_id", help="Only this site.")
@JSON_OPT
@click.pass_context
def learn_list(ctx: click.Context, site_id: str | None, as_json: bool) -> None:
    """List (check, runbook) promotion candidates with their success record, newest first."""
    listing(client_of(ctx).learning_candidates(site_id), as_json, LEARNING)
