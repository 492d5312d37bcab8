"""Where the index lives: ``--db``, ``server.toml``'s ``db``, or SQLite — checked, never printed.

The real ``osiris-server`` binary in subprocesses against a real PostgreSQL (the session's
cluster): a bad URL is one line and exit 2 without its password; ``init --db`` records the URL so
the other commands find it from ``--data`` alone; a second ``init`` into a database that already
holds an index, or into one that cannot be reached, writes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from osiris_core.errors import ExitCode

CLI = [sys.executable, "-m", "osiris_server.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=90)


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osiris-server: error: "), p.stderr
    return lines[0]


@pytest.mark.parametrize(
    "url",
    ["mysql://root:Hunter2pw@db/x", "sqlite:///tmp/x.db", "/var/lib/osiris.db", "postgress://a"],
)
def test_a_db_that_is_not_postgresql_is_a_usage_error_without_its_password(
    url: str, tmp_path: Path
) -> None:
    for args in (["init", "--data", str(tmp_path / "d")], ["serve", "--data", str(tmp_path / "d")]):
        p = run(*args, "--db", url)
        assert p.returncode == ExitCode.USAGE, p.stderr
        line = p.stderr.strip()
        assert "postgresql://" in line and "Hunter2pw" not in line, line
    assert not (tmp_path / "d").exists()  # init wrote nothing


def test_a_bad_db_in_server_toml_stops_serve_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run("init", "--data", str(data)).returncode == 0
    toml = data / "server.toml"
    toml.write_text(toml.read_text() + '\ndb = "mysql://u:Hunter2pw@h/x"\n')
    p = run("serve", "--data", str(data), "--listen", "127.0.0.1:0")
    assert p.returncode == ExitCode.USAGE
    line = one_line(p)
    assert "server.toml: db" in line and "Hunter2pw" not in line and "***" in line


def test_init_db_records_the_url_and_the_other_commands_find_it(
    pg_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    assert run("init", "--data", str(data), "--db", pg_url).returncode == 0
    assert f'db = "{pg_url}"' in (data / "server.toml").read_text()
    assert not (data / "osiris.db").exists()  # the index is in PostgreSQL, not here
    p = run("token", "create", "--data", str(data), "--role", "auditor", "--name", "pgtok")
    assert p.returncode == 0, p.stderr
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM tokens ORDER BY name")]
    assert names == ["initial admin", "pgtok"]
    assert not (data / "osiris.db").exists()

    again = tmp_path / "again"  # a second init into the same database: refused, nothing written
    p = run("init", "--data", str(again), "--db", pg_url)
    assert p.returncode == ExitCode.USAGE
    assert "already holds an osiris index" in one_line(p)
    assert not (again / "keys").exists() and not (again / "server.toml").exists()


def test_init_against_an_unreachable_database_exits_3_and_writes_nothing(
    pg_cluster: object, tmp_path: Path
) -> None:
    dead = f"postgresql://osiris:Hunter2pw@127.0.0.1:{pg_cluster.port + 1}/x"  # type: ignore[attr-defined]
    data = tmp_path / "d"
    p = run("init", "--data", str(data), "--db", dead)
    assert p.returncode == ExitCode.UNREACHABLE, p.stderr
    line = one_line(p)
    assert "Hunter2pw" not in line and "***" in line
    assert not (data / "keys").exists() and not (data / "server.toml").exists()
