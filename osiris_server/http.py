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

from osiris_core import canonical
from osiris_core.errors import CanonicalError, OsirisError, exit_code_for_status

MAX_BODY_BYTES = 8 * 1024 * 1024  # evidence batches of 100 envelopes of <= 60 KiB fit below 8 MiB

STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    204: "204 No Content",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    414: "414 URI Too Long",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    431: "431 Request Header Fields Too Large",
    500: "500 Internal Server Error",
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


@dataclass(frozen=True)
class F:
    """One field of a JSON body or query string; drives validation and the OpenAPI schema."""

    type: str  # string | integer | boolean | object | array | any
    required: bool = False
    nullable: bool = False
    max_len: int | None = 256
    min_len: int = 0
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    items: F | None = None
    max_items: int = 1000
    fields: dict[str, F] | None = None  # nested object spec; None = free-form object
    description: str = ""


_PY_TYPES = {"string": str, "object": dict, "array": list}


def _check(name: str, spec: F, value: Any) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise bad_request(f"{name} must not be null", "E_SCHEMA")
    t = spec.type
    if t == "any":
        return value
    if t == "integer":
        if type(value) is not int:
            raise bad_request(f"{name} must be an integer", "E_SCHEMA")
        if spec.minimum is not None and value < spec.minimum:
            raise bad_request(f"{name} must be >= {spec.minimum}", "E_SCHEMA")
        if spec.maximum is not None and value > spec.maximum:
            raise bad_request(f"{name} must be <= {spec.maximum}", "E_SCHEMA")
    elif t == "boolean":
        if type(value) is not bool:
            raise bad_request(f"{name} must be a boolean", "E_SCHEMA")
    elif not isinstance(value, _PY_TYPES[t]):
        raise bad_request(f"{name} must be of type {t}", "E_SCHEMA")
    if t == "string":
        if spec.max_len is not None and len(value) > spec.max_len:
            raise bad_request(f"{name} is longer than {spec.max_len}", "E_SCHEMA")
        if len(value) < spec.min_len:
            raise bad_request(f"{name} is too short", "E_SCHEMA")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise bad_request(f"{name} has an invalid format", "E_SCHEMA")
    if spec.enum is not None and value not in spec.enum:
        raise bad_request(f"{name} must be one of {', '.join(map(str, spec.enum))}", "E_SCHEMA")
    if t == "array":
        if len(value) > spec.max_items:
            raise bad_request(f"{name} has more than {spec.max_items} items", "E_SCHEMA")
        if spec.items is not None:
            value = [_check(f"{name}[{i}]", spec.items, v) for i, v in enumerate(value)]
    if t == "object" and spec.fields is not None:
        value = validate(spec.fields, value, prefix=f"{name}.")
    return value


def validate(spec: dict[str, F], obj: Any, prefix: str = "") -> dict[str, Any]:
    """Check ``obj`` against ``spec``: unknown fields, missing fields and wrong types are 400."""
    if not isinstance(obj, dict):
        raise bad_request(f"{prefix.rstrip('.') or 'body'} must be a JSON object", "E_SCHEMA")
    unknown = sorted(set(obj) - set(spec))
    if unknown:
        raise bad_request(f"unknown field {prefix}{unknown[0]}", "E_SCHEMA")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        if name not in obj:
            if f.required:
                raise bad_request(f"missing field {prefix}{name}", "E_SCHEMA")
            continue
        out[name] = _check(prefix + name, f, obj[name])
    return out


def validate_query(spec: dict[str, F], query: dict[str, list[str]]) -> dict[str, Any]:
    """Query strings are text; integers and booleans are converted before the same checks."""
    unknown = sorted(set(query) - set(spec))
    if unknown:
        raise bad_request(f"unknown query parameter {unknown[0]}", "E_SCHEMA")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        values = query.get(name)
        if not values:
            if f.required:
                raise bad_request(f"missing query parameter {name}", "E_SCHEMA")
            continue
        if len(values) > 1:
            raise bad_request(f"query parameter {name} given more than once", "E_SCHEMA")
        raw = values[0]
        value: Any = raw
        if f.type == "integer":
            if not re.fullmatch(r"-?[0-9]{1,16}", raw):
                raise bad_request(f"{name} must be an integer", "E_SCHEMA")
            value = int(raw)
        elif f.type == "boolean":
            if raw not in ("true", "false"):
                raise bad_request(f"{name} must be true or false", "E_SCHEMA")
            value = raw == "true"
        out[name] = _check(name, f, value)
    return out


def to_schema(f: F) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses it) for one field."""
    s: dict[str, Any] = {}
    if f.type != "any":
        s["type"] = [f.type, "null"] if f.nullable else f.type
    if f.type == "string" and f.max_len is not None:
        s["maxLength"] = f.max_len
    if f.type == "string" and f.min_len:
        s["minLength"] = f.min_len
    if f.pattern:
        s["pattern"] = f"^{f.pattern}$"
    if f.minimum is not None:
        s["minimum"] = f.minimum
    if f.maximum is not None:
        s["maximum"] = f.maximum
    if f.enum is not None:
        s["enum"] = list(f.enum)
    if f.type == "array":
        s["maxItems"] = f.max_items
        if f.items is not None:
            s["items"] = to_schema(f.items)
    if f.type == "object" and f.fields is not None:
        s.update(object_schema(f.fields))
    if f.description:
        s["description"] = f.description
    return s


def object_schema(spec: dict[str, F]) -> dict[str, Any]:
    req = [k for k, v in spec.items() if v.required]
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k: to_schema(v) for k, v in spec.items()},
        "additionalProperties": False,
    }
    if req:
        out["required"] = req
    return out


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
    body_schema: dict[str, Any] | None = None  # OpenAPI schema when ``body`` is validated elsewhere
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
