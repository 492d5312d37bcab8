"""The root group of `osiris` and what every noun module shares: the client, the one error
writer, the output helpers and the common options.

Conventions (docs/console.md): `osiris <noun> <verb>`; stdout carries only data, diagnostics go
to stderr as one line `osiris: error: …`; `--json` on every listing and show; exit codes
(``osiris_core.errors.ExitCode``, shared with osiris-agent and osiris-server through
``osiris_core.cli_base``) 0 ok, 1 the thing checked is bad, 2 usage/input, 3 server unreachable,
4 auth refused, 5 an unexpected error (one line; ``--debug`` / ``OSIRIS_DEBUG=1`` adds the
traceback). Passwords come only from a hidden prompt or `--password-stdin`, never from argv
(argv is visible in `ps`).

Every request has a budget, ``--timeout`` / ``OSIRIS_TIMEOUT`` seconds (default 15; connect at
most 3 s; GET retries fit inside it): a server that takes the connection and never answers is
``osiris: error: server did not answer within 15s (…)`` and exit 3, not a silent hang. After 1 s
without an answer the CLI says once, on stderr, ``osiris: waiting for the server at URL…`` —
stderr, so a script reading ``--json`` from stdout is not disturbed, and nothing is printed when
the answer comes in time.

Everything printed that came from the server (so, ultimately, from an appliance or a host) goes
through `fmt.safe` / `fmt.safe_json`: no terminal control sequence in a hostname, an incident
summary or an error message reaches the operator's terminal (docs/console.md). Tables are built
from the shared column specs (``osiris_tui.columns``), the same ones the console's tables use.

This module imports no noun module: the nouns import it, and ``cli/__init__.py`` adds them to
``main`` (no import cycle).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import click

from osiris_core.cli_base import OsirisGroup
from osiris_core.cli_base import fail as _fail
from osiris_core.errors import ExitCode

from ..client import DEFAULT_TIMEOUT, Client, as_json_list
from ..columns import ColumnSet
from ..fmt import safe, safe_json
from ..profiles import resolve

DEFAULT_STATE_DIR = "/var/lib/osiris"
# where the appliance's agent publishes status.json for the technician (group osiris-tech)
DEFAULT_STATUS_DIR = "/var/lib/osiris-status"


PROG = "osiris"


def fail(message: str, code: ExitCode) -> NoReturn:
    """The one error writer (``osiris_core.cli_base``): ``osiris: error: …`` and ``code``."""
    _fail(message, code, PROG)


def one_line(text: object) -> str:
    """One printable line: control characters escaped (``fmt.safe``), whitespace collapsed."""
    return " ".join(safe(text).split())


@click.group(cls=OsirisGroup, prog=PROG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="osiris")
@click.option("--server", metavar="URL", help="Central Command URL (or OSIRIS_SERVER).")
@click.option(
    "--token",
    metavar="TOKEN",
    help="Operator token osk_… or partner API key opk_… (sent as X-API-Key); arguments are "
    "visible to other users (ps), so prefer "
    "OSIRIS_TOKEN or a 0600 profile file.",
)
@click.option("--profile", metavar="NAME", help="Profile in ~/.config/osiris/profiles.toml.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    envvar="OSIRIS_TIMEOUT",
    metavar="SECONDS",
    help=f"Give up on a request after this long, exit 3 (or OSIRIS_TIMEOUT; default "
    f"{DEFAULT_TIMEOUT:g}, the console 10).",
)
@click.pass_context
def main(
    ctx: click.Context,
    server: str | None,
    token: str | None,
    profile: str | None,
    timeout: float | None,
) -> None:
    """Operate Osiris: sites, appliances, evidence and the console."""
    ctx.obj = {
        "server": server,
        "token": token,
        "profile": profile,
        "timeout": timeout,
        "client": None,
    }


def client_of(ctx: click.Context) -> Client:
    """The command's client: configured from flags, environment or profile, with the request
    budget of ``--timeout`` and the one "waiting for the server" line."""
    root = ctx.find_root().obj or {}
    if root.get("client") is None:
        c = resolve(root.get("server"), root.get("token"), root.get("profile"))
        root["client"] = Client(
            c.server,
            c.token,
            timeout=root.get("timeout") or DEFAULT_TIMEOUT,
            token_fix=c.token_fix,
            on_slow=WaitingLine(c.server),
        )
        ctx.find_root().call_on_close(root["client"].close)
    return root["client"]


class WaitingLine:
    """Called by the transport's timer after 1 s without an answer: says so once per command."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._said = threading.Event()

    def __call__(self) -> None:
        if not self._said.is_set():
            self._said.set()
            click.echo(f"{PROG}: waiting for the server at {one_line(self.server)}…", err=True)


# ---------------------------------------------------------------- output helpers


def emit_json(data: Any) -> None:
    click.echo(safe_json(data, indent=2, sort_keys=True, ensure_ascii=False))


def emit_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A rich table on a TTY; plain tab-separated lines otherwise (easy to cut/awk). Cells are
    ``fmt.safe``: remote text cannot carry a terminal control sequence."""
    cells = [[safe(v) for v in r] for r in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(show_edge=False, header_style="bold", pad_edge=False)
        for h in headers:
            t.add_column(h)
        for r in cells:
            t.add_row(*(Text(c) for c in r))
        Console(no_color="NO_COLOR" in os.environ).print(t)
        return
    click.echo("\t".join(headers))
    for r in cells:
        click.echo("\t".join(one_line(c) for c in r))


def emit_record(data: dict[str, Any]) -> None:
    for k in sorted(data):
        v = data[k]
        if isinstance(v, (dict, list)):
            v = json.dumps(v, sort_keys=True)
        click.echo(f"{one_line(k)}: {'' if v is None else one_line(v)}")


def table(records: Iterable[Any], columns: ColumnSet) -> None:
    """A table of the shared ``columns`` (``emit_table``: TTY or tab-separated)."""
    emit_table(columns.rows(records), columns.headers())


def listing(
    items: Iterable[Any],
    as_json: bool,
    columns: ColumnSet,
    view: Callable[[Any], Any] | None = None,
) -> None:
    """``--json``: the records' stable JSON; otherwise a table of the shared ``columns``, each
    row read from ``view(record)`` when the columns need more than the record (a join)."""
    items = list(items)
    if as_json:
        emit_json(as_json_list(items))
    else:
        table(items if view is None else [view(i) for i in items], columns)


def show(item: Any, as_json: bool) -> None:
    data = item.as_json() if hasattr(item, "as_json") else item
    if as_json:
        emit_json(data)
    else:
        emit_record(data)


def confirm(yes: bool, what: str) -> None:
    """Destructive actions: `--yes`, or an interactive confirmation on a TTY; never silent."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{what}: refusing without --yes (no terminal to confirm on)", ExitCode.USAGE)
    if not click.confirm(f"{one_line(what)}?", default=False, err=True):
        fail("aborted", ExitCode.USAGE)


def read_secret(from_stdin: bool, label: str = "Password") -> str:
    """A secret from stdin (`--password-stdin`) or a hidden, confirmed prompt on a TTY."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            fail("--password-stdin: nothing on stdin", ExitCode.USAGE)
        return value
    if not sys.stdin.isatty():
        fail(
            f"{label.lower()} needed: use --password-stdin (no terminal to prompt on)",
            ExitCode.USAGE,
        )
    return click.prompt(label, hide_input=True, confirmation_prompt=True, err=True)


JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys).")
YES_OPT = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
