"""Field specs (``schema.F``) compiled into yes/no predicates, for the verifier's hot loop.

Why: ``schema.validate`` walks the spec tree and builds a new dict per record for every document
(about half the per-bundle cost of offline verification besides the signature). A compiled
predicate answers the same question without copies, and answers it *conservatively*: ``True``
only when ``schema.validate`` would accept the value; ``False`` means "ask ``schema.validate``",
which then gives the real verdict and its message. So a predicate can only ever be stricter than
the spec (it refuses ``str``/``dict`` subclasses and ``enum`` on containers, which JSON never
produces), never looser, and the spec stays the one definition (tests/core/test_verify_fast.py
checks the two agree on mutated documents).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .schema import F

Predicate = Callable[[Any], bool]


def _never(_value: Any) -> bool:
    return False


def _string(f: F) -> Predicate:
    max_len, min_len, enum, nullable = f.max_len, f.min_len, f.enum, f.nullable
    match = f.regex.fullmatch if f.regex is not None else None

    def ok(v: Any) -> bool:
        if type(v) is not str:
            return v is None and nullable
        n = len(v)
        if (max_len is not None and n > max_len) or n < min_len:
            return False
        if match is not None and match(v) is None:
            return False
        return enum is None or v in enum

    return ok


def _integer(f: F) -> Predicate:
    lo, hi, enum, nullable = f.minimum, f.maximum, f.enum, f.nullable

    def ok(v: Any) -> bool:
        if type(v) is not int:
            return v is None and nullable
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return False
        return enum is None or v in enum

    return ok


def _boolean(f: F) -> Predicate:
    enum, nullable = f.enum, f.nullable

    def ok(v: Any) -> bool:
        if type(v) is not bool:
            return v is None and nullable
        return enum is None or v in enum

    return ok


def _array(f: F) -> Predicate:
    max_items, min_items, nullable = f.max_items, f.min_items, f.nullable
    item = compile_field(f.items) if f.items is not None else None

    def ok(v: Any) -> bool:
        if type(v) is not list:
            return v is None and nullable
        n = len(v)
        if (max_items is not None and n > max_items) or n < min_items:
            return False
        return item is None or all(map(item, v))

    return ok


def _object(f: F) -> Predicate:
    nullable = f.nullable
    if f.fields is not None:
        record = compile_record(f.fields)

        def ok_record(v: Any) -> bool:
            if type(v) is not dict:
                return v is None and nullable
            return record(v)

        return ok_record
    if f.keys is not None or f.values is not None:
        return _never  # maps are rare in documents: always leave them to schema.validate

    def ok_free(v: Any) -> bool:
        return type(v) is dict or (v is None and nullable)

    return ok_free


def compile_field(f: F) -> Predicate:
    """A predicate for one field spec (``True`` only if ``schema.check`` would accept)."""
    if f.type == "string":
        return _string(f)
    if f.type == "integer":
        return _integer(f)
    if f.type == "boolean":
        return _boolean(f)
    if f.enum is not None:
        return _never  # enum on containers/scalars: leave it to schema.validate
    if f.type == "array":
        return _array(f)
    if f.type == "object":
        return _object(f)
    if f.type == "any":
        nullable = f.nullable
        return lambda v: v is not None or nullable
    return _never  # "scalar": not in any document the verifier reads


def compile_record(spec: dict[str, F]) -> Predicate:
    """A predicate for a closed record (``True`` only if ``schema.validate`` would accept):
    no unknown field, every required field present, every present field accepted."""
    known = frozenset(spec)
    checks = tuple((name, compile_field(f), f.required) for name, f in spec.items())
    required = frozenset(name for name, f in spec.items() if f.required)

    def ok(obj: Any) -> bool:
        if type(obj) is not dict:
            return False
        keys = obj.keys()
        if not keys <= known or not required <= keys:
            return False
        for name, check, _req in checks:
            if name in obj and not check(obj[name]):
                return False
        return True

    return ok
