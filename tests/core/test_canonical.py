"""Canonical JSON: byte equality with RFC 8785 (the rfc8785 package) and strict rejection."""

from __future__ import annotations

import enum
import hashlib
import json
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_core.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INT,
    dumps,
    format_time,
    hash_str,
    loads,
    loads_canonical,
    parse_time,
    sha256_hex,
    utc_now,
)
from osiris_core.errors import CanonicalError, SchemaError

# Strings stress exactly the escaping rules: every control character, quote, backslash, DEL,
# the JavaScript line terminators, BOM, non-ASCII and astral characters.
SPECIAL = [chr(i) for i in range(0x20)] + ['"', "\\", "/", "\x7f", "\u2028", "\u2029", "\ufeff"]
SPECIAL += ["é", "Ａ", "\U0001f600", "\U0010ffff", "\u0080", "\u00ff", "\ufffd", "a", "Z", "0"]
texts = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=("Cs",))),
    max_size=20,
)
ascii_keys = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=8)
ints = st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT)
scalars = st.one_of(st.none(), st.booleans(), ints, texts)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(ascii_keys, children, max_size=5)
    ),
    max_leaves=25,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- dumps == JCS


@FAST
@given(documents)
def test_dumps_equals_rfc8785(doc: object) -> None:
    assert dumps(doc) == rfc8785.dumps(doc)


@FAST
@given(documents)
def test_round_trip(doc: object) -> None:
    data = dumps(doc)
    assert loads(data) == doc
    assert loads_canonical(data) == doc
    assert loads(data.decode("utf-8")) == doc


def test_dumps_exact_bytes() -> None:
    doc = {"b": [1, -2, True, False, None], "a": {"z": "x", "A": '\n\u2028\x7f\x1f"\\é'}, "": 0}
    expected = (
        '{"":0,"a":{"A":"\\n\u2028\x7f\\u001f\\"\\\\é","z":"x"},"b":[1,-2,true,false,null]}'
    ).encode()
    assert dumps(doc) == expected
    assert dumps(doc) == rfc8785.dumps(doc)


def test_control_chars_use_lowercase_hex_and_short_forms() -> None:
    out = dumps("\x00\x08\t\n\x0b\x0c\r\x1f")
    assert out == b'"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f"'


def test_keys_sorted_by_code_unit_and_no_whitespace() -> None:
    assert dumps({"b": 1, "B": 2, "a": 3, "_": 4, "aa": 5}) == b'{"B":2,"_":4,"a":3,"aa":5,"b":1}'


def test_integer_limits_accepted() -> None:
    assert dumps([MAX_SAFE_INT, -MAX_SAFE_INT]) == b"[9007199254740991,-9007199254740991]"


def test_tuples_and_subclasses_serialize_as_plain_values() -> None:
    class Color(enum.StrEnum):
        RED = "red"

    class Num(enum.IntEnum):
        ONE = 1

    doc = OrderedDict([("b", (Color.RED, Num.ONE)), ("a", 1)])
    assert dumps(doc) == b'{"a":1,"b":["red",1]}'


@pytest.mark.parametrize(
    "bad",
    [
        1.0,
        0.0,
        -0.0,
        float("nan"),
        float("inf"),
        float("-inf"),
        MAX_SAFE_INT + 1,
        -MAX_SAFE_INT - 1,
        2**64,
        {1: "x"},
        {None: "x"},
        {True: "x"},
        {("a",): 1},
        {"é": 1},
        {"\U0001f600": 1},
        "\ud800",
        "a\udfffb",
        {"\ud800": 1},
        {"k": ["ok", {"x": "\udc00"}]},
        [1, [2, [3.5]]],
        {"a": {"b": 2**53}},
        b"bytes",
        bytearray(b"x"),
        {1, 2},
        frozenset(),
        Decimal("1"),
        object(),
        datetime(2024, 1, 1, tzinfo=UTC),
        complex(1, 2),
    ],
)
def test_dumps_rejects(bad: object) -> None:
    with pytest.raises(CanonicalError):
        dumps(bad)


def test_dumps_rejects_circular_and_too_deep() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(CanonicalError):
        dumps(loop)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CanonicalError):
        dumps(deep)


def test_the_checks_are_needed() -> None:
    """The plain stdlib call differs from JCS where we reject: the checks are not decoration."""
    assert json.dumps({1: 1}) == '{"1": 1}'  # silently stringified
    assert json.dumps(2**53 + 1) == "9007199254740993"
    with pytest.raises(Exception):  # noqa: B017 - rfc8785 raises its own error type
        rfc8785.dumps(2**53 + 1)


# ---------------------------------------------------------------- strict loads


@pytest.mark.parametrize(
    "bad",
    [
        b'{"a":1,"a":2}',
        b'{"x":{"a":1,"b":2,"a":1}}',
        b'[{"k":1,"k":1}]',
        b"1.0",
        b"1.5",
        b"-0.0",
        b"1e5",
        b"1E5",
        b"1e-7",
        b"-1e+2",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"[NaN]",
        b"9007199254740992",
        b"-9007199254740992",
        b"123456789012345678901234567890",
        b'{"\xc3\xa9":1}',
        b'{"\\u00e9":1}',
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\uD800"',
        b'["ok",{"a":["\\ud83d"]}]',
        b'"\\ude00\\ud83d"',
        b'"\xff"',
        b'"\xed\xa0\x80"',  # CESU-8 surrogate
        b'"\xc0\xaf"',  # overlong
        b'"\xe2\x82"',  # truncated
        b"\xef\xbb\xbf{}",  # BOM
        '{"a":1}'.encode("utf-16"),
        b"",
        b" ",
        b"{",
        b"[1,]",
        b'{"a":1,}',
        b"{'a':1}",
        b"01",
        b"+1",
        b".5",
        b"[1] x",
        b'"a\x01b"',  # raw control char inside a string
        b'"\\x41"',
        b"true false",
        b"undefined",
    ],
)
def test_loads_rejects(bad: bytes) -> None:
    with pytest.raises(CanonicalError) as e:
        loads(bad)
    assert e.value.code == "E_PARSE"


