"""Real peers for the transport tests: an OpenSSH server and a WS-Man lab server on loopback.

The sshd recipe is ``reference/limits.md`` §5b: host and client keys made by ssh-keygen in a
temp dir, a private ``sshd_config`` listening on 127.0.0.1 only, started in the foreground and
terminated at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from osiris_lab.wsman import WsmanLabServer

# The REAL osiris-server (a subprocess on 127.0.0.1) and a lab Windows host behind the real
# WS-Man server, for the attest / rotate-key / decommission / policy tests.
from tests.e2e.conftest import central, win  # noqa: F401

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "osiris-test", "-f", str(path)],
        check=True,
    )


@dataclass
class SshServer:
    port: int
    host_fingerprint: str  # as `ssh-keygen -lf` prints it
    client_key: str  # OpenSSH private key text
    user: str
    dir: Path


@dataclass
class SudoUser:
    name: str
    password: str


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed: apt-get install -y openssh-server")
    d = tmp_path_factory.mktemp("sshd")
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    try:
        os.makedirs("/run/sshd", exist_ok=True)
    except PermissionError:
        pass
    check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"sshd rejects the test config: {check.stderr.strip()}")
    log = open(d / "sshd.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stderr=log, stdout=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
            time.sleep(0.01)
    fp_line = subprocess.run(
        ["ssh-keygen", "-lf", str(d / "host_key.pub"), "-E", "sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import getpass

    try:
        yield SshServer(
            port=port,
            host_fingerprint=fp_line.split()[1],
            client_key=(d / "client_key").read_text(),
            user=getpass.getuser(),
            dir=d,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def sudo_user(sshd: SshServer) -> Iterator[SudoUser]:
    """A throwaway account whose sudo needs a password (root only; removed afterwards)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("sudo"):
        pytest.skip("needs root, useradd and sudo to create a password-sudo test account")
    name = f"ost{os.getpid()}"
    password = f"pw-{os.urandom(6).hex()}-secret"
    sudoers = Path(f"/etc/sudoers.d/osiris-test-{name}")
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        sudoers.write_text(f"Defaults:{name} lecture=never\n{name} ALL=(ALL) ALL\n")
        sudoers.chmod(0o440)
        yield SudoUser(name, password)
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


@pytest.fixture()
def wsman_lab() -> Iterator[WsmanLabServer]:
    with WsmanLabServer() as server:
        yield server
