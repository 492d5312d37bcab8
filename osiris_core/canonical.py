"""Canonical JSON bytes (DESIGN §3.1) and the one time format every signed document uses.

Everything Osiris signs or hashes is signed or hashed in this form, so a verifier that
re-serializes a parsed document must get the same bytes back. Within our limits (no floats,
|int| ≤ 2**53-1, ASCII keys, valid Unicode) the output equals RFC 8785 (JCS), so JavaScript and
Go auditors reproduce it with off-the-shelf JCS libraries.

Why ``json.dumps`` is safe here: with ``sort_keys=True``, ``separators=(",", ":")`` and
``ensure_ascii=False`` the standard library escapes exactly ``"``, ``\\`` and code points below
U+0020 (``\\b \\t \\n \\f \\r`` short forms, else lowercase ``\\u00xx``) and writes everything else
literally — the JCS rule. Its key order (code points) equals JCS's UTF-16 order only for ASCII
keys, which is why non-ASCII keys are refused. The differences that remain (floats, big ints,
non-str keys, lone surrogates) are exactly what :func:`_check` rejects before serializing.
The test-suite cross-checks this against the ``rfc8785`` package.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from osiris_core.errors import CanonicalError, SchemaError

MAX_SAFE_INT = 2**53 - 1
# Deepest nesting of arrays/objects accepted in either direction (the top-level value is depth
# 1). Real documents stay below 10; the limit keeps every recursive consumer (validators, PHI
# scrubbing, re-serialising) far from Python's recursion limit, so depth is a 400, never a 500.
MAX_DEPTH = 64


def _too_deep() -> CanonicalError:
    return CanonicalError(f"JSON is nested deeper than {MAX_DEPTH} levels", code="E_SCHEMA")


_DUMPS = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
).encode


def _check(obj: Any, depth: int = 1) -> None:
    """Reject everything JCS and our subset refuse; recursion mirrors the document's depth
    (bounded by ``MAX_DEPTH``, which also stops a circular structure)."""
    t = type(obj)
    if t is str or obj is None or t is bool:
        return
    if t is int:
        if -MAX_SAFE_INT <= obj <= MAX_SAFE_INT:
            return
        raise CanonicalError(f"integer {obj} is outside ±(2**53-1)")
    if t is dict:
        if depth > MAX_DEPTH:
            raise _too_deep()
        for k, v in obj.items():
            if type(k) is not str:
                raise CanonicalError(f"object key {k!r} is not a string")
            if not k.isascii():
                raise CanonicalError(f"object key {k!r} is not ASCII")
            _check(v, depth + 1)
        return
    if t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise _too_deep()
        for v in obj:
            _check(v, depth + 1)
        return
    # Subclasses (StrEnum, IntEnum, OrderedDict) serialize as their plain value; floats never do.
    if isinstance(obj, dict):
        _check(dict(obj), depth)
        return
    if isinstance(obj, list):
        _check(list(obj), depth)
        return
    if isinstance(obj, float):
        raise CanonicalError(f"float {obj!r} is not allowed in canonical JSON")
    if isinstance(obj, str):
        return
    if isinstance(obj, int):  # bool already handled above
        _check(int(obj), depth)
        return
    raise CanonicalError(f"unsupported type {t.__name__} in canonical JSON")


def dumps(obj: Any) -> bytes:
    """Canonical UTF-8 bytes of ``obj`` (RFC 8785 for our subset); ``CanonicalError`` otherwise."""
    try:
        _check(obj)
        text = _DUMPS(obj)
    except RecursionError:  # unreachable below MAX_DEPTH; kept as a backstop
        raise _too_deep() from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # The only way to get here: a lone surrogate in a key or value.
        raise CanonicalError("string contains a lone surrogate (not valid Unicode)") from None


# ---------------------------------------------------------------- strict parsing


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise CanonicalError(f"duplicate object key {k!r}")
            seen.add(k)
    for k in d:
        if not k.isascii():
            raise CanonicalError(f"object key {k!r} is not ASCII")
    return d


def _no_float(s: str) -> Any:
    raise CanonicalError(f"number {s} is not an integer (floats and exponents are refused)")


def _no_constant(s: str) -> Any:
    raise CanonicalError(f"{s} is not JSON")


def _int(s: str) -> int:
    if len(s) > 17:  # cheap guard before int(): 2**53-1 has 16 digits
        raise CanonicalError("integer is outside ±(2**53-1)")
    v = int(s)
    if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
        raise CanonicalError(f"integer {s} is outside ±(2**53-1)")
    return v


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_float=_no_float,
    parse_constant=_no_constant,
    parse_int=_int,
    strict=True,
)
# A \uD800–\uDFFF escape is the only way a decoded str can hold a surrogate; only then walk.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(obj: Any) -> None:
    if isinstance(obj, str):
        if _SURROGATE.search(obj):
            raise CanonicalError("string contains a lone surrogate")
    elif isinstance(obj, dict):
        for v in obj.values():  # keys are ASCII already
            _no_surrogates(v)
    elif isinstance(obj, list):
        for v in obj:
            _no_surrogates(v)


def _check_depth(obj: Any) -> None:
    """``E_SCHEMA`` when containers nest deeper than ``MAX_DEPTH``: one breadth-first pass over
    containers only (no recursion, so no depth the C decoder accepts can exhaust the stack)."""
    level = [obj]
    for _ in range(MAX_DEPTH):
        nxt: list[Any] = []
        for o in level:
            nxt += [
                v
                for v in (o.values() if type(o) is dict else o)
                if type(v) is dict or type(v) is list
            ]
        if not nxt:
            return
        level = nxt
    raise _too_deep()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Strictly parse JSON; anything outside our subset raises ``CanonicalError`` (E_PARSE;
    nesting deeper than ``MAX_DEPTH`` is E_SCHEMA)."""
    if isinstance(data, str):
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise CanonicalError("text contains a lone surrogate") from None
    elif isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CanonicalError(f"invalid UTF-8 at byte {e.start}") from None
    else:
        raise CanonicalError(f"cannot parse {type(data).__name__} as JSON")
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise CanonicalError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # deeper than the C decoder's own limit
        raise _too_deep() from None
    if type(obj) is dict or type(obj) is list:
        # fewer opening brackets than the limit cannot nest deeper than it (brackets inside
        # strings only overcount); otherwise walk the containers
        if text.count("[") + text.count("{") > MAX_DEPTH:
            _check_depth(obj)
    if _SURROGATE_ESCAPE.search(text):
        try:
            _no_surrogates(obj)
        except RecursionError:
            raise _too_deep() from None
    return obj


