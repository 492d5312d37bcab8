"""End-to-end peers: the REAL ``osiris-server`` (a subprocess on 127.0.0.1), seeded through its
HTTP API, a lab Windows host behind the real WS-Man server, and an agent enrolled with the real
``enroll`` and driven in-process with ``Agent.cycle()``.

Nothing here fakes a seam: evidence goes through the server's ingest and transparency log, the
receipts the agent stores are checked again here against the server's pinned log key, scripts go
through pywinrm/paramiko to the lab hosts, and the lab hosts' state is read back to prove that a
heal really changed something.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from osiris_core import note, tlog
from osiris_core.evidence import GENESIS_HASH, bundle_hash
from osiris_core.keys import Verifier
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

ROOT = Path(__file__).resolve().parents[2]
WIN_PASSWORD = "Pw-E2E-UNIQUE-MARKER-5b1c7e"
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
NEVER = {"days": [], "start": "02:00", "duration_min": 60, "timezone": "UTC"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Central:
    """A real osiris-server: ``init`` once, ``serve`` (re)started on the same port."""

    data: Path
    port: int
    admin: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed on stop
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "osiris_server.cli", "serve", "--data", str(self.data),
             "--listen", f"127.0.0.1:{self.port}"],
            env=_env(), stdout=out, stderr=out,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"osiris-server did not start: {self.log_path.read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)):
        r = httpx.request(
            method, self.url + "/api/v1" + path, json=body,
            headers={"Authorization": f"Bearer {self.admin}"}, timeout=10,
        )  # fmt: skip
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def evidence(self, site_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/evidence?site={site_id}&limit=1000")["evidence"]

    def log_verifier(self) -> Verifier:
        return Verifier.from_vkey(self.api("GET", "/log/keys")["log"])


@pytest.fixture()
def central(tmp_path: Path) -> Iterator[Central]:
    data = tmp_path / "srv"
    init = subprocess.run(
        [sys.executable, "-m", "osiris_server.cli", "init", "--data", str(data), "--json"],
        env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr[-500:]
    c = Central(data, free_port(), json.loads(init.stdout)["admin_token"], tmp_path / "srv.log")
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture()
def win() -> Iterator[tuple[WindowsLabHost, WsmanLabServer]]:
    host = WindowsLabHost()
    with WsmanLabServer(handler=host, password=WIN_PASSWORD) as server:
        yield host, server


@dataclass
class Site:
    id: str
    appliance_id: str = ""


def seed_site(c: Central, window: dict[str, Any] | None = None) -> Site:
    """Partner, site (window: never open unless given) — all through the HTTP API."""
    partner = c.api("POST", "/partners", {"name": f"MSP {os.urandom(2).hex()}"})
    pid = partner["partner"]["id"]
    site = c.api("POST", "/sites", {"name": "Clinic", "partner_id": pid,
                                    "window": window or NEVER})  # fmt: skip
    return Site(site["id"])


def add_winrm(c: Central, site: Site, server: WsmanLabServer, host_id: str = "dc01") -> None:
    c.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": host_id, "kind": "winrm", "address": "127.0.0.1", "port": server.port,
        "lab": True, "use_tls": False, "verify_tls": False, "username": "Administrator",
        "password": WIN_PASSWORD,
    })  # fmt: skip


def enroll_agent(c: Central, site: Site, state: Path, extra_toml: str = "", **kw: Any):
    """Claim code → the real ``enroll`` → ``Agent`` (scanning every cycle, good clock)."""
    import tomllib

    from osiris_agent.config import AgentConfig, load_config, to_toml
    from osiris_agent.cycle import Agent
    from osiris_agent.enroll import enroll
    from tests.agent.fixtures_agent import good_clock

    code = c.api("POST", "/provisions", {"site_id": site.id})["code"]
    r = enroll(c.url, code, state, lab=True)  # lab hosts: the agent must be a lab appliance
    cfg = Path(r.config_path)
    if extra_toml:
        d = load_config(cfg).to_dict()
        for section, body in tomllib.loads(extra_toml).items():
            d.setdefault(section, {}).update(body)
        cfg.write_text(to_toml(AgentConfig.from_dict(d)))
    kw.setdefault("measure_clock", good_clock)
    kw.setdefault("scan_interval_s", 0)
    kw.setdefault("scan_self", False)
    agent = Agent(load_config(cfg), **kw)
    site.appliance_id = agent.appliance_id
    return agent


def bundles(agent: Any) -> list[dict[str, Any]]:
    return [e["bundle"] for e in agent.outbox.envelopes()]


def verify_receipt(agent: Any, c: Central, bundle_hash: str) -> None:
    """The receipt the agent stored proves inclusion of exactly this envelope in a checkpoint
    signed by the server's log key (checked here independently of the agent's witness)."""
    row = agent.db.conn.execute(
        "SELECT envelope, receipt, log_index FROM evidence WHERE bundle_hash = ?", (bundle_hash,)
    ).fetchone()
    assert row is not None and row[1], f"no receipt stored for {bundle_hash}"
    proof = note.TlogProof.parse(row[1])
    opened = note.open_note(proof.checkpoint, [c.log_verifier()])
    cp = note.Checkpoint.parse(opened.text)
    leaf = tlog.leaf_hash(bytes(row[0]))
    tlog.verify_inclusion(leaf, proof.index, cp.size, proof.hashes, cp.root)
    assert proof.index == row[2]


def assert_one_chain(c: Central, site_id: str) -> list[dict[str, Any]]:
    """The site's evidence, in order, is one unbroken hash chain from genesis: seq 1..n with each
    bundle naming its predecessor's hash (a restart that re-enrolled or forked it fails here)."""
    rows = sorted(c.evidence(site_id), key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    prev = GENESIS_HASH
    for r in rows:
        assert r["envelope"]["bundle"]["prev_hash"] == prev
        prev = bundle_hash(r["envelope"]["bundle"])
    return rows
