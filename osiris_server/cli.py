"""`osiris-server`: Central Command's command line.

Exit codes follow DESIGN §4.2 (``osiris_core.errors.ExitCode``): 0 ok, 1 the thing checked is
bad, 2 usage or input error (also: a data dir that is not initialised, is corrupt, or whose
database is newer than this binary), 5 an unexpected error (a bug; ``--debug`` or
``OSIRIS_DEBUG=1`` prints the traceback). Every error is one line ``osiris-server: error: …``
on stderr (``osiris_core.cli_base``).

Every file these commands create is private to the server's user: the process umask is 077
(keys, ``server.toml``, the databases with their ``-wal``/``-shm`` files, backups), and the
files that matter are also created 0600 explicitly, whatever the umask.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tomllib
from pathlib import Path

import click

from osiris_core.cli_base import OsirisGroup, fail
from osiris_core.errors import ExitCode, OsirisError
from osiris_server.cli_client_ca import client_ca_group
from osiris_server.cli_options import DATA, PROG
from osiris_server.cli_release import release as release_commands
from osiris_server.cli_retention import retention as retention_commands
from osiris_server.cli_worm import worm as worm_commands


def _fail(msg: str, code: ExitCode = ExitCode.USAGE) -> None:
    fail(msg, code, PROG)


def _check_db(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--db``: a PostgreSQL URL or nothing (exit 2 otherwise; the value shown redacted)."""
    from osiris_server.config import ConfigError, check_db_url

    try:
        return check_db_url(value or None)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--db: "), param_hint="--db") from None


DB = click.option(
    "--db",
    "db_url",
    envvar="OSIRIS_DB",
    callback=_check_db,
    metavar="URL",
    help="the index on PostgreSQL (postgresql://…; or $OSIRIS_DB); default: server.toml's"
    " db, else DATA/osiris.db",
)


def _open_index(data: Path, db_url: str | None):  # noqa: ANN202 - the engine type, lazily imported
    """The data dir's index (``--db`` over ``server.toml``'s ``db`` over ``DATA/osiris.db``),
    migrated; exit 2 on a data dir that is not initialised or a schema that is too new, exit 3
    when the database cannot be reached."""
    from osiris_server import config as config_mod
    from osiris_server.db import open_database
    from osiris_server.storage import StorageUnavailable

    if not (data / "server.toml").exists() and not (data / "osiris.db").exists():
        _fail(f"{data} is not initialised")
    try:
        cfg = config_mod.load(data, db_url=db_url)
        if cfg.db_url is None and not cfg.db_path.exists():
            _fail(f"{data} is not initialised")
        return open_database(cfg)
    except StorageUnavailable as exc:
        _fail(str(exc), exc.exit_code)
    except OsirisError as exc:
        _fail(str(exc))


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter("expected HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.group(
    cls=OsirisGroup,
    prog=PROG,
    input_errors=(sqlite3.DatabaseError, tomllib.TOMLDecodeError),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="osiris")
def main() -> None:
    """Central Command: the API, the credential vault and the transparency log."""
    os.umask(0o077)


@main.command()
@DATA
@DB
@click.option("--origin", help="log origin / key name, default <hostname>/osiris/log")
@click.option("--release-vkey", default=None, metavar="VKEY",
              help="keep the release key offline: store only this vkey (osiris-server release"
              " keygen); the server then accepts only pre-signed releases")  # fmt: skip
@click.option("--json", "as_json", is_flag=True,
              help="print {admin_token, log_vkey, order_vkey, release_vkey}")  # fmt: skip
def init(
    data: Path, db_url: str | None, origin: str | None, release_vkey: str | None, as_json: bool
) -> None:
    """Create the database, the log/order/release/vault keys (0600) and the first admin token.
    With --db the index is that PostgreSQL database (migrated now, recorded in server.toml)."""
    from osiris_server.app import init_data
    from osiris_server.storage import StorageUnavailable

    try:
        out = init_data(data, origin, db_url, release_vkey)
    except StorageUnavailable as exc:
        _fail(str(exc), exc.exit_code)
        return
    except OsirisError as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"initialised {data}")
    click.echo(f"log key:   {out['log_vkey']}")
    click.echo(f"order key: {out['order_vkey']}")
    click.echo(f"release key: {out['release_vkey']}" + (" (offline)" if release_vkey else ""))
    click.echo("admin token (shown once, store it now):")
    click.echo(out["admin_token"])


