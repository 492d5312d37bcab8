"""What osiris-server writes is private to its user: ``server.toml`` (SMTP password, webhook
secrets), the database and the transparency log with their ``-wal``/``-shm`` files, and backups
are 0600 whatever the umask; ``serve`` refuses a ``server.toml`` others can read (exit 2, one
line, nothing listening). ``server.toml``'s ``max_connections_per_source`` reaches the real
server. Real ``osiris-server`` subprocesses and real sockets on loopback."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from osiris_server.app import App, init_data
from osiris_server.config import ConfigPermissionError

CLI = [sys.executable, "-m", "osiris_server.cli"]


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),  # a permissive inherited umask
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def _serve(data: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0o022),
    )


def _wait_up(url: str, p: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert p.poll() is None, p.stderr.read() if p.stderr else ""
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o620])
def test_serve_refuses_a_server_toml_others_can_access(tmp_path: Path, loose: int) -> None:
    data = tmp_path / "data"
    run("init", "--data", str(data), "--json")
    toml = data / "server.toml"
    assert mode(toml) == 0o600
    before = toml.read_bytes()
    os.chmod(toml, loose)
    port = free_port()
    r = subprocess.run(
        [*CLI, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(toml) in lines[0] and f"{loose:04o}" in lines[0] and "chmod 600" in lines[0]
    # nothing was started, nothing was changed
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert toml.read_bytes() == before and mode(toml) == loose
    assert not (data / "log.db").exists()
    # the WSGI factory (gunicorn) refuses it the same way
    with pytest.raises(ConfigPermissionError):
        App.open(data)


def test_files_are_private_whatever_the_umask_and_config_caps_reach_the_server(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    out = json.loads(run("init", "--data", str(data), "--json").stdout)
    assert mode(data / "server.toml") == 0o600 and mode(data / "osiris.db") == 0o600
    with open(data / "server.toml", "a") as f:
        f.write("max_connections_per_source = 3\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = _serve(data, port)
    try:
        _wait_up(url, p)
        h = {"Authorization": f"Bearer {out['admin_token']}"}
        assert httpx.post(url + "/api/v1/sites", json={"name": "C"}, headers=h).status_code == 201
        # the running server's files: databases, logs and their WAL/SHM companions
        files = [
            data / n
            for n in ("osiris.db", "log.db", "osiris.db-wal", "osiris.db-shm", "log.db-wal")
            if (data / n).exists()
        ]
        assert {f.name for f in files} >= {"osiris.db", "log.db", "osiris.db-wal"}
        for f in files:
            assert mode(f) == 0o600, (f.name, oct(mode(f)))
        # server.toml's per-source cap: a 4th connection from one address is closed at once
        held = []
        for _ in range(3):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            held.append(s)
        time.sleep(0.3)
        extra = socket.socket()
        extra.bind(("127.0.0.2", 0))
        extra.connect(("127.0.0.1", port))
        extra.settimeout(5)
        try:
            assert extra.recv(1) == b""
        except ConnectionResetError:
            pass
        held[0].settimeout(5)
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv(4096).startswith(b"HTTP/1.1 200 ")
        assert httpx.get(url + "/healthz").status_code == 200  # other sources: served
        for s in [*held, extra]:
            s.close()
        # an online backup is private, and so is every file restored from it
        bak = tmp_path / "backup.tar.gz"
        run("backup", "--data", str(data), "--out", str(bak))
        assert mode(bak) == 0o600
        with tarfile.open(bak) as tar:
            members = tar.getmembers()
            assert {m.name for m in members} == {"osiris.db", "log.db", "server.toml"}
            assert all(m.mode == 0o600 for m in members), [(m.name, oct(m.mode)) for m in members]
            with umask(0o022):
                tar.extractall(tmp_path / "restored", filter="data")
        for m in members:
            assert mode(tmp_path / "restored" / m.name) == 0o600, m.name
    finally:
        p.terminate()
        p.wait(15)


def test_the_app_creates_and_tightens_its_databases_0600(tmp_path: Path, capfd) -> None:
    """In-process (the gunicorn path), with a permissive umask: a fresh log.db is created 0600;
    a database left group/other-readable (a careless restore) is tightened at open."""
    data = tmp_path / "data"
    with umask(0o022):
        init_data(data, "test.osiris/osiris/log")
        assert mode(data / "server.toml") == 0o600 and mode(data / "osiris.db") == 0o600
        app = App.open(data, request_log=False)
        app.close()
        assert mode(data / "log.db") == 0o600 and mode(data / "osiris.db") == 0o600
        os.chmod(data / "log.db", 0o644)
        os.chmod(data / "osiris.db", 0o640)
        capfd.readouterr()
        app = App.open(data, request_log=False)
        try:
            assert mode(data / "log.db") == 0o600 and mode(data / "osiris.db") == 0o600
            for n in ("osiris.db-wal", "osiris.db-shm", "log.db-wal", "log.db-shm"):
                if (data / n).exists():
                    assert mode(data / n) == 0o600, n
        finally:
            app.close()
    err = capfd.readouterr().err
    event = next(json.loads(x) for x in err.splitlines() if "permissions_tightened" in x)
    assert sorted(event["files"]) == ["log.db", "osiris.db"]
