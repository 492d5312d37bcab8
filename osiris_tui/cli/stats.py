"""`osiris stats`: fleet totals, one record."""

from __future__ import annotations

import click

from .base import JSON_OPT, client_of, emit_json, emit_record


@click.command("stats")
@JSON_OPT
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Fleet totals: appliances online/offline, drift, incidents in 24 h."""
    data = client_of(ctx).stats()
    if as_json:
        emit_json(data)
    else:
        emit_record(data)
