"""The normalised pattern signature of an L2 outcome: what the learning loop counts.

Why a signature and not the raw finding: two clinics with the same drift differ in host names,
addresses, ids, times and counts. The learning loop must see them as *one* pattern, and the server
must never learn a clinic's identifiers from it. So the observed state is reduced to its *shape*:
keys kept, booleans kept, short enum-like words kept (``"stopped"``, ``"match"``), and every
number, address, id, hostname, time or other free text replaced by a mask (``"<num>"``,
``"<ip>"``, ``"<id>"``, ``"<host>"``, ``"<time>"``, ``"<text>"``). The signature is the check, the
runbook whose detect found the drift, that shape, and the runbook and parameters the planner
chose; its ``sha256`` names the pattern.

The same function runs on the agent (which reports it in the L2 bundle's ``pre_state.l2.pattern``)
and on the server (which re-normalises what it receives, so a hostile appliance cannot smuggle an
unmasked identifier in, and recomputes the hash rather than trusting the one sent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from osiris_core import canonical

MAX_DEPTH = 4
MAX_KEYS = 40
MAX_ITEMS = 8
_WORD = re.compile(r"^[a-z][a-z_-]{0,23}$")  # enum-like: lower-case, no digits
_IP = re.compile(r"^(\d{1,3}\.){3}\d{1,3}(/\d{1,2})?$|^[0-9a-f:]*:[0-9a-f:]+$", re.I)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?$")
_ID = re.compile(r"^[0-9a-f-]{8,}$|^[A-Za-z]+[-_][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*$", re.I)
_HOST = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
MASKS = ("<num>", "<ip>", "<time>", "<id>", "<host>", "<text>", "<deep>", "<more>")


def _mask_str(s: str) -> str:
    if s in MASKS:
        return s
    if _WORD.match(s):
        return s
    if _IP.match(s):
        return "<ip>"
    if _TIME.match(s):
        return "<time>"
    if _HOST.match(s):
        return "<host>"
    if _ID.match(s):
        return "<id>"
    return "<text>"


def shape(value: Any, depth: int = 0) -> Any:
    """The masked shape of a JSON value (deterministic; ``shape(shape(x)) == shape(x)``)."""
    if depth > MAX_DEPTH:
        return "<deep>"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return "<num>"
    if isinstance(value, str):
        return _mask_str(value)
    if isinstance(value, Mapping):
        keys = sorted(k for k in value if isinstance(k, str) and _key_ok(k))[:MAX_KEYS]
        return {k: shape(value[k], depth + 1) for k in keys}
    if isinstance(value, list | tuple):
        # a list's shape is the set of its items' shapes: three hosts or thirty look the same
        items = {canonical.dumps(shape(v, depth + 1)): shape(v, depth + 1) for v in value}
        out = [items[k] for k in sorted(items)][:MAX_ITEMS]
        return out
    return "<text>"


def _key_ok(k: str) -> bool:
    # a key is part of the shape only if it is a field name, never data (a host name as a key)
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9_]{0,39}$", k)) and not _ID.match(k)


def signature(
    check: str,
    detect_runbook_id: str,
    observed: Mapping[str, Any] | Any,
    runbook_id: str,
    params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``{check, detect_runbook_id, shape, runbook_id, params, sha256}``; ``params`` are kept
    as chosen (the server judges them against the runbook's bounds before any promotion)."""
    body = {
        "check": str(check)[:64],
        "detect_runbook_id": str(detect_runbook_id)[:64],
        "shape": shape(observed if isinstance(observed, Mapping) else {}),
        "runbook_id": str(runbook_id)[:64],
        "params": dict(params or {}),
    }
    return {**body, "sha256": canonical.sha256_hex(canonical.dumps(body))}


def renormalise(reported: Any) -> dict[str, Any] | None:
    """The server's reading of a reported signature: re-masked, hash recomputed; None when it is
    not a signature at all."""
    if not isinstance(reported, Mapping):
        return None
    try:
        params = reported.get("params") or {}
        if not isinstance(params, Mapping):
            return None
        sig = signature(
            reported["check"], reported["detect_runbook_id"], reported.get("shape") or {},
            reported["runbook_id"], params,
        )  # fmt: skip
        canonical.dumps(sig)
    except (KeyError, TypeError, ValueError):
        return None
    return sig
