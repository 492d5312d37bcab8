"""Signed orders: real Ed25519 keys, real canonical bytes, every way an order can be bad."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer, Verifier
from osiris_core.orders import (
    DEFAULT_TTL_S,
    MAX_CLOCK_SKEW_S,
    MAX_TTL_S,
    MemoryReplayGuard,
    OrderVerdict,
    ReplayGuard,
    check_order,
    new_order,
    sign_order,
    validate_order,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
SHA = "ab" * 32
SYSTEM = "/nix/store/" + "a" * 32 + "-osiris-appliance-0.2.0"
RUNBOOK = {"runbook_id": "RB-WIN-FIREWALL-001", "host_id": "ws01.clinic.local"}


@pytest.fixture(scope="module")
def server_key() -> Signer:
    return Signer.generate("osiris/orders/test-server")


@pytest.fixture(scope="module")
def pinned(server_key: Signer) -> Verifier:
    # What the agent pinned at enrollment: the public vkey string, parsed back.
    return Verifier.from_vkey(server_key.vkey)


def _order(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "site_id": "site-1",
        "appliance_id": "app-1",
        "kind": "run_runbook",
        "params": dict(RUNBOOK),
        "disruptive": False,
        "now": NOW,
    }
    args.update(over)
    return new_order(**args)


def _wire(envelope: dict[str, Any]) -> Any:
    """Send the envelope through canonical bytes, as the check-in response does."""
    return canonical.loads(canonical.dumps(envelope))


def _raw_sign(order: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Sign without validation: how a buggy or hostile server could produce an envelope."""
    sig = signer.sign(canonical.dumps(order))
    return {
        "order": order,
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(sig).decode(),
        },
    }


# ----------------------------------------------------------------------------- building


def test_new_order_shape_and_default_ttl() -> None:
    order = _order()
    assert set(order) == {
        "schema",
        "order_id",
        "site_id",
        "appliance_id",
        "kind",
        "params",
        "disruptive",
        "issued_at",
        "expires_at",
    }
    assert order["schema"] == "osiris.order/1"
    assert order["issued_at"] == "2026-11-25T12:00:00.000Z"
    issued = canonical.parse_time(order["issued_at"])
    expires = canonical.parse_time(order["expires_at"])
    assert expires - issued == timedelta(seconds=DEFAULT_TTL_S) == timedelta(minutes=15)
    assert _order()["order_id"] != order["order_id"]
    validate_order(order)


def test_new_order_copies_params() -> None:
    params = {"runbook_id": "RB-1", "host_id": "h1", "parameters": {"profile": "Domain"}}
    order = _order(params=params)
    params["parameters"]["profile"] = "changed"
    assert order["params"]["parameters"]["profile"] == "Domain"


def test_new_order_accepts_string_now_and_defaults_to_the_clock() -> None:
    assert _order(now="2026-11-25T12:00:00.000Z")["issued_at"] == "2026-11-25T12:00:00.000Z"
    before = datetime.now(UTC) - timedelta(seconds=1)
    issued = canonical.parse_time(_order(now=None)["issued_at"])
    assert before <= issued <= datetime.now(UTC)


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_S + 1, True, 1.5, "900"])
def test_new_order_rejects_bad_ttl(ttl: Any) -> None:
    with pytest.raises(SchemaError):
        _order(ttl_s=ttl)


def test_ttl_of_exactly_24h_is_allowed(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(ttl_s=MAX_TTL_S), server_key)
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "accepted"