def loads_canonical(data: bytes) -> Any:
    """``loads`` plus the proof that ``data`` is already canonical (else ``E_NONCANONICAL``)."""
    obj = loads(data)
    if dumps(obj) != bytes(data):
        raise CanonicalError("JSON is valid but not in canonical form", code="E_NONCANONICAL")
    return obj


# ---------------------------------------------------------------- hashes


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256, the digest format of every Osiris hash field."""
    return hashlib.sha256(data).hexdigest()


def hash_str(data: bytes) -> str:
    """``sha256:<hex>``: hashes carry their algorithm so a future change is visible."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- time

_TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z"
)


def format_time(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC: one fixed-width spelling per instant, so it signs."""
    if not isinstance(dt, datetime):
        raise SchemaError(f"not a datetime: {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise SchemaError("naive datetime has no time zone; pass an aware datetime")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def utc_now() -> str:
    """The current time in the signed-document format."""
    return format_time(datetime.now(UTC))


def parse_time(s: str) -> datetime:
    """Parse exactly the ``format_time`` form into an aware UTC datetime (``SchemaError`` else)."""
    if not isinstance(s, str):
        raise SchemaError(f"time must be a string, not {type(s).__name__}")
    m = _TIME_RE.fullmatch(s)
    if m is None:
        raise SchemaError(f"time {s!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    y, mo, d, h, mi, sec, ms = (int(g) for g in m.groups())
    try:
        return datetime(y, mo, d, h, mi, sec, ms * 1000, tzinfo=UTC)
    except ValueError as e:
        raise SchemaError(f"time {s!r} is not a valid date/time: {e}") from None
