"""``osiris-server retention status|prune``: the evidence retention policy (retention.py).

Why a server command and no API route: pruning is an act on the server's own storage, by
whoever runs the server (its shell, its data directory), never something a token can ask for;
a hostile operator or partner holding an API token has no way to prune. The retention period
is ``retention_years`` in server.toml (≥ 6: a smaller value refuses to load, exit 2). ``prune``
prints what it did (``--json``: the whole record); ``--dry-run`` plans and writes nothing.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from osiris_core.cli_base import fail
from osiris_core.errors import ExitCode, OsirisError
from osiris_server.cli_options import DATA, JSON, PROG

DB = click.option(
    "--db", "db_url", envvar="OSIRIS_DB", metavar="URL",
    help="the index on PostgreSQL (or $OSIRIS_DB); default: server.toml's db, else DATA/osiris.db",
)  # fmt: skip


def _open(data: Path, db_url: str | None) -> tuple[Any, Any, int, Any]:
    """(index, log store, retention_years, [worm] config or None) of the data dir; exit 2 when
    it is not initialised or its server.toml is refused (retention_years below 6 among others),
    3 when unreachable."""
    from osiris_server import config as config_mod
    from osiris_server.db import open_database
    from osiris_server.logstore import open_log_store
    from osiris_server.storage import StorageUnavailable

    if not (data / "server.toml").exists():
        fail(f"{data} is not initialised", ExitCode.USAGE, PROG)
    try:
        cfg = config_mod.load(data, db_url=config_mod.check_db_url(db_url or None))
        if cfg.db_url is None and not cfg.log_path.exists():
            fail(f"{data} is not initialised (no {cfg.log_path})", ExitCode.USAGE, PROG)
        db = open_database(cfg)
        try:
            store = open_log_store(cfg.db_url or cfg.log_path)
        except BaseException:
            db.close()
            raise
        return db, store, int(cfg.retention_years), cfg.worm
    except StorageUnavailable as exc:
        fail(str(exc), exc.exit_code, PROG)
    except OsirisError as exc:
        fail(str(exc), ExitCode.USAGE, PROG)
    raise AssertionError("unreachable")


def _confirmed(db: Any, worm_cfg: Any, required: bool) -> frozenset[str] | None:
    """The WORM keys the bucket itself confirms (worm_confirm.confirm_locked), each refusal on
    stderr.
    No [worm] section: a prune refuses outright (nothing can be in WORM); status shows what the
    index alone says (None)."""
    from osiris_server import retention as ret
    from osiris_server import worm, worm_confirm

    if worm_cfg is None:
        if required:
            fail("no [worm] section in server.toml: nothing is in WORM storage, so nothing may "
                 "be pruned (docs/server.md, WORM)", ExitCode.BAD, PROG)  # fmt: skip
        return None
    try:
        keys, problems = worm_confirm.confirm_locked(worm.make_client(worm_cfg), worm_cfg,
                                             ret.worm_rows(db))  # fmt: skip
    except OsirisError as exc:
        fail(str(exc), ExitCode.BAD, PROG)
    for p in problems:
        click.echo(
            f"{PROG}: warning: WORM object not confirmed, its leaves are kept: {p}", err=True
        )
    return keys


@click.group("retention")
def retention() -> None:
    """Evidence retention: what may be pruned (older than retention_years, in WORM, not held)."""


@retention.command("status")
@DATA
@DB
@JSON
def status(data: Path, db_url: str | None, as_json: bool) -> None:
    """The retention in force, what a prune would do now, the legal holds and recent prunes."""
    from osiris_server import retention as ret

    db, store, years, worm_cfg = _open(data, db_url)
    try:
        out = ret.status(db, years, confirmed=_confirmed(db, worm_cfg, required=False))
    finally:
        store.close()
        db.close()
    if as_json:
        click.echo(json.dumps(out, sort_keys=True))
        return
    click.echo(f"retention {years} years: evidence received before {out['cutoff']} may go")
    click.echo(f"evidence rows {out['evidence']}, bodies pruned {out['pruned']}")
    click.echo(f"prunable now {out['prunable']}; refused: not in WORM {out['refused_not_in_worm']}"
               f", under legal hold {sum(out['refused_held'].values())}")  # fmt: skip
    for h in out["holds"]:
        click.echo(f"hold {h['site_id']}: since {h['held_at']} by {h['held_by']}: {h['reason']}")
    if out["pending"]:
        click.echo(f"pending prunes (run prune to finish): {out['pending']}")


@retention.command("prune")
@DATA
@DB
@click.option("--dry-run", is_flag=True, help="show what would be pruned; change nothing")
@JSON
def prune(data: Path, db_url: str | None, dry_run: bool, as_json: bool) -> None:
    """Drop the log bodies of evidence past retention that is in WORM and not under legal hold
    (index rows and hashes stay; each prune is recorded and audited)."""
    from osiris_server import retention as ret
    from osiris_server.logstore import LogError

    db, store, years, worm_cfg = _open(data, db_url)
    try:
        confirmed = _confirmed(db, worm_cfg, required=True)
        out = ret.prune(db, store, years, f"cli:{getpass.getuser()}", dry_run=dry_run,
                        confirmed=confirmed)  # fmt: skip
    except LogError as exc:
        fail(str(exc), ExitCode.BAD, PROG)
        return
    finally:
        store.close()
        db.close()
    if as_json:
        click.echo(json.dumps(out, sort_keys=True))
        return
    verb = "would prune" if dry_run else "pruned"
    n = out["prunable"] if dry_run else out["pruned"]
    click.echo(f"{verb} {n} bodies (received before {out['cutoff']}); refused: not in WORM "
               f"{out['refused_not_in_worm']}, under legal hold "
               f"{sum(out['refused_held'].values())}")  # fmt: skip
    for p in out["prunes"]:
        click.echo(f"prune {p['id']}: leaves {p['first_index']}..{p['last_index']} "
                   f"({p['count']}), sha256 {p['hashes_sha256']}")  # fmt: skip
