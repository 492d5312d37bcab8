"""The appliance never listens: inspect the running agent's sockets via /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.fixtures_agent import FakeCentral, Sntp, enroll_into


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            t = os.readlink(fd)
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(t[8:-1])
    return out


def _listening_inodes() -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        p = Path(f"/proc/net/{table}")
        if not p.exists():
            continue
        for line in p.read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":  # TCP_LISTEN
                inodes.add(f[9])
    return inodes


def _udp_bound_inodes() -> set[str]:
    inodes = set()
    for table in ("udp", "udp6"):
        p = Path(f"/proc/net/{table}")
        if p.exists():
            inodes |= {line.split()[9] for line in p.read_text().splitlines()[1:]}
    return inodes


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_running_agent_has_no_listening_socket(tmp_path) -> None:
    ntp = Sntp()
    try:
        with FakeCentral() as srv:
            cfg = enroll_into(srv, tmp_path / "s",
                              f'[ntp]\nservers = ["{ntp.server}"]\nmin_good = 1\n')  # fmt: skip
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
            p = subprocess.Popen([sys.executable, "-m", "osiris_agent.cli", "run", "--config",
                                  str(cfg)], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                seen_sockets = 0
                deadline = time.monotonic() + 4
                while time.monotonic() < deadline:
                    mine = _socket_inodes(p.pid)
                    seen_sockets += len(mine)
                    assert not mine & _listening_inodes(), "the agent is listening on TCP"
                    time.sleep(0.05)
                (tmp_path / "s" / "run-request").touch()  # ask for a cycle: a file, no socket
                deadline = time.monotonic() + 10
                while (tmp_path / "s" / "run-request").exists():
                    assert time.monotonic() < deadline
                    assert not _socket_inodes(p.pid) & _listening_inodes()
                    time.sleep(0.05)
                assert seen_sockets > 0  # we did look at a live agent with its outbound socket
                # the request file is taken when the cycle starts; its check-in follows
                while len(srv.state.checkins) < 2:
                    assert time.monotonic() < deadline, "the requested cycle never checked in"
                    assert not _socket_inodes(p.pid) & _listening_inodes()
                    time.sleep(0.05)
                # Between cycles no UDP socket stays open either (NTP sockets are closed).
                time.sleep(0.5)
                assert not _socket_inodes(p.pid) & _udp_bound_inodes()
            finally:
                p.send_signal(signal.SIGTERM)
                assert p.wait(timeout=10) == 0
    finally:
        ntp.close()
