"""Check-in request and response shapes (DESIGN §2 step 1), validated in both directions.

The agent validates the response before it trusts a byte of it, and the server validates the
request before it stores a byte of it; both run these same functions, so the two sides cannot
drift. Unknown fields are refused everywhere (a typo is an error, not a silently ignored key).
The functions return nothing and raise ``SchemaError`` with the dotted path of the first problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from osiris_core.errors import SchemaError
from osiris_core.policy import validate_envelope as validate_policy_envelope

CHECK_STATUSES = ("compliant", "drift", "error")
TARGET_KINDS = ("winrm", "ssh", "local")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CHECKS = 2000
MAX_COSIGNATURES = 16
MAX_TARGETS = 1000
MAX_ORDERS = 100

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")
_CHECK = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,63}")
MAX_INT = 2**53 - 1
MAX_PARAMS = 64
MAX_PARAM_STR = 512
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _fail(path: str, msg: str) -> SchemaError:
    return SchemaError(f"{path}: {msg}")


def _obj(v: Any, path: str, required: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(v, dict):
        raise _fail(path, "must be an object")
    keys = set(v)
    missing = required - keys
    if missing:
        raise _fail(path, f"missing fields {sorted(missing)}")
    extra = keys - required - set(optional)
    if extra:
        raise _fail(path, f"unknown fields {sorted(map(str, extra))}")
    return v


def _int(v: Any, path: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _fail(path, f"must be an integer in [{lo}, {hi}]")
    return v


def _bool(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise _fail(path, "must be true or false")
    return v


def _str(v: Any, path: str, pattern: re.Pattern[str] | None = None, max_len: int = 256) -> str:
    if not isinstance(v, str) or len(v) > max_len:
        raise _fail(path, f"must be a string of at most {max_len} characters")
    if pattern is not None and pattern.fullmatch(v) is None:
        raise _fail(path, "has an invalid format")
    return v


def _list(v: Any, path: str, max_items: int, item: Callable[[Any, str], Any]) -> list:
    if not isinstance(v, list) or len(v) > max_items:
        raise _fail(path, f"must be a list of at most {max_items} items")
    for i, x in enumerate(v):
        item(x, f"{path}[{i}]")
    return v


# ---------------------------------------------------------------- request


def _clock(v: Any, path: str) -> None:
    _obj(v, path, {"ntp_ok", "offset_ms", "source"})
    _bool(v["ntp_ok"], path + ".ntp_ok")
    _int(v["offset_ms"], path + ".offset_ms", -MAX_INT, MAX_INT)
    _str(v["source"], path + ".source", max_len=128)


def _check(v: Any, path: str) -> None:
    _obj(v, path, {"host_id", "check", "status", "since"})
    _str(v["host_id"], path + ".host_id", _ID)
    _str(v["check"], path + ".check", _CHECK)
    if v["status"] not in CHECK_STATUSES:
        raise _fail(path + ".status", f"must be one of {', '.join(CHECK_STATUSES)}")
    _str(v["since"], path + ".since", _TIME)


def _cosig(v: Any, path: str) -> None:
    _obj(v, path, {"size", "line"})
    _int(v["size"], path + ".size", 1)
    _str(v["line"], path + ".line", max_len=1024)


def validate_checkin_request(req: Any) -> None:
    """``{appliance_id, agent_version, status, log_size_seen, cosignatures?, policy_version?}``.

    ``policy_version``: the version of the signed policy the agent has in force; the server
    leaves ``policy`` out of its answer when that is still the current one."""
    _obj(
        req,
        "checkin",
        {"appliance_id", "agent_version", "status", "log_size_seen"},
        {"cosignatures", "policy_version"},
    )
    if "policy_version" in req:
        _int(req["policy_version"], "policy_version", 1)
    _str(req["appliance_id"], "appliance_id", _ID)
    _str(req["agent_version"], "agent_version", _VERSION, 64)
    st = _obj(
        req["status"],
        "status",
        {"uptime_s", "outbox_depth", "chain_head", "seq", "clock", "checks"},
    )
    _int(st["uptime_s"], "status.uptime_s")
    _int(st["outbox_depth"], "status.outbox_depth")
    _str(st["chain_head"], "status.chain_head", _HASH)
    _int(st["seq"], "status.seq")
    _clock(st["clock"], "status.clock")
    _list(st["checks"], "status.checks", MAX_CHECKS, _check)
    _int(req["log_size_seen"], "log_size_seen")
    if "cosignatures" in req:
        _list(req["cosignatures"], "cosignatures", MAX_COSIGNATURES, _cosig)


# ---------------------------------------------------------------- response

TARGET_REQUIRED = {
    "host_id",
    "kind",
    "address",
    "port",
    "lab",
    "username",
    "host_key_fingerprints",
    "use_tls",
    "verify_tls",
}
# Secrets travel only sealed to the appliance's box key (osiris_core.seal, DESIGN §3.7): a
# target carrying a plaintext password or private key is refused as an unknown field.
TARGET_OPTIONAL = {"sealed"}


def _target(v: Any, path: str) -> None:
    _obj(v, path, TARGET_REQUIRED, TARGET_OPTIONAL)
    _str(v["host_id"], path + ".host_id", _ID)
    if v["kind"] not in TARGET_KINDS:
        raise _fail(path + ".kind", f"must be one of {', '.join(TARGET_KINDS)}")
    _str(v["address"], path + ".address", max_len=255)
    _int(v["port"], path + ".port", 0, 65535)
    _bool(v["lab"], path + ".lab")
    _str(v["username"], path + ".username", max_len=256)
    _list(
        v["host_key_fingerprints"],
        path + ".host_key_fingerprints",
        16,
        lambda x, p: _str(x, p, max_len=128),
    )
    _bool(v["use_tls"], path + ".use_tls")
    _bool(v["verify_tls"], path + ".verify_tls")
    if "sealed" in v:
        _str(v["sealed"], path + ".sealed", max_len=24576)


def _window(v: Any, path: str) -> None:
    _obj(v, path, {"days", "start", "duration_min", "timezone"})
    _list(v["days"], path + ".days", 7, lambda x, p: _enum(x, p, DAYS))
    _str(v["start"], path + ".start", _HHMM)
    _int(v["duration_min"], path + ".duration_min", 0, 7 * 24 * 60)
    _str(v["timezone"], path + ".timezone", max_len=64)


def _enum(v: Any, path: str, values: tuple[str, ...]) -> None:
    if v not in values:
        raise _fail(path, f"must be one of {', '.join(values)}")


def _sig(v: Any, path: str) -> None:
    _obj(v, path, {"alg", "key_id", "value"})
    _enum(v["alg"], path + ".alg", ("ed25519",))
    _str(v["key_id"], path + ".key_id", re.compile(r"[0-9a-f]{8}"))
    _str(v["value"], path + ".value", max_len=128)


def _rules(v: Any, path: str) -> None:
    _obj(v, path, {"version", "signed"})
    _str(v["version"], path + ".version", max_len=128)
    s = _obj(v["signed"], path + ".signed", {"rules", "version", "sig"})
    if not isinstance(s["rules"], list):
        raise _fail(path + ".signed.rules", "must be a list")
    if s["version"] != v["version"]:
        raise _fail(path + ".signed.version", "does not match rules.version")
    _sig(s["sig"], path + ".signed.sig")


def _order(v: Any, path: str) -> None:
    _obj(v, path, {"order", "sig"})
    if not isinstance(v["order"], dict):
        raise _fail(path + ".order", "must be an object")
    _sig(v["sig"], path + ".sig")


def _param_value(v: Any, path: str) -> None:
    """A parameter value is a JSON scalar of a catalogue param type: bool, int or str."""
    if type(v) is bool:
        return
    if type(v) is int:
        _int(v, path, -MAX_INT, MAX_INT)
        return
    if not isinstance(v, str):
        raise _fail(path, "must be a boolean, an integer or a string")
    _str(v, path, max_len=MAX_PARAM_STR)


def _runbook_params(v: Any, path: str) -> None:
    """``{runbook_id: {name: scalar}}``; the catalogue schema is checked by the agent itself."""
    if not isinstance(v, dict) or len(v) > 10000:
        raise _fail(path, "must be an object of at most 10000 runbooks")
    for rb, values in v.items():
        _str(rb, f"{path}.<key>", max_len=64)
        where = f"{path}.{rb}"
        if not isinstance(values, dict) or len(values) > MAX_PARAMS:
            raise _fail(where, f"must be an object of at most {MAX_PARAMS} parameters")
        for name, value in values.items():
            _str(name, f"{where}.<key>", _PARAM_NAME, 40)
            _param_value(value, f"{where}.{name}")


def validate_checkin_response(resp: Any) -> None:
    """The server's answer; the agent still verifies every signature inside it separately.

    ``policy`` is the signed ``osiris.policy/1`` envelope (``osiris_core.policy``), left out when
    the agent's ``policy_version`` is still current. Everything the agent *does* comes from it:
    the legacy unsigned ``runbooks``, ``window`` and ``policy_version`` fields are still accepted
    from an older server but never used (``runbooks.params`` included)."""
    _obj(
        resp,
        "response",
        {"server_time", "next_checkin_s", "targets", "rules", "orders"},
        {"policy", "runbooks", "window", "policy_version"},
    )
    if "policy" in resp:
        validate_policy_envelope(resp["policy"], "policy")
    if "policy_version" in resp:  # legacy, unused
        _str(resp["policy_version"], "policy_version", _VERSION, 64)
    _str(resp["server_time"], "server_time", _TIME)
    _int(resp["next_checkin_s"], "next_checkin_s", 1, 86400)
    _list(resp["targets"], "targets", MAX_TARGETS, _target)
    if "runbooks" in resp:  # legacy, unused
        rb = _obj(resp["runbooks"], "runbooks", {"enabled", "disabled"}, {"params"})
        for k in ("enabled", "disabled"):
            _list(rb[k], f"runbooks.{k}", 10000, lambda x, p: _str(x, p, max_len=64))
        if set(rb["enabled"]) & set(rb["disabled"]):
            raise _fail("runbooks", "a runbook is both enabled and disabled")
        if "params" in rb:
            _runbook_params(rb["params"], "runbooks.params")
    _rules(resp["rules"], "rules")
    if "window" in resp:  # legacy, unused
        _window(resp["window"], "window")
    _list(resp["orders"], "orders", MAX_ORDERS, _order)


def rules_message(rules: list[Any], version: str) -> dict[str, Any]:
    """What the order key signs for the rules: canonical({"rules": [...], "version": v})."""
    return {"rules": rules, "version": version}
