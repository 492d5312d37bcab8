"""Connections that ``Transport.close()`` can cut while a thread is blocked reading them.

Why: the console runs its requests in thread workers, and a thread cannot be stopped. Against a
server that took the connection and never answers (a frozen process), a worker sits in
``recv`` until its budget runs out, and the process cannot end before its threads do: `q`
restored the terminal at once, but the shell prompt came back only up to 10 s later. Closing a
socket from another thread does not wake a blocked ``recv``; ``shutdown`` does. So every stream
the transport opens is remembered here (weakly: a closed connection is forgotten), and
``abort()`` shuts them all down — the blocked read returns, httpx raises, the worker ends.

This plugs into httpcore's public backend interface (``NetworkBackend``/``NetworkStream``); the
one private step is handing the backend to the pool httpx built (``install``), guarded so that a
different httpx only loses the early abort, never a request.
"""

from __future__ import annotations

import socket
import ssl
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class _Stream(httpcore.NetworkStream):
    """A stream that registers itself, and the TLS stream it becomes, with its backend."""

    def __init__(self, inner: httpcore.NetworkStream, backend: AbortableBackend) -> None:
        self._inner = inner
        self._backend = backend
        backend.track(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def abort(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed, or detached by TLS (its TLS stream is tracked)
                pass


class AbortableBackend(httpcore.SyncBackend):
    def __init__(self) -> None:
        self._streams: weakref.WeakSet[_Stream] = weakref.WeakSet()
        self._lock = threading.Lock()

    def track(self, stream: _Stream) -> None:
        with self._lock:
            self._streams.add(stream)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        inner = super().connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(inner, self)

    def abort(self) -> None:
        """Shut down every stream still open: blocked reads return at once."""
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.abort()


def install(transport: httpx.HTTPTransport) -> AbortableBackend | None:
    """Give ``transport``'s connection pool an abortable backend; None if this httpx has no
    such pool (then ``close`` simply cannot cut a blocked read early)."""
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        return None
    backend = AbortableBackend()
    pool._network_backend = backend
    return backend
