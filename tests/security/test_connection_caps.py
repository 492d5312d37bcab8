"""One source cannot exhaust the embedded server's connections: beside the global cap there is
a per-source cap, so hundreds of idle connections from one address leave room for everyone
else. Real sockets on loopback; other sources are other loopback addresses (127.0.0.2, …),
which Linux routes to the same listener."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osiris_server.app import App, init_data
from osiris_server.serve import OsirisHTTPServer, make_server

GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Any]:
    made: list[tuple[App, OsirisHTTPServer]] = []

    def make(per_source: int, total: int) -> tuple[OsirisHTTPServer, int]:
        data = tmp_path / f"data{len(made)}"
        init_data(data, "test.osiris/osiris/log")
        app = App.open(data, request_log=False, checkpoint_interval_s=0.0)
        srv = make_server(
            app,
            "127.0.0.1",
            0,
            max_connections=total,
            max_connections_per_source=per_source,
            idle_timeout=60.0,
        )
        threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        made.append((app, srv))
        return srv, srv.server_address[1]

    yield make
    for app, srv in made:
        srv.shutdown()
        srv.drain(2.0)
        srv.server_close()
        app.close()


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed_by_server(socks: list[socket.socket], wait_s: float = 2.0) -> set[socket.socket]:
    """The sockets the server closed (EOF or reset) within ``wait_s``; the rest it holds."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + wait_s
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b"", "the server sent something on an idle connection"
            closed.add(s)
            pending.remove(s)
    return closed


def _get(s: socket.socket) -> bytes:
    s.settimeout(10)
    s.sendall(GET)
    return s.recv(65536)


def _served(port: int, source: str) -> bool:
    with _connect(port, source) as s:
        return _get(s).startswith(b"HTTP/1.1 200 ")


def test_the_connection_over_the_per_source_cap_is_closed_others_are_served(capped) -> None:
    srv, port = capped(per_source=8, total=100)
    held = [_connect(port, "127.0.0.2") for _ in range(8)]
    extra = _connect(port, "127.0.0.2")
    try:
        assert _closed_by_server(held + [extra]) == {extra}
        assert srv.refused == {"global": 0, "per_source": 1}
        # everyone else is served, and the source's own 8 connections work
        assert _served(port, "127.0.0.1")
        assert _get(held[0]).startswith(b"HTTP/1.1 200 ")
        # once the source closes some, it may connect again
        for s in held[4:]:
            s.close()
        deadline = time.monotonic() + 10
        while True:
            again = _connect(port, "127.0.0.2")
            if not _closed_by_server([again], 0.5):
                break
            again.close()
            assert time.monotonic() < deadline, "closed connections were never released"
        assert _get(again).startswith(b"HTTP/1.1 200 ")
        again.close()
    finally:
        for s in held + [extra]:
            s.close()


def test_hundreds_of_idle_connections_from_one_source_leave_room_for_others(capped) -> None:
    srv, port = capped(per_source=64, total=128)
    flood = [_connect(port, "127.0.0.2") for _ in range(300)]
    others: list[socket.socket] = []
    try:
        closed = _closed_by_server(flood, 3.0)
        assert len(flood) - len(closed) == 64  # the source holds exactly its share
        assert srv.refused["per_source"] == 300 - 64
        # a second source gets its own share of the rest, and a third still gets in
        others = [_connect(port, "127.0.0.3") for _ in range(50)]
        assert not _closed_by_server(others, 1.0)
        assert _served(port, "127.0.0.1")
        assert _get(others[0]).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in flood + others:
            s.close()


def test_without_a_per_source_cap_one_source_is_bounded_only_by_the_global_one(capped) -> None:
    """The embedded default (None) is the global cap: what the per-source cap changes."""
    srv, port = capped(per_source=None, total=20)
    flood = [_connect(port, "127.0.0.2") for _ in range(21)]
    try:
        assert len(_closed_by_server(flood)) == 1
        assert srv.refused == {"global": 1, "per_source": 0}
    finally:
        for s in flood:
            s.close()
