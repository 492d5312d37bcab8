"""`osiris packet build`: the monthly evidence packet of one site, as one verifiable zip.

Pulls the month's evidence (bundles whose `finished_at` is in the month, proved against one
checkpoint the site's appliances cosigned), builds the manifest and report, has Central Command
sign the manifest hash with its log key, and writes the zip atomically. `osiris evidence verify
--packet` checks it offline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from osiris_core import canonical
from osiris_core.errors import OsirisError
from osiris_core.packet import build_packet, month_period


@click.group("packet")
def packet() -> None:
    """Monthly evidence packets: one signed zip per site and month."""


@packet.command("build")
@click.option("--site", "site_id", required=True, help="Site whose evidence goes in the packet.")
@click.option("--month", required=True, help="Month as YYYY-MM (UTC, by finished_at).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Packet zip to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing packet file.")
@click.option(
    "--latest",
    is_flag=True,
    help="Prove against the newest checkpoint, even before the site's appliances cosigned it.",
)
@click.pass_context
def build(
    ctx: click.Context, site_id: str, month: str, out: Path, overwrite: bool, latest: bool
) -> None:
    """Build the monthly evidence packet of a site.

    Writes manifest.json (signed by the server's log key in manifest.sig), the month's export
    (keys.json, bundles.jsonl, proofs/, checkpoint), report.md and verify/README into one zip.
    Progress goes to stderr. Exit 2 on bad input, 3 if the server is unreachable, 4 if the token
    is refused.
    """
    from .cli import client_of, fail
    from .pull import pull_export

    try:
        period = month_period(month)
    except OsirisError as e:
        fail(str(e), 2)
    if out.exists() and not overwrite:
        fail(f"{out} exists (use --overwrite)", 2)
    if period[1] > canonical.utc_now():
        click.echo(f"osiris: warning: {month} is not over; the packet is partial", err=True)
    client = client_of(ctx)
    skipped: dict[str, int] = {}

    def progress(n: int, _total: int) -> None:
        click.echo(f"pulling: {n} bundles of {month}", err=True)

    def sign(sha256_hex: str) -> str:
        click.echo("signing the manifest", err=True)
        r = client.post(
            "/packets/sign",
            {"site_id": site_id, "month": month, "manifest_sha256": sha256_hex},
        )
        return str(r["note"])

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".packet-export-", dir=out.parent) as tmp:
        export = Path(tmp) / "export"
        n = pull_export(
            client,
            site_id,
            export,
            latest=latest,
            window=period,
            skipped=skipped,
            progress=progress,
        )
        if skipped.get("uncovered"):
            click.echo(
                f"osiris: warning: {skipped['uncovered']} bundles of {month} are not yet covered "
                "by a cosigned checkpoint and are left out (retry later, or use --latest)",
                err=True,
            )
        try:
            manifest = build_packet(export, out, site_id=site_id, month=month, sign=sign)
        except OsirisError as e:
            fail(str(e), 2)
    click.echo(
        f"wrote {out}: {n} bundles, {manifest['exceptions']} exceptions, "
        f"checkpoint {manifest['checkpoint_size']}",
        err=True,
    )
