"""A throwaway PostgreSQL cluster for tests and benchmarks: real ``postgres``, no mock.

Why here: the server's PostgreSQL engine is tested against the real server (reference/limits.md
§5e: ``initdb`` 0.36 s, start 0.12 s), and both the test suite and ``bench/`` need the same
bring-up. The cluster lives under a directory the caller owns (a pytest temp dir), listens on
127.0.0.1 on a free port with trust authentication for ``postgres``, runs with ``fsync=off``
(a test cluster is thrown away; the production durability argument is PostgreSQL's own), and
``stop()`` removes nothing the caller did not hand it — the directory goes with the temp dir.

``initdb`` refuses to run as root; when we are root (CI) the cluster runs as the ``postgres``
system user that Debian's package creates, through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PgCluster", "PgUnavailable", "find_bindir"]


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (install Debian's ``postgresql``)."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``: Debian's newest
    ``/usr/lib/postgresql/N/bin`` first, then whatever ``PATH`` has."""
    cands = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for c in cands:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """``PgCluster.start(dir)`` → a running cluster; ``url(db)``, ``create_database``, ``stop``."""

    def __init__(self, bindir: Path, datadir: Path, port: int, sockdir: Path, user: str | None):
        self.bindir = bindir
        self.datadir = datadir
        self.port = port
        self.sockdir = sockdir
        self._user = user  # run the server binaries as this user (None: as ourselves)
        self.running = False

    @classmethod
    def available(cls) -> bool:
        return find_bindir() is not None

    @classmethod
    def start(cls, base: str | os.PathLike[str], *, durable: bool = False) -> PgCluster:
        """``durable``: keep PostgreSQL's fsync, synchronous_commit and full_page_writes on
        (benches that compare engines must not race a database that never waits for disk)."""
        bindir = find_bindir()
        if bindir is None:
            raise PgUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
        Path(base).mkdir(parents=True, exist_ok=True)
        # The cluster lives in a short directory of its own under /tmp (not under ``base``):
        # the socket path must stay under the 107-byte sun_path limit, and pytest resets its
        # own temp root to 0700 at each session start, which would lock the ``postgres`` user
        # out of a data dir below it while another session's cluster still runs.
        sockdir = Path(tempfile.mkdtemp(prefix="osiris-pg-"))
        datadir = sockdir / "data"
        datadir.mkdir(mode=0o700)
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                shutil.rmtree(sockdir, ignore_errors=True)
                raise PgUnavailable("running as root, but there is no 'postgres' user") from None
            for p in (sockdir, datadir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        c = cls(bindir, datadir, _free_port(), sockdir, user)
        c._run(
            "initdb", "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        opts = f"-p {c.port} -k {sockdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        c._run("pg_ctl", "-D", str(datadir), "-o", opts, "-l", str(datadir / "log"), "-w", "start")
        c.running = True
        return c

    def _run(self, tool: str, *args: str) -> str:
        cmd = [str(self.bindir / tool), *args]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
        if p.returncode != 0:
            raise PgUnavailable(f"{tool} failed: {(p.stderr or p.stdout).strip()[-800:]}")
        return p.stdout

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement with autocommit (CREATE/DROP DATABASE cannot run in a tx)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad database name {name!r}")
        tpl = f" TEMPLATE {template}" if template else ""
        self.sql(f"CREATE DATABASE {name}{tpl}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        except (PgUnavailable, subprocess.TimeoutExpired):
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.sockdir, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """pg_ctl could not stop it: SIGKILL the postmaster named in postmaster.pid (its
        children exit when it does), so a test session never leaves a server behind."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
