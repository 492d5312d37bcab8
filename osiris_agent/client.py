"""HTTP to Central Command: outbound only, one keep-alive connection, stdlib ``http.client``.

Why not httpx: the idle agent has an RSS budget of 60 MB and starts often (``once``, the CLI);
``http.client`` + ``ssl`` is already in the interpreter. The token travels only in the
``Authorization`` header and never appears in an error message or log line.

Errors are classified for the caller: :class:`ServerUnreachable` (network trouble or a 5xx:
retry with backoff), :class:`AuthRefused` (401/403: re-enroll), :class:`ServerRefused` (another
4xx: the request itself was bad; retrying the same bytes will not help).

mTLS: with ``client_cert`` (certificate, key) the connection presents the appliance's client
certificate; the key file must be 0600 (a looser one is refused, exit 2, before any request).
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from osiris_core.errors import ExitCode, KeyFormatError, OsirisError
from osiris_core.files import read_private_file

API_PREFIX = "/api/v1"
MAX_RESPONSE_BYTES = 64 << 20


class ClientError(OsirisError):
    code = "E_CLIENT"


class ServerUnreachable(ClientError):
    code = "E_UNREACHABLE"
    exit_code = ExitCode.UNREACHABLE


class AuthRefused(ClientError):
    code = "E_AUTH"
    exit_code = ExitCode.AUTH


class ServerRefused(ClientError):
    """A 4xx other than 401/403; ``error_code`` is the server's ``error.code``."""

    code = "E_REFUSED"

    def __init__(self, message: str, status: int, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ServerClient:
    """JSON POSTs to ``<url>/api/v1``; reconnects transparently after a dropped keep-alive."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
        user_agent: str = "osiris-agent",
        client_cert: tuple[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self.ca_file = ca_file
        self._ctx: ssl.SSLContext | None = None
        self._conn: http.client.HTTPConnection | None = None
        self.use_client_cert(client_cert)

    def use_client_cert(self, client_cert: tuple[str, str] | None) -> None:
        """(Re)build the TLS context, e.g. after the client certificate was renewed."""
        if self.scheme != "https":
            return
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if client_cert is not None:
            _load_client_cert(ctx, *client_cert)
        self.close()
        self._ctx = ctx

    def __repr__(self) -> str:  # never show the token
        return f"ServerClient({self.scheme}://{self.host}:{self.port}{self.base})"

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._ctx is not None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._ctx
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, path: str, body: Any) -> Any:
        """POST JSON to ``/api/v1<path>`` and return the parsed JSON answer."""
        data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        status, raw = self._exchange("POST", path, data, {"Content-Type": "application/json"})
        return self._decode(path, status, raw)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """GET ``/api/v1<path>`` (first-boot MAC polling); the same errors as :meth:`post`, and
        a 429 is "busy" (retry later). No keep-alive: a poll every minute or so would find it
        stale."""
        try:
            status, raw = self._exchange("GET", path, None, headers or {})
        finally:
            self.close()
        if status == 429:
            raise ServerUnreachable(f"server busy ({status}): {_message(_json(raw))}")
        return self._decode(path, status, raw)

    def _exchange(
        self, method: str, path: str, data: bytes | None, extra: dict[str, str]
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent, **extra}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base}{API_PREFIX}{path}"
        for attempt in range(2):  # one silent retry for a keep-alive the server closed
            conn = self._connect()
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                if resp.will_close:
                    self.close()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 1 or not isinstance(
                    e, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise ServerUnreachable(f"cannot reach {self!r}: {_why(e)}") from None
                continue
            if len(raw) > MAX_RESPONSE_BYTES:
                raise ServerUnreachable("server answer is too large")
            return resp.status, raw
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _decode(path: str, status: int, raw: bytes) -> Any:
        doc = _json(raw)
        if status >= 500:
            raise ServerUnreachable(f"server error {status}: {_message(doc)}")
        if status in (401, 403):
            code = _code(doc)
            if code == "E_CLIENT_CERT":
                raise AuthRefused(f"server refused our client certificate: {_message(doc)}")
            raise AuthRefused(f"server refused our token ({status}): {_message(doc)}")
        if status >= 400:
            raise ServerRefused(
                f"server refused {path} ({status}): {_message(doc)}", status, _code(doc)
            )
        if doc is None:
            raise ServerUnreachable(f"server answer to {path} is not JSON")
        return doc


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _code(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return str(doc["error"].get("code", "E_HTTP"))
    return "E_HTTP"


def _load_client_cert(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    """The mTLS certificate and key; the key must be 0600 (checked like every key file)."""
    read_private_file(key, "client certificate key", max_bytes=16384)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise KeyFormatError(
            f"cannot use client certificate {cert} with key {key}: {_why(e)}"
        ) from None


def _why(e: Exception | None) -> str:
    if e is None:
        return "unknown error"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _message(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return str(doc["error"].get("message", ""))[:300]
    return "no details"
