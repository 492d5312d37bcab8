"""`osiris packet upload FILE --site S`: put a built packet in Central Command's packet store.

Why: the WORM copy (osiris-server's ``[worm]``) can only lock in S3 what the server holds, and
the packet an auditor reads is built on the operator's machine (`osiris packet build`). The
server checks that the zip is an intact packet of that site (its manifest names the site, every
file matches its sha256) and stores it by content: the same file twice is a no-op. The
signatures and completeness stay the auditor's to check offline (`osiris evidence verify`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import click

from osiris_core import canonical
from osiris_core.errors import ExitCode, OsirisError

from ..fmt import safe
from ..transport import seg
from .base import JSON_OPT, client_of, emit_json, fail


def _manifest_site(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            m = canonical.loads(z.read("manifest.json"))
    except (OSError, KeyError, zipfile.BadZipFile, OsirisError) as e:
        fail(f"{path}: not a packet zip ({e})", ExitCode.USAGE)
    return m.get("site_id") if isinstance(m, dict) else None


@click.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--site", "site_id", required=True, help="Site the packet belongs to.")
@JSON_OPT
@click.pass_context
def upload(ctx: click.Context, file: Path, site_id: str, as_json: bool) -> None:
    """Store a packet zip on the server, so the WORM copy locks it in S3.

    The server refuses a packet of another site or one whose files do not match its manifest
    (exit 2); the same file again changes nothing. Exit 3 if the server is unreachable, 4 if
    the token is refused.
    """
    named = _manifest_site(file)
    if named != site_id:
        fail(f"{file} is a packet of site {safe(str(named))}, not {safe(site_id)}", ExitCode.USAGE)
    out = client_of(ctx).post_bytes(
        f"/sites/{seg(site_id)}/packets", file.read_bytes(), "application/zip"
    )
    if as_json:
        emit_json(out)
        return
    p = out["packet"]
    what = "stored" if out["new"] else "already stored"
    click.echo(f"{what}: {p['sha256']} ({p['bytes']} bytes, {p['month'] or p['period_start']})")
