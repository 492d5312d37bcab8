"""The server as real processes: several gunicorn workers sharing one data directory, two
processes sharing one transparency log file, and kill -9 of ``osiris-server serve`` while
evidence streams in. Everything over real sockets on 127.0.0.1 and real SQLite files. Plus
the heartbeat buffers of two processes (two engines on one index, either engine) flushing out
of order, and two servers on one index handing the same appliance its credentials.

The multi-process tests check the single-sequencer rule (DESIGN §7): however many processes
append and sign, every stored checkpoint is a prefix of the one final tree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from osiris_core import note as notes
from osiris_core import protocol, tlog
from osiris_core.canonical import dumps as canonical_dumps
from osiris_core.keys import Verifier, load_private_key
from osiris_server.app import init_data
from osiris_server.db import appliances as db_appliances
from osiris_server.db import open_database
from osiris_server.db.appliances import HeartbeatBuffer
from osiris_server.log import TransparencyLog
from tests.server.conftest import Server, checkin_body, start_server, stop_server
from tests.server.test_resources import WINRM

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.osiris/osiris/log"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("server did not become healthy")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _verify_final_log(
    data: Path, log_vkey: str, db_url: str | None = None
) -> tuple[int, list[int]]:
    """Open the log (its file, or on PostgreSQL its schema) after the servers stopped: every
    stored checkpoint is signed by the log key, matches the stored tree, and is consistent
    with the final checkpoint."""
    signer = load_private_key(data / "keys" / "log.key")
    where = db_url or data / "log.db"
    log = TransparencyLog.open(where, signer, ORIGIN, interval_s=0, idle_s=0)
    try:
        log.verify_storage()  # every leaf, subtree hash and checkpoint root recomputed
        final = log.wait_checkpoint(log.size())
        vkey = Verifier.from_vkey(log_vkey)
        sizes = log.checkpoint_sizes()
        for size in sizes:
            cp = log.checkpoint_at(size)
            body = notes.Checkpoint.parse(notes.open_note(cp.note, [vkey]).text)
            assert (body.size, body.root) == (cp.size, cp.root)
            proof = log.consistency_proof(size, final.size) if 0 < size < final.size else []
            tlog.verify_consistency(size, final.size, cp.root, final.root, proof)
        return log.size(), sizes
    finally:
        log.close()


def _verify_receipt(receipt: str, envelope: dict[str, Any], log_vkey: str) -> notes.Checkpoint:
    proof = notes.TlogProof.parse(receipt)
    opened = notes.open_note(proof.checkpoint, [Verifier.from_vkey(log_vkey)])
    cp = notes.Checkpoint.parse(opened.text)
    leaf = tlog.leaf_hash(canonical_dumps(envelope))
    tlog.verify_inclusion(leaf, proof.index, cp.size, proof.hashes, cp.root)
    return cp


# ---------------------------------------------------------------- two processes, one log file

_APPENDER = """
import sys, os
sys.path.insert(0, sys.argv[4])
from osiris_core.keys import load_private_key
from osiris_server.log import TransparencyLog
db, keyfile, tag = sys.argv[1], sys.argv[2], sys.argv[3]
signer = load_private_key(keyfile)
log = TransparencyLog.open(db, signer, signer.name, interval_s=0, idle_s=0)
for i in range(60):
    res = log.append([f"{tag}-{i}-{j}".encode() for j in range(3)])
    cp = log.wait_checkpoint(max(r.index for r in res) + 1)
    print(cp.size, flush=True)
