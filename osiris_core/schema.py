"""The one schema language: field specs (``F``) that validate JSON documents and generate their
JSON Schema, for the server's bodies and query strings and for the wire documents of
``osiris_core`` (check-in request and response, orders, the evidence bundle).

Why one language: validation used to come in four styles (hand validators, the server's field
specs, a hand-written JSON schema, config tables) that drifted apart; with one spec tree per
document, the agent, the server and the OpenAPI document read the same definition. A rule a spec
cannot say (a cross-field rule, a canonical-form check) stays a small post-check beside the spec.

Every problem is a ``SchemaError`` (code ``E_SCHEMA``) whose message starts with the dotted path
of the first bad field (``status.checks[3].host_id has an invalid format``); the server turns it
into its 400 body at its boundary (``osiris_server.http``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from osiris_core.errors import SchemaError
from osiris_core.ids import IdKind

TYPES = ("string", "integer", "boolean", "object", "array", "scalar", "any")
_PY_TYPES = {"string": str, "object": dict, "array": list}
_QUERY_INT = re.compile(r"-?[0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class F:
    """One field of a JSON document or query string; drives validation and the JSON Schema.

    ``object`` with ``fields`` is a closed record (unknown fields refused); ``object`` with
    ``keys``/``values`` is a map whose every key and value is checked (at most ``max_items``
    entries); ``object`` with neither is free-form. ``scalar`` is a boolean, an integer (within
    ``minimum``/``maximum``) or a string (within ``max_len``/``pattern``)."""

    type: str  # one of TYPES
    required: bool = False
    nullable: bool = False
    max_len: int | None = 256
    min_len: int = 0
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    items: F | None = None
    max_items: int | None = 1000
    min_items: int = 0
    fields: dict[str, F] | None = None  # nested object spec; None = free-form object (or a map)
    keys: F | None = None  # map: the spec of every key
    values: F | None = None  # map: the spec of every value
    description: str = ""
    # The compiled ``pattern`` (derived, so dataclasses.replace recomputes it).
    regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"unknown field type {self.type!r}")
        if self.pattern is not None:
            object.__setattr__(self, "regex", re.compile(self.pattern))

    @classmethod
    def of(cls, kind: IdKind, **kw: Any) -> F:
        """A string field of one id kind (``osiris_core.ids``): its pattern and length limit."""
        kw.setdefault("max_len", kind.max_len)
        return cls("string", pattern=kind.pattern, **kw)


def _fail(message: str) -> SchemaError:
    return SchemaError(message)


def _check_string(name: str, spec: F, value: str) -> None:
    if spec.max_len is not None and len(value) > spec.max_len:
        raise _fail(f"{name} is longer than {spec.max_len}")
    if len(value) < spec.min_len:
        raise _fail(f"{name} is too short")
    if spec.regex is not None and spec.regex.fullmatch(value) is None:
        raise _fail(f"{name} has an invalid format")


def _check_integer(name: str, spec: F, value: Any) -> None:
    if type(value) is not int:
        raise _fail(f"{name} must be an integer")
    if spec.minimum is not None and value < spec.minimum:
        raise _fail(f"{name} must be >= {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise _fail(f"{name} must be <= {spec.maximum}")


def _check_map(name: str, spec: F, value: dict[Any, Any]) -> dict[Any, Any]:
    if spec.max_items is not None and len(value) > spec.max_items:
        raise _fail(f"{name} has more than {spec.max_items} entries")
    out: dict[Any, Any] = {}
    for k, v in value.items():
        if spec.keys is not None:
            check(f"{name}.<key>", spec.keys, k)
        out[k] = check(f"{name}.{k}", spec.values, v) if spec.values is not None else v
    return out


def _name(parent: str, key: str | int) -> str:
    """The dotted path of ``key`` under ``parent``; built only when a message needs it."""
    if type(key) is int:
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _field(spec: F, value: Any, parent: str, key: str | int) -> Any:
    """``value`` checked against ``spec``; ``parent``/``key`` locate it for messages.

    Fast paths for what documents are mostly made of (short strings, integers, booleans, lists
    and records): the same checks as ``_check_any``, in the same order, without building the
    value's path unless a check fails (a check-in carries thousands of leaves)."""
    t = spec.type
    vt = type(value)
    if t == "string" and vt is str:
        if spec.max_len is not None and len(value) > spec.max_len:
            raise _fail(f"{_name(parent, key)} is longer than {spec.max_len}")
        if len(value) < spec.min_len:
            raise _fail(f"{_name(parent, key)} is too short")
        if spec.regex is not None and spec.regex.fullmatch(value) is None:
            raise _fail(f"{_name(parent, key)} has an invalid format")
        if spec.enum is not None and value not in spec.enum:
            raise _fail(f"{_name(parent, key)} must be one of {', '.join(map(str, spec.enum))}")
        return value
    if spec.enum is None:
        if t == "integer" and vt is int:
            if (spec.minimum is None or value >= spec.minimum) and (
                spec.maximum is None or value <= spec.maximum
            ):
                return value
        elif t == "boolean" and vt is bool:
            return value
        elif t == "object" and vt is dict and spec.fields is not None:
            return _record(spec.fields, value, _name(parent, key))
        elif t == "array" and vt is list and spec.items is not None:
            if (spec.max_items is None or len(value) <= spec.max_items) and len(
                value
            ) >= spec.min_items:
                name = _name(parent, key)
                items = spec.items
                return [_field(items, v, name, i) for i, v in enumerate(value)]
    return _check_any(_name(parent, key), spec, value)


