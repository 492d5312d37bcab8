"""The options every ``osiris-server`` subcommand shares, declared once so their names,
environment variables and help stay the same across cli.py and the cli_* group modules."""

from __future__ import annotations

from pathlib import Path

import click

PROG = "osiris-server"

DATA = click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OSIRIS_DATA",
    help="data directory (or $OSIRIS_DATA)",
)
JSON = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
