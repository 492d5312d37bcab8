"""HTTP transport to the Central Command API, and the error tree its answers map to.

Why apart from the per-noun calls (``client.Client``): this is the one place that decides what
a failure means — and so the CLI's exit code (console.md): 2 input/usage (4xx other than auth),
3 server unreachable or failing (connect errors, no answer in time, 5xx), 4 authentication
refused (401/403, with how to fix it) — and when a request may be retried: idempotent reads on
connect errors, timeouts and 502-504; writes never (a retried POST could queue an order twice).

Every request has a budget (``timeout``, seconds): its attempts, their connects (at most
``connect_timeout`` each), their reads and the pauses between them all fit in it, so a server
that accepts the connection and never answers (a frozen process: the kernel completes the
handshake) costs ``timeout`` seconds and a ``NoAnswer`` error, never longer. ``on_slow`` is
called (from a timer thread) when an attempt has had no answer for ``slow_after`` seconds: the
CLI prints its one "waiting for the server" line with it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import httpx

from osiris_core.errors import ExitCode, OsirisError

from .abortable import install

API = "/api/v1"
DEFAULT_TIMEOUT = 15.0  # the CLI's budget per request (``--timeout`` / ``OSIRIS_TIMEOUT``)
CONNECT_TIMEOUT = 3.0
RETRY_STATUSES = (502, 503, 504)
TOKEN_FIX = "pass a valid one with --token, OSIRIS_TOKEN or a profile"
# a partner's API key (the server's auth.PARTNER_PREFIX): sent as X-API-Key, not Bearer
PARTNER_KEY_PREFIX = "opk_"


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
    """Connect error, timeout, or a server answering 5xx (exit 3). ``reason`` is the message
    without the server's URL (the console's header names the server already)."""

    code = "E_UNREACHABLE"
    exit_code = ExitCode.UNREACHABLE

    def __init__(
        self,
        message: str,
        code: str | None = None,
        status: int | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, code, status)
        self.reason = reason or message


class NoAnswer(Unreachable):
    """The server took the connection (or the request) and did not answer within the budget."""

    code = "E_TIMEOUT"

    def __init__(self, server: str, waited: float, detail: str) -> None:
        super().__init__(
            f"server did not answer within {waited:g}s ({server}: {detail}; "
            "wait longer with --timeout or OSIRIS_TIMEOUT)",
            reason=f"no answer in {waited:g}s",
        )
        self.waited = waited


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
        connect_timeout: float = CONNECT_TIMEOUT,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        token_fix: str = TOKEN_FIX,
        on_slow: Callable[[], None] | None = None,
        slow_after: float = 1.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.partner_key = token.startswith(PARTNER_KEY_PREFIX)  # the console's brand
        self.retries = retries
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.token_fix = token_fix
        self.on_slow = on_slow
        self.slow_after = slow_after
        self._abort = None
        if transport is None:  # ours: close() can cut a read blocked on a silent server
            transport = httpx.HTTPTransport()
            self._abort = install(transport)
        self._http = httpx.Client(
            base_url=self.server,
            headers={**auth_headers(token), "User-Agent": "osiris-cli"},
            timeout=httpx.Timeout(timeout, connect=self.connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close; a request still waiting in another thread fails at once (``abortable``)."""
        if self._abort is not None:
            self._abort.abort()
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
        """Up to ``1 + retries`` attempts (GET only), all within ``timeout`` seconds."""
        url = path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if method == "GET" else 0)
        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                pause = min(0.2 * 2**attempt, 2.0)
                if time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            limit = httpx.Timeout(left, connect=min(self.connect_timeout, left))
            try:
                resp = self._send(method, url, json, params, limit)
            except httpx.TimeoutException as e:
                last = NoAnswer(self.server, self.timeout, _timeout_kind(e))
                continue
            except httpx.TransportError as e:
                why = f"unreachable ({_reason(e)})"
                last = Unreachable(f"{self.server}: {why}", reason=why)
                continue
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                last = _error_for(resp, self.token_fix)
                continue
            if resp.status_code >= 400:
                raise _error_for(resp, self.token_fix)
            if raw:
                return resp.text
            if not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                why = "the answer is not JSON"
                raise Unreachable(f"{self.server}: {why}", reason=why) from None
        raise last or NoAnswer(self.server, self.timeout, "no attempt fitted in the budget")

    def _send(
        self, method: str, url: str, json: Any, params: dict[str, Any], limit: httpx.Timeout
    ) -> httpx.Response:
        """One attempt; ``on_slow`` if it has no answer after ``slow_after`` seconds (a refused
        connection fails at once and is retried: that is not "waiting for the server")."""
        timer = None
        if self.on_slow is not None:
            timer = threading.Timer(self.slow_after, self.on_slow)
            timer.daemon = True  # never keeps a finished CLI waiting
            timer.start()
        try:
            return self._http.request(method, url, json=json, params=params, timeout=limit)
        finally:
            if timer is not None:
                timer.cancel()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", API + path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", API + path, json=body if body is not None else {})

    def post_bytes(self, path: str, data: bytes, content_type: str) -> Any:
        """POST a raw body (``osiris packet upload``'s zip): one attempt within ``timeout``,
        answered and failing exactly as ``request`` does."""
        limit = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        try:
            resp = self._http.post(
                API + path, content=data, headers={"Content-Type": content_type}, timeout=limit
            )
        except httpx.TimeoutException as e:
            raise NoAnswer(self.server, self.timeout, _timeout_kind(e)) from None
        except httpx.TransportError as e:
            why = f"unreachable ({_reason(e)})"
            raise Unreachable(f"{self.server}: {why}", reason=why) from None
        if resp.status_code >= 400:
            raise _error_for(resp, self.token_fix)
        try:
            return resp.json()
        except ValueError:
            why = "the answer is not JSON"
            raise Unreachable(f"{self.server}: {why}", reason=why) from None

    def get_bytes(self, path: str, max_bytes: int) -> tuple[str, bytes]:
        """(content type, body) of a non-JSON answer (a partner's logo): one attempt, failing
        as ``request`` does; an answer over ``max_bytes`` is refused, not held in memory."""
        limit = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        try:
            with self._http.stream("GET", API + path, timeout=limit) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error_for(resp, self.token_fix)
                data = b""
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        why = f"the answer is larger than {max_bytes} bytes"
                        raise Unreachable(f"{self.server}: {why}", reason=why)
                return resp.headers.get("content-type", ""), data
        except httpx.TimeoutException as e:
            raise NoAnswer(self.server, self.timeout, _timeout_kind(e)) from None
        except httpx.TransportError as e:
            why = f"unreachable ({_reason(e)})"
            raise Unreachable(f"{self.server}: {why}", reason=why) from None

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", API + path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", API + path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", API + path)


