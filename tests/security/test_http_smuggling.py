"""The embedded HTTP/1.1 server against a hostile client, over raw sockets on 127.0.0.1.

Each case is one that a front proxy and this server could read differently (request smuggling)
or that used to drop the connection without an answer. A trivial WSGI app echoes what it was
given, so a request that slips through shows up as a 200 with the smuggled content.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osiris_server.serve import make_server, tls_context
from tests.server.test_http import _pki


def _echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("secret internal detail /etc/osiris")
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    seen = sorted(k for k in environ if k.startswith("HTTP_"))
    out = f"path={environ['PATH_INFO']} body={body!r} headers={seen}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


def _start(**kw: Any) -> Any:
    srv = make_server(_echo, "127.0.0.1", 0, **kw)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def _stop(srv: Any) -> None:
    srv.shutdown()
    srv.drain(1.0)
    srv.server_close()


@pytest.fixture
def echo() -> Iterator[int]:
    srv = _start(read_timeout=2, idle_timeout=2)
    yield srv.server_address[1]
    _stop(srv)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk


def _status(out: bytes) -> bytes:
    return out.split(b"\r\n", 1)[0].split(b" ")[1] if out else b"<closed without answer>"


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # two Content-Lengths: we used the first, a proxy may use the last -> desync
        (
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 60\r\n\r\n"
            b"abc" + SMUGGLED,
            b"400",
        ),
        # the same value twice is refused too (simplest rule, nothing legitimate sends it)
        (
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
            b"400",
        ),
        # Unicode digits: str.isdigit() says yes, int() raised -> connection dropped, no answer
        ("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\nab".encode("latin-1"), b"400"),
        (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", b"400"),
        (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", b"400"),
        # an empty Transfer-Encoding was ignored; a proxy may still treat the body as chunked
        (
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc",
            b"411",
        ),
        (
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
            b"411",
        ),
        # a bare CR inside a value: some parsers end the line there and see a second header
        (b"POST /a HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 30\r\n\r\n", b"400"),
        (b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", b"400"),
        # not a token: "Content-Length " / "(x)" / tab before the colon
        (b"GET /a HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", b"400"),
        (b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length\t: 0\r\n\r\n", b"400"),
        # control characters in the request line
        (b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    ],
)
def test_ambiguous_framing_is_refused(echo: int, request_bytes: bytes, status: bytes) -> None:
    out = _raw(echo, request_bytes)
    assert _status(out) == status, out[:300]
    assert b"/smuggled" not in out
    assert b"Traceback" not in out
    assert b"connection: close" in out.lower()  # never keep a desynchronised connection
    ok = _raw(echo, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")


def test_underscore_headers_cannot_impersonate_dashed_ones(echo: int) -> None:
    """WSGI names both ``X-API-Key`` and ``X_API_Key`` HTTP_X_API_KEY; a proxy that strips the
    first would let the second through. Underscore names are dropped, as nginx does."""
    out = _raw(
        echo,
        b"GET /a HTTP/1.1\r\nHost: x\r\nX_API_Key: opk_forged\r\nAuthori_zation: x\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP_X_API_KEY" not in out and b"HTTP_AUTHORI" not in out
    out = _raw(echo, b"GET /a HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\nConnection: close\r\n\r\n")
    assert b"HTTP_X_API_KEY" in out


def test_pipelining_keeps_framing(echo: int) -> None:
    """Body bytes of one request are never parsed as the next request."""
    two = (
        b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET /evil H"
        b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = _raw(echo, two)
    assert out.count(b"HTTP/1.1 200 ") == 2
    assert b"path=/one body=b'GET /evil H'" in out and b"path=/two" in out
    assert b"path=/evil" not in out


def test_app_exception_is_a_500_without_details(echo: int) -> None:
    """A bug in the application answers 500 JSON (it used to drop the connection silently)."""
    out = _raw(echo, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(out) == b"500", out
    assert b"E_INTERNAL" in out
    assert b"secret internal detail" not in out and b"Traceback" not in out


def test_slow_tls_handshake_is_cut_at_the_read_deadline(tmp_path: Path) -> None:
    """A client dribbling its ClientHello one byte at a time must not hold a worker thread:
    the handshake has one overall deadline (CPython's SSL timeout covers the whole handshake;
    this guards against a change to a per-recv timeout or a handshake outside the timeout)."""
    pki = _pki(tmp_path)
    ctx = tls_context(pki["server_cert"], pki["server_key"], client_ca=pki["ca"][2])
    srv = _start(ssl_context=ctx, read_timeout=1.0, idle_timeout=1.0)
    port = srv.server_address[1]
    try:
        # a real ClientHello, captured from a memory BIO, sent one byte every 0.2 s
        cctx = ssl.create_default_context()
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = cctx.wrap_bio(inc, outg)
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outg.read()
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.monotonic()
        closed = False
        for i in range(len(hello) - 1):  # never complete it
            try:
                s.sendall(hello[i : i + 1])
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - t0 > 4:
                break
        if not closed:
            s.settimeout(2)
            try:
                closed = s.recv(10) == b""
            except (ConnectionResetError, TimeoutError):
                closed = True
        assert closed, "the half-finished handshake was still open after 4 s"
        assert time.monotonic() - t0 < 4.5
        s.close()
    finally:
        _stop(srv)


def test_foreign_client_certificate_gets_no_answer_with_client_ca(tmp_path: Path) -> None:
    """With --client-ca a TLS client whose certificate chains to another CA gets no HTTP answer
    at all (a certificate is optional at the handshake, but one presented must verify)."""
    pki = _pki(tmp_path)
    ctx = tls_context(pki["server_cert"], pki["server_key"], client_ca=pki["ca"][2])
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    srv = _start(ssl_context=ctx, read_timeout=2.0, idle_timeout=2.0)
    try:
        cctx = ssl.create_default_context(cafile=pki["ca"][2])
        cctx.load_cert_chain(*pki["client_evil"])
        with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5) as raw:
            got = b""
            try:
                with cctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    got = s.recv(100)
            except (ssl.SSLError, OSError):
                pass
            assert not got.startswith(b"HTTP/1.1 200")
    finally:
        _stop(srv)
