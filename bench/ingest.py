"""Evidence ingest end to end: bundles/s through POST /api/v1/evidence in batches of 100
(signature check + chain check + log append with fsync + index commit + signed checkpoint +
receipts), printed beside raw single-row fsync'd SQLite commits/s measured in the same run on
the same disk. Budget (DESIGN §5): >= 2,000 bundles/s.

Several appliances upload concurrently (as a fleet does); each uploads its batches in order.
Envelopes are signed before the clock starts: agent-side signing is not what is measured.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkin import free_port, wait_up  # noqa: E402

APPLIANCES = 8
BATCHES = int(os.environ.get("BENCH_BATCHES", "8"))  # per appliance
BATCH = 100
BUDGET = 2000


def raw_fsync_commits(path: Path, n: int = 2000) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, ts REAL, body BLOB)")
    body = os.urandom(300)
    t0 = time.perf_counter()
    for _ in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO q (ts, body) VALUES (?, ?)", (time.time(), body))
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


def main() -> int:
    import httpx

    from tests.server.conftest import Server  # the same enrolment helper the tests use

    with tempfile.TemporaryDirectory(prefix="osiris-bench-") as tmp:
        tmpdir = Path(tmp)
        limit = raw_fsync_commits(tmpdir / "raw.db")
        data = tmpdir / "data"
        from osiris_server.app import init_data

        info = init_data(data, "bench.osiris/osiris/log")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        srv = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "osiris_server.cli",
                "serve",
                "--data",
                str(data),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            wait_up(port)
            url = f"http://127.0.0.1:{port}"
            helper = Server(
                url=url,
                app=None,
                data=data,  # type: ignore[arg-type]
                admin_token=info["admin_token"],
                init=info,
            )
            site = helper.site("Bench")
            fleet = [helper.enroll(site["id"], f"ap{i}") for i in range(APPLIANCES)]
            payloads = []
            for a in fleet:
                batches = []
                for _ in range(BATCHES):
                    envs = [a.envelope(host_id="dc01", check="firewall") for _ in range(BATCH)]
                    batches.append(json.dumps({"envelopes": envs}).encode())
                payloads.append((a.token, batches))
            total = APPLIANCES * BATCHES * BATCH
            accepted = [0]
            lock = threading.Lock()

            def upload(token: str, batches: list[bytes]) -> None:
                h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                with httpx.Client(base_url=url, headers=h, timeout=60) as c:
                    for b in batches:
                        r = c.post("/api/v1/evidence", content=b)
                        n = sum(x["status"] == "accepted" for x in r.json()["results"])
                        with lock:
                            accepted[0] += n

            threads = [threading.Thread(target=upload, args=p) for p in payloads]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            dt = time.perf_counter() - t0
        finally:
            srv.terminate()
            srv.wait(20)
    rate = total / dt
    print(f"{APPLIANCES} appliances x {BATCHES} batches x {BATCH} bundles = {total}")
    print(
        f"evidence ingest:          {rate:8.0f} bundles/s   accepted {accepted[0]}/{total}"
        f"   (budget >= {BUDGET})"
    )
    print(f"raw fsync'd SQLite commits/s: {limit:6.0f}   (limit: single-row sync=FULL, same disk)")
    ok = accepted[0] == total and rate >= BUDGET
    print("PASS" if ok else "BELOW BUDGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
