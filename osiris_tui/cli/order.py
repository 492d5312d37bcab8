"""`osiris order …`: signed orders to appliances — list, show, run one catalogue runbook."""

from __future__ import annotations

from typing import Any

import click

from osiris_core.errors import ExitCode

from ..columns import ORDERS
from .base import JSON_OPT, YES_OPT, client_of, confirm, fail, listing, show
from .names import appliance_id as resolve_appliance
from .runbook import catalog_runbooks

APPLIANCE_HELP = "Appliance id or hostname (a name is resolved through the API)."


@click.group()
def order() -> None:
    """Signed orders to appliances: list, show, run a runbook."""


@order.command("list")
@click.option("--appliance", "appliance_id", required=True, help=APPLIANCE_HELP)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most N."
)
@JSON_OPT
@click.pass_context
def order_list(ctx: click.Context, appliance_id: str, limit: int, as_json: bool) -> None:
    """List an appliance's orders, newest first."""
    c = client_of(ctx)
    listing(c.orders(resolve_appliance(c, appliance_id), limit), as_json, ORDERS)


@order.command("show")
@click.option("--appliance", "appliance_id", required=True, help=APPLIANCE_HELP)
@click.argument("order_id")
@JSON_OPT
@click.pass_context
def order_show(ctx: click.Context, appliance_id: str, order_id: str, as_json: bool) -> None:
    """Show one order and its result."""
    c = client_of(ctx)
    show(c.order(resolve_appliance(c, appliance_id), order_id), as_json)


@order.command("run")
@click.option("--appliance", "appliance_id", required=True, help=APPLIANCE_HELP)
@click.option("--runbook", "runbook_id", required=True, help="Catalogue runbook id.")
@click.option("--host", "host_id", required=True, help="Host id at the site.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Runbook parameter.")
@click.option("--ttl", type=click.IntRange(1, 86400), help="Seconds before the order expires.")
@YES_OPT
@JSON_OPT
@click.pass_context
def order_run(
    ctx: click.Context,
    appliance_id: str,
    runbook_id: str,
    host_id: str,
    params: tuple[str, ...],
    ttl: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Queue a signed order to run one catalogue runbook on one host.

    The host must be one the appliance's site has a credential for (or the appliance itself),
    and the runbook one for that host's platform: otherwise nothing is signed or queued."""
    extra: dict[str, Any] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if not sep or not k:
            fail(f"--param {p!r}: expected K=V", ExitCode.USAGE)
        extra[k] = _param_value(v)
    c = client_of(ctx)
    app_id = resolve_appliance(c, appliance_id)
    rb = catalog_runbooks().get(runbook_id)
    if rb is not None and (rb.disruptive or rb.requires_maintenance_window):
        confirm(yes, f"{runbook_id} is disruptive; run it on {host_id} via {appliance_id}")
    body: dict[str, Any] = {"runbook_id": runbook_id, "host_id": host_id}
    if extra:
        body["parameters"] = extra
    # The server judges the target (host at the site, runbook for its platform) before it
    # signs anything; its refusal says what to type instead, and is printed as it is.
    show(c.create_order(app_id, "run_runbook", body, ttl_s=ttl), as_json)


def _param_value(v: str) -> Any:
    if v in ("true", "false"):
        return v == "true"
    if v.lstrip("-").isdigit():
        return int(v)
    return v
