"""`osiris provision …`: claim codes for new appliances (create with a QR code, list, rm) and
MAC enrollment requests (macs, approve)."""

from __future__ import annotations

import click

from ..columns import MAC_REQUESTS, PROVISIONS
from ..fmt import safe
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, emit_record, listing, table


@click.group()
def provision() -> None:
    """Claim codes for new appliances: create (with a QR code), list, rm; MAC requests."""


@provision.command("list")
@JSON_OPT
@click.pass_context
def provision_list(ctx: click.Context, as_json: bool) -> None:
    """List claim codes (never the codes themselves): pending or claimed."""
    listing(client_of(ctx).provisions(), as_json, PROVISIONS)


@provision.command("create")
@click.option("--site", "site_id", required=True, help="Site the appliance will join.")
@click.option("--ttl", type=click.IntRange(60, 30 * 86400), help="Seconds the code is valid.")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code.")
@JSON_OPT
@click.pass_context
def provision_create(
    ctx: click.Context, site_id: str, ttl: int | None, no_qr: bool, as_json: bool
) -> None:
    """Create a single-use claim code and show it as text and as a QR code."""
    out = client_of(ctx).create_provision(site_id, ttl)
    if as_json:
        emit_json(out)
        return
    code = safe(out["code"])
    click.echo(f"claim code: {code}")
    click.echo(f"site:       {safe(out.get('site_id'))}")
    click.echo(f"expires:    {safe(out.get('expires_at'))}")
    click.echo(f"enroll:     osiris-agent enroll --server URL --claim-code {code} --state DIR")
    if not no_qr:
        from ..qr import render_half_blocks

        click.echo()
        click.echo(render_half_blocks(code))


@provision.command("rm")
@click.argument("provision_id")
@YES_OPT
@click.pass_context
def provision_rm(ctx: click.Context, provision_id: str, yes: bool) -> None:
    """Withdraw an unused claim code."""
    confirm(yes, f"Withdraw claim code {provision_id}")
    emit_json(client_of(ctx).delete_provision(provision_id))


@provision.command("macs")
@JSON_OPT
@click.pass_context
def provision_macs(ctx: click.Context, as_json: bool) -> None:
    """List MAC enrollment requests with the fingerprint each appliance's console shows."""
    rows = client_of(ctx).mac_requests()
    if as_json:
        emit_json(rows)
        return
    table(rows, MAC_REQUESTS)


@provision.command("approve")
@click.argument("mac")
@click.option("--site", "site_id", required=True, help="Site the appliance will join.")
@click.option(
    "--fingerprint",
    required=True,
    help="The requester's full fingerprint, as the appliance's console shows it (64 hex "
    "digits); only that requester can collect the claim code.",
)
@click.option("--ttl", type=click.IntRange(60, 30 * 86400), help="Seconds the code is valid.")
@YES_OPT
@JSON_OPT
@click.pass_context
def provision_approve(
    ctx: click.Context,
    mac: str,
    site_id: str,
    fingerprint: str | None,
    ttl: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Approve a MAC enrollment request for a site.

    Compare the request's fingerprint (`osiris provision macs`) with the one the appliance's
    console shows before approving: only the requester holding that fingerprint's secret can
    collect the claim code.
    """
    client = client_of(ctx)
    norm = mac.strip().lower().replace("-", ":")
    want = fingerprint.strip().lower().replace("-", "").replace(":", "").replace(" ", "")
    reqs = [r for r in client.mac_requests() if r["mac"] == norm]
    match = next(
        (r for r in reqs if (r.get("requester_fingerprint") or "").replace("-", "") == want),
        None,
    )
    if match is None:
        raise click.UsageError(
            f"no request for {safe(norm)} from requester {safe(fingerprint)} "
            f"({len(reqs)} other requester(s) for that MAC); not approving"
        )
    confirm(
        yes,
        f"Approve {norm} (requester {match['requester_fingerprint']}, from "
        f"{safe(match.get('source') or '?')}) to join site {site_id}: that box will receive a "
        "claim code for that site",
    )
    out = client.approve_mac(norm, site_id, match["requester_fingerprint"], ttl)
    if as_json:
        emit_json(out)
    else:
        emit_record(out)