VALID_PARAMS = [
    ("run_runbook", dict(RUNBOOK)),
    (
        "run_runbook",
        {
            "runbook_id": "LIN-SSH-001",
            "host_id": "10.0.0.5",
            "parameters": {"profile": "Domain", "port": 22, "force": True, "path": r"C:\Temp"},
        },
    ),
    ("run_runbook", {**RUNBOOK, "parameters": {}}),
    ("refresh_rules", {}),
    ("collect_evidence", {}),
    ("collect_evidence", {"host_id": "ws01"}),
    ("collect_evidence", {"checks": ["patching", "windows_firewall"], "host_id": "dc01"}),
    ("update_agent", {"version": "0.2.0", "system": SYSTEM, "release": {"release": {}}}),
    (
        "update_agent",
        {"version": "1.10.3-rc.1", "system": SYSTEM, "release": {}, "allow_downgrade": True},
    ),  # fmt: skip
]


@pytest.mark.parametrize(("kind", "params"), VALID_PARAMS)
def test_valid_params_per_kind(
    kind: str, params: dict[str, Any], server_key: Signer, pinned: Verifier
) -> None:
    env = _wire(sign_order(_order(kind=kind, params=params), server_key))
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "accepted", verdict.reason
    assert verdict.order is not None and verdict.order["params"] == params


INVALID_PARAMS = [
    ("run_runbook", {}),
    ("run_runbook", {"runbook_id": "RB-1"}),
    ("run_runbook", {"host_id": "h1"}),
    ("run_runbook", {"runbook_id": "", "host_id": "h1"}),
    ("run_runbook", {"runbook_id": "rb 1", "host_id": "h1"}),
    ("run_runbook", {"runbook_id": "../../etc/passwd", "host_id": "h1"}),
    ("run_runbook", {"runbook_id": 5, "host_id": "h1"}),
    ("run_runbook", {**RUNBOOK, "command": "rm -rf /"}),
    ("run_runbook", {**RUNBOOK, "parameters": {"command": "whoami"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"Script": "x"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"url": "http://evil/x"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "x; rm -rf /"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "$(whoami)"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "`id`"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "a | b"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "a\nb"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"profile": "x" * 1025}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"nested": {"a": 1}}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"list": ["a"]}}),
    ("run_runbook", {**RUNBOOK, "parameters": {"1bad": "a"}}),
    ("run_runbook", {**RUNBOOK, "parameters": {f"p{i}": i for i in range(33)}}),
    ("run_runbook", {**RUNBOOK, "parameters": ["a"]}),
    ("refresh_rules", {"force": True}),
    ("refresh_rules", {"command": "curl x | sh"}),
    ("collect_evidence", {"command": "cat /etc/shadow"}),
    ("collect_evidence", {"checks": []}),
    ("collect_evidence", {"checks": "patching"}),
    ("collect_evidence", {"checks": ["ok", "not ok"]}),
    ("collect_evidence", {"host_id": None}),
    # issue 16: an update names version + system + the signed release; never a hash to fetch,
    # a URL or a command (expectations changed deliberately with the kind's new parameters)
    ("update_agent", {"version": "0.2.0", "sha256": SHA}),
    ("update_agent", {"version": "0.2.0", "system": SYSTEM}),
    ("update_agent", {"system": SYSTEM, "release": {}}),
    ("update_agent", {"version": "latest", "system": SYSTEM, "release": {}}),
    ("update_agent", {"version": "0.2.0; reboot", "system": SYSTEM, "release": {}}),
    ("update_agent", {"version": "0.2.0", "system": "/tmp/evil", "release": {}}),
    ("update_agent", {"version": "0.2.0", "system": SYSTEM, "release": "signed"}),
    ("update_agent", {"version": "0.2.0", "system": SYSTEM, "release": {}, "allow_downgrade": 1}),
    (
        "update_agent",
        {"version": "0.2.0", "system": SYSTEM, "release": {}, "url": "http://evil/agent.tgz"},
    ),  # fmt: skip
    (
        "update_agent",
        {"version": "0.2.0", "system": SYSTEM, "release": {}, "command": "sh install.sh"},
    ),  # fmt: skip
    ("launch_missiles", {}),
    ("run_command", {"command": "whoami"}),
]


