"""Check-ins/s against one osiris-server holding 10,000 appliances, over keep-alive.

Printed beside the limit from the same run: the same embedded server answering a trivial
handler. Budget (DESIGN §5): >= 2,000 check-ins/s.

The server runs in its own process (`osiris-server serve`); the load comes from separate
processes speaking raw HTTP/1.1 on keep-alive sockets, so the client costs little CPU.
The check-ins are an unchanged fleet's, as today's agent sends them (policy version and
``holds``: a small answer); a second line measures full answers (no ``holds``, as an agent
older than partial answers: rules and targets in every answer).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APPLIANCES = 10_000
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
PROCS = 2
CONNS_PER_PROC = 8
BUDGET = 2000

TRIVIAL = """
import sys
from osiris_server.serve import make_server, serve
body = b'{"ok":true,"next_checkin_s":60}'
def app(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(n)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
srv = make_server(app, "127.0.0.1", int(sys.argv[1]))
serve(app, srv)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def setup(data: Path) -> list[tuple[str, str]]:
    """Init a data dir and insert 10,000 enrolled appliances directly (enrolment is not what
    is measured). Returns (appliance_id, token) pairs."""
    from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name
    from osiris_server import auth
    from osiris_server.app import App, init_data

    init_data(data, "bench.osiris/osiris/log")
    app = App.open(data, request_log=False)
    try:
        with app.db.write() as w:
            w.insert(
                "sites",
                {
                    "id": "bench-site",
                    "partner_id": None,
                    "name": "Bench clinic",
                    "window_days": '["sun"]',
                    "window_start": "02:00",
                    "window_duration_min": 120,
                    "timezone": "UTC",
                    "checkin_interval_s": 60,
                    "created_at": "2026-01-01T00:00:00.000Z",
                },
            )
        from osiris_server.db import credentials as db_creds

        for i, kind in enumerate(("winrm", "ssh_password")):
            cid = f"cred_{i}"
            tok = app.vault.encrypt(
                b'{"password": "bench-pw"}', db_creds.context("bench-site", cid)
            )
            with app.db.write() as w:
                db_creds.create(
                    w,
                    cid,
                    "bench-site",
                    {
                        "host_id": f"host{i}",
                        "kind": kind,
                        "address": f"10.0.0.{i + 1}",
                        "port": 5986 if kind == "winrm" else 22,
                        "lab": False,
                        "username": "svc",
                        "host_key_fingerprints": [],
                        "use_tls": True,
                        "verify_tls": True,
                    },
                    tok,
                )
        seed = Signer.generate("x")
        cos = Signer.generate("x", key_type=KEY_TYPE_COSIGNATURE)
        pairs = []
        rows = []
        for i in range(APPLIANCES):
            aid = f"app_{i:08d}"
            token = auth.new_token(auth.APPLIANCE_PREFIX)
            name = appliance_key_name(aid)
            from osiris_core.keys import Verifier

            rows.append(
                (
                    aid,
                    "bench-site",
                    f"ap{i}",
                    Verifier(name, seed.public).vkey,
                    Verifier(name, cos.public, KEY_TYPE_COSIGNATURE).vkey,
                    "0.1.0",
                    auth.token_hash(token),
                    "2026-01-01T00:00:00.000Z",
                )
            )
            pairs.append((aid, token))
        with app.db.write() as w:
            w.executemany(
                "INSERT INTO appliances (id, site_id, hostname, signing_vkey, cosign_vkey,"
                " agent_version, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        app.close()
    return pairs


def request_bytes(path: str, token: str | None, body: dict) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    head += f"Content-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


def checkin_request(
    aid: str,
    token: str,
    policy_version: int | None = None,
    holds: dict[str, str] | None = None,
) -> bytes:
    body = {
        "appliance_id": aid,
        "agent_version": "0.1.0",
        "status": {
            "uptime_s": 100,
            "outbox_depth": 0,
            "chain_head": "sha256:" + "0" * 64,
            "seq": 0,
            "clock": {"ntp_ok": True, "offset_ms": 2, "source": "ntp"},
            "checks": [
                {
                    "host_id": "host0",
                    "check": "firewall",
                    "status": "compliant",
                    "since": "2026-01-01T00:00:00.000Z",
                }
            ],
        },
        "log_size_seen": 0,
    }
    if policy_version is not None:  # as the agent does once it holds the signed policy
        body["policy_version"] = policy_version
    if holds is not None:  # as today's agent does: what it holds and verified (may be {})
        body["holds"] = holds
    return request_bytes("/api/v1/checkin", token, body)


Primed = tuple[int, dict[str, str]]  # (policy version, holds) an agent sends back


def prime(port: int, pairs: list[tuple[str, str]]) -> list[Primed]:
    """One check-in per appliance, as each agent's first (``holds: {}``): the server issues
    its signed policy (DESIGN §3.6), the rules and the targets with their version; what each
    answer carries is what that agent then names — the policy version and ``holds`` (the
    rules' hash as the agent computes it, the targets' version), so an unchanged appliance's
    later check-ins are answered without rules, targets or policy, as today's agent's are."""
    from osiris_core import canonical

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    out: list[Primed] = []
    for aid, token in pairs:
        sock.sendall(checkin_request(aid, token, holds={}))
        status, body, buf = _recv_full(sock, buf)
        if status != 200:
            raise SystemExit(f"priming check-in failed: {status} {body[:200]!r}")
        doc = json.loads(body)
        rules = "sha256:" + hashlib.sha256(canonical.dumps(doc["rules"]["signed"])).hexdigest()
        held = {"rules": rules, "targets": doc["targets_hash"]}
        out.append((int(doc["policy"]["policy"]["version"]), held))
    sock.close()
    return out


def requests_for(chosen: list[tuple[str, str]], primed: list[Primed], full: bool) -> list[bytes]:
    """Each appliance's steady check-in: unchanged (policy version + holds, a small answer), or
    with ``full`` as an agent older than partial answers (policy version only: rules and
    targets in every answer)."""
    return [
        checkin_request(a, t, v, None if full else h)
        for (a, t), (v, h) in zip(chosen, primed, strict=True)
    ]


def _recv_full(sock: socket.socket, buf: bytearray) -> tuple[int, bytes, bytearray]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = next(int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                  if k.strip().lower() == b"content-length")  # fmt: skip
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return int(head[9:12]), bytes(body[:length]), body[length:]


def _recv_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytearray]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    rest = bytearray(rest)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def _worker(port: int, reqs: list[bytes], conns: int, duration: float, q: mp.Queue) -> None:
    import threading

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def loop(offset: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        mine = []
        i = offset
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            sock.sendall(reqs[i % len(reqs)])
            status, buf = _recv_response(sock, buf)
            mine.append(time.perf_counter() - t0)
            if status != 200:
                with lock:
                    errors[0] += 1
            i += conns
        sock.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put((lat, errors[0]))


def load(port: int, reqs_per_proc: list[list[bytes]], duration: float) -> dict:
    q: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=_worker, args=(port, reqs, CONNS_PER_PROC, duration, q))
        for reqs in reqs_per_proc
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    n = len(lat)
    return {
        "rps": n / duration if n else 0.0,
        "p50_ms": lat[n // 2] * 1000 if n else 0.0,
        "p99_ms": lat[int(n * 0.99)] * 1000 if n else 0.0,
        "n": n,
        "errors": errors,
        "elapsed": elapsed,
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="osiris-bench-") as tmp:
        data = Path(tmp) / "data"
        pairs = setup(data)
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
            # spread over the whole fleet: each process walks its own slice of appliances
            step = max(1, APPLIANCES // 2000)
            chosen = pairs[::step]
            primed = prime(port, chosen)
            reqs = requests_for(chosen, primed, full=False)
            split = [reqs[k::PROCS] for k in range(PROCS)]
            load(port, [s[:50] for s in split], 1.0)  # warm-up
            ours = load(port, split, DURATION)
            fulls = requests_for(chosen, primed, full=True)
            full = load(port, [fulls[k::PROCS] for k in range(PROCS)], DURATION)
        finally:
            srv.terminate()
            srv.wait(20)
        port2 = free_port()
        triv = subprocess.Popen(
            [sys.executable, "-c", TRIVIAL, str(port2)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            wait_up(port2)
            treqs = [request_bytes("/", None, {"x": 1})] * 10
            load(port2, [treqs, treqs], 1.0)
            limit = load(port2, [treqs] * PROCS, DURATION)
        finally:
            triv.terminate()
            triv.wait(20)
    conc = PROCS * CONNS_PER_PROC
    print(f"appliances in database: {APPLIANCES}; {conc} keep-alive connections; {DURATION:g} s")
    print(
        f"check-ins/s:        {ours['rps']:8.0f}   p50 {ours['p50_ms']:.2f} ms   "
        f"p99 {ours['p99_ms']:.2f} ms   errors {ours['errors']}   (budget >= {BUDGET};"
        " unchanged appliances sending holds, as today's agent)"
    )
    print(
        f"  full answers/s:   {full['rps']:8.0f}   p50 {full['p50_ms']:.2f} ms   "
        f"p99 {full['p99_ms']:.2f} ms   errors {full['errors']}   (no holds: rules + targets"
        " in every answer, as an agent older than partial answers)"
    )
    print(
        f"trivial handler/s:  {limit['rps']:8.0f}   p50 {limit['p50_ms']:.2f} ms   "
        f"p99 {limit['p99_ms']:.2f} ms   (limit: same server, trivial WSGI app)"
    )
    print(f"ratio: {ours['rps'] / max(limit['rps'], 1):.0%} of the trivial handler")
    ok = ours["errors"] == 0 and full["errors"] == 0 and ours["rps"] >= BUDGET
    print("PASS" if ok else "BELOW BUDGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
