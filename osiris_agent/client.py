"""HTTP to Central Command: outbound only, one keep-alive connection, stdlib ``http.client``.

Why not httpx: the idle agent has an RSS budget of 60 MB and starts often (``once``, the CLI);
``http.client`` + ``ssl`` is already in the interpreter. The token travels only in the
``Authorization`` header and never appears in an error message or log line.

Errors are classified for the caller: :class:`ServerUnreachable` (network trouble or a 5xx:
retry with backoff), :class:`AuthRefused` (401/403: re-enroll), :class:`ServerRefused` (another
4xx: the request itself was bad; retrying the same bytes will not help).
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from osiris_core.errors import ExitCode, OsirisError

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
    ) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self._ctx: ssl.SSLContext | None = None
        if self.scheme == "https":
            self._ctx = ssl.create_default_context(cafile=ca_file)
        self._conn: http.client.HTTPConnection | None = None

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
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base}{API_PREFIX}{path}"
        last: Exception | None = None
        for attempt in range(2):  # one silent retry for a keep-alive the server closed
            conn = self._connect()
            try:
                conn.request("POST", url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                status = resp.status
                if resp.will_close:
                    self.close()
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                last = e
                if attempt == 1 or not isinstance(
                    e, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise ServerUnreachable(f"cannot reach {self!r}: {_why(e)}") from None
        else:  # pragma: no cover - loop always breaks or raises
            raise ServerUnreachable(f"cannot reach {self!r}: {_why(last)}")
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ServerUnreachable("server answer is too large")
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        if status >= 500:
            raise ServerUnreachable(f"server error {status}: {_message(doc)}")
        if status in (401, 403):
            raise AuthRefused(f"server refused our token ({status}): {_message(doc)}")
        if status >= 400:
            code = "E_HTTP"
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                code = str(doc["error"].get("code", code))
            raise ServerRefused(f"server refused {path} ({status}): {_message(doc)}", status, code)
        if doc is None:
            raise ServerUnreachable(f"server answer to {path} is not JSON")
        return doc

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """GET ``/api/v1<path>`` (first-boot MAC polling); the same errors as :meth:`post`."""
        hdrs = {"Accept": "application/json", "User-Agent": self.user_agent, **(headers or {})}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        conn = self._connect()
        try:
            conn.request("GET", f"{self.base}{API_PREFIX}{path}", headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read(MAX_RESPONSE_BYTES + 1)
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            raise ServerUnreachable(f"cannot reach {self!r}: {_why(e)}") from None
        finally:
            self.close()  # a poll every minute or so: no keep-alive to go stale
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ServerUnreachable("server answer is too large")
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        if status >= 500 or status == 429:
            raise ServerUnreachable(f"server busy or failing ({status}): {_message(doc)}")
        if status in (401, 403):
            raise AuthRefused(f"server refused us ({status}): {_message(doc)}")
        if status >= 400:
            code = "E_HTTP"
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                code = str(doc["error"].get("code", code))
            raise ServerRefused(f"server refused {path} ({status}): {_message(doc)}", status, code)
        if doc is None:
            raise ServerUnreachable(f"server answer to {path} is not JSON")
        return doc


def _why(e: Exception | None) -> str:
    if e is None:
        return "unknown error"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _message(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return str(doc["error"].get("message", ""))[:300]
    return "no details"