def check(name: str, spec: F, value: Any) -> Any:
    """``value`` checked against one field spec (``name`` is its dotted path); the value back."""
    return _field(spec, value, "", name)


def _check_any(name: str, spec: F, value: Any) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise _fail(f"{name} must not be null")
    t = spec.type
    if t == "any":
        return value
    if t == "integer":
        _check_integer(name, spec, value)
    elif t == "boolean":
        if type(value) is not bool:
            raise _fail(f"{name} must be a boolean")
    elif t == "scalar":
        if type(value) is int:
            _check_integer(name, spec, value)
        elif isinstance(value, str):
            _check_string(name, spec, value)
        elif type(value) is not bool:
            raise _fail(f"{name} must be a boolean, an integer or a string")
    elif not isinstance(value, _PY_TYPES[t]):
        raise _fail(f"{name} must be of type {t}")
    if t == "string":
        _check_string(name, spec, value)
    if spec.enum is not None and value not in spec.enum:
        raise _fail(f"{name} must be one of {', '.join(map(str, spec.enum))}")
    if t == "array":
        if spec.max_items is not None and len(value) > spec.max_items:
            raise _fail(f"{name} has more than {spec.max_items} items")
        if len(value) < spec.min_items:
            raise _fail(f"{name} has fewer than {spec.min_items} items")
        if spec.items is not None:
            value = [_field(spec.items, v, name, i) for i, v in enumerate(value)]
    if t == "object":
        if spec.fields is not None:
            value = _record(spec.fields, value, name)
        elif spec.keys is not None or spec.values is not None:
            value = _check_map(name, spec, value)
    return value


def _record(spec: dict[str, F], obj: dict[str, Any], parent: str) -> dict[str, Any]:
    """A closed record: unknown fields refused, required ones present, each field checked."""
    if not obj.keys() <= spec.keys():
        unknown = sorted(map(str, obj.keys() - spec.keys()))
        raise _fail(f"unknown field {_name(parent, unknown[0])}")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        if name in obj:
            out[name] = _field(f, obj[name], parent, name)
        elif f.required:
            raise _fail(f"missing field {_name(parent, name)}")
    return out


def validate(spec: dict[str, F], obj: Any, prefix: str = "", root: str = "body") -> dict[str, Any]:
    """Check ``obj`` against ``spec``: unknown fields, missing fields and wrong types refused.

    Returns a new dict of the known fields. ``prefix`` (``"inner."``) is the dotted path of
    ``obj`` inside a larger document; ``root`` names a top-level ``obj`` in messages."""
    parent = prefix[:-1] if prefix.endswith(".") else prefix
    if not isinstance(obj, dict):
        raise _fail(f"{parent or root} must be a JSON object")
    return _record(spec, obj, parent)


def validate_query(spec: dict[str, F], query: dict[str, list[str]]) -> dict[str, Any]:
    """Query strings are text; integers and booleans are converted before the same checks."""
    unknown = sorted(set(query) - set(spec))
    if unknown:
        raise _fail(f"unknown query parameter {unknown[0]}")
    out: dict[str, Any] = {}
    for name, f in spec.items():
        values = query.get(name)
        if not values:
            if f.required:
                raise _fail(f"missing query parameter {name}")
            continue
        if len(values) > 1:
            raise _fail(f"query parameter {name} given more than once")
        raw = values[0]
        value: Any = raw
        if f.type == "integer":
            if not _QUERY_INT.fullmatch(raw):
                raise _fail(f"{name} must be an integer")
            value = int(raw)
        elif f.type == "boolean":
            if raw not in ("true", "false"):
                raise _fail(f"{name} must be true or false")
            value = raw == "true"
        out[name] = check(name, f, value)
    return out


# ---------------------------------------------------------------- JSON Schema


def _json_type(f: F) -> str | list[str]:
    base: list[str] = ["boolean", "integer", "string"] if f.type == "scalar" else [f.type]
    if f.nullable:
        base.append("null")
    return base[0] if len(base) == 1 else base


def to_schema(f: F) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses it) for one field."""
    s: dict[str, Any] = {}
    if f.type != "any":
        s["type"] = _json_type(f)
    if f.type in ("string", "scalar") and f.max_len is not None:
        s["maxLength"] = f.max_len
    if f.type in ("string", "scalar") and f.min_len:
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
        if f.max_items is not None:
            s["maxItems"] = f.max_items
        if f.min_items:
            s["minItems"] = f.min_items
        if f.items is not None:
            s["items"] = to_schema(f.items)
    if f.type == "object" and f.fields is not None:
        s.update(object_schema(f.fields))
    elif f.type == "object" and (f.keys is not None or f.values is not None):
        if f.max_items is not None:
            s["maxProperties"] = f.max_items
        if f.keys is not None:
            s["propertyNames"] = to_schema(f.keys)
        if f.values is not None:
            s["additionalProperties"] = to_schema(f.values)
    if f.description:
        s["description"] = f.description
    return s


def object_schema(spec: dict[str, F]) -> dict[str, Any]:
    """JSON Schema of a closed record: its properties, its required ones, nothing else."""
    req = [k for k, v in spec.items() if v.required]
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k: to_schema(v) for k, v in spec.items()},
        "additionalProperties": False,
    }
    if req:
        out["required"] = req
    return out
