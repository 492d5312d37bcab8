"""`osiris-agent`: the appliance agent's command line.

This module holds the group and the commands that run the agent (``enroll``, ``run`` — which
waits in first-boot mode while not enrolled, ``firstboot.py`` — ``setup``, ``once``);
``cli_state.py`` the state-dir commands (``status``, ``outbox``, ``witness``),
``cli_keys.py`` the key and chain commands (``attest``, ``rotate-key``, ``decommission``),
``cli_common.py`` what they share.

Exit codes (DESIGN §4.2, ``osiris_core.errors.ExitCode``): 0 ok, 1 the thing checked is bad
(``once``: the log check failed; ``outbox flush``: bundles still queued; ``witness status``: the
log is not trusted; ``rotate-key``: the server refused), 2 usage or config error (also: a corrupt
state dir, ``run`` and ``once`` on a decommissioned appliance), 3 server unreachable (``once``,
``enroll``, ``rotate-key``, ``decommission``), 4 authentication refused, 5 an unexpected error (a
bug; ``--debug`` or ``OSIRIS_DEBUG=1`` prints the traceback). Every error is one line
``osiris-agent: error: …`` on stderr (``osiris_core.cli_base``) — never a stack trace; the
cycle's own problems are ``osiris-agent: warning: …`` lines before it.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
from typing import Any

import click

from osiris_agent.cli_common import (
    PROG,
    _agent,
    _agent_from,
    _fail,
    _load,
    _logging,
    _refuse_decommissioned,
    _warn,
)
from osiris_agent.config import DEFAULT_PATH, ConfigError
from osiris_core.cli_base import OsirisGroup
from osiris_core.errors import ExitCode, OsirisError


@click.group(
    cls=OsirisGroup,
    prog=PROG,
    input_errors=(sqlite3.DatabaseError,),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="osiris")
def main() -> None:
    """The appliance agent: detect drift, heal it, sign the evidence."""


@main.command()
@click.option("--server", required=True, help="Central Command URL, e.g. https://cc.example.com")
@click.option("--claim-code", required=True, help="One-time claim code from the operator.")
@click.option(
    "--state",
    "state",
    default="/var/lib/osiris",
    show_default=True,
    type=click.Path(file_okay=False),
    help="State directory (keys, token, outbox).",
)
@click.option("--hostname", default=None, help="Name to register (default: this host's).")
@click.option(
    "--lab",
    is_flag=True,
    help="Lab/demo appliance: allow plain http:// to non-local hosts and lab targets.",
)
@click.option("--ca-file", default=None, help="PEM CA bundle for the server's TLS certificate.")
def enroll(
    server: str, claim_code: str, state: str, hostname: str | None, lab: bool, ca_file: str | None
) -> None:
    """Generate keys, claim this appliance and write its config (safe to re-run)."""
    from osiris_agent.client import AuthRefused, ServerRefused, ServerUnreachable
    from osiris_agent.enroll import enroll as do_enroll

    try:
        r = do_enroll(server, claim_code, state, hostname=hostname, lab=lab, ca_file=ca_file)
    except ConfigError as e:
        _fail(f"config error: {e}", ExitCode.USAGE)
    except ServerUnreachable as e:
        _fail(str(e), ExitCode.UNREACHABLE)
    except AuthRefused as e:
        _fail(str(e), ExitCode.AUTH)
    except ServerRefused as e:
        refused = e.status in (401, 403, 404, 409, 410)
        _fail(f"claim refused: {e}", ExitCode.AUTH if refused else ExitCode.BAD)
    except OsirisError as e:
        _fail(str(e), e.exit_code)
    except OSError as e:
        _fail(str(e), ExitCode.USAGE)
    if r.already:
        click.echo(
            f"already enrolled as {r.appliance_id} (site {r.site_id}); config {r.config_path}"
        )
    else:
        click.echo(f"enrolled as {r.appliance_id} (site {r.site_id}); config {r.config_path}")
        if r.quarantined:
            click.echo(
                "quarantined: the claim code was not made by an admin, so this appliance "
                "receives no credentials until an admin confirms it "
                f"(osiris appliance confirm {r.appliance_id})"
            )


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("-v", "--verbose", is_flag=True)
def run(config: str | None, verbose: bool) -> None:
    """Run cycles until SIGTERM/SIGINT; not enrolled yet: wait for a claim code first
    (docs/enrolment.md)."""
    from osiris_agent import firstboot

    _logging(True)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cfg = _load(config, None)
    if not firstboot.is_enrolled(cfg):
        enrolled = firstboot.wait_enrolled(cfg, stop)
        if enrolled is None:
            return
        cfg = enrolled
    agent = _agent_from(firstboot.effective(cfg))
    _refuse_decommissioned(agent)
    try:
        agent.run(stop)
        closed = agent.decommissioned
    finally:
        agent.close()
    if closed is not None:
        _fail(
            f"stopped: this appliance was decommissioned (chain closed at seq {closed})",
            ExitCode.USAGE,
        )


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
def setup(config: str | None) -> None:
    """First-boot console (tty1): show the key fingerprints, take a claim code, enrol."""
    from osiris_agent.setup_screen import SetupApp

    SetupApp(_load(config, None)).run()


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("-v", "--verbose", is_flag=True)
def once(config: str | None, verbose: bool) -> None:
    """One cycle; exit 0 if the server was reached and the log trusted, 3 if the server was
    unreachable, 1 if the log is not trusted."""
    _logging(verbose)
    agent = _agent(config)
    _refuse_decommissioned(agent)
    try:
        report = agent.cycle()
        trusted = agent.witness.trusted
        depth = agent.outbox.depth()
    finally:
        agent.close()
    click.echo(
        f"recorded {report.recorded}, acknowledged {report.acked}, queued {depth}"
        + ("" if report.reachable else ", server unreachable")
        + ("" if trusted else ", LOG NOT TRUSTED")
    )
    for e in report.errors:
        _warn(e)
    if not report.reachable:
        _fail(f"server unreachable; {depth} bundle(s) queued for the next cycle",
              ExitCode.UNREACHABLE)  # fmt: skip
    if not trusted:
        _fail("the server's transparency log is not trusted (see `osiris-agent witness status`)",
              ExitCode.BAD)  # fmt: skip
    sys.exit(ExitCode.OK)


# The other subcommands, one module per group of jobs (imported here so `osiris-agent` has them).
from osiris_agent.cli_keys import attest, decommission, rotate_key  # noqa: E402
from osiris_agent.cli_state import gather_status, outbox, status, witness  # noqa: E402

for _cmd in (status, outbox, witness, attest, rotate_key, decommission):
    main.add_command(_cmd)

__all__ = ["gather_status", "main"]

if __name__ == "__main__":
    main()