log.close()
"""


def test_two_processes_share_one_log_without_forking(tmp_path: Path) -> None:
    info = init_data(tmp_path / "d", ORIGIN)
    data = tmp_path / "d"
    # create the log file once so both children open an initialised database
    signer = load_private_key(data / "keys" / "log.key")
    TransparencyLog.open(data / "log.db", signer, ORIGIN, idle_s=0).close()
    script = tmp_path / "appender.py"
    script.write_text(_APPENDER)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(data / "log.db"),
                str(data / "keys" / "log.key"),
                tag,
                str(ROOT),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    size, sizes = _verify_final_log(data, info["log_vkey"])
    assert size == 2 * 60 * 3  # every entry of both processes, each exactly once
    assert len(sizes) >= 60  # both processes signed; all checked consistent above


# ---------------------------------------------------------------- gunicorn, two workers


def _gunicorn(data: Path, port: int, log_file: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "4",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "osiris_server.app:create_app()",
    ]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**_env(), "OSIRIS_DATA": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=log_file.open("wb"),
    )


def test_gunicorn_two_workers_checkin_and_concurrent_ingest(
    tmp_path: Path, db_url: str | None
) -> None:
    data = tmp_path / "d"
    info = init_data(data, ORIGIN, db_url)  # server.toml names the database on PostgreSQL
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    errlog = tmp_path / "gunicorn.log"
    proc = _gunicorn(data, port, errlog)
    receipts: list[tuple[str, dict[str, Any]]] = []
    try:
        _wait_healthy(url, proc)
        helper = Server(url=url, app=None, data=data, admin_token=info["admin_token"], init=info)  # type: ignore[arg-type]
        site = helper.site("Gunicorn clinic")
        fleet = [helper.enroll(site["id"], f"ap{i}") for i in range(4)]

        # a real check-in through gunicorn
        r = httpx.post(
            url + "/api/v1/checkin",
            json=checkin_body(fleet[0]),
            headers={"Authorization": f"Bearer {fleet[0].token}"},
            timeout=20,
        )
        assert r.status_code == 200, r.text
        protocol.validate_checkin_response(r.json())

        lock = threading.Lock()
        failures: list[str] = []

        def upload(a: Any) -> None:
            for _ in range(6):
                envs = [a.envelope() for _ in range(10)]
                # a fresh connection per batch spreads the batches over both workers
                rr = httpx.post(
                    url + "/api/v1/evidence",
                    json={"envelopes": envs},
                    headers={"Authorization": f"Bearer {a.token}"},
                    timeout=30,
                )
                with lock:
                    if rr.status_code != 200:
                        failures.append(rr.text)
                        return
                    for env, res in zip(envs, rr.json()["results"], strict=True):
                        if res["status"] != "accepted":
                            failures.append(json.dumps(res))
                        receipts.append((res["receipt"], env))

        threads = [threading.Thread(target=upload, args=(a,)) for a in fleet]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures[:3]
        assert len(receipts) == 4 * 6 * 10
        for receipt, env in receipts:
            _verify_receipt(receipt, env, info["log_vkey"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = [json.loads(x) for x in errlog.read_text().splitlines() if x.startswith("{")]
    ingest_pids = {x["pid"] for x in lines if x.get("path") == "/api/v1/evidence"}
    assert len(ingest_pids) == 2, f"evidence went to workers {ingest_pids}; want both"
    assert not [x for x in lines if x.get("event") == "internal_error"]
    size, _sizes = _verify_final_log(data, info["log_vkey"], db_url)
    assert size == len(receipts)


# ---------------------------------------------------------------- kill -9 during a stream


def _serve(data: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
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
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_during_evidence_stream_keeps_every_receipt(
    tmp_path: Path, db_url: str | None
) -> None:
    data = tmp_path / "d"
    info = init_data(data, ORIGIN, db_url)  # server.toml names the database on PostgreSQL
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(data, port)
    _wait_healthy(url, proc)
    helper = Server(url=url, app=None, data=data, admin_token=info["admin_token"], init=info)  # type: ignore[arg-type]
    site = helper.site("Crash clinic")
    a = helper.enroll(site["id"])
    acked: list[tuple[str, dict[str, Any]]] = []
    pending: list[dict[str, Any]] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {a.token}"}) as c:
            while not stop.is_set():
                if not pending:
                    pending.extend(a.envelope() for _ in range(20))
                try:
                    rr = c.post("/api/v1/evidence", json={"envelopes": pending}, timeout=5)
                except httpx.HTTPError:
                    return  # the server died under us: this batch was never acknowledged
                if rr.status_code != 200:
                    return
                for env, res in zip(pending, rr.json()["results"], strict=True):
                    assert res["status"] in ("accepted", "duplicate")
                    acked.append((res["receipt"], env))
                pending.clear()

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    t.join(10)
    assert len(acked) >= 200
    before = [_verify_receipt(r, env, info["log_vkey"]) for r, env in acked]

    proc = _serve(data, port)
    try:
        _wait_healthy(url, proc)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {a.token}"}, timeout=20)
        # the batch in flight at the kill is resent (as the agent's outbox does): idempotent
        if pending:
            rr = c.post("/api/v1/evidence", json={"envelopes": pending})
            assert rr.status_code == 200, rr.text
            assert {x["status"] for x in rr.json()["results"]} <= {"accepted", "duplicate"}
        more = [a.envelope() for _ in range(3)]
        rr = c.post("/api/v1/evidence", json={"envelopes": more})
        assert rr.status_code == 200 and rr.json()["results"][0]["status"] == "accepted"
        newer = notes.Checkpoint.parse(
            notes.open_note(rr.json()["checkpoint"], [Verifier.from_vkey(info["log_vkey"])]).text
        )
        for (receipt, env), cp in zip(acked, before, strict=True):
            proof = notes.TlogProof.parse(receipt)
            # still in the log at the same index ...
            h = "sha256:" + hashlib.sha256(canonical_dumps(env["bundle"])).hexdigest()
            got = c.get(f"/api/v1/log/proof/inclusion?hash={h}&size={newer.size}")
            assert got.status_code == 200, got.text
            assert got.json()["index"] == proof.index
            leaf = tlog.leaf_hash(canonical_dumps(env))
            hashes = [base64.b64decode(x) for x in got.json()["hashes"]]
            tlog.verify_inclusion(leaf, proof.index, newer.size, hashes, newer.root)
            # ... and the checkpoint of the receipt is a prefix of the newer one
            cons = c.get(f"/api/v1/log/proof/consistency?from={cp.size}&to={newer.size}")
            assert cons.status_code == 200, cons.text
            tlog.verify_consistency(
                cp.size,
                newer.size,
                cp.root,
                newer.root,
                [base64.b64decode(x) for x in cons.json()["proof"]],
            )
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    _verify_final_log(data, info["log_vkey"], db_url)


# ---------------------------------------------------------------- heartbeats, two processes


def test_heartbeats_flushed_out_of_order_never_move_last_seen_backwards(server: Server) -> None:
    """Two processes buffer check-ins of one appliance (it moved between servers behind a
    proxy); the one holding the *older* heartbeat flushes last. ``last_seen`` and its status
    stay at the newest; a newer heartbeat from either still moves them forward."""
    site = server.site("Heartbeat clinic")
    a = server.enroll(site["id"])
    other = open_database(server.app.cfg)  # a second process's own engine on the same index
    mine = HeartbeatBuffer(server.app.db, interval=3600)
    theirs = HeartbeatBuffer(other, interval=3600)
    try:
        t = float(int(time.time()))
        mine.record(a.id, {"v": "new"}, 5, "1.1.0", at=t)
        theirs.record(a.id, {"v": "old"}, 3, "1.0.0", at=t - 30)
        mine.flush()
        theirs.flush()  # the older heartbeat lands last ...
        row = db_appliances.get(server.app.db, a.id)
        assert row is not None
        # ... and changes nothing
        assert (row["last_seen_epoch"], row["log_size_seen"], row["agent_version"]) == (
            int(t),
            5,
            "1.1.0",
        )
        assert json.loads(row["status_json"]) == {"v": "new"}
        assert row["last_seen_at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(t)))
        theirs.record(a.id, {"v": "newer"}, 6, "1.2.0", at=t + 30)
        theirs.flush()
        row = db_appliances.get(other, a.id)
        assert row is not None and row["last_seen_epoch"] == int(t) + 30
        assert json.loads(row["status_json"]) == {"v": "newer"}
    finally:
        mine.close()
        theirs.close()
        other.close()


def test_two_servers_audit_each_credential_delivery_once(
    tmp_path: Path, db_url: str | None
) -> None:
    """The "first delivery" memo is per process, the fact is the database's: an appliance
    checking in on one server, then another (behind one proxy), then the first again gets its
    credential each time, and the delivery is audited once — also after a rotation, once per
    version. Each server's check-in cache sees the other's rotation at the next check-in."""
    first = tmp_path / "a"
    info = init_data(first, ORIGIN, db_url)
    second = first
    if db_url is not None:  # another host: its own copy of the data directory
        second = tmp_path / "b"
        shutil.copytree(first, second)
    started = [start_server(d) for d in (first, second)]
    servers = [
        Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
        for (app, _srv, u), d in zip(started, (first, second), strict=True)
    ]
    try:
        site = servers[0].site()
        a = servers[0].enroll(site["id"])
        r = servers[1].admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM)
        assert r.status_code == 201, r.text
        cred_id = r.json()["id"]

        def checkin(k: int) -> dict[str, Any]:
            rr = servers[k].client(a.token).post("/api/v1/checkin", json=checkin_body(a))
            assert rr.status_code == 200, rr.text
            return rr.json()

        def delivered() -> list[int]:
            rows = started[0][0].db.query(
                "SELECT detail_json FROM audit WHERE action = 'credential.deliver' AND target = ?",
                [cred_id],
            )
            return sorted(json.loads(x["detail_json"])["version"] for x in rows)

        for k in (0, 1, 0, 1):
            assert a.opened(checkin(k))[0]["password"] == WINRM["password"]
        assert delivered() == [1]
        r = servers[0].admin.patch(
            f"/api/v1/sites/{site['id']}/credentials/{cred_id}", json={"password": "R0tated!"}
        )
        assert r.status_code == 200, r.text
        for k in (1, 0, 1):
            assert a.opened(checkin(k))[0]["password"] == "R0tated!"
        assert delivered() == [1, 2]
    finally:
        for s in servers:
            for c in s.clients:
                c.close()
        for app, srv, _u in started:
            stop_server(app, srv)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(k, raising=False)
