"""Backup, restore and the log check behind ``osiris-server backup | restore | log verify``.

SQLite data dirs: ``backup`` is the online backup API (readers and writers keep going) of
``osiris.db`` and ``log.db`` plus ``server.toml``, in a 0600 ``.tar.gz`` whose members are 0600.
Keys are never in it: a stolen backup then reveals no credential (vault ciphertext only) and
cannot sign a checkpoint or an order.

``restore`` treats the archive as hostile until proven otherwise: exactly the three known names,
regular files only (no links, directories, devices, absolute paths or ``..``), each at most once,
checked on every member *before* a byte is written. It unpacks into a private temporary
directory beside the target, checks the SQLite files' integrity and runs the full log audit
(``log_audit``), and only then renames that directory into place, so a refused archive leaves
nothing behind and a half-restored data dir never exists.

PostgreSQL data dirs hold no database: ``pg_dump -Fc`` / ``pg_restore`` are the backup
(docs/server.md, "Backup and restore"); ``backup`` says so instead of pretending, and
``log verify --db URL`` is the check after a restore.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from osiris_core import sqlite
from osiris_core.errors import InputError, OsirisError
from osiris_core.files import fsync_dir, private_stream
from osiris_core.keys import Verifier, load_private_key
from osiris_server import log_audit
from osiris_server.logstore.base import LOG_SCHEMA
from osiris_server.storage.url import is_postgres_url, redact_url

MEMBERS = ("osiris.db", "log.db", "server.toml")
REQUIRED = ("osiris.db", "server.toml")
MAX_MEMBER_BYTES = 64 * 1024**3  # a sanity bound against a decompression bomb's header
RESTORE_DOC = "docs/server.md, 'Backup and restore'"


class BackupError(InputError):
    """A backup or restore that cannot go ahead (exit 2); nothing was written."""

    code = "E_BACKUP"


class RestoreRefused(BackupError):
    """The archive is not one ``osiris-server backup`` writes; nothing was written."""

    code = "E_RESTORE"


# ---------------------------------------------------------------------- backup


def backup(data: Path, out: Path, db_url: str | None = None) -> dict[str, Any]:
    """Write the online backup of a SQLite data dir to ``out`` (0600, complete or absent)."""
    if db_url is not None and is_postgres_url(db_url):
        raise BackupError(
            f"this server's database is PostgreSQL ({redact_url(db_url)}): back it up with "
            f"`pg_dump -Fc`, restore with `pg_restore`, then run `osiris-server log verify` "
            f"({RESTORE_DOC}); keep DATA/keys and server.toml with it"
        )
    if not (data / "osiris.db").exists():
        raise BackupError(f"{data} is not initialised")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for name in ("osiris.db", "log.db"):
            if (data / name).exists():
                _online_copy(data / name, tmpdir / name)
        (tmpdir / "server.toml").write_bytes((data / "server.toml").read_bytes())

        def private(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.mode = 0o600  # restored files are private too
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            return info

        # the archive is 0600 from its first byte (never readable by others while written)
        # and appears only complete (a temp file renamed over ``out``)
        names = [n for n in MEMBERS if (tmpdir / n).exists()]
        with private_stream(out) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in names:
                tar.add(tmpdir / name, arcname=name, filter=private)
    return {"out": str(out), "members": names}


def _online_copy(src_path: Path, dst_path: Path) -> None:
    """SQLite's backup API: a consistent snapshot while the server keeps writing; the copy has
    no WAL, so it is one self-contained file."""
    src = sqlite.connect(src_path, query_only=True, foreign_keys=False)
    try:
        dst = sqlite.connect(dst_path, wal=False)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# ---------------------------------------------------------------------- restore


def check_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member, refused unless it is one of ``MEMBERS``, a regular file, once."""
    seen: dict[str, tarfile.TarInfo] = {}
    for m in tar.getmembers():
        name = m.name
        if name.startswith("/") or ".." in name.split("/") or name not in MEMBERS:
            raise RestoreRefused(f"archive member {name!r} is not part of an osiris-server backup")
        if not m.isreg():
            raise RestoreRefused(f"archive member {name!r} is not a regular file (link or dir?)")
        if name in seen:
            raise RestoreRefused(f"archive member {name!r} appears twice")
        if m.size > MAX_MEMBER_BYTES:
            raise RestoreRefused(f"archive member {name!r} is implausibly large ({m.size} bytes)")
        seen[name] = m
    missing = [n for n in REQUIRED if n not in seen]
    if missing:
        raise RestoreRefused(f"archive lacks {', '.join(missing)}: not an osiris-server backup")
    return list(seen.values())


def _target_is_free(data: Path) -> None:
    try:
        st = data.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise BackupError(f"{data} exists and is not a directory")
    if any(data.iterdir()):
        raise BackupError(f"{data} is not empty: restore only into a new, empty data directory")


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], into: Path) -> None:
    for m in members:
        src = tar.extractfile(m)
        if src is None:  # pragma: no cover - check_members admitted regular files only
            raise RestoreRefused(f"archive member {m.name!r} has no data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(into / m.name, flags, 0o600)
        with os.fdopen(fd, "wb") as dst:
            os.fchmod(dst.fileno(), 0o600)
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())


def _integrity(path: Path) -> None:
    try:
        conn = sqlite.connect(path, readonly=True)
        try:
            got = conn.execute("PRAGMA integrity_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(
            f"{path.name} in the archive is not a usable database: {exc}"
        ) from None
    if got is None or got[0] != "ok":
        raise RestoreRefused(f"{path.name} in the archive fails its integrity check: {got}")


