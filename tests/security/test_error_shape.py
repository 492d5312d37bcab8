"""Every error — the raw parser's 400/405/411/413/414/431/505 as well as the app's — is the
API's ``{"error": {"code", "message"}}`` as ``application/json``; never HTML, never a stack
trace, and the server keeps serving. Raw sockets over loopback, so nothing smooths the bytes."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest


def _raw(url: str, data: bytes) -> bytes:
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:  # we sent more than was read before the close
                return out
            if not chunk:
                return out
            out += chunk


def _parse(out: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body[: int(headers.get("content-length", len(body)))]


H = b"Host: x\r\n"
CASES = [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, "E_URI_TOO_LONG"),
    (b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431, "E_HEADERS_TOO_LARGE"),
    (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "E_HEADERS_TOO_LARGE"),
    (b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400, "E_HTTP"),
    (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400, "E_HTTP"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "E_HTTP"),
    (b"GET /healthz\r\n\r\n", 400, "E_HTTP"),
    (b"GET /healthz HTTP/2.0\r\n\r\n", 505, "E_HTTP"),
    (b"BREW /healthz HTTP/1.1\r\n" + H + b"\r\n", 405, "E_METHOD"),
    (
        b"POST /api/v1/sites HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        411,
        "E_LENGTH_REQUIRED",
    ),
    (
        b"POST /api/v1/sites HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
        "E_INPUT",
    ),
    (b"POST /api/v1/sites HTTP/1.1\r\n" + H + b"Content-Length: 1x\r\n\r\n", 400, "E_INPUT"),
    (
        b"POST /api/v1/sites HTTP/1.1\r\n" + H + b"Content-Length: 99999999999\r\n\r\n",
        413,
        "E_TOO_LARGE",
    ),
    # the app's own errors, through the same server
    (b"GET /nope HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", 404, "E_NOT_FOUND"),
    (b"DELETE /healthz HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", 405, "E_METHOD"),
    (b"GET /api/v1/sites HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", 401, "E_AUTH"),
    (
        b"POST /api/v1/provision/claim HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n"
        b'Content-Length: 6\r\nConnection: close\r\n\r\n{"a":1',
        400,
        "E_PARSE",
    ),
    (
        b"POST /api/v1/provision/claim HTTP/1.1\r\n" + H + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
        415,
        "E_MEDIA_TYPE",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "code"), CASES, ids=lambda v: str(v)[:40])
def test_every_error_is_json_in_the_api_shape(
    server, request_bytes: bytes, status: int, code: str
) -> None:
    got_status, headers, body = _parse(_raw(server.url, request_bytes))
    assert got_status == status, body[:200]
    assert headers["content-type"] == "application/json"
    assert headers.get("x-content-type-options") == "nosniff"
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}
    assert doc["error"]["code"] == code
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert b"Traceback" not in body and b"<html" not in body.lower()
    ok = _raw(server.url, b"GET /healthz HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")


def test_head_error_has_the_headers_and_no_body(server) -> None:
    out = _raw(server.url, b"HEAD /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n")
    status, headers, body = _parse(out)
    assert status == 431 and headers["content-type"] == "application/json" and body == b""
