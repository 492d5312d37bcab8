"""`osiris packet build`: the evidence packet of one site and period, as one verifiable zip.

Pulls, per appliance, the piece of its chain from the start boundary (its last bundle before the
period) to the end boundary (its first bundle after it), all proved against one checkpoint the
site's appliances cosigned; optionally the log's consistency proof from the previous packet's
checkpoint; then writes manifest, report and export into one zip, atomically. Nothing is signed
by Central Command: completeness is proved by the appliances' own chains, and `osiris evidence
verify --packet` checks it offline against the clinic's attestation.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import click

from osiris_core import canonical
from osiris_core.errors import ExitCode, OsirisError
from osiris_core.note import Checkpoint
from osiris_core.packet import (
    build_packet,
    check_period,
    consistency_doc,
    month_period,
    read_packet_checkpoint,
)
from osiris_core.verify import UnusableInput

from ..fmt import safe
from .base import client_of, fail
from .packet_upload import upload


@click.group("packet")
def packet() -> None:
    """Evidence packets: one verifiable zip per site and period (usually a month)."""


packet.add_command(upload)  # `osiris packet upload`: osiris_tui/cli/packet_upload.py


@packet.command("build")
@click.option("--site", "site_id", required=True, help="Site whose evidence goes in the packet.")
@click.option("--month", help="Month as YYYY-MM (UTC).")
@click.option("--from", "start", help="Period start, canonical UTC time (instead of --month).")
@click.option("--to", "end", help="Period end (exclusive), canonical UTC time.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Packet zip to write.")
@click.option(
    "--previous",
    type=click.Path(path_type=Path),
    help="The previous period's packet: add the log's consistency proof from its checkpoint.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing packet file.")
@click.option(
    "--latest",
    is_flag=True,
    help="Prove against the newest checkpoint, even before the site's appliances cosigned it.",
)
@click.option(
    "--allow-uncosigned",
    is_flag=True,
    help="If the site's appliances cosigned no checkpoint yet, use the newest one.",
)
@click.pass_context
def build(
    ctx: click.Context,
    site_id: str,
    month: str | None,
    start: str | None,
    end: str | None,
    out: Path,
    previous: Path | None,
    overwrite: bool,
    latest: bool,
    allow_uncosigned: bool,
) -> None:
    """Build the evidence packet of a site for a month (or --from/--to period).

    Writes manifest.json, the export (keys.json, bundles.jsonl with each appliance's boundary
    bundles, proofs/, checkpoint), consistency.json with --previous, report.md and
    verify/README into one zip. Progress goes to stderr. Exit 2 on bad input, 3 if the server
    is unreachable, 4 if the token is refused, 1 if no cosigned checkpoint exists.
    """
    from ..pull import pull_export

    try:
        if month is not None and (start or end):
            raise OsirisError("give --month or --from/--to, not both")
        if month is not None:
            period = month_period(month)
        elif start and end:
            period = check_period((start, end))
        else:
            raise OsirisError("give --month YYYY-MM, or --from and --to")
    except OsirisError as e:
        fail(str(e), ExitCode.USAGE)
    if out.exists() and not overwrite:
        fail(f"{out} exists (use --overwrite)", ExitCode.USAGE)
    prev_note = None
    if previous is not None:
        try:
            prev_note, _m = read_packet_checkpoint(previous)
            prev_cp = Checkpoint.parse(prev_note[: prev_note.index("\n\n") + 1])
        except (UnusableInput, OsirisError, ValueError) as e:
            fail(f"--previous: {e}", ExitCode.USAGE)
    if period[1] > canonical.utc_now():
        click.echo(
            "osiris: warning: the period is not over; appliances will have no end boundary "
            "yet and the packet will not verify",
            err=True,
        )
    client = client_of(ctx)
    open_ends: dict[str, int] = {}

    def progress(n: int, _total: int) -> None:
        click.echo(f"pulling: {n} bundles", err=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".packet-export-", dir=out.parent) as tmp:
        export = Path(tmp) / "export"
        n = pull_export(
            client,
            site_id,
            export,
            latest=latest,
            allow_uncosigned=allow_uncosigned,
            period=period,
            skipped=open_ends,
            progress=progress,
        )
        consistency = None
        if prev_note is not None:
            cp = Checkpoint.parse(
                (export / "checkpoint").read_text()[
                    : (export / "checkpoint").read_text().index("\n\n") + 1
                ]
            )
            if prev_cp.size > cp.size:
                fail(
                    f"--previous: its checkpoint ({prev_cp.size}) is newer than this packet's "
                    f"({cp.size})",
                    ExitCode.USAGE,
                )
            proof = client.get("/log/proof/consistency", **{"from": prev_cp.size, "to": cp.size})
            consistency = consistency_doc(
                prev_note, cp.size, [base64.b64decode(h) for h in proof["proof"]]
            )
        try:
            manifest = build_packet(
                export,
                out,
                site_id=site_id,
                period=period,
                month=month,
                consistency=consistency,
            )
        except OsirisError as e:
            fail(str(e), ExitCode.USAGE)
    for app, a in manifest["appliances"].items():
        if a["end_boundary"] is None and not a["decommissioned"]:
            why = (
                f"seq {open_ends[app]} is not yet covered by a cosigned checkpoint"
                if app in open_ends
                else "it has logged nothing after the period"
            )
            click.echo(
                f"osiris: warning: appliance {safe(app)} has no end boundary ({why}); the packet "
                "will not verify until it does — rebuild after its next check-in",
                err=True,
            )
    click.echo(
        f"wrote {out}: {manifest['bundles']} bundles in the period ({n} with boundaries), "
        f"{manifest['exceptions']} exceptions, checkpoint {manifest['checkpoint_size']}",
        err=True,
    )
