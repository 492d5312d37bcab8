"""Signed orders (DESIGN §3.4): the only way an operator makes an appliance do something.

The earlier product executed unsigned orders with no nonce or TTL, and one order kind fed a
shell string (lessons B3). Here an order is a closed, validated document signed by the server's
order key; the agent runs :func:`check_order` before anything else and acts only on ``accepted``.

- Every kind has a closed parameter set; unknown keys are refused, so no kind can carry a shell
  command, a URL or a script. ``run_runbook`` names a catalogue runbook; its ``parameters`` are flat
  scalars whose strings may not contain shell metacharacters (defence in depth for the executor).
- An order lives at most 24 h (``MAX_TTL_S``), so a replay guard only has to remember ids for a
  day: anything older is ``expired`` anyway.
- :func:`check_order` never raises on hostile input: any JSON value yields a verdict.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from osiris_core import canonical, ids
from osiris_core.errors import CanonicalError, SchemaError
from osiris_core.keys import Signer, Verifier
from osiris_core.schema import F, validate

__all__ = [
    "SCHEMA",
    "KINDS",
    "ATTESTATIONS",
    "DEFAULT_TTL_S",
    "MAX_TTL_S",
    "MAX_CLOCK_SKEW_S",
    "ACCEPTED",
    "REJECTED",
    "EXPIRED",
    "OrderVerdict",
    "ReplayGuard",
    "MemoryReplayGuard",
    "new_order",
    "validate_order",
    "sign_order",
    "check_order",
]

SCHEMA = "osiris.order/1"
KINDS = ("run_runbook", "refresh_rules", "collect_evidence", "update_agent", "record_attestation")
# record_attestation: the statement kinds and the exact params each carries (the bundle's
# post_state, docs/evidence-format.md "Signed statements"); "kind" names which one.
ATTESTATIONS: dict[str, frozenset[str]] = {
    "activity_review": frozenset({"reviewer", "reviewed_at", "month", "note", "packet_sha256"}),
    "risk_acceptance": frozenset(
        {"by", "reason", "until", "host_id", "check", "exception_opened_at"}
    ),
}
MAX_STATEMENT_LEN = 2000
DEFAULT_TTL_S = 900
MAX_TTL_S = 24 * 3600
# An order stamped further in the future than this was not issued by a sane server clock; without
# the limit a far-future order would stay valid (and in the replay guard) for as long as it likes.
MAX_CLOCK_SKEW_S = 300

ACCEPTED = "accepted"
REJECTED = "rejected"
EXPIRED = "expired"

_SIG_KEYS = frozenset({"alg", "key_id", "value"})
# Characters a shell or PowerShell would give meaning to, and every control character.
_UNSAFE_VALUE = re.compile("[;|&`$<>'\"\\x00-\\x1f\\x7f]")
_MAX_PARAMETERS = 32
_MAX_VALUE_LEN = 1024
_MAX_CHECKS = 64
_NAME_LEN = 200
# Parameter names that smell of "run this for me"; a runbook never needs them.
_FORBIDDEN_NAMES = frozenset(
    {"command", "cmd", "shell", "script", "exec", "powershell", "bash", "sh", "args", "argv", "url"}
)


# ---------------------------------------------------------------- validation
# Shapes are spec trees (osiris_core.schema); what a spec cannot say is a post-check below them:
# forbidden parameter names, shell metacharacters, the times and the TTL.

ORDER: dict[str, F] = {
    "schema": F("string", required=True, enum=(SCHEMA,)),
    "order_id": F.of(ids.ORDER_ID, required=True),
    "site_id": F.of(ids.SITE_ID, required=True),
    "appliance_id": F.of(ids.APPLIANCE_ID, required=True),
    "kind": F("string", required=True, enum=KINDS),
    "params": F("object", required=True, description="one of PARAMS, by kind"),
    "disruptive": F("boolean", required=True),
    "issued_at": F("string", required=True, max_len=None),
    "expires_at": F("string", required=True, max_len=None),
}
RUNBOOK_PARAMETERS = F(
    "object",
    max_items=_MAX_PARAMETERS,
    keys=F.of(ids.ORDER_PARAM_NAME),
    values=F(
        "scalar",
        minimum=-canonical.MAX_SAFE_INT,
        maximum=canonical.MAX_SAFE_INT,
        max_len=_MAX_VALUE_LEN,
    ),
)
# Every kind's closed parameter set: no kind can carry a command, a URL or a script.
PARAMS: dict[str, dict[str, F]] = {
    "run_runbook": {
        "runbook_id": F.of(ids.RUNBOOK_ID, required=True),
        "host_id": F.of(ids.HOST_ID, required=True),
        "parameters": RUNBOOK_PARAMETERS,
    },
    "refresh_rules": {},
    # Optional narrowing: one host and/or a list of check ids; empty means "everything".
    "collect_evidence": {
        "host_id": F.of(ids.HOST_ID),
        "checks": F("array", min_items=1, max_items=_MAX_CHECKS, items=F.of(ids.CHECK_ID)),
    },
    # No URL and no command: the order carries the signed osiris.release/1 document (signed by
    # a key the appliance pinned at enrolment) and repeats its version and system, which the
    # agent cross-checks; the root switch unit verifies the release's signature again.
    "update_agent": {
        "version": F.of(ids.RELEASE_VERSION, required=True),
        "system": F.of(ids.STORE_PATH, required=True),
        "release": F("object", required=True, description="the signed osiris.release/1 envelope"),
        "allow_downgrade": F("boolean", description="the operator means an older version"),
    },
    # A person's signed statement (an activity review or a risk acceptance): the agent signs
    # exactly these fields as one bundle's post_state and does nothing else. The union of both
    # statements' fields; _check_attestation requires exactly one statement's set.
    "record_attestation": {
        "kind": F("string", required=True, enum=tuple(ATTESTATIONS)),
        "reviewer": F("string", min_len=1, max_len=_NAME_LEN),
        "reviewed_at": F.of(ids.TIME),
        "month": F("string", min_len=7, max_len=7, description="YYYY-MM"),
        "note": F("string", max_len=MAX_STATEMENT_LEN),
        "packet_sha256": F.of(ids.HEX64, nullable=True),
        "by": F("string", min_len=1, max_len=_NAME_LEN),
        "reason": F("string", min_len=1, max_len=MAX_STATEMENT_LEN),
        "until": F.of(ids.TIME),
        "host_id": F.of(ids.HOST_ID),
        "check": F.of(ids.CHECK_ID),
        "exception_opened_at": F.of(ids.TIME, nullable=True),
    },
}


def _fail(msg: str) -> SchemaError:
    return SchemaError(msg)


def _check_parameters(value: dict[str, Any]) -> None:
    for name, v in value.items():
        if name.lower() in _FORBIDDEN_NAMES:
            raise _fail(f"parameter {name!r} is not allowed: orders never carry commands")
        if isinstance(v, str) and _UNSAFE_VALUE.search(v):
            raise _fail(f"parameter {name!r} holds shell metacharacters or control characters")


def _check_attestation(params: dict[str, Any]) -> None:
    """Exactly one statement's fields, every one present (null only where the doc says), and a
    real month: a statement signed into evidence must mean one thing."""
    want = ATTESTATIONS[params["kind"]]
    have = set(params) - {"kind"}
    if have != want:
        extra, missing = sorted(have - want), sorted(want - have)
        raise _fail(
            f"params: a {params['kind']} statement carries exactly {sorted(want)}"
            + (f"; unexpected {extra}" if extra else "")
            + (f"; missing {missing}" if missing else "")
        )
    if "month" in params:
        try:
            ok = datetime.strptime(params["month"], "%Y-%m").strftime("%Y-%m") == params["month"]
        except ValueError:
            ok = False
        if not ok:
            raise _fail("params.month: must be YYYY-MM")
    for name in ("reviewed_at", "until", "exception_opened_at"):
        if params.get(name) is not None:
            _time(params[name], f"params.{name}")


def _time(value: str, what: str) -> datetime:
    try:
        return canonical.parse_time(value)
    except SchemaError as e:
        raise _fail(f"{what}: {e}") from None


def validate_order(order: Any) -> None:
    """Raise ``SchemaError`` unless ``order`` is a well-formed ``osiris.order/1`` document.

    Checks the fields (``ORDER``), the per-kind params (``PARAMS``), ``issued_at <= expires_at``
    and a TTL of at most ``MAX_TTL_S``. It does not look at the clock or the signature (see
    :func:`check_order`).
    """
    validate(ORDER, order, root="order")
    params = validate(PARAMS[order["kind"]], order["params"], prefix="params.")
    if "parameters" in params:
        _check_parameters(params["parameters"])
    if order["kind"] == "record_attestation":
        _check_attestation(params)
    issued = _time(order["issued_at"], "issued_at")
    expires = _time(order["expires_at"], "expires_at")
    if issued > expires:
        raise _fail("issued_at is after expires_at")
    if expires - issued > timedelta(seconds=MAX_TTL_S):
        raise _fail(f"TTL is longer than {MAX_TTL_S // 3600} h")


# ---------------------------------------------------------------- building and signing


def _as_datetime(now: datetime | str | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, str):
        return canonical.parse_time(now)
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise SchemaError("now must be an aware datetime")
        return now.astimezone(UTC)
    raise SchemaError(f"now must be a datetime or an RFC 3339 string, not {type(now).__name__}")


def new_order(
    site_id: str,
    appliance_id: str,
    kind: str,
    params: dict[str, Any],
    disruptive: bool,
    ttl_s: int = DEFAULT_TTL_S,
    now: datetime | str | None = None,
) -> dict[str, Any]:
    """Build a validated, unsigned order with a fresh UUID4; ``SchemaError`` on bad input."""
    if type(ttl_s) is not int or not 1 <= ttl_s <= MAX_TTL_S:
        raise SchemaError(f"ttl_s must be an integer in 1..{MAX_TTL_S}")
    issued = _as_datetime(now)
    order = {
        "schema": SCHEMA,
        "order_id": str(uuid.uuid4()),
        "site_id": site_id,
        "appliance_id": appliance_id,
        "kind": kind,
        "params": copy.deepcopy(params),
        "disruptive": disruptive,
        "issued_at": canonical.format_time(issued),
        "expires_at": canonical.format_time(issued + timedelta(seconds=ttl_s)),
    }
    validate_order(order)
    return order


def sign_order(order: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Sign canonical(order) with the server's order key; refuses to sign an invalid order."""
    validate_order(order)
    msg = canonical.dumps(order)
    return {
        "order": copy.deepcopy(order),
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(signer.sign(msg)).decode("ascii"),
        },
    }


