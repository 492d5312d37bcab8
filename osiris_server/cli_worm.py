"""``osiris-server worm …``: the WORM copy's state and a pass on demand (osiris_server/worm.py).

``worm status`` shows, per kind of object (leaves, checkpoints, tsa, packets), how many are
uploaded and pending, their bytes and the newest upload, the retention high-water mark, and
whether the bucket is fit for WORM (Object Lock, versioning, COMPLIANCE default ≥ configured).
``worm upload`` runs one pass now, progress on stderr; a server's tick runs the same pass at
``[worm] cadence_s`` — the upload lease keeps the two from overlapping.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode, OsirisError

PROG = "osiris-server"


def _db_opt(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from osiris_server.config import ConfigError, check_db_url

    try:
        return check_db_url(value or None)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--db: "), param_hint="--db") from None


def _opts(f):  # noqa: ANN001, ANN202 - a click decorator
    f = click.option("--db", "db_url", envvar="OSIRIS_DB", callback=_db_opt, metavar="URL",
                     help="the index on PostgreSQL (default: server.toml's db, else "
                     "DATA/osiris.db)")(f)  # fmt: skip
    return click.option("--data", required=True, envvar="OSIRIS_DATA",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="data directory (or $OSIRIS_DATA)")(f)  # fmt: skip


@click.group("worm")
def worm() -> None:
    """The WORM copy to S3 Object Lock: its state, and an upload pass now."""


@worm.command("status")
@_opts
@click.option("--json", "as_json", is_flag=True, help="one JSON document on stdout")
def status_cmd(data: Path, db_url: str | None, as_json: bool) -> None:
    """Per kind: uploaded/pending counts, bytes, newest upload; retention high-water mark;
    the bucket check. Exit 1 when the bucket is not fit for WORM or objects are pending."""
    from osiris_server import config as config_mod
    from osiris_server import worm as worm_mod
    from osiris_server.db import open_database

    if not (data / "server.toml").exists():
        fail(f"{data} is not initialised", ExitCode.USAGE, PROG)
    try:
        cfg = config_mod.load(data, db_url=db_url)
        db = open_database(cfg)
    except OsirisError as exc:
        fail(str(exc), exc.exit_code, PROG)
        return
    try:
        client = None
        if cfg.worm is not None:
            try:
                client = worm_mod.make_client(cfg.worm)
            except OsirisError as exc:
                click.echo(f"{PROG}: warning: {exc}", err=True)
        doc = worm_mod.status(db, cfg.worm, client)
    finally:
        db.close()
    bad = bool(doc["bucket"] and doc["bucket"]["problems"]) or any(
        k["pending"] for k in doc["kinds"].values()
    )
    if as_json:
        click.echo(json.dumps(doc, sort_keys=True))
    else:
        _print(doc)
    if bad:
        raise SystemExit(int(ExitCode.BAD))


def _print(doc: dict) -> None:
    if not doc["configured"]:
        click.echo("WORM copy: not configured (no [worm] in server.toml)")
    else:
        b = doc["bucket"]
        state = "not checked" if b is None else ("ok" if not b["problems"] else "NOT FIT")
        click.echo(f"bucket: {b['bucket'] if b else '?'} ({state})")
        for p in (b or {}).get("problems", []):
            click.echo(f"  {p}")
        click.echo(
            f"retention: {doc['retention_years']} years (high-water mark "
            f"{doc['retention_high_water']}); last pass: {doc['last_pass'] or 'never'}"
        )
    click.echo(f"{'kind':<12} {'uploaded':>9} {'pending':>8} {'bytes':>14}  newest upload")
    for kind, k in doc["kinds"].items():
        click.echo(
            f"{kind:<12} {k['uploaded']:>9} {k['pending']:>8} {k['bytes']:>14}  "
            f"{k['newest_upload'] or '-'}"
        )


@worm.command("upload")
@_opts
def upload_cmd(data: Path, db_url: str | None) -> None:
    """Run one upload pass now (progress on stderr). Exit 1 if the bucket is not fit for WORM
    or an upload failed (pending objects are retried by the next pass), 2 on bad config."""
    from osiris_server import worm as worm_mod
    from osiris_server.app import App

    if not (data / "server.toml").exists():
        fail(f"{data} is not initialised", ExitCode.USAGE, PROG)
    try:
        app = App.open(data, db_url=db_url, watchdog_tick_s=0, request_log=False)
    except OsirisError as exc:
        fail(str(exc), exc.exit_code, PROG)
        return
    try:
        if app.cfg.worm is None:
            fail("no [worm] section in server.toml (docs/server.md, WORM)", ExitCode.USAGE, PROG)
        up = worm_mod.Uploader(
            app.db,
            app.log,
            app.cfg.data,
            app.cfg.worm,
            worm_mod.make_client(app.cfg.worm),
            progress=lambda m: click.echo(m, err=True),
        )
        out = up.run()
    except worm_mod.WormConfigError as exc:
        fail(str(exc), ExitCode.USAGE, PROG)
    except OsirisError as exc:
        fail(str(exc), ExitCode.BAD, PROG)
    finally:
        app.close()
    click.echo(json.dumps(out, sort_keys=True))
