"""The embedded server's own request parser, over raw sockets: strict refusals, keep-alive,
``Expect: 100-continue``, and the server still serving afterwards."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest


def _raw(url: str, data: bytes) -> bytes:
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", b"400"),  # no colon
        (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", b"400"),  # space before colon
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b"400"),  # obs-fold
        (b"GET /healthz HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /healthz\r\n\r\n", b"400"),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", b"431"),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
    ],
)
def test_bad_requests_are_refused_cleanly(server, request_bytes: bytes, status: bytes) -> None:
    out = _raw(server.url, request_bytes)
    assert out.split(b"\r\n", 1)[0].split(b" ")[1] == status, out[:200]
    assert b"Traceback" not in out
    # the server is unharmed
    ok = _raw(server.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")


def test_keep_alive_connection_close_and_expect_continue(server) -> None:
    two = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    out = _raw(server.url, two)  # returns only once the server closed after the 2nd answer
    assert out.count(b"HTTP/1.1 200 ") == 2
    assert out.lower().count(b"connection: close") == 1
    # HTTP/1.0 without keep-alive: one answer, then closed
    out = _raw(server.url, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 ") == 1
    # Expect: 100-continue gets the interim answer before the final one
    body = b'{"x": 1}'
    out = _raw(
        server.url,
        b"POST /api/v1/checkin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 ")
