"""The embedded HTTP/1.1 server: threaded, keep-alive, TCP_NODELAY, TLS and optional mTLS.

Why not ``wsgiref``: it is single-threaded and HTTP/1.0. Why not a dependency: the stdlib
``ThreadingHTTPServer`` does the job once four things are fixed (reference/limits.md §3):

* **TCP_NODELAY** (``disable_nagle_algorithm``) *and* one ``sendall`` per response: without them
  every keep-alive request waits ~44 ms for Nagle + delayed ACK.
* **Deadlines, not only timeouts**: a reaper thread shuts down any connection that has spent
  longer than ``read_timeout`` receiving one request (slowloris), or ``idle_timeout`` idle
  between keep-alive requests; a slow client cannot hold a thread forever.
* **Connection caps**: at most ``max_connections`` at once, and at most
  ``max_connections_per_source`` from one source (an IPv4 address, or an IPv6 /64, which one
  party usually holds whole), so one client opening hundreds of idle connections cannot take
  every slot from the others. A connection over either cap is closed at accept (a TLS client
  could not read a plain-text answer before its handshake anyway).
* **Body limit** before reading: ``Content-Length`` above the limit is answered 413 and the
  connection closed; chunked request bodies are refused (411).
* **Errors in one shape**: everything this module answers itself (400 for a malformed request
  line or header, 414, 431, 505, 411, 413, 500) is the API's ``{"error": {"code", "message"}}``
  as ``application/json``, like every answer of the app.
* **TLS in the worker thread**: the handshake runs in the connection's thread under the read
  timeout, so a client that never finishes its handshake cannot block ``accept``. With
  ``client_ca`` a client certificate is *optional* at the handshake but must chain to that CA
  when presented; the verified certificate (DER, read once per connection) reaches the app as
  ``environ["osiris.client_cert"]`` and ``environ["osiris.mtls"]`` is True, and the app decides
  per principal (appliances must present theirs, osiris_server/client_ca.py). Required at the
  handshake it would lock out enrolment, which is how an appliance gets its certificate.

SIGTERM/SIGINT: stop accepting, let in-flight requests finish (idle keep-alive connections are
closed at once), then close the app (heartbeats flushed, log and database closed).

Why this file is long: it is one server, and the list above is its job. The body and header
readers, the handler and the server class enforce those limits together (the server's reaper sets
the deadlines the handler's reads run under, the body reader counts against the limit the handler
checked), so each piece only makes sense beside the others.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from osiris_server.http import error_body, source_key

MAX_HEADER_LINE = 8192


class _Body(io.RawIOBase):
    """``wsgi.input`` limited to Content-Length; tells the connection when the body is in."""

    def __init__(self, rfile: Any, length: int, on_done: Any) -> None:
        self.rfile = rfile
        self.remaining = length
        self.on_done = on_done
        if length == 0:
            on_done()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if n is None or n < 0 or n > self.remaining:
            n = self.remaining
        data = self.rfile.read(n)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        if self.remaining <= 0:
            self.on_done()
        return data

    def readline(self, limit: int = -1) -> bytes:  # type: ignore[override]
        if self.remaining <= 0:
            return b""
        n = self.remaining if limit is None or limit < 0 else min(limit, self.remaining)
        data = self.rfile.readline(n)
        self.remaining -= len(data)
        if self.remaining <= 0 or not data:
            self.remaining = 0
            self.on_done()
        return data

    def drain(self) -> bool:
        """Discard what the app did not read, so the next keep-alive request parses cleanly."""
        while self.remaining > 0:
            if not self.read(min(self.remaining, 65536)):
                return False
        return True


MAX_HEADERS = 100
_METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))
# RFC 9110 token: anything else in a field name is a parser-differential (smuggling) vector
_TOKEN = re.compile(r"[!#$%&'*+\-.^`|~0-9A-Za-z_]+")
# field values: visible ASCII, obs-text, SP and HTAB; a bare CR or NUL is refused because a
# proxy in front may treat it as a line end and see a different header block than we do
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LENGTH = re.compile(r"[0-9]{1,19}")


class _Headers:
    """Request headers: case-insensitive ``get`` (first value) and ``items`` in arrival order.

    Why not the stdlib's ``email.message.Message``: parsing headers through the email package
    cost more CPU than the whole check-in handler (profiled); this is what the server needs.
    """

    __slots__ = ("_items", "_first", "_count")

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._first: dict[str, str] = {}
        self._count: dict[str, int] = {}

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        low = name.lower()
        self._first.setdefault(low, value)
        self._count[low] = self._count.get(low, 0) + 1

    def count(self, name: str) -> int:
        """How often a field appeared (a repeated Content-Length is refused, not merged)."""
        return self._count.get(name.lower(), 0)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def items(self) -> list[tuple[str, str]]:
        return self._items


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "osiris-server"
    sys_version = ""
    server: OsirisHTTPServer

    def setup(self) -> None:
        # the socket timeout is a backstop; the reaper enforces the real per-phase deadlines
        self.timeout = max(self.server.read_timeout, self.server.idle_timeout) + 5
        super().setup()
        # the verified client certificate, once per connection (None: none presented)
        conn = self.connection
        tls = isinstance(conn, ssl.SSLSocket)
        self.peer_der = conn.getpeercert(binary_form=True) if tls else None
        self.server._track(self, idle=True)

    def finish(self) -> None:
        self.server._untrack(self)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the app writes one structured line per request

    def handle_one_request(self) -> None:
        srv = self.server
        srv._set_deadline(self, srv.idle_timeout, busy=False)
        try:
            self.raw_requestline = self.rfile.readline(MAX_HEADER_LINE + 1)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        srv._set_deadline(self, srv.read_timeout, busy=True)
        if len(self.raw_requestline) > MAX_HEADER_LINE:
            self.requestline = ""
            self.request_version = "HTTP/1.1"
            self.command = ""
            self._simple(414, "E_URI_TOO_LONG", f"request line longer than {MAX_HEADER_LINE} bytes")
            return
        try:
            if not self.parse_request():
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if self.command not in _METHODS:
            self._simple(405, "E_METHOD", "method not allowed")
            return
        try:
            self._run_wsgi()
        except (TimeoutError, OSError, ssl.SSLError):
            self.close_connection = True
        finally:
            if srv.stopping.is_set():
                self.close_connection = True

    def parse_request(self) -> bool:
        """Request line + headers, strictly (RFC 9112); answers 400/431/505 itself.

        Replaces the stdlib version (which parses headers with the email package) with a
        plain loop: bounded line length and count, no obsolete line folding, no whitespace
        before the colon (request smuggling vectors), ``Connection`` and ``Expect`` honoured.
        """
        self.command = ""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = line
        words = line.split(" ")
        if len(words) != 3 or not words[1]:
            self._simple(400, "E_HTTP", "malformed request line")
            return False
        command, path, version = words
        if _BAD_VALUE.search(line) or "\t" in line:
            self._simple(400, "E_HTTP", "malformed request line")
            return False
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            self._simple(505, "E_HTTP", "HTTP/1.1 or HTTP/1.0 only")
            return False
        self.command, self.path, self.request_version = command, path, version
        if path.startswith("//"):  # never let a path look like a network reference
            self.path = "/" + path.lstrip("/")
        headers = _Headers()
        rfile = self.rfile
        for _ in range(MAX_HEADERS + 1):
            raw = rfile.readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE:
                self._simple(
                    431, "E_HEADERS_TOO_LARGE", f"a header line is longer than {MAX_HEADER_LINE}"
                )
                return False
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:  # connection closed inside the header block
                return False
            text = str(raw, "iso-8859-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or _TOKEN.fullmatch(name) is None or _BAD_VALUE.search(value):
                self._simple(400, "E_HTTP", "malformed header line")
                return False
            if "_" in name:
                # CGI/WSGI maps "-" and "_" to the same HTTP_ key: "X_API_Key" would pass for
                # "X-API-Key" behind a proxy that filters only the latter (nginx drops these too)
                continue
            headers.add(name, value.strip(" \t"))
        else:
            self._simple(431, "E_HEADERS_TOO_LARGE", f"more than {MAX_HEADERS} header lines")
            return False
        self.headers = headers  # type: ignore[assignment]
        conn = (headers.get("Connection") or "").lower()
        if conn == "close":
            self.close_connection = True
        elif conn == "keep-alive" or version == "HTTP/1.1":
            self.close_connection = False
        expect = (headers.get("Expect") or "").lower()
        if expect == "100-continue" and version == "HTTP/1.1":
            try:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return False
        return True

    def _simple(self, status: int, code: str, message: str) -> None:
        """An error answered by the server itself, in the API's error shape; then close."""
        body = b"" if self.command == "HEAD" else error_body(code, message)
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        self.close_connection = True
        try:
            self.wfile.write(head + body)
            self.wfile.flush()
        except OSError:
            pass

    def _run_wsgi(self) -> None:
        srv = self.server
        # any Transfer-Encoding (even an empty one) is refused: a front proxy may honour it
        if self.headers.count("Transfer-Encoding"):
            self._simple(411, "E_LENGTH_REQUIRED", "send a Content-Length (no chunked bodies)")
            return
        if self.headers.count("Content-Length") > 1:  # which one a proxy used is unknowable
            self._simple(400, "E_INPUT", "more than one Content-Length")
            return
        raw_len = self.headers.get("Content-Length", "") or ""
        length = 0
        if raw_len:
            if _LENGTH.fullmatch(raw_len) is None:  # ASCII digits only (str.isdigit takes "²")
                self._simple(400, "E_INPUT", "bad Content-Length")
                return
            length = int(raw_len)
        if length > srv.max_body_bytes:
            self._simple(413, "E_TOO_LARGE", "request body too large")
            return
        body = _Body(self.rfile, length, lambda: srv._set_deadline(self, None, busy=True))
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": srv.server_name_str,
            "SERVER_PORT": str(srv.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": raw_len,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if srv.ssl_context else "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "osiris.mtls": srv.client_auth,
            "osiris.client_cert": self.peer_der,
        }
        for k, v in self.headers.items():
            key = "HTTP_" + k.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"):
                continue
            environ[key] = v if key not in environ else environ[key] + "," + v
        status_headers: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            status_headers[:] = [status, headers]
            return lambda data: None

        try:
            chunks = srv.app(environ, start_response)
            try:
                out = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            status, headers = status_headers
        except (TimeoutError, OSError, ssl.SSLError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the app is a 500, never a hang-up
            _log({"event": "app_error", "error": type(exc).__name__})
            self._simple(500, "E_INTERNAL", "internal error")
            return
        if not body.drain():
            self.close_connection = True
        if srv.stopping.is_set():
            self.close_connection = True
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command == "HEAD":
            out = b""
        self.wfile.write(head + out)  # one write: no Nagle/delayed-ACK stall
        self.wfile.flush()


class OsirisHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(
        self,
        address: tuple[str, int],
        app: Any,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
        read_timeout: float = 30.0,
        idle_timeout: float = 75.0,
        max_connections: int = 1024,
        max_connections_per_source: int | None = None,
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        # mTLS: the context verifies client certificates (tls_context with a client CA)
        self.client_auth = ssl_context is not None and ssl_context.verify_mode != ssl.CERT_NONE
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        # None: no cap beside the global one (embedding, tests); `osiris-server serve` passes
        # server.toml's max_connections_per_source (default 64)
        self.max_connections_per_source = max_connections_per_source or max_connections
        self.stopping = threading.Event()
        self._conns: dict[Any, list[Any]] = {}  # handler -> [deadline, busy, socket]
        self._conn_lock = threading.Lock()
        self._active = 0
        self._per_source: dict[str, int] = {}
        self.refused = {"global": 0, "per_source": 0}  # connections closed at accept
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)
        self.server_name_str = address[0]
        self._reaper = threading.Thread(target=self._reap, name="osiris-reaper", daemon=True)
        self._reaper.start()

    # ---- connection bookkeeping
    def _track(self, handler: _Handler, idle: bool) -> None:
        with self._conn_lock:
            self._conns[handler] = [time.monotonic() + self.idle_timeout, not idle, handler.request]

    def _untrack(self, handler: _Handler) -> None:
        with self._conn_lock:
            self._conns.pop(handler, None)

    def _set_deadline(self, handler: _Handler, seconds: float | None, busy: bool) -> None:
        # hot path: a list item assignment is atomic under the GIL, no lock needed
        entry = self._conns.get(handler)
        if entry is not None:
            entry[0] = None if seconds is None else time.monotonic() + seconds
            entry[1] = busy
        if not busy and self.stopping.is_set():
            self._kill(handler.request)

    @staticmethod
    def _kill(sock: Any) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reap(self) -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._conn_lock:
                late = [e[2] for e in self._conns.values() if e[0] is not None and e[0] < now]
            for sock in late:
                self._kill(sock)

    # ---- accept path
    def process_request(self, request: Any, client_address: Any) -> None:
        src = source_key(client_address[0])
        with self._conn_lock:
            full = None
            if self._active >= self.max_connections:
                full = "global"
            elif self._per_source.get(src, 0) >= self.max_connections_per_source:
                full = "per_source"
            else:
                self._active += 1
                self._per_source[src] = self._per_source.get(src, 0) + 1
            if full is not None:
                self.refused[full] += 1
        if full is not None:
            self.shutdown_request(request)
            return
        t = threading.Thread(
            target=self.process_request_thread, args=(request, client_address, src), daemon=True
        )
        with self._conn_lock:
            self._workers.add(t)
        t.start()

    def process_request_thread(  # type: ignore[override]
        self, request: Any, client_address: Any, src: str | None = None
    ) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._active -= 1
                if src is not None:
                    n = self._per_source.get(src, 1) - 1
                    if n > 0:
                        self._per_source[src] = n
                    else:
                        self._per_source.pop(src, None)
                self._workers.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        request.settimeout(self.read_timeout)
        # CPython applies the socket timeout to the whole handshake (one deadline, not per
        # recv), so a client dribbling its ClientHello is cut at read_timeout (tested)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            _log(
                {
                    "event": "tls_handshake_failed",
                    "remote": client_address[0],
                    "error": type(exc).__name__,
                }
            )
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log(
            {
                "event": "connection_error",
                "remote": client_address[0],
                "error": type(sys.exc_info()[1]).__name__,
            }
        )

    # ---- graceful stop
    def drain(self, timeout: float = 10.0) -> None:
        """Stop accepting (call after ``shutdown``), close idle connections, wait for busy."""
        self.stopping.set()
        with self._conn_lock:
            idle = [e[2] for e in self._conns.values() if not e[1]]
            threads = list(self._workers)
        for sock in idle:
            self._kill(sock)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


def _log(obj: dict[str, Any]) -> None:
    try:
        sys.stderr.write(json.dumps(obj) + "\n")
    except (OSError, ValueError):
        pass


def tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with ``client_ca``, a client certificate is asked for and, when
    presented, must chain to that CA (the handshake fails otherwise). Optional, not required:
    the app enforces it per principal (module docstring)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


def make_server(
    app: Any,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    read_timeout: float = 30.0,
    idle_timeout: float = 75.0,
    max_connections: int = 1024,
    max_connections_per_source: int | None = None,
) -> OsirisHTTPServer:
    return OsirisHTTPServer(
        (host, port),
        app,
        ssl_context=ssl_context,
        max_body_bytes=max_body_bytes,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_connections_per_source=max_connections_per_source,
    )


def serve(app: Any, server: OsirisHTTPServer, ready: Any = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully and close the app."""

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.drain()
        server.server_close()
        close = getattr(app, "close", None)
        if close is not None:
            close()
        _log({"event": "stopped"})