def _check_config(staging: Path) -> None:
    from osiris_server import config

    try:
        config.load(staging)
    except OsirisError as exc:
        raise RestoreRefused(f"server.toml in the archive is unusable: {exc}") from None


def restore(archive: Path, data: Path) -> dict[str, Any]:
    """Unpack ``archive`` into the new data dir ``data`` after checking all of it (module doc).
    Returns the audit of the restored log; raises (nothing written) on any refusal."""
    _target_is_free(data)
    parent = data.absolute().parent
    if not parent.is_dir():
        raise BackupError(f"{parent} does not exist")
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except FileNotFoundError:
        raise BackupError(f"{archive} not found") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RestoreRefused(f"{archive} is not a .tar.gz backup: {exc}") from None
    staging = Path(tempfile.mkdtemp(prefix=f".{data.name}.restore-", dir=parent))
    try:
        with tar:
            try:
                members = check_members(tar)
                need = sum(m.size for m in members)
                free = shutil.disk_usage(staging).free
                if need > free:
                    raise BackupError(f"the archive unpacks to {need} bytes, {free} are free")
                _extract(tar, members, staging)
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise RestoreRefused(f"{archive} is damaged: {exc}") from None
        _check_config(staging)
        for name in ("osiris.db", "log.db"):
            if (staging / name).exists():
                _integrity(staging / name)
        rep = verify_data(staging)
        if not rep.ok:
            raise RestoreRefused(
                f"the archive's log fails its check: {'; '.join(rep.problems[:3])}"
            )
        os.chmod(staging, 0o700)
        if data.exists():
            data.rmdir()  # checked empty above
        os.rename(staging, data)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"data": str(data), **rep.as_dict()}


# ---------------------------------------------------------------------- log verify


def _sqlite_query(conn: sqlite3.Connection) -> log_audit.Query:
    def q(sql: str, params: Any) -> list[dict[str, Any]]:
        cur = conn.execute(sql, tuple(params))
        cols = [c[0] for c in cur.description or ()]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    return q


def _log_verifier(data: Path, vkey: str | None) -> Verifier | None:
    """The log's public key: given, else from ``DATA/keys/log.key`` when present, else None."""
    if vkey:
        try:
            return Verifier.from_vkey(vkey)
        except OsirisError as exc:
            raise BackupError(f"--log-vkey: {exc}") from None
    key = data / "keys" / "log.key"
    if key.exists():
        return load_private_key(key).verifier()
    return None


def _origin(data: Path) -> str | None:
    from osiris_server import config

    try:
        return config.load(data).origin
    except OsirisError:
        return None


def verify_data(
    data: Path, db_url: str | None = None, log_vkey: str | None = None
) -> log_audit.AuditReport:
    """Audit the log and the evidence index of a data dir (SQLite) or of ``db_url``."""
    verifier = _log_verifier(data, log_vkey)
    origin = _origin(data)
    with _readers(data, db_url) as (log_q, index_q):
        return log_audit.audit(log_q, index_q, verifier=verifier, origin=origin)


@contextmanager
def _readers(
    data: Path, db_url: str | None
) -> Iterator[tuple[log_audit.Query, log_audit.Query | None]]:
    if db_url is not None and is_postgres_url(db_url):
        from osiris_server.storage.postgres import PostgresEngine

        # read only: lock_key names the writer, and this never writes. The tables are looked
        # for first: the log engine's connections would create an empty schema otherwise
        idx_e = PostgresEngine(db_url, lock_key=0, pool_size=2)
        try:
            for schema, table, what in ((LOG_SCHEMA, "leaves", "log"), (None, "evidence", "index")):
                found = idx_e.one(
                    "SELECT 1 FROM information_schema.tables WHERE table_name = ?"
                    " AND table_schema = " + ("?" if schema else "current_schema()"),
                    [table, schema] if schema else [table],
                )
                if found is None:
                    raise BackupError(
                        f"{redact_url(db_url)} holds no Osiris {what} (no table {table} in"
                        f" schema {schema or 'public'}): the wrong database, or not restored?"
                    )
            log_e = PostgresEngine(db_url, lock_key=0, search_path=LOG_SCHEMA, pool_size=2)
            try:
                yield log_e.query, idx_e.query
            finally:
                log_e.close()
        finally:
            idx_e.close()
        return
    log_db, index_db = data / "log.db", data / "osiris.db"
    if not log_db.exists():
        raise BackupError(f"{data} holds no log ({log_db} is missing)")
    lc = sqlite.connect(log_db, readonly=True, foreign_keys=False)
    ic = sqlite.connect(index_db, readonly=True) if index_db.exists() else None
    try:
        yield _sqlite_query(lc), (_sqlite_query(ic) if ic is not None else None)
    finally:
        lc.close()
        if ic is not None:
            ic.close()


# ---------------------------------------------------------------------- serve's checks


def require_keys(data: Path) -> None:
    """Refuse to start without ``DATA/keys`` (a backup never holds them), saying how to fix it."""
    if (data / "server.toml").exists() and not (data / "keys").is_dir():
        raise BackupError(
            f"{data / 'keys'} is missing: backups do not hold the keys; copy the original "
            f"data dir's keys/ here (cp -a OLD_DATA/keys {data}/keys, mode 0700/0600; "
            f"{RESTORE_DOC})"
        )


def require_verified_log(data: Path, db_url: str | None) -> None:
    """``serve --verify-log``: the full audit first; any mismatch refuses the start."""
    rep = verify_data(data, db_url)
    if not rep.ok:
        raise BackupError(
            f"the stored log fails its full check ({len(rep.problems)} problems; first: "
            f"{rep.problems[0]}); refusing to start — run `osiris-server log verify` for all"
        )
