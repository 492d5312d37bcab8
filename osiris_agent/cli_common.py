"""What every ``osiris-agent`` subcommand shares: the program name, the one-line error and
warning writers (``osiris_core.cli_base``), and opening the config, state dir or agent with a
usage error (exit 2) instead of a traceback when they cannot be used.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from osiris_agent.config import DEFAULT_PATH, ConfigError, load_config
from osiris_core.cli_base import fail, one_line
from osiris_core.errors import ExitCode, OsirisError

PROG = "osiris-agent"


def _fail(msg: str, code: ExitCode) -> None:
    fail(msg, code, PROG)


def _warn(msg: object) -> None:
    click.echo(f"{PROG}: warning: {one_line(msg)}", err=True)


def _load(config: str | None, state: str | None):  # -> AgentConfig
    path = config or (str(Path(state) / "agent.toml") if state else DEFAULT_PATH)
    try:
        return load_config(path)
    except ConfigError as e:
        _fail(f"config error: {e}", ExitCode.USAGE)


def _agent(config: str | None, state: str | None = None):  # -> Agent
    return _agent_from(_load(config, state))


def _agent_from(cfg: Any):  # -> Agent
    from osiris_agent.cycle import Agent

    try:
        return Agent(cfg)
    except (OsirisError, OSError) as e:
        _fail(f"cannot start: {e}", ExitCode.USAGE)


def _refuse_decommissioned(agent: Any) -> None:
    seq = agent.decommissioned
    if seq is not None:
        agent.close()
        _fail(
            f"this appliance was decommissioned (its evidence chain was closed at seq {seq}); "
            "it signs no more evidence. To use this machine again, move the state directory "
            "away and enroll it as a new appliance.",
            ExitCode.USAGE,
        )


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