# ---------------------------------------------------------------- checking


class ReplayGuard(Protocol):
    """Remembers accepted order ids until they expire (the agent keeps it in its state DB)."""

    def seen(self, order_id: str) -> bool: ...

    def remember(self, order_id: str, expires_at: str) -> None: ...


class MemoryReplayGuard:
    """In-memory ``ReplayGuard``: for tests and for tools that check orders once."""

    def __init__(self) -> None:
        self._ids: dict[str, datetime] = {}

    def seen(self, order_id: str) -> bool:
        return order_id in self._ids

    def remember(self, order_id: str, expires_at: str) -> None:
        self._ids[order_id] = canonical.parse_time(expires_at)

    def purge(self, now: datetime | str) -> int:
        """Forget ids whose order has expired (they would be ``expired`` anyway); return count."""
        t = _as_datetime(now)
        old = [k for k, exp in self._ids.items() if exp < t]
        for k in old:
            del self._ids[k]
        return len(old)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    """What to do with an order. ``order`` is the received order object when there was one;
    trust its contents only when ``status == "accepted"`` (for the others it is kept so that the
    ``rejected``/``expired`` evidence can name what arrived)."""

    status: str
    reason: str
    order: dict[str, Any] | None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


def _decode_sig(value: str) -> bytes | None:
    """Strict standard base64 of exactly 64 bytes, else ``None`` (no malleable spellings)."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if len(raw) != 64 or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def check_order(
    envelope: Any,
    verifier: Verifier,
    now: datetime | str,
    guard: ReplayGuard,
    appliance_id: str | None = None,
) -> OrderVerdict:
    """Decide whether to act on ``envelope``; never raises on hostile input.

    In order: structure, key id, signature, schema (incl. TTL ≤ 24 h and issued ≤ expires),
    appliance, clock skew, expiry, replay. Only an ``accepted`` order is remembered in ``guard``.
    ``now`` and ``guard`` come from the caller and are trusted.
    """
    now_dt = _as_datetime(now)
    order = envelope.get("order") if isinstance(envelope, dict) else None
    if not isinstance(order, dict):
        order = None

    def rejected(reason: str) -> OrderVerdict:
        return OrderVerdict(REJECTED, reason, order)

    if not isinstance(envelope, dict) or set(envelope) != {"order", "sig"}:
        return rejected("bad structure: envelope must be an object with exactly order and sig")
    if order is None:
        return rejected("bad structure: order must be an object")
    sig = envelope["sig"]
    if not isinstance(sig, dict) or set(sig) != _SIG_KEYS:
        return rejected("bad structure: sig must be an object with alg, key_id and value")
    if sig["alg"] != "ed25519":
        return rejected("bad structure: sig.alg must be ed25519")
    key_id, value = sig["key_id"], sig["value"]
    if not ids.KEY_ID.match(key_id):
        return rejected("bad structure: sig.key_id must be 8 lowercase hex digits")
    if not isinstance(value, str):
        return rejected("bad structure: sig.value must be a base64 string")
    raw_sig = _decode_sig(value)
    if raw_sig is None:
        return rejected("bad structure: sig.value is not base64 of a 64-byte signature")
    if key_id != verifier.key_id_hex:
        return rejected(f"unknown key id {key_id}")
    try:
        msg = canonical.dumps(order)
    except (CanonicalError, RecursionError) as e:
        return rejected(f"bad structure: order is not canonical JSON ({e})")
    if not verifier.verify(msg, raw_sig):
        return rejected("bad signature")
    try:
        validate_order(order)
    except (SchemaError, RecursionError) as e:
        return rejected(f"schema: {e}")
    if appliance_id is not None and order["appliance_id"] != appliance_id:
        return rejected(f"other appliance: order is for {order['appliance_id']}")
    issued = canonical.parse_time(order["issued_at"])
    expires = canonical.parse_time(order["expires_at"])
    if issued - now_dt > timedelta(seconds=MAX_CLOCK_SKEW_S):
        return rejected(f"issued in the future ({order['issued_at']})")
    if now_dt > expires:
        return OrderVerdict(EXPIRED, f"expired at {order['expires_at']}", order)
    if guard.seen(order["order_id"]):
        return rejected("replay: order was already accepted")
    guard.remember(order["order_id"], order["expires_at"])
    return OrderVerdict(ACCEPTED, "ok", order)
