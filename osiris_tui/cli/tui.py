"""`osiris tui`: the operator console, or the appliance console with ``--local``.

Textual is imported only here, inside the command: every other `osiris` command stays fast and
runs where Textual is missing (tests/tui/test_data_layer.py).
"""

from __future__ import annotations

import click

from osiris_core.errors import ExitCode

from .base import DEFAULT_STATUS_DIR, fail


@click.command("tui")
@click.option(
    "--local",
    "local_dir",
    is_flag=False,
    flag_value=DEFAULT_STATUS_DIR,
    default=None,
    metavar="[DIR]",
    help="On the appliance: show the agent's published status snapshot (default "
    f"{DEFAULT_STATUS_DIR}), or an agent state dir you may read (lab, development).",
)
@click.option("--read-only", is_flag=True, help="Disable every mutation.")
@click.pass_context
def tui(ctx: click.Context, local_dir: str | None, read_only: bool) -> None:
    """Open the operator console (or the appliance console with --local)."""
    if local_dir is not None:
        from ..local import LocalStateError, read_state

        try:
            read_state(local_dir, evidence_limit=1)
        except LocalStateError as e:
            fail(str(e), ExitCode.USAGE)
        from ..app import LocalApp

        LocalApp(local_dir, read_only=read_only).run()
        return
    root = ctx.find_root().obj or {}
    from ..profiles import resolve

    c = resolve(root.get("server"), root.get("token"), root.get("profile"))
    from ..app import OsirisApp

    budget = {"timeout": root["timeout"]} if root.get("timeout") else {}
    OsirisApp(c.server, c.token, read_only=read_only, token_fix=c.token_fix, **budget).run()
