"""`osiris-server` commands as subprocesses: init, serve (SIGTERM, kill -9), token, backup,
vault rotate."""

from __future__ import annotations

import base64
import json
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from osiris_core import note, tlog
from osiris_core.keys import Verifier
from tests.server.conftest import checkin_body

CLI = [sys.executable, "-m", "osiris_server.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=check, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # stderr to a file: an unread pipe would fill up and block the server's log writes
        self.err_path = data.parent / f"stderr-{self.port}.log"
        self.err_file = open(self.err_path, "wb")  # noqa: SIM115 - closed with the process
        self.p = subprocess.Popen(
            [*CLI, "serve", "--data", str(data), "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=self.err_file,
        )
        deadline = time.monotonic() + 60  # generous: a loaded CI runner starts Python slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.p.kill()
        raise AssertionError("server did not start: " + self.stderr()[-2000:])

    def stderr(self) -> str:
        self.err_file.flush()
        return self.err_path.read_text()


def _init(tmp_path: Path) -> tuple[Path, dict]:
    data = tmp_path / "data"
    out = json.loads(run("init", "--data", str(data), "--json").stdout)
    with open(data / "server.toml", "a") as f:
        f.write("checkpoint_interval_s = 0.02\n")
    return data, out


def test_init_creates_private_keys_and_refuses_twice(tmp_path: Path) -> None:
    data, out = _init(tmp_path)
    assert set(out) == {"admin_token", "log_vkey", "order_vkey", "release_vkey"}
    assert out["release_vkey"] not in (out["log_vkey"], out["order_vkey"])
    assert out["admin_token"].startswith("osk_")
    for p in (
        "keys/log.key",
        "keys/order.key",
        "keys/release.key",
        "keys/vault.keyring",
        "osiris.db",
    ):
        mode = stat.S_IMODE((data / p).stat().st_mode)
        assert mode & 0o077 == 0, (p, oct(mode))
    # the token is stored only hashed
    raw = (data / "osiris.db").read_bytes()
    assert out["admin_token"].encode() not in raw
    r = run("init", "--data", str(data), check=False)
    assert r.returncode == 2 and "already initialised" in r.stderr


def test_serve_sigterm_token_backup_rotate(tmp_path: Path) -> None:
    data, out = _init(tmp_path)
    tok = run("token", "create", "--data", str(data), "--role", "operator").stdout.strip()
    assert tok.startswith("osk_")
    srv = Proc(data)
    try:
        h = {"Authorization": f"Bearer {tok}"}
        r = httpx.post(srv.url + "/api/v1/sites", json={"name": "Clinic"}, headers=h)
        assert r.status_code == 201
        site = r.json()["id"]
        r = httpx.post(
            srv.url + f"/api/v1/sites/{site}/credentials",
            headers=h,
            json={
                "host_id": "h1",
                "kind": "ssh_password",
                "address": "10.1.1.1",
                "username": "root",
                "password": "pw-before-rotation",
            },
        )
        assert r.status_code == 201
        # online backup while serving
        bak = tmp_path / "backup.tar.gz"
        run("backup", "--data", str(data), "--out", str(bak))
        with tarfile.open(bak) as tar:
            names = set(tar.getnames())
            assert {"osiris.db", "log.db", "server.toml"} <= names
            assert not any("key" in n for n in names)
            tar.extractall(tmp_path / "restored", filter="data")
        conn = sqlite3.connect(tmp_path / "restored" / "osiris.db")
        assert conn.execute("SELECT name FROM sites").fetchall() == [("Clinic",)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        # graceful stop
        srv.p.send_signal(signal.SIGTERM)
        assert srv.p.wait(timeout=15) == 0
        err = srv.stderr()
        assert '"event": "stopped"' in err
        assert "pw-before-rotation" not in err and tok not in err
        # request log lines: one JSON object per request, path templates, no bodies
        lines = [json.loads(x) for x in err.splitlines() if x.startswith('{"ts"')]
        assert {"method", "path", "status", "ms", "tenant"} <= set(lines[0])
        assert "/api/v1/sites/{site_id}/credentials" in {x["path"] for x in lines}
    finally:
        if srv.p.poll() is None:
            srv.p.kill()
    # vault rotation rewraps every credential; the server still decrypts after restart
    r = json.loads(run("vault", "rotate", "--data", str(data), "--retire-old").stdout)
    assert r["rewrapped"] == 1 and r["retired"]
    srv = Proc(data)
    try:
        r = httpx.post(
            srv.url
            + f"/api/v1/sites/{site}/credentials/"
            + httpx.get(
                srv.url + f"/api/v1/sites/{site}/credentials",
                headers={"Authorization": f"Bearer {out['admin_token']}"},
            ).json()["credentials"][0]["id"]
            + "/reveal",
            headers={"Authorization": f"Bearer {out['admin_token']}"},
            json={},
        )
        assert r.status_code == 200 and r.json()["password"] == "pw-before-rotation"
    finally:
        srv.p.kill()
        srv.p.wait()


def test_kill_9_during_evidence_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    from tests.server.conftest import Server

    data, out = _init(tmp_path)
    srv = Proc(data)
    # enroll through the live process
    helper = Server(
        url=srv.url,
        app=None,
        data=data,
        admin_token=out["admin_token"],  # type: ignore[arg-type]
        init=out,
    )
    site = helper.site()
    a = helper.enroll(site["id"])
    log_v = Verifier.from_vkey(out["log_vkey"])
    acked: list[tuple[str, dict]] = []  # (bundle_hash, envelope)
    checkpoints: list[str] = []
    unacked: list[dict] = []
    stop = threading.Event()

    def stream() -> None:
        seen = 0
        with httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {a.token}"}, timeout=10
        ) as c:
            while not stop.is_set():
                batch = [a.envelope() for _ in range(20)]
                unacked.extend(batch)
                try:
                    r = c.post("/api/v1/evidence", json={"envelopes": batch, "log_size_seen": seen})
                except httpx.HTTPError:
                    return
                if r.status_code != 200:
                    return
                body = r.json()
                for env, res in zip(batch, body["results"], strict=True):
                    assert res["status"] == "accepted"
                    acked.append((res["bundle_hash"], env))
                    unacked.remove(env)
                checkpoints.append(body["checkpoint"])
                seen = note.Checkpoint.parse(note.open_note(body["checkpoint"], [log_v]).text).size

    t = threading.Thread(target=stream)
    t.start()
    # kill once the stream is under way (two batches acknowledged), however slow the machine:
    # a fixed sleep could kill it before the first acknowledgement on a loaded CI runner
    deadline = time.monotonic() + 60
    while len(acked) < 40 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.p.kill()  # SIGKILL, mid-stream
    srv.p.wait()
    stop.set()
    t.join(15)
    assert len(acked) >= 20, "the stream should have been acknowledged at least once"

    srv = Proc(data)
    try:
        c = httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {a.token}"}, timeout=10
        )
        # the agent resends what was not acknowledged; chain continues, no duplicates
        r = c.post("/api/v1/evidence", json={"envelopes": unacked})
        assert r.status_code == 200
        assert {x["status"] for x in r.json()["results"]} <= {"accepted", "duplicate"}
        more = [a.envelope() for _ in range(3)]
        r = c.post("/api/v1/evidence", json={"envelopes": more})
        assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3
        latest = note.Checkpoint.parse(note.open_note(r.json()["checkpoint"], [log_v]).text)
        assert latest.size == len(acked) + len(unacked) + 3  # one leaf per envelope
        # every acknowledged receipt verifies against the newer checkpoint
        for bh, env in acked:
            p = c.get(
                "/api/v1/log/proof/inclusion", params={"hash": bh, "size": latest.size}
            ).json()
            from osiris_core import canonical

            leaf = tlog.leaf_hash(canonical.dumps(env))
            tlog.verify_inclusion(
                leaf,
                p["index"],
                latest.size,
                [base64.b64decode(x) for x in p["hashes"]],
                latest.root,
            )
        # and the log is consistent with every checkpoint signed before the crash
        for cp_note in checkpoints:
            old = note.Checkpoint.parse(note.open_note(cp_note, [log_v]).text)
            pr = c.get(
                "/api/v1/log/proof/consistency", params={"from": old.size, "to": latest.size}
            ).json()
            tlog.verify_consistency(
                old.size,
                latest.size,
                old.root,
                latest.root,
                [base64.b64decode(x) for x in pr["proof"]],
            )
        r = c.post("/api/v1/checkin", json=checkin_body(a, log_size_seen=latest.size))
        assert r.status_code == 200
        c.close()
    finally:
        srv.p.kill()
        srv.p.wait()


@pytest.mark.parametrize(
    "line",
    ["checkpoint_interval_s = 5\n", "checkpoint_interval_s = -1\n", "checkpoint_idle_s = 0\n"],
)
def test_checkpoint_cadence_outside_the_contract_is_refused(tmp_path, line) -> None:
    """The log must checkpoint at least once a second under load and every 5 minutes idle."""
    from osiris_server.app import init_data
    from osiris_server.config import ConfigError, load

    data = tmp_path / "data"
    init_data(data)
    with open(data / "server.toml", "a") as f:
        f.write(line)
    with pytest.raises(ConfigError, match="checkpoint_"):
        load(data)
