"""`osiris evidence …`: pull an export from Central Command and verify one offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from osiris_core import canonical
from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode
from osiris_core.trust import (
    TrustFileError,
    TrustRoots,
    fingerprint,
    load_trust_file,
    log_key_arg,
    store_roots,
)
from osiris_core.verify import Report, UnusableInput, count_bundles, verify_export

from ..fmt import safe, safe_json_text
from .base import client_of

PROGRESS_MIN = 2000


@click.group("evidence")
def evidence() -> None:
    """Evidence bundles: pull an export and verify it offline."""


def load_trust(
    trust_files: tuple[Path, ...], log_keys: tuple[str, ...], use_store: bool
) -> TrustRoots:
    """Trust roots from outside the export: --trust files, --log-key values and the user's
    trust store. A malformed one is a usage error (exit 2) naming the file."""
    roots = TrustRoots()
    try:
        for f in trust_files:
            roots.merge(load_trust_file(f))
        for k in log_keys:
            roots.add_log(log_key_arg(k), f"--log-key {fingerprint(log_key_arg(k).vkey)}")
        if use_store:
            roots.merge(store_roots())
    except TrustFileError as e:
        fail(str(e), ExitCode.USAGE, "osiris")
    return roots


@evidence.command("verify")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--packet",
    "packet",
    type=click.Path(path_type=Path),
    help="Verify an evidence packet zip (integrity, completeness at both period edges, every "
    "appliance present, then every bundle). Strict by default.",
)
@click.option(
    "--trust",
    "trust_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A trust root from the clinic: an attestation (osiris-agent attest) or a keys file "
    "{log, appliances}. Repeatable.",
)
@click.option(
    "--log-key",
    "log_keys",
    multiple=True,
    help="The log vkey you trust (or a file holding it). Repeatable.",
)
@click.option(
    "--no-trust-store",
    is_flag=True,
    help="Ignore the user trust store (osiris trust list).",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path),
    help="With --packet: the previous period's packet; its checkpoint must be proved a prefix "
    "of this one's, and the chains must join.",
)
@click.option(
    "--tsa-ca",
    "tsa_cas",
    multiple=True,
    type=click.Path(path_type=Path),
    help="PEM certificate chain of a TSA you trust: checkpoint.tsr must be its RFC 3161 token "
    "over the checkpoint (E_TSA), and a missing token fails --strict. Repeatable.",
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
    trust_files: tuple[Path, ...],
    log_keys: tuple[str, ...],
    no_trust_store: bool,
    previous: Path | None,
    tsa_cas: tuple[Path, ...],
    as_json: bool,
    strict: bool,
    skew: int,
    workers: int | None,
) -> None:
    """Verify an evidence export folder (or --packet zip) offline, against trust from outside.

    Keys come from --trust (the clinic's attestations), --log-key and the trust store; keys
    that only the export carries are untrusted (W_UNPINNED, a failure under --strict and for
    packets). Checks every bundle in order (strict parse, canonical bytes, schema, signature
    by a key valid at its seq, hash chain, inclusion proof, checkpoint signature,
    cosignatures, time), and with --tsa-ca the RFC 3161 token over the checkpoint
    (checkpoint.tsr: E_TSA; W_TSA_MISSING when absent; without --tsa-ca a token is only
    reported, W_TSA_UNPINNED, which never fails), and prints `TRUST` lines (every key used,
    its fingerprint and where it came from), `PASS|WARN|FAIL <code> <subject> <message>`
    lines and a summary. Exit 0 when everything verifies, 1 when anything fails, 2 when the
    input or a trust file cannot be used.
    """
    if (path is None) == (packet is None):
        fail("give an export folder or --packet FILE.zip", ExitCode.USAGE, "osiris")
    if previous is not None and packet is None:
        fail("--previous needs --packet", ExitCode.USAGE, "osiris")
    pems = _tsa_pems(tsa_cas)
    roots = load_trust(trust_files, log_keys, not no_trust_store)
    trust = None if roots.empty else roots
    if packet is not None:
        from osiris_core.packet import verify_packet

        try:
            report = verify_packet(
                packet,
                trust=trust,
                previous=previous,
                skew_s=skew,
                workers=workers,
                tsa_cas=pems,
            )
        except UnusableInput as e:
            fail(str(e), ExitCode.USAGE, "osiris")
        _print(report, as_json, True)
        sys.exit(ExitCode.OK if report.ok(True) else ExitCode.BAD)
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
        report = verify_export(
            path, trust=trust, skew_s=skew, progress=progress, workers=workers, tsa_cas=pems
        )
    except UnusableInput as e:
        fail(str(e), ExitCode.USAGE, "osiris")
    finally:
        if bar is not None:
            bar.stop()
    _print(report, as_json, strict)
    sys.exit(ExitCode.OK if report.ok(strict) else ExitCode.BAD)


def _tsa_pems(paths: tuple[Path, ...]) -> list[bytes] | None:
    """The --tsa-ca files, each a readable PEM chain (else exit 2, before anything runs)."""
    if not paths:
        return None
    from osiris_core.timestamp import TsaError, load_pems

    pems = []
    for p in paths:
        try:
            pem = p.read_bytes()
            load_pems([pem])
        except OSError as e:
            fail(f"--tsa-ca {p}: {e.strerror or e}", ExitCode.USAGE, "osiris")
        except TsaError as e:
            fail(f"--tsa-ca {p}: {e}", ExitCode.USAGE, "osiris")
        pems.append(pem)
    return pems


def _print(report: Report, as_json: bool, strict: bool) -> None:
    # subjects and messages quote evidence (host ids, checks): print them defanged
    if as_json:
        click.echo(safe_json_text(canonical.dumps(report.as_dict(strict)).decode()))
    else:
        for line in report.lines():
            click.echo(safe(line))
        click.echo(safe(report.summary(strict)))


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
@click.option(
    "--allow-uncosigned",
    is_flag=True,
    help="If no checkpoint cosigned by the site's appliances exists yet, use the newest one "
    "(default: refuse, exit 1).",
)
@click.pass_context
def pull(
    ctx: click.Context,
    site_id: str,
    appliance_id: str | None,
    out: Path,
    overwrite: bool,
    latest: bool,
    allow_uncosigned: bool,
) -> None:
    """Pull a site's evidence from Central Command into an export folder.

    Writes keys.json, bundles.jsonl, proofs/ and checkpoint (and checkpoint.tsr, the server's
    RFC 3161 token over it, when it holds one): the layout `osiris evidence verify` checks
    offline. By default it stops at the newest checkpoint the site's own appliances have
    cosigned, and exits 1 if there is none (see --allow-uncosigned). Exit 3 if the server is
    unreachable, 4 if the token is refused.
    """
    from ..pull import pull_export

    n = pull_export(
        client_of(ctx),
        site_id,
        out,
        appliance_id=appliance_id,
        overwrite=overwrite,
        latest=latest,
        allow_uncosigned=allow_uncosigned,
    )
    click.echo(f"pulled {n} bundles into {out}", err=True)
