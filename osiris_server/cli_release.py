"""``osiris-server release …``: the release key kept OFFLINE (issue 16 item 6).

Why: a release makes root on every appliance switch its NixOS system, so the MSP may keep the
private release key away from the server altogether — on an offline machine — and give the
server only its vkey (``osiris-server init --release-vkey``). These commands need no data
directory and no network: ``keygen`` makes such a key, ``vkey`` prints its public half, and
``sign`` prints a signed ``osiris.release/1`` envelope that an admin then posts with
``POST /api/v1/releases {"envelope": …}``; the server checks it against its release vkey and
stores it as is (osiris_server/api/updates.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode, OsirisError

PROG = "osiris-server"


@click.group("release")
def release() -> None:
    """Offline release key: make it, print its vkey, sign agent releases with it."""


@release.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the new private key (0600; never overwritten)")  # fmt: skip
@click.option("--name", default="offline/osiris/release", show_default=True, help="key name")
def keygen(out: Path, name: str) -> None:
    """Make a new release key (print its vkey: give it to `init --release-vkey`)."""
    from osiris_server.release_key import keygen as make

    try:
        signer = make(out, name)
    except (OsirisError, OSError) as exc:
        fail(str(exc), ExitCode.USAGE, PROG)
        return
    click.echo(signer.vkey)


@release.command("vkey")
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="a release key file (e.g. DATA/keys/release.key)")  # fmt: skip
def vkey(key: Path) -> None:
    """Print the vkey of a release key file."""
    from osiris_server.release_key import export_vkey

    try:
        click.echo(export_vkey(key))
    except (OsirisError, OSError) as exc:
        fail(str(exc), ExitCode.USAGE, PROG)


@release.command("sign")
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the release key file (0600)")  # fmt: skip
@click.option("--version", "version", required=True, help="the agent version the system carries")
@click.option("--system", "system", required=True, help="the NixOS system's /nix/store path")
@click.option("--name", "name", default=None, help="a label (default osiris-VERSION)")
@click.option("--allow-downgrade", is_flag=True, help="this release may replace a newer one")
def sign(key: Path, version: str, system: str, name: str | None, allow_downgrade: bool) -> None:
    """Print a signed release envelope (JSON) for POST /api/v1/releases {"envelope": …}."""
    from osiris_core.keys import load_private_key
    from osiris_core.release import make_release, sign_release

    try:
        signer = load_private_key(key)
        rel = make_release(system, name or f"osiris-{version}", version=version,
                           allow_downgrade=allow_downgrade)  # fmt: skip
        env = sign_release(rel, signer)
    except (OsirisError, OSError) as exc:
        fail(str(exc), ExitCode.USAGE, PROG)
        return
    click.echo(json.dumps(env, sort_keys=True))