@main.command()
@DATA
@DB
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="HOST:PORT")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="mTLS: appliances must present a certificate signed by this CA naming them "
    "(e.g. DATA/keys/client-ca.pem from `client-ca init`); operators need none",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    help="concurrent connections (default: max_connections in server.toml, 1024)",
)
@click.option(
    "--verify-log",
    is_flag=True,
    help="first run `log verify`'s full check and refuse to start on any mismatch (after a"
    " restore)",
)
def serve(
    data: Path,
    db_url: str | None,
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
    max_connections: int | None,
    verify_log: bool,
) -> None:
    """Run the API on HOST:PORT until SIGTERM (graceful)."""
    from osiris_server.app import App
    from osiris_server.serve import make_server, tls_context
    from osiris_server.serve import serve as run
    from osiris_server.storage import StorageUnavailable

    host, port = _parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        _fail("--tls-cert and --tls-key go together")
    if client_ca and not tls_cert:
        _fail("--client-ca needs --tls-cert/--tls-key")
    from osiris_server import backup as backup_mod

    backup_mod.require_keys(data)  # a restored data dir whose keys were not copied back
    if verify_log:
        backup_mod.require_verified_log(data, _db_url_of(data, db_url))
    try:
        app = App.open(data, db_url=db_url)
    except StorageUnavailable as exc:
        _fail(str(exc), exc.exit_code)  # the database cannot be reached (exit 3)
        return
    except OsirisError as exc:
        _fail(str(exc))  # a data dir this binary cannot use: not initialised, corrupt, too new
        return
    try:
        ctx = tls_context(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
        server = make_server(
            app,
            host,
            port,
            ssl_context=ctx,
            max_body_bytes=app.max_request_bytes,
            read_timeout=app.cfg.read_timeout_s,
            max_connections=max_connections or app.cfg.max_connections,
            max_connections_per_source=min(
                app.cfg.max_connections_per_source, max_connections or app.cfg.max_connections
            ),
        )
    except (OSError, ValueError) as exc:
        app.close()
        _fail(f"cannot listen on {listen}: {exc}")
        return

    def ready(srv) -> None:
        scheme = "https" if ctx else "http"
        h, p = srv.server_address[:2]
        sys.stderr.write(json.dumps({"event": "listening", "url": f"{scheme}://{h}:{p}"}) + "\n")
        sys.stderr.flush()

    run(app, server, ready)


@main.group()
def token() -> None:
    """Operator tokens."""


@token.command("create")
@DATA
@click.option(
    "--role", required=True, type=click.Choice(["admin", "operator", "auditor", "client"])
)
@click.option("--name", default="cli", show_default=True)
@click.option("--site", "site_id", help="the one site of a client token")
@click.option("--json", "as_json", is_flag=True)
@DB
def token_create(
    data: Path, role: str, name: str, site_id: str | None, as_json: bool, db_url: str | None
) -> None:
    """Create an operator token directly in the database (shown once)."""
    from osiris_server import auth
    from osiris_server.db import audit as db_audit
    from osiris_server.db import tenants as db_tenants
    from osiris_server.db import tokens as db_tokens

    if (role == "client") != (site_id is not None):
        _fail("a client token needs --site; other roles take none")
    db = _open_index(data, db_url)
    try:
        tok = auth.new_token(auth.OPERATOR_PREFIX)
        with db.write() as w:
            if site_id is not None and not db_tenants.site_exists(w, site_id):
                _fail(f"no site {site_id}")
            row = db_tokens.create(
                w, "operator", auth.token_hash(tok), role, name, "cli", site_id=site_id
            )
            db_audit.record(w, "cli", "token.create", row["id"], site_id, None, {"role": role})
    finally:
        db.close()
    click.echo(json.dumps({"token": tok, **row}) if as_json else tok)


@main.command()
@DATA
@DB
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def backup(data: Path, db_url: str | None, out: Path) -> None:
    """Online, consistent backup of the database and the log (a 0600 .tar.gz). Keys are NOT
    included: back up DATA/keys separately and keep it apart from this file. On PostgreSQL:
    use pg_dump (docs/server.md, "Backup and restore")."""
    from osiris_server import backup as backup_mod

    out_doc = backup_mod.backup(data, out, _db_url_of(data, db_url))
    click.echo(f"backup written to {out_doc['out']} ({', '.join(out_doc['members'])}; no keys)")


def _db_url_of(data: Path, db_url: str | None) -> str | None:
    """``--db``, else server.toml's ``db``, else None (SQLite in DATA)."""
    if db_url is not None or not (data / "server.toml").exists():
        return db_url
    from osiris_server import config as config_mod

    return getattr(config_mod.load(data), "db_url", None)


@main.command()
@click.option("--from", "archive", required=True, type=click.Path(dir_okay=False, path_type=Path))
@DATA
@click.option("--json", "as_json", is_flag=True, help="print the log check as JSON")
def restore(archive: Path, data: Path, as_json: bool) -> None:
    """Restore a backup into a NEW, empty data dir, refusing any archive that is not exactly
    what `backup` writes, then check the log and every stored receipt. Copy DATA/keys from the
    original separately (the server will not start without them)."""
    from osiris_server import backup as backup_mod

    out = backup_mod.restore(archive, data)
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"restored into {data}: {out['size']} leaves, {out['evidence']} evidence rows")
    click.echo(
        f"log OK: root {out['root']} at size {out['checkpoint_size']}, "
        f"{out['receipts_verified']} receipts verified"
    )
    click.echo(f"now copy the keys: cp -a OLD_DATA/keys {data}/keys (then: log verify, serve)")


