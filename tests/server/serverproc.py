"""Real ``osiris-server`` processes for the backup/restore and multi-host tests.

Each server is a subprocess on its own loopback port (so kill -9 is a real kill), with its
stderr in a file (an unread pipe would fill up and block the server's log writes).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from osiris_core import evidence as ev
from osiris_core import note, tlog
from osiris_core.keys import Verifier

CLI = [sys.executable, "-m", "osiris_server.cli"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProc:
    """``osiris-server serve --data DATA [extra...]`` on a free port, ready when returned."""

    def __init__(self, data: Path, *extra: str, logs: Path | None = None) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        logs = logs or data.parent
        self.err_path = logs / f"stderr-{self.port}.log"
        self.err_file = open(self.err_path, "wb")  # noqa: SIM115 - closed with the process
        self.p = subprocess.Popen(
            [*CLI, "serve", "--data", str(data), "--listen", f"127.0.0.1:{self.port}", *extra],
            stdout=subprocess.DEVNULL,
            stderr=self.err_file,
        )
        deadline = time.monotonic() + 60  # generous: a loaded box starts Python slowly
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise AssertionError(f"server exited {self.p.returncode}: {self.stderr()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.p.kill()
        raise AssertionError("server did not start: " + self.stderr()[-2000:])

    def stderr(self) -> str:
        self.err_file.flush()
        return self.err_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self.err_file.close()


def verified_checkpoint(text: str, log_vkey: str) -> note.Checkpoint:
    """The checkpoint body of a signed note, after checking the log's signature on it."""
    opened = note.open_note(text, [Verifier.from_vkey(log_vkey)])
    return note.Checkpoint.parse(opened.text)


def check_receipts(
    url: str, token: str, site_id: str, appliance_id: str, log_vkey: str
) -> tuple[int, bytes, int]:
    """Every evidence row of one appliance with its inclusion proof against the server's newest
    checkpoint, each verified here from the envelope bytes up (not by the code under test).
    Returns (checkpoint size, root, rows verified); rows beyond the checkpoint fail."""
    h = {"Authorization": f"Bearer {token}"}
    cp = httpx.get(url + "/api/v1/log/checkpoint", headers=h, timeout=30)
    assert cp.status_code == 200, cp.text
    body = verified_checkpoint(cp.json()["note"], log_vkey)
    n = 0
    after: int | None = None
    rows: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {
            "site": site_id, "appliance": appliance_id, "proof_size": body.size, "limit": 500,
        }  # fmt: skip
        if after is not None:
            params["after_seq"] = after
        r = httpx.get(url + "/api/v1/evidence", headers=h, params=params, timeout=60)
        assert r.status_code == 200, r.text
        page = r.json()["evidence"]
        rows += page
        if len(page) < 500:
            break
        after = page[-1]["seq"]
    for row in rows:
        env = row["envelope"]
        assert ev.bundle_hash(env["bundle"]) == row["bundle_hash"]
        proof = row["proof"]
        assert proof is not None, f"row at {row['index']} is not covered by {body.size}"
        leaf = tlog.leaf_hash(ev.envelope_bytes(env))
        hashes = [base64.b64decode(x) for x in proof["hashes"]]
        tlog.verify_inclusion(leaf, row["index"], body.size, hashes, body.root)
        n += 1
    return body.size, body.root, n


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