@pytest.mark.parametrize(("kind", "params"), INVALID_PARAMS)
def test_invalid_params_are_refused_when_built_and_when_checked(
    kind: str, params: Any, server_key: Signer, pinned: Verifier
) -> None:
    with pytest.raises(SchemaError):
        _order(kind=kind, params=params)
    # A server that skipped validation still cannot get the order accepted.
    order = _order()
    order["kind"] = kind
    order["params"] = params
    env = _wire(_raw_sign(order, server_key))
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected"
    assert verdict.reason.startswith("schema:"), verdict.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema", "osiris.order/2"),
        ("order_id", "not-a-uuid"),
        ("order_id", "123e4567-e89b-12d3-a456-426614174000"),  # UUID1, not 4
        ("order_id", "3F2504E0-4F89-41D3-9A0C-0305E82C3301"),  # upper case
        ("site_id", ""),
        ("appliance_id", 7),
        ("disruptive", 1),
        ("disruptive", "false"),
        ("issued_at", "2026-11-25T12:00:00Z"),
        ("expires_at", "2026-11-25 12:15:00.000Z"),
        ("params", []),
    ],
)
def test_bad_fields_are_rejected_by_schema(
    field: str, value: Any, server_key: Signer, pinned: Verifier
) -> None:
    order = _order()
    order[field] = value
    with pytest.raises(SchemaError):
        validate_order(order)
    with pytest.raises(SchemaError):
        sign_order(order, server_key)
    verdict = check_order(_raw_sign(order, server_key), pinned, NOW, MemoryReplayGuard())
    assert (verdict.status, verdict.reason.split(":")[0]) == ("rejected", "schema")


def test_missing_and_extra_fields_are_rejected(server_key: Signer, pinned: Verifier) -> None:
    order = _order()
    del order["disruptive"]
    verdict = check_order(_raw_sign(order, server_key), pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and "disruptive" in verdict.reason
    order = _order()
    order["command"] = "whoami"
    verdict = check_order(_raw_sign(order, server_key), pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and "command" in verdict.reason


# ----------------------------------------------------------------------------- checking


def test_accepted_order_round_trips_and_is_remembered(server_key: Signer, pinned: Verifier) -> None:
    order = _order(disruptive=True)
    env = _wire(sign_order(order, server_key))
    guard = MemoryReplayGuard()
    verdict = check_order(env, pinned, NOW + timedelta(minutes=1), guard, appliance_id="app-1")
    assert isinstance(verdict, OrderVerdict)
    assert (verdict.status, verdict.reason, verdict.accepted) == ("accepted", "ok", True)
    assert verdict.order == order
    assert guard.seen(order["order_id"]) and len(guard) == 1


def test_forged_signature_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(), server_key)
    env["sig"]["value"] = base64.b64encode(bytes(64)).decode()
    guard = MemoryReplayGuard()
    verdict = check_order(env, pinned, NOW, guard)
    assert (verdict.status, verdict.reason) == ("rejected", "bad signature")
    assert len(guard) == 0


def test_signature_by_another_key_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    other = Signer.generate("osiris/orders/test-server")  # same name, different key
    order = _order()
    env = sign_order(order, other)
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("unknown key id")
    # ...even when the attacker copies the pinned key id into the envelope.
    env["sig"]["key_id"] = pinned.key_id_hex
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert (verdict.status, verdict.reason) == ("rejected", "bad signature")


def _flip(order: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = order
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("appliance_id",), "app-2"),
        (("site_id",), "site-2"),
        (("kind",), "update_agent"),
        (("disruptive",), True),
        (("expires_at",), "2026-11-26T11:00:00.000Z"),
        (("issued_at",), "2026-11-25T11:59:59.999Z"),
        (("order_id",), "3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        (("params", "runbook_id"), "RB-WIN-ENCRYPTION-001"),
        (("params", "host_id"), "dc01"),
        (("params", "parameters"), {"profile": "Public"}),
    ],
)
def test_any_field_flipped_after_signing_is_rejected(
    path: tuple[str, ...], value: Any, server_key: Signer, pinned: Verifier
) -> None:
    env = _wire(sign_order(_order(), server_key))
    assert check_order(copy.deepcopy(env), pinned, NOW, MemoryReplayGuard()).accepted
    _flip(env["order"], path, value)
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected"
    assert verdict.reason in ("bad signature",) or verdict.reason.startswith("schema:")