def auth_headers(token: str) -> dict[str, str]:
    """The header the server reads for this credential: a partner key (``opk_…``) is
    ``X-API-Key`` (the server ignores it as a bearer token), anything else ``Authorization:
    Bearer`` (operator ``osk_…``). One ``--token`` / ``OSIRIS_TOKEN`` / profile serves both, so
    a reseller uses the CLI and the console with its key and nothing else to set."""
    if token.startswith(PARTNER_KEY_PREFIX):
        return {"X-API-Key": token}
    return {"Authorization": f"Bearer {token}"}


def seg(value: str) -> str:
    """One URL path segment; ids never contain '/', so refuse rather than escape."""
    if not value or "/" in value or value in (".", ".."):
        raise UsageError(f"not a valid id: {value!r}")
    return httpx.URL("/" + value).raw_path.decode().lstrip("/") if "%" in value else value


def _reason(e: Exception) -> str:
    """The first line, without the ``[Errno 111]`` prefix (it fits the console's top line)."""
    text = str(e) or type(e).__name__
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text.splitlines()[0])[:200]


def _timeout_kind(e: httpx.TimeoutException) -> str:
    if isinstance(e, httpx.ConnectTimeout):
        return "the connection was not accepted"
    if isinstance(e, httpx.WriteTimeout | httpx.PoolTimeout):
        return "the request could not be sent"
    return "connected, no answer"


def _error_for(resp: httpx.Response, token_fix: str = TOKEN_FIX) -> ClientError:
    code, message = "E_HTTP", resp.reason_phrase or f"HTTP {resp.status_code}"
    try:
        err = resp.json().get("error", {})
        code = str(err.get("code", code))
        message = str(err.get("message", message))
    except (ValueError, AttributeError):
        pass
    st = resp.status_code
    if st == 401:
        return AuthRefused(f"token refused (401 {code}: {message}): {token_fix}", code, st)
    if st == 403:
        return AuthRefused(
            f"not allowed (403 {code}: {message}): this token's role may not do this; "
            "use a token with a role that may",
            code,
            st,
        )
    if st >= 500:
        return Unreachable(
            f"server error {st}: {message}", code, st, reason=f"server error {st}: {message}"
        )
    if st == 404:
        return NotFound(message, code, st)
    if st == 409:
        return Conflict(message, code, st)
    return UsageError(message, code, st)