@pytest.mark.parametrize("depth", [65, 500, 100_000])
def test_loads_refuses_nesting_beyond_the_depth_limit(depth: int) -> None:
    """Deeper than MAX_DEPTH is a schema error (E_SCHEMA), whether or not the C decoder would
    have managed it; exactly MAX_DEPTH parses, and dumps draws the same line."""
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        with pytest.raises(CanonicalError) as e:
            loads(opener * depth + b"1" + closer * depth)
        assert e.value.code == "E_SCHEMA"
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert dumps(loads(ok)) == ok
    deep: list = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(CanonicalError) as e:
        dumps(deep)
    assert e.value.code == "E_SCHEMA"


def test_loads_rejects_str_with_lone_surrogate_and_wrong_types() -> None:
    with pytest.raises(CanonicalError):
        loads('"\ud800"')
    for bad in (None, 1, [b"{}"]):
        with pytest.raises(CanonicalError):
            loads(bad)  # type: ignore[arg-type]


def test_loads_accepts_valid_escapes_and_limits() -> None:
    assert loads(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert loads(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not a surrogate
    assert loads(b"[9007199254740991,-9007199254740991]") == [MAX_SAFE_INT, -MAX_SAFE_INT]
    assert loads(bytearray(b' { "a" : [ 1 , "x" ] } ')) == {"a": [1, "x"]}
    assert loads(memoryview(b"null")) is None


@pytest.mark.parametrize(
    "noncanonical",
    [
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b" 1",
        b"1\n",
        b'"\\u0041"',
        b'"\\/"',
        b'"\\u001F"',
        b'"\\u00e9"',
        b'"\\u2028"',
        b"-0",
        b'{"a":[1, 2]}',
    ],
)
def test_loads_canonical_rejects_noncanonical(noncanonical: bytes) -> None:
    loads(noncanonical)  # valid JSON…
    with pytest.raises(CanonicalError) as e:
        loads_canonical(noncanonical)  # …but not the one canonical spelling
    assert e.value.code == "E_NONCANONICAL"


def test_loads_canonical_passes_parse_errors_through() -> None:
    with pytest.raises(CanonicalError) as e:
        loads_canonical(b'{"a":1,"a":1}')
    assert e.value.code == "E_PARSE"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_loads_fuzz_only_canonical_error(data: bytes) -> None:
    try:
        loads_canonical(data)
    except CanonicalError:
        pass


@settings(max_examples=200, deadline=None)
@given(documents, st.data())
def test_any_byte_flip_is_caught_or_changes_value(doc: object, data: st.DataObject) -> None:
    """Flip one byte of canonical bytes: strict parsing fails or yields a different document."""
    raw = bytearray(dumps(doc))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        again = loads_canonical(bytes(raw))
    except CanonicalError:
        return
    assert again != doc


# ---------------------------------------------------------------- hashes and time


def test_hashes() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert hash_str(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_format_time() -> None:
    dt = datetime(2024, 3, 5, 7, 8, 9, 123999, tzinfo=UTC)
    assert format_time(dt) == "2024-03-05T07:08:09.123Z"  # truncated, never rounded up
    east = timezone(timedelta(hours=5, minutes=30))
    assert format_time(datetime(2024, 1, 1, 5, 30, tzinfo=east)) == "2024-01-01T00:00:00.000Z"
    assert format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"
    with pytest.raises(SchemaError):
        format_time(datetime(2024, 1, 1))  # naive
    with pytest.raises(SchemaError):
        format_time("2024-01-01")  # type: ignore[arg-type]


def test_parse_time_round_trip_and_now() -> None:
    s = "2024-02-29T23:59:59.999Z"
    dt = parse_time(s)
    assert dt == datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    assert dt.utcoffset() == timedelta(0)
    assert format_time(dt) == s
    now = utc_now()
    assert format_time(parse_time(now)) == now
    assert abs(parse_time(now) - datetime.now(UTC)) < timedelta(seconds=5)


@given(st.datetimes(timezones=st.just(UTC)))
@settings(max_examples=100, deadline=None)
def test_time_round_trip_property(dt: datetime) -> None:
    s = format_time(dt)
    assert parse_time(s) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    "bad",
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.000z",
        "2024-01-01t00:00:00.000Z",
        "2024-01-01 00:00:00.000Z",
        "2024-01-01T00:00:00.000+00:00",
        "2024-01-01T00:00:00.000000Z",
        "2024-01-01T00:00:00.00Z",
        "2024-1-01T00:00:00.000Z",
        "2023-02-29T00:00:00.000Z",
        "2024-13-01T00:00:00.000Z",
        "2024-01-01T24:00:00.000Z",
        "2024-01-01T00:00:60.000Z",
        "2024-01-01T00:00:00.000Z\n",
        " 2024-01-01T00:00:00.000Z",
        "２０２４-01-01T00:00:00.000Z",
        "",
        None,
        1704067200,
    ],
)
def test_parse_time_rejects(bad: object) -> None:
    with pytest.raises(SchemaError):
        parse_time(bad)  # type: ignore[arg-type]
