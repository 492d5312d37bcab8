"""Request, response, router and body validation for the WSGI app (no web framework).

Why our own: the API is small, every byte of it must be predictable (no framework debug pages,
no stack traces, no implicit redirects), and the same route table must drive dispatch, auth,
validation *and* the OpenAPI document, so that the document cannot drift from the code.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from osiris_core import canonical, schema
from osiris_core.errors import CanonicalError, OsirisError, SchemaError, exit_code_for_status
from osiris_core.schema import F as F  # re-exported: the api modules spell their specs with it
from osiris_core.schema import object_schema as object_schema
from osiris_core.schema import to_schema as to_schema

MAX_BODY_BYTES = 8 * 1024 * 1024  # evidence batches of 100 envelopes of <= 60 KiB fit below 8 MiB

STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    204: "204 No Content",
    303: "303 See Other",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    410: "410 Gone",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    414: "414 URI Too Long",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    431: "431 Request Header Fields Too Large",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    505: "505 HTTP Version Not Supported",
}


class HttpError(OsirisError):
    """An answer with a 4xx/5xx status and a stable error code; never carries a stack trace.
    ``headers`` travel with the error answer (e.g. ``Retry-After`` on a 429).

    It is the server's member of the one error tree (``osiris_core.errors``): ``http_status``
    is its ``status``, and its ``exit_code`` is the one a client gives that status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.headers = headers or []

    @property
    def http_status(self) -> int:  # type: ignore[override]
        return self.status

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return exit_code_for_status(self.status)


def bad_request(message: str, code: str = "E_INPUT") -> HttpError:
    return HttpError(400, code, message)


def not_found(what: str = "resource") -> HttpError:
    return HttpError(404, "E_NOT_FOUND", f"{what} not found")


def forbidden(message: str = "your role does not allow this") -> HttpError:
    return HttpError(403, "E_FORBIDDEN", message)


def conflict(message: str, code: str = "E_CONFLICT") -> HttpError:
    return HttpError(409, code, message)


# ------------------------------------------------------------------ responses


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def dumps(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: for the integer/string data the API speaks this is
    byte-identical to canonical JSON, at the speed of the C encoder."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status=status, body=dumps(obj))


def raw_json_response(parts: dict[str, bytes], status: int = 200) -> Response:
    """An object assembled from pre-serialised member values (e.g. signed rules cached once)."""
    items = sorted(parts.items())
    body = b"{" + b",".join(_key_bytes(k) + v for k, v in items) + b"}"
    return Response(status=status, body=body)


_KEYS: dict[str, bytes] = {}


def _key_bytes(k: str) -> bytes:
    """``"key":`` as bytes; memoised because response member names are a small fixed set."""
    hit = _KEYS.get(k)
    if hit is None:
        hit = dumps(k) + b":"
        if len(_KEYS) < 1024:
            _KEYS[k] = hit
    return hit


def error_body(code: str, message: str) -> bytes:
    """The one error shape of the whole API, also used by the raw parser in serve.py."""
    return dumps({"error": {"code": code, "message": message}})


def error_response(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status=status, body=error_body(code, message), headers=list(headers or []))


# ------------------------------------------------------------------ field specs
# The spec language lives in osiris_core.schema (one language for every document); these two
# wrappers are the server's boundary, where a SchemaError becomes the 400 body it always was.


def validate(spec: dict[str, F], obj: Any, prefix: str = "") -> dict[str, Any]:
    """Check a JSON body against ``spec``; any problem is 400 ``E_SCHEMA`` (osiris_core.schema)."""
    try:
        return schema.validate(spec, obj, prefix)
    except SchemaError as exc:
        raise bad_request(str(exc), exc.code) from None


def validate_query(spec: dict[str, F], query: dict[str, list[str]]) -> dict[str, Any]:
    """Check a query string against ``spec`` (integers and booleans converted first); 400."""
    try:
        return schema.validate_query(spec, query)
    except SchemaError as exc:
        raise bad_request(str(exc), exc.code) from None


# ------------------------------------------------------------------ requests


def source_key(addr: str) -> str:
    """The unit a per-source limit counts: the IPv4 address, or the /64 of an IPv6 address
    (an IPv4-mapped IPv6 address counts as its IPv4 address)."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class Request:
    """What a handler sees: method, path, query, headers, body, source address, principal."""

    __slots__ = (
        "method",
        "path",
        "query",
        "environ",
        "body",
        "remote_addr",
        "principal",
        "route",
        "params",
        "data",
        "_json",
    )

    def __init__(self, environ: dict[str, Any], body: bytes) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.body = body
        self.remote_addr = environ.get("REMOTE_ADDR", "")
        self.principal: Any = None
        self.route: Route | None = None
        self.params: dict[str, Any] = {}  # validated query
        self.data: dict[str, Any] = {}  # validated JSON body
        self._json: Any = None

    def header(self, name: str) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        return self.environ.get(key)

    def json(self) -> Any:
        """The body parsed strictly (osiris_core.canonical.loads): floats, dup keys → 400."""
        if self._json is None:
            if not self.body:
                raise bad_request("request body must be JSON", "E_PARSE")
            try:
                self._json = canonical.loads(self.body)
            except CanonicalError as exc:
                if exc.code == "E_SCHEMA":  # well-formed but beyond a limit (nesting depth)
                    raise bad_request(str(exc), exc.code) from None
                raise bad_request(f"malformed JSON: {exc}", exc.code) from None
        return self._json


Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    auth: str  # none | appliance | staff
    roles: tuple[str, ...] = ()
    body: dict[str, F] | None = None
    query: dict[str, F] = field(default_factory=dict)
    summary: str = ""
    tag: str = ""
    status: int = 200
    # The spec a handler validates its body with itself (``body`` is then None): OpenAPI shows it.
    body_spec: dict[str, F] | None = None
    response: dict[str, F] | None = None  # the success body's spec, when one exists (OpenAPI)
    # the request body's media type: JSON, or raw bytes the handler reads (a packet zip)
    media_type: str = "application/json"
    # the ServerConfig field bounding this route's body instead of max_body_bytes (a packet zip)
    max_body: str | None = None
    # an HTML page for people (the portal): its query string is the handler's to read or
    # ignore (a browser's stray ?utm=… is no 400), and the handler renders its own errors
    html: bool = False
    regex: re.Pattern[str] | None = None
    names: tuple[str, ...] = ()


_PARAM = re.compile(r"\{([a-z_]+)\}")
PATH_PARAM = r"[A-Za-z0-9_.:\-]{1,128}"


class Router:
    """Static paths by dict lookup; templated paths by one regex each (few dozen routes)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: list[Route] = []

    def add(self, route: Route) -> None:
        names = tuple(_PARAM.findall(route.template))
        if names:
            pattern = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>{PATH_PARAM})", route.template)
            route.regex = re.compile(pattern + r"\Z")
            route.names = names
            self._dynamic.append(route)
        else:
            self._static.setdefault(route.template, {})[route.method] = route
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and path parameters, or 404 (unknown path) / 405 (known path, other method)."""
        by_method = self._static.get(path)
        if by_method is not None:
            r = by_method.get(method)
            if r is None:
                raise HttpError(405, "E_METHOD", f"{method} is not allowed here")
            return r, {}
        allowed = False
        for r in self._dynamic:
            m = r.regex.match(path) if r.regex else None
            if m is None:
                continue
            if r.method == method:
                return r, m.groupdict()
            allowed = True
        if allowed:
            raise HttpError(405, "E_METHOD", f"{method} is not allowed here")
        raise HttpError(404, "E_NOT_FOUND", "no such endpoint")
