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
import zipfile
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
from osiris_core.report import PLATFORM_OF_KIND  # the portal reads the same
from osiris_core.verify import UnusableInput

from ..branding import report_partner
from ..fmt import safe
from .base import client_of, fail
from .packet_upload import upload

try:  # the HTML/PDF views (another piece); without it the packet carries report.json only
    from ..report import RENDERERS  # type: ignore[attr-defined]
except ImportError:
    RENDERERS: dict = {}


def site_population(client, site_id: str) -> tuple[list[dict], str | None, dict | None]:  # noqa: ANN001
    """(expected population, site name, partner) from the server: every host the site holds
    a credential for is a target the appliance is given at check-in, so it must have evidence
    (the appliances themselves are added from the packet's keys by the report)."""
    site = client.get(f"/sites/{site_id}")
    creds = client.get(f"/sites/{site_id}/credentials").get("credentials", [])
    pop = {}
    for c in creds:
        host = c.get("host_id")
        if isinstance(host, str) and host not in pop:
            pop[host] = {"host_id": host, "platform": PLATFORM_OF_KIND.get(c.get("kind")),
                         "source": "site target"}  # fmt: skip
    partner = None
    pid = site.get("partner_id") if isinstance(site, dict) else None
    if isinstance(pid, str):
        partner = report_partner(client, pid)  # display name, colour, logo (issue 19)
    name = site.get("name") if isinstance(site, dict) else None
    return [pop[h] for h in sorted(pop)], name if isinstance(name, str) else None, partner


def summary_line(out: Path, report: dict) -> str:
    """One line: how many controls have each status, how many expected hosts sent nothing."""
    counts = {"met": 0, "partially_met": 0, "not_met": 0, "not_evidenced": 0}
    for c in report["controls"]:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    missing = report["population"]["missing"]
    return (
        f"report {safe(str(out))}: controls {counts['met']} met, {counts['partially_met']} "
        f"partially met, {counts['not_met']} not met, {counts['not_evidenced']} not evidenced; "
        f"{len(missing)} of {len(report['population']['expected'])} expected hosts without "
        "evidence" + (f" ({', '.join(safe(h) for h in missing[:5])})" if missing else "")
    )


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
    bundles, proofs/, checkpoint), consistency.json with --previous, report.json (and its
    HTML/PDF views when installed) and verify/README into one zip; the expected population is
    the site's targets (its credentials) and its appliances. The server is first asked to RFC
    3161-timestamp the checkpoint the packet proves against; its token goes in as
    checkpoint.tsr (a server without a TSA: a warning, and no token). Progress and a one-line
    report summary go to stderr. Exit 2 on bad input, 3 if the server is unreachable, 4 if the
    token is refused, 1 if no cosigned checkpoint exists.
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
    population, site_name, partner = site_population(client, site_id)
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
            anchor=True,  # timestamp the checkpoint this packet proves against (RFC 3161)
            warn=lambda m: click.echo(f"osiris: warning: {safe(m)}", err=True),
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
                population_expected=population,
                site_name=site_name,
                partner=partner,
                renderers=RENDERERS,
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
    with zipfile.ZipFile(out) as z:
        report = canonical.loads(z.read("report.json"))
    click.echo(summary_line(out, report), err=True)
