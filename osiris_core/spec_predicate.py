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

from .canonical import MAX_DEPTH
from .schema import F

Predicate = Callable[[Any], bool]
MEMO = 4096  # accepted strings remembered per field
_EMPTY: frozenset[str] = frozenset()


def _never(_value: Any) -> bool:
    return False


def _string(f: F) -> Predicate:
    max_len, min_len, enum, nullable = f.max_len, f.min_len, f.enum, f.nullable
    match = f.regex.fullmatch if f.regex is not None else None
    # Strings this field accepted before (ids, check names, versions repeat across bundles): a
    # set lookup instead of the pattern; bounded, so unique values (bundle ids) stop filling it.
    seen: set[str] = set()

    def ok(v: Any) -> bool:
        if type(v) is not str:
            return v is None and nullable
        if v in seen:
            return True
        n = len(v)
        if (max_len is not None and n > max_len) or n < min_len:
            return False
        if match is not None and match(v) is None:
            return False
        if enum is not None and v not in enum:
            return False
        if len(seen) < MEMO:
            seen.add(v)
        return True

    ok.seen = seen  # type: ignore[attr-defined]  # records look here before calling
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


def _laid_out(v: Any, depth: int) -> bool:
    """Every object in ``v`` (a container at ``depth``) has its keys in sorted order, and no
    container is nested deeper than MAX_DEPTH (what canonical.loads refuses)."""
    if depth > MAX_DEPTH:
        return False
    if type(v) is dict:
        keys = list(v)
        if keys != sorted(keys):
            return False
        values: Any = v.values()
    else:
        values = v
    for x in values:
        t = type(x)
        if (t is dict or t is list) and not _laid_out(x, depth + 1):
            return False
    return True


def _array(f: F, depth: int | None) -> Predicate:
    max_items, min_items, nullable = f.max_items, f.min_items, f.nullable
    inner = None if depth is None else depth + 1
    item = compile_field(f.items, inner) if f.items is not None else None

    def ok(v: Any) -> bool:
        if type(v) is not list:
            return v is None and nullable
        n = len(v)
        if (max_items is not None and n > max_items) or n < min_items:
            return False
        if item is None:
            return depth is None or _laid_out(v, depth)
        return all(map(item, v))

    return ok


def _object(f: F, depth: int | None) -> Predicate:
    nullable = f.nullable
    if f.fields is not None:
        record = compile_record(f.fields, depth)

        def ok_record(v: Any) -> bool:
            if type(v) is not dict:
                return v is None and nullable
            return record(v)

        return ok_record
    if f.keys is not None or f.values is not None:
        return _never  # maps are rare in documents: always leave them to schema.validate

    def ok_free(v: Any) -> bool:
        if type(v) is not dict:
            return v is None and nullable
        return depth is None or _laid_out(v, depth)

    return ok_free


def compile_field(f: F, depth: int | None = None) -> Predicate:
    """A predicate for one field spec (``True`` only if ``schema.check`` would accept); with
    ``depth`` (the nesting depth of the field's value, the document being 1) it also demands
    the canonical layout (compile_record)."""
    if depth is not None and depth > MAX_DEPTH:
        return _never
    if f.type == "string":
        return _string(f)
    if f.type == "integer":
        return _integer(f)
    if f.type == "boolean":
        return _boolean(f)
    if f.enum is not None:
        return _never  # enum on containers/scalars: leave it to schema.validate
    if f.type == "array":
        return _array(f, depth)
    if f.type == "object":
        return _object(f, depth)
    if f.type == "any":
        nullable = f.nullable
        if depth is None:
            return lambda v: v is not None or nullable
        return lambda v: (
            (v is not None or nullable) and (type(v) not in (dict, list) or _laid_out(v, depth))
        )
    return _never  # "scalar": not in any document the verifier reads


def compile_record(spec: dict[str, F], depth: int | None = None) -> Predicate:
    """A predicate for a closed record (``True`` only if ``schema.validate`` would accept):
    no unknown field, every required field present, every present field accepted.

    With ``depth`` (the record's nesting depth; a whole document is 1) it also demands what
    makes the C encoder's output without ``sort_keys`` canonical: every object in the record,
    free-form ones included, has its keys in sorted order, and nothing nests deeper than
    MAX_DEPTH (so re-encoding without sorting reproduces canonical bytes exactly)."""
    known = frozenset(spec)
    inner = None if depth is None else depth + 1
    checks = tuple((name, compile_field(f, inner), f.required) for name, f in spec.items())
    required = frozenset(name for name, f in spec.items() if f.required)

    if required == known:  # every field required (the evidence records): keys must be equal
        pairs = tuple((name, check, getattr(check, "seen", _EMPTY)) for name, check, _req in checks)
        order = sorted(known)

        def ok_closed(obj: Any) -> bool:
            if type(obj) is not dict:
                return False
            if depth is None:
                if obj.keys() != known:
                    return False
            elif list(obj) != order:  # the same keys, in sorted order
                return False
            for name, check, seen in pairs:
                v = obj[name]
                if type(v) is str and v in seen:  # accepted before by this very check
                    continue
                if not check(v):
                    return False
            return True

        return ok_closed

    def ok(obj: Any) -> bool:
        if type(obj) is not dict:
            return False
        keys = obj.keys()
        if not keys <= known or not required <= keys:
            return False
        if depth is not None:
            names = list(obj)
            if names != sorted(names):
                return False
        for name, check, _req in checks:
            if name in obj and not check(obj[name]):
                return False
        return True

    return ok
