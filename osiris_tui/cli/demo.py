"""`osiris demo …`: the LAB DEMO (server, three clinics, agents, simulated hosts on 127.0.0.1),
and `chaos` / `hosts` against a running one.

The one production module allowed to name ``osiris_lab`` (pyproject ``[tool.importlinter]``
``ignore_imports``, ``tests/test_layering.py`` ``LAB_EXCEPTIONS``): the demo is a developer/lab
tool, so ``osiris_lab.demo`` is imported only inside these commands, and ``_require_lab`` says
so in one line where ``osiris_lab`` is not installed (the appliance's Nix package).
"""

from __future__ import annotations

import sys

import click

from osiris_core.cli_base import write_error
from osiris_core.errors import ExitCode

from ..columns import DEMO_HOSTS
from ..fmt import safe_text
from .base import JSON_OPT, PROG, emit_json, fail, one_line, table


def _require_lab() -> None:
    """The demo is a developer/lab tool in ``osiris_lab``, imported only inside its commands.

    No production module imports ``osiris_lab`` at load time (``tests/test_layering.py`` allows
    only these lazy imports), and the appliance's Nix package leaves it out: say so, not a trace.
    """
    import importlib.util

    if importlib.util.find_spec("osiris_lab") is None:
        fail("osiris demo is a lab tool and osiris_lab is not installed here", ExitCode.USAGE)


@click.group(invoke_without_command=True)
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    default="demo-data",
    show_default=True,
    help="Demo data dir (wiped at start unless --keep).",
)
@click.option("--keep", is_flag=True, help="Reuse the data dir of an earlier run.")
@click.option("--headless", is_flag=True, help="No console: run, inject chaos, print a summary.")
@click.option("--minutes", type=click.IntRange(1, 1440), help="Headless run length (default 1).")
@click.option("--seconds", type=click.IntRange(10, 86400), help="Headless run length, seconds.")
@click.option("--port", type=click.IntRange(1, 65535), help="Server port (default: a free one).")
@click.option(
    "--linux/--no-linux",
    default=True,
    show_default=True,
    help="Add a Linux lab host over a real local sshd (skipped where the machine has no sshd).",
)
@click.option("--no-chaos", is_flag=True, help="Headless: inject no drift.")
@click.option(
    "--smtp",
    metavar="HOST:PORT",
    help="Mail the demo server's alerts (e.g. the watchdog's) to this local SMTP sink.",
)
@JSON_OPT
@click.pass_context
def demo(
    ctx: click.Context,
    data: str,
    keep: bool,
    headless: bool,
    minutes: int | None,
    seconds: int | None,
    port: int | None,
    linux: bool,
    no_chaos: bool,
    smtp: str | None,
    as_json: bool,
) -> None:
    """LAB DEMO: server, three clinics, agents and simulated hosts on 127.0.0.1.

    Opens the console on the fleet view (press x to inject drift), or with --headless runs for
    --minutes (default 1) with drift injected on a schedule and prints a summary; exit 0 only
    if every receipt verified offline and nothing was lost. Ctrl-C stops every demo process.
    """
    if ctx.invoked_subcommand is not None:
        return
    import pathlib

    _require_lab()
    from osiris_lab.demo import DemoError, Options, run

    if minutes and seconds:
        fail("give --minutes or --seconds, not both", ExitCode.USAGE)
    if smtp and not _host_port(smtp):
        fail(
            f"--smtp wants HOST:PORT, e.g. 127.0.0.1:2525 (got {one_line(smtp)!r})", ExitCode.USAGE
        )
    opts = Options(
        data=pathlib.Path(data),
        keep=keep,
        headless=headless,
        seconds=seconds or 60 * (minutes or 1),
        port=port or 0,
        linux=linux,
        chaos=not no_chaos,
        as_json=as_json,
        smtp=smtp or "",
    )
    try:
        code = run(opts)
    except DemoError as e:
        # The first line as usual; a child's log tail (if any) indented below it.
        first, _, tail = str(e).partition("\n")
        write_error(first, PROG)
        if tail:
            click.echo(safe_text(tail), err=True)
        sys.exit(ExitCode.BAD)
    sys.exit(code)


def _host_port(text: str) -> bool:
    """HOST:PORT with a plain host name or address (it is written into server.toml)."""
    import re

    m = re.fullmatch(r"([A-Za-z0-9.-]{1,253}):([0-9]{1,5})", text)
    return bool(m) and 0 < int(m.group(2)) < 65536


DEMO_DATA_OPT = click.option(
    "--data",
    type=click.Path(file_okay=False),
    default="demo-data",
    show_default=True,
    help="Data dir of the running demo.",
)


@demo.command("chaos")
@click.option("--host", required=True, help="Lab host, e.g. dc01, fs01, lin01.")
@click.option("--fault", required=True, help="Fault, e.g. firewall_off (see `osiris demo hosts`).")
@click.option("--site", help="Clinic, when the host name exists at several (e.g. northside).")
@DEMO_DATA_OPT
@JSON_OPT
def demo_chaos(host: str, fault: str, site: str | None, data: str, as_json: bool) -> None:
    """Inject drift into a lab host of the running demo; L1 heals it within a cycle or two."""
    _require_lab()
    from osiris_lab.demo import DemoError, farm_chaos, running_state

    try:
        st = running_state(data)
        out = farm_chaos(st.control_url, st.control_token, host, fault, site or st.sites[0])
    except DemoError as e:
        fail(str(e), ExitCode.BAD)
        return
    if as_json:
        emit_json(out)
    else:
        drifting = ", ".join(out["drifting"]) or "nothing the host model detects"
        click.echo(
            one_line(
                f"{out['fault']} injected on {out['site']}/{out['host']}; drifting: {drifting}"
            )
        )


@demo.command("hosts")
@DEMO_DATA_OPT
@JSON_OPT
def demo_hosts(data: str, as_json: bool) -> None:
    """The running demo's lab hosts: faults injected, runbooks drifting, phases run."""
    _require_lab()
    from osiris_lab.demo import DemoError, farm_hosts, running_state

    try:
        st = running_state(data)
        hosts = farm_hosts(st.control_url, st.control_token)
    except DemoError as e:
        fail(str(e), ExitCode.BAD)
        return
    if as_json:
        emit_json(hosts)
        return
    table(hosts, DEMO_HOSTS)
