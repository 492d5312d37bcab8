"""`osiris appliance …`: appliances — list, show, drift (replayed from the evidence), confirm a
quarantined one, revoke."""

from __future__ import annotations

import sys
import time

import click

from osiris_core.errors import ExitCode

from ..columns import APPLIANCES, DRIFT
from ..fmt import safe
from ..transport import AuthRefused, UsageError
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, listing, show


@click.group()
def appliance() -> None:
    """Appliances: list, show, revoke."""


@appliance.command("list")
@click.option("--site", "site_id", help="Only this site.")
@JSON_OPT
@click.pass_context
def appliance_list(ctx: click.Context, site_id: str | None, as_json: bool) -> None:
    """List appliances with online/stale/offline status and drift counts."""
    listing(client_of(ctx).appliances(site_id), as_json, APPLIANCES)


@appliance.command("show")
@click.argument("appliance_id")
@JSON_OPT
@click.pass_context
def appliance_show(ctx: click.Context, appliance_id: str, as_json: bool) -> None:
    """Show one appliance and its latest check results."""
    show(client_of(ctx).appliance(appliance_id), as_json)


@appliance.command("drift")
@click.argument("appliance_id")
@click.option(
    "--window", type=click.IntRange(1, 20000), default=2000, show_default=True,
    help="Replay at most the newest N bundles of the chain.",
)  # fmt: skip
@click.option(
    "--fail-on-drift", is_flag=True,
    help="Exit 1 when any pair is in drift, error (could not run) or stale.",
)  # fmt: skip
@JSON_OPT
@click.pass_context
def appliance_drift(
    ctx: click.Context, appliance_id: str, window: int, fail_on_drift: bool, as_json: bool
) -> None:
    """Per host and check: state, since when, healing attempts — replayed from the evidence.

    A check that could not run is `error` with its reason (auth refused, unreachable,
    timeout); one not re-checked for 3 of its intervals is `stale`. Hosts whose credential was
    deleted are left out (their history stays in `osiris evidence`)."""
    from ..drift import drift_rows, fetch_chain_tail

    c = client_of(ctx)
    a = c.appliance(appliance_id)
    ev, start = fetch_chain_tail(c, a.site_id, a.id, (a.status or {}).get("seq"), window)
    try:
        hosts: set[str] | None = {cr.host_id for cr in c.credentials(a.site_id)} | {a.id}
    except (AuthRefused, UsageError):  # not allowed to list credentials: hide nothing
        hosts = None
    rows = drift_rows(ev, a.checks, window_start_seq=start, hosts=hosts, now=time.time())
    listing(rows, as_json, DRIFT)
    if fail_on_drift and any(d.state in ("drift", "error", "stale") for d in rows):
        sys.exit(ExitCode.BAD)


@appliance.command("confirm")
@click.argument("appliance_id")
@YES_OPT
@click.pass_context
def appliance_confirm(ctx: click.Context, appliance_id: str, yes: bool) -> None:
    """Admin: lift an appliance's quarantine so it receives its site's credentials.

    An appliance enrolled with a claim code an operator or partner made is quarantined: it
    checks in and sends evidence but gets no credential. Confirm only a box you know is the
    clinic's (compare its hostname, MAC and enrolment source in `osiris appliance show`).
    """
    c = client_of(ctx)
    a = c.appliance(appliance_id)
    confirm(
        yes,
        f"Confirm appliance {safe(a.hostname)} ({safe(a.id)}) of site {safe(a.site_id)}: from "
        "its next check-in it receives every credential of that site",
    )
    emit_json(c.confirm_appliance(appliance_id))


@appliance.command("revoke")
@click.argument("appliance_id")
@YES_OPT
@click.pass_context
def appliance_revoke(ctx: click.Context, appliance_id: str, yes: bool) -> None:
    """Revoke an appliance's token (it can no longer check in)."""
    confirm(yes, f"Revoke appliance {appliance_id}; it stops checking in and healing")
    emit_json(client_of(ctx).revoke_appliance(appliance_id))