@main.group("log")
def log_group() -> None:
    """The transparency log's stored tree."""


@log_group.command("verify")
@DATA
@DB
@click.option("--log-vkey", help="the log's public key (default: from DATA/keys/log.key)")
@click.option("--json", "as_json", is_flag=True)
def log_verify(data: Path, db_url: str | None, log_vkey: str | None, as_json: bool) -> None:
    """Recompute the whole log from its entries, check every checkpoint (root, signature,
    consistency) and every stored receipt; exit 1 on any mismatch."""
    from osiris_server import backup as backup_mod

    rep = backup_mod.verify_data(data, _db_url_of(data, db_url), log_vkey)
    click.echo(json.dumps(rep.as_dict()) if as_json else rep.summary())
    if not as_json:
        for p in rep.problems:
            click.echo(f"  {p}", err=True)
    if not rep.ok:
        sys.exit(int(ExitCode.BAD))


@main.group()
def vault() -> None:
    """The credential vault."""


@vault.command("rotate")
@DATA
@DB
@click.option("--retire-old", is_flag=True, help="drop old keys once every secret is rewrapped")
def vault_rotate(data: Path, db_url: str | None, retire_old: bool) -> None:
    """Add a new vault master key and re-encrypt every stored credential under it."""
    from osiris_server.db import audit as db_audit
    from osiris_server.db import credentials as db_creds
    from osiris_server.db import escrow as db_escrow
    from osiris_server.db import provisions as db_prov
    from osiris_server.vault import Vault

    db = _open_index(data, db_url)  # before the new key: a database that is too new stops here
    v = Vault.open(data / "keys" / "vault.keyring")
    old = list(v.key_ids)
    new = v.rotate()
    n = 0
    try:
        with db.write() as w:
            for row in db_creds.all_secret_rows(w):
                ctx = db_creds.context(row["site_id"], row["id"])
                if v.needs_rewrap(row["secret_enc"]):
                    db_creds.set_secret(w, row["id"], v.rewrap(row["secret_enc"], ctx))
                    n += 1
            for row in db_escrow.all_secret_rows(w):  # recovery keys: never left behind
                ctx = db_escrow.context(row["site_id"], row["appliance_id"], row["id"])
                if v.needs_rewrap(row["secret_enc"]):
                    db_escrow.set_secret(w, row["id"], v.rewrap(row["secret_enc"], ctx))
                    n += 1
            for row in db_prov.encrypted_codes(w):
                if v.needs_rewrap(row["code_enc"]):
                    ctx = db_prov.code_context(row["mac"], row["requester_hash"])
                    db_prov.set_code_enc(
                        w, row["mac"], row["requester_hash"], v.rewrap(row["code_enc"], ctx)
                    )
            db_audit.record(w, "cli", "vault.rotate", new, None, None, {"rewrapped": n})
    finally:
        db.close()
    if retire_old:
        for kid in old:
            v.retire(kid)
    click.echo(json.dumps({"primary": new, "rewrapped": n, "retired": old if retire_old else []}))


main.add_command(client_ca_group)  # osiris_server/cli_client_ca.py: the mTLS client CA
main.add_command(release_commands)  # osiris_server/cli_release.py: the offline release key
main.add_command(retention_commands)  # osiris_server/cli_retention.py: status and prune
main.add_command(worm_commands)  # osiris_server/cli_worm.py: the WORM copy to S3 Object Lock

if __name__ == "__main__":
    main()
