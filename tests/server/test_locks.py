"""Per-appliance locks hold across processes (gunicorn workers sharing one data directory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path

from osiris_server.locks import ApplianceLocks

ROOT = Path(__file__).resolve().parents[2]

_HOLDER = """
import sys
sys.path.insert(0, sys.argv[2])
from osiris_server.locks import ApplianceLocks
locks = ApplianceLocks(__import__("pathlib").Path(sys.argv[1]))
with locks.hold("app_x"):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def _other_stripe(name: str, stripes: int = 64) -> str:
    want = zlib.crc32(name.encode()) % stripes
    return next(
        f"app_{i}" for i in range(1000) if zlib.crc32(f"app_{i}".encode()) % stripes != want
    )


def _holder(path: Path) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def _try_hold(locks: ApplianceLocks, name: str) -> threading.Event:
    got = threading.Event()

    def run() -> None:
        with locks.hold(name):
            got.set()

    threading.Thread(target=run, daemon=True).start()
    return got


def test_a_stripe_held_by_another_process_waits(tmp_path: Path) -> None:
    path = tmp_path / "appliance.lock"
    locks = ApplianceLocks(path)
    child = _holder(path)
    try:
        same = _try_hold(locks, "app_x")
        assert not same.wait(0.5)  # the other process holds app_x's stripe
        assert _try_hold(locks, _other_stripe("app_x")).wait(5)  # other stripes are free
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert same.wait(10)
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        locks.close()


def test_a_killed_holder_releases_its_stripe(tmp_path: Path) -> None:
    path = tmp_path / "appliance.lock"
    locks = ApplianceLocks(path)
    child = _holder(path)
    try:
        got = _try_hold(locks, "app_x")
        assert not got.wait(0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert got.wait(10)
    finally:
        locks.close()
