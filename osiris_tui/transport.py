"""HTTP transport to the Central Command API, and the error tree its answers map to.

Why apart from the per-noun calls (``client.Client``): this is the one place that decides what
a failure means — and so the CLI's exit code (console.md): 2 input/usage (4xx other than auth),
3 server unreachable or failing (connect errors, 5xx), 4 authentication refused (401/403) — and
when a request may be retried: idempotent reads on connect errors and 502-504; writes never (a
retried POST could queue an order twice).
"""

from __future__ import annotations

import time
from typing import Any, Self

import httpx

from osiris_core.errors import ExitCode, OsirisError

API = "/api/v1"
DEFAULT_TIMEOUT = 10.0
RETRY_STATUSES = (502, 503, 504)


# ---------------------------------------------------------------- errors


class ClientError(OsirisError):
    """Anything the client could not do; ``exit_code`` follows DESIGN §4.2."""

    code = "E_CLIENT"
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code)
        self.status = status


class UsageError(ClientError):
    """Missing configuration or a request the server refused as bad input (exit 2)."""

    code = "E_INPUT"
    exit_code = ExitCode.USAGE


class NotFound(UsageError):
    code = "E_NOT_FOUND"


class Conflict(UsageError):
    code = "E_CONFLICT"


class Unreachable(ClientError):
    """Connect error, timeout, or a server answering 5xx (exit 3)."""

    code = "E_UNREACHABLE"
    exit_code = ExitCode.UNREACHABLE


class AuthRefused(ClientError):
    """401 or 403: the token is missing, wrong, revoked, or its role may not do this (exit 4)."""

    code = "E_AUTH"
    exit_code = ExitCode.AUTH


# ---------------------------------------------------------------- transport


class Transport:
    """Synchronous httpx client; the console calls it from thread workers.

    Why sync: one code path for CLI and console, and the console never calls it on the UI
    thread, so blocking is harmless there while the CLI stays simple.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.retries = retries
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "osiris-cli"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        url = path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if method == "GET" else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            try:
                resp = self._http.request(method, url, json=json, params=params)
            except httpx.TimeoutException as e:
                last = Unreachable(f"{self.server}: timed out ({type(e).__name__})")
                continue
            except httpx.TransportError as e:
                last = Unreachable(f"{self.server}: unreachable ({_reason(e)})")
                continue
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                last = _error_for(resp)
                continue
            if resp.status_code >= 400:
                raise _error_for(resp)
            if raw:
                return resp.text
            if not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                raise Unreachable(f"{self.server}: answer is not JSON") from None
        assert last is not None
        raise last

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", API + path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", API + path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", API + path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", API + path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", API + path)


def seg(value: str) -> str:
    """One URL path segment; ids never contain '/', so refuse rather than escape."""
    if not value or "/" in value or value in (".", ".."):
        raise UsageError(f"not a valid id: {value!r}")
    return httpx.URL("/" + value).raw_path.decode().lstrip("/") if "%" in value else value


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]


def _error_for(resp: httpx.Response) -> ClientError:
    code, message = "E_HTTP", resp.reason_phrase or f"HTTP {resp.status_code}"
    try:
        err = resp.json().get("error", {})
        code = str(err.get("code", code))
        message = str(err.get("message", message))
    except (ValueError, AttributeError):
        pass
    st = resp.status_code
    if st in (401, 403):
        return AuthRefused(message, code, st)
    if st == 404:
        return NotFound(message, code, st)
    if st == 409:
        return Conflict(message, code, st)
    if st >= 500:
        return Unreachable(f"server error {st}: {message}", code, st)
    return UsageError(message, code, st)
