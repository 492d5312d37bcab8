"""The one spec language (``osiris_core.schema``): what it refuses, the dotted path it names, the
query conversion, and the JSON Schema it generates from the same spec."""

from __future__ import annotations

from typing import Any

import pytest

from osiris_core import ids
from osiris_core.errors import SchemaError
from osiris_core.schema import F, object_schema, to_schema, validate, validate_query

SPEC: dict[str, F] = {
    "name": F("string", required=True, max_len=8, min_len=2),
    "n": F("integer", minimum=1, maximum=9),
    "flag": F("boolean"),
    "note": F("string", nullable=True),
    "color": F("string", enum=("red", "blue")),
    "site": F.of(ids.SITE_ID),
    "tags": F("array", max_items=2, min_items=1, items=F("string", max_len=3)),
    "inner": F(
        "object",
        fields={
            "checks": F(
                "array",
                items=F("object", fields={"host_id": F.of(ids.HOST_ID, required=True)}),
            )
        },
    ),
    "params": F("object", max_items=2, keys=F.of(ids.PARAM_NAME), values=F("scalar", max_len=4)),
    "free": F("object"),
}


def refused(obj: Any, spec: dict[str, F] = SPEC, **kw: Any) -> str:
    with pytest.raises(SchemaError) as e:
        validate(spec, obj, **kw)
    assert e.value.code == "E_SCHEMA"
    return str(e.value)


def test_a_good_document_comes_back() -> None:
    doc = {
        "name": "ab",
        "n": 3,
        "flag": False,
        "note": None,
        "color": "red",
        "site": "site-00",
        "tags": ["a"],
        "inner": {"checks": [{"host_id": "CLINIC/dc01"}]},
        "params": {"port": 22, "on": True},
        "free": {"anything": [1]},
    }
    assert validate(SPEC, doc) == doc


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "body must be a JSON object"),
        ({"name": "ab", "bogus": 1}, "unknown field bogus"),
        ({}, "missing field name"),
        ({"name": None}, "name must not be null"),
        ({"name": 5}, "name must be of type string"),
        ({"name": "a"}, "name is too short"),
        ({"name": "abcdefghi"}, "name is longer than 8"),
        ({"name": "ab", "n": True}, "n must be an integer"),
        ({"name": "ab", "n": 0}, "n must be >= 1"),
        ({"name": "ab", "n": 10}, "n must be <= 9"),
        ({"name": "ab", "flag": 1}, "flag must be a boolean"),
        ({"name": "ab", "color": "green"}, "color must be one of red, blue"),
        ({"name": "ab", "site": "a/b"}, "site has an invalid format"),
        ({"name": "ab", "tags": ["a", "b", "c"]}, "tags has more than 2 items"),
        ({"name": "ab", "tags": ["abcd"]}, "tags[0] is longer than 3"),
        ({"name": "ab", "tags": []}, "tags has fewer than 1 items"),
        ({"name": "ab", "inner": []}, "inner must be of type object"),
        ({"name": "ab", "inner": {"x": 1}}, "unknown field inner.x"),
        ({"name": "ab", "inner": {"checks": [{}]}}, "missing field inner.checks[0].host_id"),
        (
            {"name": "ab", "inner": {"checks": [{"host_id": "h"}, {"host_id": "-h"}]}},
            "inner.checks[1].host_id has an invalid format",
        ),
        ({"name": "ab", "params": {"Bad": 1}}, "params.<key> has an invalid format"),
        (
            {"name": "ab", "params": {"p": 1.5}},
            "params.p must be a boolean, an integer or a string",
        ),
        ({"name": "ab", "params": {"p": "12345"}}, "params.p is longer than 4"),
        ({"name": "ab", "params": {"a": 1, "b": 2, "c": 3}}, "params has more than 2 entries"),
    ],
)
def test_refusals_name_the_dotted_path(obj: Any, message: str) -> None:
    assert refused(obj) == message


def test_the_root_is_named_by_the_caller() -> None:
    assert refused("x", root="checkin") == "checkin must be a JSON object"


def test_query_conversion() -> None:
    spec = {"limit": F("integer", minimum=1), "all": F("boolean"), "site": F.of(ids.SITE_ID)}
    assert validate_query(spec, {"limit": ["5"], "all": ["true"]}) == {"limit": 5, "all": True}
    for query, message in [
        ({"limit": ["five"]}, "limit must be an integer"),
        ({"limit": ["0"]}, "limit must be >= 1"),
        ({"all": ["yes"]}, "all must be true or false"),
        ({"site": ["a", "b"]}, "query parameter site given more than once"),
        ({"x": ["1"]}, "unknown query parameter x"),
    ]:
        with pytest.raises(SchemaError, match=f"^{message}$".replace("[", r"\[")):
            validate_query(spec, query)
    with pytest.raises(SchemaError, match="^missing query parameter limit$"):
        validate_query({"limit": F("integer", required=True)}, {})


def test_json_schema_is_generated_from_the_same_spec() -> None:
    s = object_schema(SPEC)
    assert s["required"] == ["name"] and s["additionalProperties"] is False
    assert s["properties"]["site"] == {
        "type": "string",
        "maxLength": ids.SITE_ID.max_len,
        "pattern": f"^{ids.SITE_ID.pattern}$",
    }
    assert s["properties"]["note"]["type"] == ["string", "null"]
    assert (s["properties"]["tags"]["minItems"], s["properties"]["tags"]["maxItems"]) == (1, 2)
    checks = s["properties"]["inner"]["properties"]["checks"]["items"]
    assert checks["required"] == ["host_id"]
    assert checks["properties"]["host_id"]["pattern"] == f"^{ids.HOST_ID.pattern}$"
    params = s["properties"]["params"]
    assert params["maxProperties"] == 2
    assert params["propertyNames"]["pattern"] == f"^{ids.PARAM_NAME.pattern}$"
    assert params["additionalProperties"]["type"] == ["boolean", "integer", "string"]
    assert to_schema(F("any")) == {}


def test_an_unknown_type_is_a_bug_at_import_time() -> None:
    with pytest.raises(ValueError, match="unknown field type"):
        F("number")