def test_expired_order(server_key: Signer, pinned: Verifier) -> None:
    order = _order()
    env = sign_order(order, server_key)
    expires = canonical.parse_time(order["expires_at"])
    guard = MemoryReplayGuard()
    late = check_order(env, pinned, expires + timedelta(milliseconds=1), guard)
    assert late.status == "expired" and order["expires_at"] in late.reason
    assert len(guard) == 0
    # The last valid instant is the expiry itself.
    assert check_order(env, pinned, expires, guard).status == "accepted"


def test_replayed_order_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(), server_key)
    guard = MemoryReplayGuard()
    assert check_order(env, pinned, NOW, guard).status == "accepted"
    again = check_order(_wire(env), pinned, NOW + timedelta(seconds=30), guard)
    assert (again.status, again.reason.split(":")[0]) == ("rejected", "replay")


def test_rejected_forgery_does_not_burn_the_real_orders_id(
    server_key: Signer, pinned: Verifier
) -> None:
    real = sign_order(_order(), server_key)
    forged = copy.deepcopy(real)
    forged["order"]["params"]["runbook_id"] = "RB-EVIL"
    guard = MemoryReplayGuard()
    assert check_order(forged, pinned, NOW, guard).status == "rejected"
    assert check_order(real, pinned, NOW, guard).status == "accepted"


def test_order_for_another_appliance_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(appliance_id="app-2"), server_key)
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard(), appliance_id="app-1")
    assert verdict.status == "rejected" and verdict.reason.startswith("other appliance")
    assert check_order(env, pinned, NOW, MemoryReplayGuard(), appliance_id="app-2").accepted


