"""``osiris-agent attest``, ``rotate-key`` and ``decommission``: the commands about this
appliance's keys and the life of its evidence chain (an auditor's attestation, a signing-key
rotation, closing the chain for good).
"""

from __future__ import annotations

from pathlib import Path

import click

from osiris_agent.cli_common import (
    _agent,
    _fail,
    _load,
    _logging,
    _warn,
)
from osiris_agent.config import DEFAULT_PATH
from osiris_core.errors import ExitCode, OsirisError


def _attest_paths(config: str | None, state: str | None) -> tuple[str, str, str]:
    """(state dir, signing key file, cosigning key file) from --config, or from --state (its
    agent.toml when there is one, else the default file names in it)."""
    if state is not None and config is None:
        toml = Path(state) / "agent.toml"
        if not toml.exists():
            return state, str(Path(state) / "appliance.key"), str(Path(state) / "cosign.key")
    cfg = _load(config, state)
    return cfg.agent.state_dir, cfg.agent.key_file, cfg.agent.cosign_key_file


@click.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the attestation (JSON, public data only).")  # fmt: skip
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--state", "state", default=None, help="State directory (instead of --config).")
def attest(out: str, config: str | None, state: str | None) -> None:
    """Write the clinic's attestation for auditors: this appliance's keys, the log and order
    keys it pinned, its key history, chain head and newest cosigned checkpoint, signed with
    its signing key. Reads state only (no network; fine while the agent runs)."""
    from osiris_agent.attest import build, write

    state_dir, key_file, cosign_file = _attest_paths(config, state)
    try:
        env, summary = build(state_dir, key_file, cosign_file)
        write(out, env)
    except (OsirisError, OSError, ValueError) as e:
        _fail(f"cannot attest: {e}", ExitCode.USAGE)
    click.echo(f"wrote the attestation to {out}; read these to the auditor:", err=True)
    for line in summary.lines():
        click.echo(f"  {line}", err=True)


@click.command("rotate-key")
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
def rotate_key(config: str | None) -> None:
    """Replace the appliance's signing key (the old key signs a statement naming the new one
    and the first seq it signs; the server must accept it first). A running agent picks the
    new key up by itself; no bundle is ever signed with the old key past the rotation."""
    from osiris_agent.client import AuthRefused, ServerRefused, ServerUnreachable
    from osiris_agent.rotate import RotateError, RotationRefused
    from osiris_agent.rotate import rotate_key as do_rotate
    from osiris_core.trust import fingerprint

    _logging(False)
    cfg = _load(config, None)
    try:
        r = do_rotate(cfg)
    except ServerUnreachable as e:
        _fail(f"{e}; nothing changed", ExitCode.UNREACHABLE)
    except AuthRefused as e:
        _fail(f"{e}; nothing changed", ExitCode.AUTH)
    except (ServerRefused, RotationRefused) as e:
        _fail(f"rotation refused: {e}; nothing changed", ExitCode.BAD)
    except (RotateError, OsirisError, OSError) as e:
        _fail(f"cannot rotate: {e}", ExitCode.USAGE)
    click.echo(
        f"rotation {r.number}: bundles from seq {r.effective_seq} on are signed by the new key "
        f"{fingerprint(r.new_vkey)} (was {fingerprint(r.old_vkey)})"
        + (" [resumed an interrupted rotation]" if r.resumed else "")
    )
    click.echo("write a new attestation for the auditor: osiris-agent attest --out FILE")


DECOMMISSION_IMPACT = (
    "decommissioning signs one final bundle (check appliance_decommission) that closes this "
    "appliance's evidence chain, sends the queued evidence to the server, and from then on "
    "this agent signs nothing: `run` and `once` refuse to start. It cannot be undone; a "
    "machine reused later is enrolled as a new appliance."
)


@click.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--yes", is_flag=True, help="Really close the evidence chain.")
def decommission(config: str | None, yes: bool) -> None:
    """Close this appliance's evidence chain for good (a signed final bundle) and flush it."""
    if not yes:
        _fail(f"{DECOMMISSION_IMPACT} Re-run with --yes to do it.", ExitCode.USAGE)
    from osiris_agent.cycle import CycleReport
    from osiris_agent.outbox import Decommissioned, OutboxFull

    _logging(False)
    agent = _agent(config)
    try:
        closed = agent.decommissioned
        if closed is None:
            try:
                env = agent.decommission()
            except (Decommissioned, OutboxFull) as e:
                _fail(f"not decommissioned: {e}", ExitCode.BAD)
            closed = env["bundle"]["seq"]
            click.echo(f"chain closed at seq {closed} (bundle {env['bundle']['bundle_id']})")
        else:
            click.echo(f"already decommissioned (chain closed at seq {closed}); flushing")
        report = CycleReport()
        agent.flush(report)
        depth = agent.outbox.depth()
        trusted = agent.witness.trusted
    finally:
        agent.close()
    for e in report.errors:
        _warn(e)
    if depth == 0:
        click.echo("all evidence acknowledged by the server; this appliance signs nothing more")
        return
    rerun = "re-run `osiris-agent decommission --yes` (or `osiris-agent outbox flush`)"
    if not report.reachable:
        _fail(
            f"{depth} bundle(s) still queued: server unreachable; {rerun} when it is",
            ExitCode.UNREACHABLE,
        )
    why = "" if trusted else " (the server's log is not trusted: see `osiris-agent witness`)"
    _fail(f"{depth} bundle(s) still queued{why}; {rerun}", ExitCode.BAD)
