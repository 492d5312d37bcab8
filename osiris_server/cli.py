"""`osiris-server`: Central Command's command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="osiris")
def main() -> None:
    """Central Command: the API, the credential vault and the transparency log."""
