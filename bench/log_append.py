"""Benchmark: transparency-log appends beside raw fsync'd SQLite commits (DESIGN §5).

Appends N entries (default 20,000, ~1 KiB each) in batches of 100, waiting for a signed
checkpoint after every batch (``interval_s=0``: one Ed25519 signature and two fsync'd
transactions per batch). The limit printed beside it is raw single-row
``synchronous=FULL`` WAL commits/s measured in the same run and the same directory, so the
ratio is comparable across machines. The budget (≥ 2,000 bundles/s for ingest) includes
signature checks that this benchmark leaves out; this isolates the log's share.

Usage: ``python bench/log_append.py [--n 20000] [--batch 100] [--dir DIR]``. Exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from osiris_core.keys import Signer
from osiris_server.log import TransparencyLog

ORIGIN = "bench.osiris.test/osiris/log"


def raw_commits_per_s(directory: Path, n: int) -> float:
    """Single-row INSERT + COMMIT, WAL, synchronous=FULL: the fsync-bound ceiling."""
    path = directory / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    payload = b"x" * 1024
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (id, v) VALUES (?, ?)", (i, payload))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def log_entries_per_s(directory: Path, n: int, batch: int) -> tuple[float, int]:
    signer = Signer.generate(ORIGIN)
    log = TransparencyLog.open(directory / "log.db", signer, ORIGIN, interval_s=0, idle_s=0)
    pad = "p" * 960
    entries = [f'{{"i":{i},"pad":"{pad}"}}'.encode() for i in range(n)]
    try:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            res = log.append(entries[start : start + batch])
            cp = log.wait_checkpoint(res[-1].index + 1)
            if cp.size < res[-1].index + 1:
                raise SystemExit("checkpoint does not cover the batch")
        elapsed = time.perf_counter() - t0
        if log.size() != n:
            raise SystemExit(f"log holds {log.size()} entries, expected {n}")
        return n / elapsed, log.signatures
    finally:
        log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--raw", type=int, default=2_000, help="raw single-row commits to time")
    ap.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="osiris-bench-log-", dir=args.dir))
    try:
        raw = raw_commits_per_s(tmp, args.raw)
        rate, sigs = log_entries_per_s(tmp, args.n, args.batch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"log append: {rate:,.0f} entries/s ({args.n} entries, batches of {args.batch}, "
        f"{sigs} checkpoints signed)"
    )
    print(f"limit: raw fsync'd single-row SQLite commits: {raw:,.0f} commits/s (same dir)")
    print(f"ratio: {rate / raw:.2f}x the raw commit rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
