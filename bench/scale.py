"""Check-ins/s and ingest bundles/s by engine and number of server processes (DESIGN §5, §7).

Configurations, each measured in this one run on these same cores: SQLite with 1 and 2
`osiris-server serve` processes sharing one data dir, PostgreSQL with 1, 2 and 4 processes
sharing one database (a throwaway cluster with fsync, synchronous_commit and full_page_writes
ON, so it waits for the disk as SQLite's synchronous=FULL does). The limit each PostgreSQL
figure is judged against is SQLite with 1 process from the same run: PostgreSQL must reach
≥ 70 % of it, and grow with processes. Where PostgreSQL is not installed its part prints
"skipped: PostgreSQL not installed".

The load: check-ins from 2 client processes × 8 keep-alive connections spread over the
servers (300 appliances, each primed once so it sends back its policy version and holds, as
today's agent does: an unchanged appliance's small answer; then the same without holds — full
answers — unless BENCH_SCALE_FULL=0);
ingest from 8 appliances in batches of 100 (envelopes signed before the clock starts), each
appliance on one server. Client and servers share the machine's cores: on a 2-core box, 4
server processes cannot run in parallel, and the figures say so rather than hide it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkin import _recv_response, free_port, prime, requests_for, wait_up  # noqa: E402

APPLIANCES = int(os.environ.get("BENCH_SCALE_APPLIANCES", "300"))
DURATION = float(os.environ.get("BENCH_SECONDS", "2"))
INGEST_APPLIANCES = 8
INGEST_BATCHES = int(os.environ.get("BENCH_SCALE_BATCHES", "2"))
BATCH = 100
CLIENT_PROCS, CONNS_PER_PROC = 2, 8
FULL = os.environ.get("BENCH_SCALE_FULL", "1") != "0"  # also full answers (no holds)
PG_SHARE = 0.70  # DESIGN §5: PostgreSQL ≥ 70 % of SQLite with one process
SEED = bytes(range(32))  # every bench appliance signs with this key (enrolment is not measured)


def setup(data: Path, db_url: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """A data dir (index on ``db_url`` if given) with one site and APPLIANCES appliances
    inserted directly; returns (id, token) pairs and the ids of the ingest appliances."""
    from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, Verifier, appliance_key_name
    from osiris_server import auth
    from osiris_server.app import App, init_data

    init_data(data, "bench.osiris/osiris/log", db_url)
    with open(data / "server.toml", "a") as f:
        f.write("request_log = false\n")
    app = App.open(data)
    cos = Signer("x", SEED, key_type=KEY_TYPE_COSIGNATURE)
    pairs, rows = [], []
    for i in range(APPLIANCES):
        aid = f"app_{i:08d}"
        token = auth.new_token(auth.APPLIANCE_PREFIX)
        name = appliance_key_name(aid)
        rows.append(
            (
                aid, "bench-site", f"ap{i}", Verifier(name, Signer("x", SEED).public).vkey,
                Verifier(name, cos.public, KEY_TYPE_COSIGNATURE).vkey, "0.1.0",
                auth.token_hash(token), "2026-01-01T00:00:00.000Z",
            )
        )  # fmt: skip
        pairs.append((aid, token))
    try:
        with app.db.write() as w:
            w.insert(
                "sites",
                {
                    "id": "bench-site", "partner_id": None, "name": "Bench clinic",
                    "window_days": '["sun"]', "window_start": "02:00",
                    "window_duration_min": 120, "timezone": "UTC", "checkin_interval_s": 60,
                    "created_at": "2026-01-01T00:00:00.000Z",
                },
            )  # fmt: skip
            w.executemany(
                "INSERT INTO appliances (id, site_id, hostname, signing_vkey, cosign_vkey,"
                " agent_version, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        app.close()
    return pairs, [aid for aid, _ in pairs[:INGEST_APPLIANCES]]


def start_servers(data: Path, k: int) -> list[tuple[subprocess.Popen, int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for _ in range(k):
        port = free_port()
        p = subprocess.Popen(
            [sys.executable, "-m", "osiris_server.cli", "serve", "--data", str(data),
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        procs.append((p, port))
    for _, port in procs:
        wait_up(port)
        _wait_healthy(port)
    return procs


def _wait_healthy(port: int) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server on {port} is not healthy")


def _client(ports: list[int], reqs: list[bytes], first: int, duration: float, q: Any) -> None:
    """CONNS_PER_PROC keep-alive connections, connection j on ports[(first + j) % k]."""
    counts = [0, 0]  # done, errors
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def loop(j: int) -> None:
        sock = socket.create_connection(("127.0.0.1", ports[(first + j) % len(ports)]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        i, done, bad = j, 0, 0
        while time.perf_counter() < stop_at:
            sock.sendall(reqs[i % len(reqs)])
            status, buf = _recv_response(sock, buf)
            done += 1
            bad += status != 200
            i += CONNS_PER_PROC
        sock.close()
        with lock:
            counts[0] += done
            counts[1] += bad

    threads = [threading.Thread(target=loop, args=(j,)) for j in range(CONNS_PER_PROC)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put(tuple(counts))


def warm(ports: list[int], reqs: list[bytes]) -> None:
    """Every request once on every server before the clock starts: a process's first check-in
    of an appliance computes and records its signed policy (api/policy.py), which a steady
    fleet does not — a short timed warm-up left most of them in the figure with 4 processes."""
    for port in ports:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for r in reqs:
            sock.sendall(r)
            status, buf = _recv_response(sock, buf)
            if status != 200:
                raise SystemExit(f"warm-up check-in failed: {status}")
        sock.close()


def checkins_per_s(ports: list[int], reqs: list[bytes], duration: float) -> tuple[float, int]:
    q: Any = mp.Queue()
    split = [reqs[c::CLIENT_PROCS] for c in range(CLIENT_PROCS)]
    procs = [
        mp.Process(target=_client, args=(ports, split[c], c * CONNS_PER_PROC, duration, q))
        for c in range(CLIENT_PROCS)
    ]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] for r in results) / duration, sum(r[1] for r in results)


def ingest_per_s(ports: list[int], pairs: list[tuple[str, str]]) -> tuple[float, int]:
    """Bundles/s of INGEST_APPLIANCES uploading at once, appliance i on ports[i % k]."""
    import httpx

    from osiris_core import evidence as ev
    from osiris_core.keys import Signer, appliance_key_name

    payloads = []
    for aid, token in pairs[:INGEST_APPLIANCES]:
        signer = Signer(appliance_key_name(aid), SEED)
        chain = ev.Chain(aid)
        batches = []
        for _ in range(INGEST_BATCHES):
            envs = []
            for _ in range(BATCH):
                b = chain.next(site_id="bench-site", host_id="dc01", check="firewall",
                               outcome="compliant")  # fmt: skip
                chain.advance(b)
                envs.append(ev.sign_bundle(b, signer))
            batches.append(json.dumps({"envelopes": envs}).encode())
        payloads.append((token, batches))
    accepted = [0]
    lock = threading.Lock()

    def upload(i: int, token: str, batches: list[bytes]) -> None:
        url = f"http://127.0.0.1:{ports[i % len(ports)]}"
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=h, timeout=120) as c:
            for body in batches:
                r = c.post("/api/v1/evidence", content=body)
                n = sum(x["status"] == "accepted" for x in r.json()["results"])
                with lock:
                    accepted[0] += n

    threads = [threading.Thread(target=upload, args=(i, *p)) for i, p in enumerate(payloads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(payloads) * INGEST_BATCHES * BATCH
    return total / (time.perf_counter() - t0), total - accepted[0]


def measure(base: Path, engine: str, k: int, db_url: str | None) -> dict[str, float]:
    data = base / f"{engine}-{k}"
    pairs, _ = setup(data, db_url)
    servers = start_servers(data, k)
    ports = [port for _, port in servers]
    try:
        step = max(1, len(pairs) // 1000)
        chosen = pairs[INGEST_APPLIANCES::step]
        # each appliance's first check-in (holds {}: the server issues its signed policy, rules
        # and targets); then what it sends back, as today's agent (bench/checkin.py's prime)
        primed = prime(ports[0], chosen)
        reqs = requests_for(chosen, primed, full=False)
        warm(ports, reqs)
        rps, errors = checkins_per_s(ports, reqs, DURATION)
        full_rps = 0.0
        if FULL:
            fulls = requests_for(chosen, primed, full=True)
            warm(ports, fulls)
            full_rps, full_errors = checkins_per_s(ports, fulls, DURATION)
            errors += full_errors
        bps, lost = ingest_per_s(ports, pairs)
    finally:
        for p, _ in servers:
            p.terminate()
        for p, _ in servers:
            p.wait(20)
    shutil.rmtree(data, ignore_errors=True)
    return {
        "checkins": rps,
        "full": full_rps,
        "checkin_errors": errors,
        "ingest": bps,
        "ingest_lost": lost,
    }


def main() -> int:
    from osiris_lab.pgcluster import PgCluster

    cores = os.cpu_count() or 1
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="osiris-bench-scale-") as tmp:
        base = Path(tmp)
        for k in (1, 2):
            results[("sqlite", k)] = measure(base, "sqlite", k, None)
        cluster = None
        if PgCluster.available():
            cluster = PgCluster.start(base / "pg", durable=True)
            try:
                for k in (1, 2, 4):
                    url = cluster.create_database(f"bench{k}")
                    results[("postgresql", k)] = measure(base, "postgresql", k, url)
            finally:
                cluster.stop()
    print(
        f"{cores} cores (os.cpu_count), shared by the servers and the load; {APPLIANCES}"
        f" appliances, {CLIENT_PROCS * CONNS_PER_PROC} keep-alive connections, {DURATION:g} s"
        f" of check-ins; ingest {INGEST_APPLIANCES} x {INGEST_BATCHES} x {BATCH} bundles"
    )
    print(
        "check-ins/s: unchanged appliances sending policy_version + holds, as today's agent"
        " (small answers); full/s: no holds (rules + targets in every answer)"
    )
    print(f"{'engine':<12}{'procs':>6}{'check-ins/s':>14}{'full/s':>10}{'ingest bundles/s':>18}")
    for (engine, k), r in results.items():
        bad = ""
        if r["checkin_errors"] or r["ingest_lost"]:
            bad = f"   ERRORS: {r['checkin_errors']:.0f} check-ins, {r['ingest_lost']:.0f} bundles"
        full = f"{r['full']:>10,.0f}" if FULL else f"{'-':>10}"
        print(f"{engine:<12}{k:>6}{r['checkins']:>14,.0f}{full}{r['ingest']:>18,.0f}{bad}")
    if ("postgresql", 1) not in results:
        print("postgresql: skipped: PostgreSQL not installed")
        return 0
    limit = results[("sqlite", 1)]
    print(f"limit: SQLite, 1 process, same run: PostgreSQL must reach >= {PG_SHARE:.0%} of it")
    for what in ("checkins", "ingest"):
        prev = None
        for k in (1, 2, 4):
            got = results[("postgresql", k)][what]
            share = got / max(limit[what], 1e-9)
            verdict = "PASS" if share >= PG_SHARE else "FAIL"
            grow = ""
            if prev is not None:
                grow = f", {'grows' if got > prev else 'does NOT grow'} from x{k // 2}"
                if k > cores:
                    grow += f" (expected: {k} processes on {cores} cores)"
            print(f"  {what:<9} postgresql x{k}: {share:6.0%} of sqlite x1: {verdict}{grow}")
            prev = got
    return 0


if __name__ == "__main__":
    sys.exit(main())
