"""`osiris evidence …`: pull an export from Central Command and verify one offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from osiris_core import canonical
from osiris_core.verify import Report, UnusableInput, count_bundles, verify_export

PROGRESS_MIN = 2000


@click.group("evidence")
def evidence() -> None:
    """Evidence bundles: pull an export and verify it offline."""


@evidence.command("verify")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--packet",
    "packet",
    type=click.Path(path_type=Path),
    help="Verify a monthly packet zip (manifest hashes and signature, then its export).",
)
@click.option(
    "--log-key",
    "log_key",
    help="With --packet: the log vkey you trust; the packet's keys.json must carry it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one canonical JSON report.")
@click.option("--strict", is_flag=True, help="Treat warnings as failures (exit 1).")
@click.option(
    "--skew",
    default=300,
    show_default=True,
    type=click.IntRange(0, 86400),
    help="Seconds a bundle's finished_at may run ahead of its cosigned existed-by time.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: one per core for large exports).",
)
def verify(
    path: Path | None,
    packet: Path | None,
    log_key: str | None,
    as_json: bool,
    strict: bool,
    skew: int,
    workers: int | None,
) -> None:
    """Verify an evidence export folder offline.

    Checks every bundle in order (strict parse, canonical bytes, schema, signature, hash chain,
    inclusion proof, checkpoint signature, cosignatures, time) and prints
    `PASS|WARN|FAIL <code> <subject> <message>` lines and a summary. Exit 0 when everything
    verifies, 1 when anything fails, 2 when the folder cannot be used at all. With
    `--packet FILE.zip` it first checks the packet's manifest (E_MANIFEST: every file's sha256,
    nothing missing or extra; E_MANIFEST_SIG: signed by the log key), then its export.
    """
    if (path is None) == (packet is None):
        click.echo("osiris: error: give an export folder or --packet FILE.zip", err=True)
        sys.exit(2)
    if packet is not None:
        from osiris_core.packet import verify_packet

        try:
            report = verify_packet(packet, skew_s=skew, workers=workers, trusted_log_vkey=log_key)
        except UnusableInput as e:
            click.echo(f"osiris: error: {e}", err=True)
            sys.exit(2)
        _print(report, as_json, strict)
        sys.exit(0 if report.ok(strict) else 1)
    assert path is not None
    progress = None
    bar = None
    total = count_bundles(path) if path.is_dir() else 0
    if not as_json and sys.stderr.isatty() and total >= PROGRESS_MIN:
        from rich.progress import Progress

        bar = Progress(transient=True, console=None)
        task = bar.add_task("verifying", total=total)
        bar.start()

        def progress(n: int) -> None:
            bar.update(task, completed=n)

    try:
        report = verify_export(path, skew_s=skew, progress=progress, workers=workers)
    except UnusableInput as e:
        click.echo(f"osiris: error: {e}", err=True)
        sys.exit(2)
    finally:
        if bar is not None:
            bar.stop()
    _print(report, as_json, strict)
    sys.exit(0 if report.ok(strict) else 1)


def _print(report: Report, as_json: bool, strict: bool) -> None:
    if as_json:
        click.echo(canonical.dumps(report.as_dict(strict)).decode())
    else:
        for line in report.lines():
            click.echo(line)
        click.echo(report.summary(strict))


@evidence.command("pull")
@click.option("--site", "site_id", required=True, help="Site whose evidence to export.")
@click.option("--appliance", "appliance_id", help="Only this appliance's chain.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Export folder.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty folder.")
@click.option(
    "--latest",
    is_flag=True,
    help="Prove against the newest checkpoint, even before the site's appliances cosigned it.",
)
@click.pass_context
def pull(
    ctx: click.Context,
    site_id: str,
    appliance_id: str | None,
    out: Path,
    overwrite: bool,
    latest: bool,
) -> None:
    """Pull a site's evidence from Central Command into an export folder.

    Writes keys.json, bundles.jsonl, proofs/ and checkpoint: the layout `osiris evidence verify`
    checks offline. By default it stops at the newest checkpoint the site's own appliances have
    cosigned. Exit 3 if the server is unreachable, 4 if the token is refused.
    """
    from .cli import client_of
    from .pull import pull_export

    n = pull_export(
        client_of(ctx), site_id, out, appliance_id=appliance_id, overwrite=overwrite, latest=latest
    )
    click.echo(f"pulled {n} bundles into {out}", err=True)
