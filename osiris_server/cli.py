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
import tarfile
import tempfile
import tomllib
from pathlib import Path

import click

from osiris_core import sqlite
from osiris_core.cli_base import OsirisGroup, fail
from osiris_core.errors import ExitCode, OsirisError
from osiris_core.files import private_stream

PROG = "osiris-server"


def _fail(msg: str, code: ExitCode = ExitCode.USAGE) -> None:
    fail(msg, code, PROG)


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


DATA = click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OSIRIS_DATA",
    help="data directory (or $OSIRIS_DATA)",
)


@main.command()
@DATA
@click.option("--origin", help="log origin / key name, default <hostname>/osiris/log")
@click.option("--json", "as_json", is_flag=True, help="print {admin_token, log_vkey, order_vkey}")
def init(data: Path, origin: str | None, as_json: bool) -> None:
    """Create the database, the log/order/vault keys (0600) and the first admin token."""
    from osiris_server.app import init_data

    try:
        out = init_data(data, origin)
    except OsirisError as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"initialised {data}")
    click.echo(f"log key:   {out['log_vkey']}")
    click.echo(f"order key: {out['order_vkey']}")
    click.echo("admin token (shown once, store it now):")
    click.echo(out["admin_token"])


@main.command()
@DATA
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="HOST:PORT")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="require client certificates signed by this CA (mTLS)",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    help="concurrent connections (default: max_connections in server.toml, 1024)",
)
def serve(
    data: Path,
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
    max_connections: int | None,
) -> None:
    """Run the API on HOST:PORT until SIGTERM (graceful)."""
    from osiris_server.app import App
    from osiris_server.serve import make_server, tls_context
    from osiris_server.serve import serve as run

    host, port = _parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        _fail("--tls-cert and --tls-key go together")
    if client_ca and not tls_cert:
        _fail("--client-ca needs --tls-cert/--tls-key")
    try:
        app = App.open(data)
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
            max_body_bytes=app.cfg.max_body_bytes,
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
def token_create(data: Path, role: str, name: str, site_id: str | None, as_json: bool) -> None:
    """Create an operator token directly in the database (shown once)."""
    from osiris_server import auth
    from osiris_server.db import Database
    from osiris_server.db import audit as db_audit
    from osiris_server.db import tenants as db_tenants
    from osiris_server.db import tokens as db_tokens

    if (role == "client") != (site_id is not None):
        _fail("a client token needs --site; other roles take none")
    db_path = data / "osiris.db"
    if not db_path.exists():
        _fail(f"{data} is not initialised")
    db = Database(db_path)
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
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def backup(data: Path, out: Path) -> None:
    """Online, consistent backup of the database and the log (a .tar.gz). Keys are NOT
    included: back up DATA/keys separately and keep it apart from this file."""
    from osiris_server.db.engine import Database

    if not (data / "osiris.db").exists():
        _fail(f"{data} is not initialised")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        db = Database(data / "osiris.db")
        try:
            db.backup(tmpdir / "osiris.db")
        finally:
            db.close()
        if (data / "log.db").exists():
            src = sqlite.connect(data / "log.db", query_only=True, foreign_keys=False)
            dst = sqlite.connect(tmpdir / "log.db", wal=False)  # one self-contained file
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        (tmpdir / "server.toml").write_bytes((data / "server.toml").read_bytes())

        def private(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.mode = 0o600  # restored files are private too
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            return info

        # the archive is 0600 from its first byte (never readable by others while written)
        # and appears only complete (a temp file renamed over ``out``)
        with private_stream(out) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in ("osiris.db", "log.db", "server.toml"):
                if (tmpdir / name).exists():
                    tar.add(tmpdir / name, arcname=name, filter=private)
    click.echo(f"backup written to {out}")


@main.group()
def vault() -> None:
    """The credential vault."""


@vault.command("rotate")
@DATA
@click.option("--retire-old", is_flag=True, help="drop old keys once every secret is rewrapped")
def vault_rotate(data: Path, retire_old: bool) -> None:
    """Add a new vault master key and re-encrypt every stored credential under it."""
    from osiris_server.db import Database
    from osiris_server.db import audit as db_audit
    from osiris_server.db import credentials as db_creds
    from osiris_server.db import provisions as db_prov
    from osiris_server.vault import Vault

    if not (data / "osiris.db").exists():
        _fail(f"{data} is not initialised")
    v = Vault.open(data / "keys" / "vault.keyring")
    old = list(v.key_ids)
    new = v.rotate()
    db = Database(data / "osiris.db")
    n = 0
    try:
        with db.write() as w:
            for row in db_creds.all_secret_rows(w):
                ctx = db_creds.context(row["site_id"], row["id"])
                if v.needs_rewrap(row["secret_enc"]):
                    db_creds.set_secret(w, row["id"], v.rewrap(row["secret_enc"], ctx))
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


if __name__ == "__main__":
    main()
