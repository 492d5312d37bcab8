"""`osiris`: the operator CLI and console."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="osiris")
def main() -> None:
    """Operate Osiris: sites, appliances, evidence and the console."""


@main.command()
def demo() -> None:
    """Run the whole system on this machine (not built yet)."""
    click.echo("osiris demo: not yet — the demo lands with its own issue.")


def _register() -> None:
    from .evidence_cmd import evidence

    main.add_command(evidence)


_register()


if __name__ == "__main__":
    main()
