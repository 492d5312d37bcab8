"""Per-appliance locks hold across processes: gunicorn workers sharing one data directory (a
lock file), and servers on several hosts sharing one PostgreSQL database (advisory locks).

Every test runs on both: ``where`` is the lock file's directory, or a PostgreSQL URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from osiris_server.locks import ApplianceLocks

ROOT = Path(__file__).resolve().parents[2]

_HOLDER = """
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from osiris_server.locks import ApplianceLocks
where = sys.argv[1]
if where.startswith("postgresql://"):
    locks = ApplianceLocks(None, db_url=where)
else:
    locks = ApplianceLocks(Path(where))
with locks.hold("app_x"):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture(params=["file", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return str(tmp_path / "appliance.lock")
    return request.getfixturevalue("pg_url")


def _locks(where: str) -> ApplianceLocks:
    if where.startswith("postgresql://"):
        return ApplianceLocks(None, db_url=where)
    return ApplianceLocks(Path(where))


def _other_stripe(name: str, stripes: int = 64) -> str:
    want = zlib.crc32(name.encode()) % stripes
    return next(
        f"app_{i}" for i in range(1000) if zlib.crc32(f"app_{i}".encode()) % stripes != want
    )


def _holder(where: str) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, where, str(ROOT)],
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


def test_a_stripe_held_by_another_process_waits(where: str) -> None:
    locks = _locks(where)
    child = _holder(where)
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


def test_a_killed_holder_releases_its_stripe(where: str) -> None:
    locks = _locks(where)
    child = _holder(where)
    try:
        got = _try_hold(locks, "app_x")
        assert not got.wait(0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert got.wait(10)  # PostgreSQL: the session ended, the advisory lock went with it
    finally:
        locks.close()


def test_postgresql_stripes_are_released_and_reused(pg_url: str) -> None:
    """Many holds in a row (more than the pool's sessions) leave no advisory lock behind, and
    an exception inside the critical section releases the stripe too."""
    import psycopg

    locks = ApplianceLocks(None, db_url=pg_url)
    try:
        for i in range(40):
            with locks.hold(f"app_{i}"):
                pass
        with pytest.raises(RuntimeError), locks.hold("app_x"):
            raise RuntimeError("inside")
        with psycopg.connect(pg_url) as conn:
            held = conn.execute(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ).fetchone()[0]
        assert held == 0
        assert _try_hold(locks, "app_x").wait(5)
    finally:
        locks.close()