def test_issued_after_expiry_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    order = _order()
    order["issued_at"], order["expires_at"] = order["expires_at"], order["issued_at"]
    verdict = check_order(_raw_sign(order, server_key), pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and "issued_at is after expires_at" in verdict.reason


def test_ttl_longer_than_a_day_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    order = _order()
    order["expires_at"] = canonical.format_time(NOW + timedelta(hours=24, milliseconds=1))
    verdict = check_order(_raw_sign(order, server_key), pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and "TTL" in verdict.reason


def test_order_from_the_future_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    skew = timedelta(seconds=MAX_CLOCK_SKEW_S)
    soon = sign_order(_order(now=NOW + skew), server_key)
    assert check_order(soon, pinned, NOW, MemoryReplayGuard()).accepted
    later = sign_order(_order(now=NOW + skew + timedelta(milliseconds=1)), server_key)
    verdict = check_order(later, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("issued in the future")


def test_now_may_be_a_string(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(), server_key)
    assert check_order(env, pinned, "2026-11-25T12:05:00.000Z", MemoryReplayGuard()).accepted
    late = check_order(env, pinned, "2026-11-25T12:15:00.001Z", MemoryReplayGuard())
    assert late.status == "expired"


STRUCTURE_CASES = [
    None,
    [],
    "order",
    42,
    {},
    {"order": {}},
    {"sig": {}},
    {"order": "x", "sig": {}},
    {"order": {}, "sig": {}, "extra": 1},
]


@pytest.mark.parametrize("envelope", STRUCTURE_CASES)
def test_malformed_envelopes_are_rejected(envelope: Any, pinned: Verifier) -> None:
    verdict = check_order(envelope, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("bad structure")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alg", "rsa"),
        ("alg", None),
        ("key_id", "ABCDEF12"),
        ("key_id", "abc"),
        ("key_id", 12345678),
        ("value", 5),
        ("value", "not base64!"),
        ("value", base64.b64encode(bytes(63)).decode()),
        ("value", base64.b64encode(bytes(64)).decode().rstrip("=")),
        ("value", " " + base64.b64encode(bytes(64)).decode()),
    ],
)
def test_malformed_signatures_are_rejected(
    field: str, value: Any, server_key: Signer, pinned: Verifier
) -> None:
    env = sign_order(_order(), server_key)
    env["sig"][field] = value
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("bad structure")


def test_malleable_base64_spelling_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    # 64 bytes = 86 base64 digits + "=="; the last digit carries 4 unused bits. Setting one gives
    # a second spelling of the same signature, which must not count as valid.
    env = sign_order(_order(), server_key)
    value = env["sig"]["value"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(value[-3])
    assert last & 0x0F == 0 and value.endswith("==")
    twin = value[:-3] + alphabet[last | 0x01] + "=="
    assert base64.b64decode(twin) == base64.b64decode(value)
    env["sig"]["value"] = twin
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("bad structure")


def test_non_canonical_order_content_is_rejected(server_key: Signer, pinned: Verifier) -> None:
    env = sign_order(_order(), server_key)
    env["order"]["params"]["weight"] = 1.5  # floats cannot be signed canonically
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected" and verdict.reason.startswith("bad structure")
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    env["order"]["params"] = {"x": deep}
    assert check_order(env, pinned, NOW, MemoryReplayGuard()).status == "rejected"


def test_sign_order_refuses_invalid_orders(server_key: Signer) -> None:
    order = _order()
    order["params"] = {"command": "id"}
    with pytest.raises(SchemaError):
        sign_order(order, server_key)


def test_memory_replay_guard_purges_expired_ids() -> None:
    guard: ReplayGuard = MemoryReplayGuard()
    guard.remember("a", "2026-11-25T12:00:00.000Z")
    guard.remember("b", "2026-11-25T13:00:00.000Z")
    assert isinstance(guard, MemoryReplayGuard)
    assert guard.purge("2026-11-25T12:30:00.000Z") == 1
    assert not guard.seen("a") and guard.seen("b")


# ----------------------------------------------------------------------------- fuzz

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["ed25519", "osiris.order/1", "run_runbook", "2026-11-25T12:00:00.000Z"]),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_check_order_never_raises_on_random_json(value: Any) -> None:
    pinned = Verifier.from_vkey(_FUZZ_KEY.vkey)
    verdict = check_order(value, pinned, NOW, MemoryReplayGuard())
    assert verdict.status == "rejected"


_FUZZ_KEY = Signer.generate("osiris/orders/fuzz")
_FUZZ_ENV = sign_order(
    new_order("site-1", "app-1", "run_runbook", dict(RUNBOOK), False, now=NOW), _FUZZ_KEY
)
_PATHS = [
    ("order",),
    ("sig",),
    ("order", "schema"),
    ("order", "order_id"),
    ("order", "appliance_id"),
    ("order", "kind"),
    ("order", "params"),
    ("order", "params", "runbook_id"),
    ("order", "disruptive"),
    ("order", "issued_at"),
    ("order", "expires_at"),
    ("sig", "alg"),
    ("sig", "key_id"),
    ("sig", "value"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PATHS), JSON, st.booleans())
def test_check_order_never_raises_on_mutated_envelopes(
    path: tuple[str, ...], value: Any, delete: bool
) -> None:
    env = copy.deepcopy(_FUZZ_ENV)
    target = env
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    pinned = Verifier.from_vkey(_FUZZ_KEY.vkey)
    verdict = check_order(env, pinned, NOW, MemoryReplayGuard())
    assert verdict.status in ("accepted", "rejected", "expired")
    if verdict.accepted:
        assert env == _FUZZ_ENV, "only the untouched envelope may be accepted"
