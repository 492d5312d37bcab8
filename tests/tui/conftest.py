"""A real `osiris-server serve` subprocess on 127.0.0.1, seeded through its API.

One server per test session (start-up costs ~1 s); tests that change state use their own site
so they do not disturb each other. The fixture fails loudly if the server does not come up.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.tui.seed import FakeAppliance, admin_client, check, enroll

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    token: str
    data: Path
    init: dict[str, str]
    appliances: dict[str, FakeAppliance] = field(default_factory=dict)

    def admin(self) -> httpx.Client:
        return admin_client(self.url, self.token)

    def site(self, name: str, site_id: str | None = None) -> dict:
        body = {"name": name}
        if site_id:
            body["id"] = site_id
        with self.admin() as h:
            r = h.post("/api/v1/sites", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def enroll(self, site_id: str, hostname: str) -> FakeAppliance:
        a = enroll(self.url, self.token, site_id, hostname)
        self.appliances[hostname] = a
        return a


def start(tmp: Path) -> tuple[subprocess.Popen, LiveServer]:
    data = tmp / "data"
    out = subprocess.run(
        [str(BIN / "osiris-server"), "init", "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    init = json.loads(out.stdout)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(BIN / "osiris-server"), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((tmp / "server.log").read_text()[-2000:])
        time.sleep(0.05)
    return proc, LiveServer(url, init["admin_token"], data, init)


@contextlib.contextmanager
def running(tmp: Path) -> Iterator[LiveServer]:
    """A fresh server of its own for one test module (start()), stopped however the module ends."""
    proc, srv = start(tmp)
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The shared server, seeded with two sites, three appliances, check-ins and evidence."""
    tmp = tmp_path_factory.mktemp("server")
    proc, srv = start(tmp)
    try:
        srv.site("Riverside Family Practice", "riverside")
        srv.site("[bold red]x[/]", "weird")
        a = srv.enroll("riverside", "rv-app-01")
        a.send_evidence(6)
        a.witness()  # cosigns the checkpoint covering its evidence (its status: no checks)
        a.checkin(
            [
                check("dc01", "firewall", "drift"),
                check("dc01", "bitlocker", "compliant"),
                check("fs01", "audit_policy", "compliant"),
            ]
        )
        b = srv.enroll("riverside", "rv-app-02")
        b.checkin([check("ws01", "firewall", "compliant")])
        srv.enroll("weird", "weird-app")
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
