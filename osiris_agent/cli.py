"""`osiris-agent`: the appliance agent's command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="osiris")
def main() -> None:
    """The appliance agent: detect drift, heal it, sign the evidence."""
