"""`osiris demo --keep`, as the demo's own exit line suggests: a second headless run on the same
data dir, with the Linux lab host (a real local sshd) both times, exits 0.

It used to crash in the farm with a traceback: the kept dir held last run's sshd keys, and
``ssh-keygen -f`` on an existing file asks "Overwrite (y/n)?", which without a terminal fails.
The same reuse is also checked directly on :class:`osiris_lab.linux.LabSshd` (seconds, not
minutes), including the key permissions sshd insists on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osiris_lab.linux import LabSshd, LinuxSandbox

ROOT = Path(__file__).resolve().parents[2]
OSIRIS = [sys.executable, "-m", "osiris_tui.cli"]


def _procs_mentioning(text: str) -> list[str]:
    """Every live process whose command line mentions ``text`` (as tests/e2e/test_demo.py)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            out.append(f"{pid}: {cmd[:160]}")
    return out


def _demo(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OSIRIS, "demo", "--headless", "--seconds", "10", "--json", "--data", str(data), *extra],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip


def test_demo_keep_runs_again_with_the_linux_host(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _demo(data)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "`osiris demo --keep` reuses it" in first.stderr  # the line this test follows
    kept = _demo(data, "--keep")
    assert kept.returncode == 0, kept.stderr[-3000:]
    assert "Traceback" not in kept.stderr
    s = json.loads(kept.stdout)
    assert s["ok"] is True and s["appliances"] == 3 and s["lost"] == 0
    if LabSshd.available():  # the Linux host really took part in the kept run, not skipped
        assert "Linux host skipped" not in kept.stderr, kept.stderr[-2000:]
        assert s["lab_hosts"] == json.loads(first.stdout)["lab_hosts"]
    # and without it, on the same kept data
    bare = _demo(data, "--keep", "--no-linux")
    assert bare.returncode == 0, bare.stderr[-3000:]
    assert _procs_mentioning(str(data)) == []


def test_lab_sshd_restarts_in_its_old_directory(tmp_path: Path) -> None:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed: apt-get install -y openssh-server")
    sandbox = LinuxSandbox(tmp_path / "root").build()
    prints = []
    for _ in range(2):
        with LabSshd(tmp_path / "sshd", sandbox) as sshd:
            prints.append(sshd.host_fingerprint)
            for key in ("host_key", "client_key"):
                assert (tmp_path / "sshd" / key).stat().st_mode & 0o077 == 0
            probe = subprocess.run(
                ["ssh", "-i", str(tmp_path / "sshd" / "client_key"), "-p", str(sshd.port),
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "BatchMode=yes", f"{sshd.user}@127.0.0.1", "echo $OSIRIS_ROOT"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert probe.stdout.strip() == str(sandbox.root), probe.stderr
    assert prints[0] != prints[1]  # fresh keys each start; the demo re-pins the new one
