"""Check-in request and response shapes (DESIGN §2 step 1), validated in both directions.

The agent validates the response before it trusts a byte of it, and the server validates the
request before it stores a byte of it; both run these same functions over the same spec trees
(``CHECKIN_REQUEST``, ``CHECKIN_RESPONSE``, in the one spec language of ``osiris_core.schema``),
and the server's OpenAPI document is generated from them, so the three cannot drift. Unknown
fields are refused everywhere (a typo is an error, not a silently ignored key). The functions
return nothing and raise ``SchemaError`` with the dotted path of the first problem; the two rules
a spec cannot say (the signed rules' version, a runbook both enabled and disabled) and the signed
policy (``osiris_core.policy``) are post-checks beside the specs.
"""

from __future__ import annotations

from typing import Any

from osiris_core import ids
from osiris_core.errors import SchemaError
from osiris_core.policy import validate_envelope as validate_policy_envelope
from osiris_core.schema import F, validate

CHECK_STATUSES = ("compliant", "drift", "error")
# Why a check could not run (status "error"): the host refused our credential, could not be
# reached (or answered nothing in time), its SSH host key or TLS certificate did not match, the
# script timed out, printed no result or reported its own error, the parameters were refused,
# or the agent's own code crashed. The console words them (osiris_tui/drift.py, REASON_TEXT).
ERROR_REASONS = (
    "auth", "unreachable", "hostkey", "tls", "timeout", "no_result", "script", "refused",
    "crashed",
)  # fmt: skip
TARGET_KINDS = ("winrm", "ssh", "local")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CHECKS = 2000
MAX_COSIGNATURES = 16
MAX_TARGETS = 1000
MAX_ORDERS = 100
MAX_INT = 2**53 - 1
MAX_PARAMS = 64
MAX_PARAM_STR = 512


def _count(**kw: Any) -> F:
    """A required non-negative integer (a counter, a size, a sequence number)."""
    return F("integer", required=True, minimum=0, maximum=MAX_INT, **kw)


# ---------------------------------------------------------------- request

CLOCK: dict[str, F] = {
    "ntp_ok": F("boolean", required=True),
    "offset_ms": F("integer", required=True, minimum=-MAX_INT, maximum=MAX_INT),
    "source": F("string", required=True, max_len=128),
}
CHECK: dict[str, F] = {
    "host_id": F.of(ids.HOST_ID, required=True),
    "check": F.of(ids.CHECK_ID, required=True),
    "status": F("string", required=True, enum=CHECK_STATUSES),
    "since": F.of(ids.TIME, required=True),
    # Optional (issue 13), so an older agent's status block stays valid; an agent talking to an
    # older server that refuses them resends the block without them (osiris_agent/checkin.py).
    "reason": F("string", enum=ERROR_REASONS, description="why an error check could not run"),
    "checked_at": F.of(ids.TIME, description="when the check last ran (stale after 3 intervals)"),
    "interval_s": F(
        "integer", minimum=1, maximum=MAX_INT, description="the check's own interval on the agent"
    ),
}
COSIGNATURE: dict[str, F] = {
    "size": F("integer", required=True, minimum=1, maximum=MAX_INT),
    "line": F("string", required=True, max_len=1024),
}
STATUS: dict[str, F] = {
    "uptime_s": _count(),
    "outbox_depth": _count(),
    "chain_head": F.of(ids.HASH, required=True),
    "seq": _count(),
    "clock": F("object", required=True, fields=CLOCK),
    "checks": F("array", required=True, max_items=MAX_CHECKS, items=F("object", fields=CHECK)),
}
# Parts of the answer an agent may already hold; ``policy`` is held by ``policy_version``.
PARTS = ("policy", "rules", "targets")
HOLDS: dict[str, F] = {
    "rules": F.of(ids.HASH, description="ruleset hash (sha256 of the canonical signed rules)"),
    "targets": F.of(ids.HASH, description="the targets_hash of the targets last received"),
}
CHECKIN_REQUEST: dict[str, F] = {
    "appliance_id": F.of(ids.APPLIANCE_ID, required=True),
    "agent_version": F.of(ids.AGENT_VERSION, required=True),
    "status": F("object", required=True, fields=STATUS),
    "log_size_seen": _count(description="the log size of the newest checkpoint the agent saw"),
    "cosignatures": F("array", max_items=MAX_COSIGNATURES, items=F("object", fields=COSIGNATURE)),
    "policy_version": F(
        "integer",
        minimum=1,
        maximum=MAX_INT,
        description="version of the signed policy in force; the answer then carries "
        "policy only when a newer one exists",
    ),
    "holds": F(
        "object",
        fields=HOLDS,
        description="what the agent holds and verified (may be empty); sending it asks for a "
        "partial answer: each part unchanged is left out and named in the answer's unchanged",
    ),
}


def validate_checkin_request(req: Any) -> None:
    """``{appliance_id, agent_version, status, log_size_seen, cosignatures?, policy_version?,
    holds?}``.

    ``policy_version``: the version of the signed policy the agent has in force; the server
    leaves ``policy`` out of its answer when that is still the current one. ``holds``: the
    ruleset hash and targets hash the agent holds; its presence (even ``{}``) says the agent
    understands a partial answer (``unchanged``, ``targets_hash``)."""
    validate(CHECKIN_REQUEST, req, root="checkin")


# ---------------------------------------------------------------- response

# Secrets travel only sealed to the appliance's box key (osiris_core.seal, DESIGN §3.7): a
# target carrying a plaintext password or private key is refused as an unknown field.
TARGET: dict[str, F] = {
    "host_id": F.of(ids.HOST_ID, required=True),
    "kind": F("string", required=True, enum=TARGET_KINDS),
    "address": F("string", required=True, max_len=255),
    "port": F("integer", required=True, minimum=0, maximum=65535),
    "lab": F("boolean", required=True),
    "username": F("string", required=True, max_len=256),
    "host_key_fingerprints": F(
        "array", required=True, max_items=16, items=F("string", max_len=128)
    ),
    "use_tls": F("boolean", required=True),
    "verify_tls": F("boolean", required=True),
    "sudo": F("boolean", description="run scripts through sudo -S (ssh only; absent: false)"),
    "ca_bundle": F(
        "string",
        max_len=65536,
        description="winrm: PEM CA certificates the "
        "listener's certificate must chain to (absent or empty: see cert_thumbprint)",
    ),
    "cert_thumbprint": F(
        "string",
        max_len=64,
        description="winrm: SHA-256 (hex) of the "
        "listener's leaf certificate (absent or empty, no ca_bundle: trust on "
        "first use)",
    ),
    "auth": F(
        "string",
        enum=("ntlm", "kerberos", "basic"),
        description="winrm: how the agent authenticates (absent: ntlm)",
    ),
    "sealed": F("string", max_len=24576, description="credentials sealed to the box key"),
}
SIG: dict[str, F] = {
    "alg": F("string", required=True, enum=("ed25519",)),
    "key_id": F.of(ids.KEY_ID, required=True),
    "value": F("string", required=True, max_len=128),
}
RULES: dict[str, F] = {
    "version": F("string", required=True, max_len=128),
    "signed": F(
        "object",
        required=True,
        fields={
            "rules": F("array", required=True, max_items=None),
            "version": F("string", required=True, max_len=128),
            "sig": F("object", required=True, fields=SIG),
        },
        description="signed by the order key over rules_message(rules, version)",
    ),
}
SIGNED_ORDER: dict[str, F] = {
    "order": F("object", required=True, description="an osiris.order/1 document"),
    "sig": F("object", required=True, fields=SIG),
}
WINDOW: dict[str, F] = {
    "days": F("array", required=True, max_items=7, items=F("string", enum=DAYS)),
    "start": F.of(ids.HHMM, required=True),
    "duration_min": F("integer", required=True, minimum=0, maximum=7 * 24 * 60),
    "timezone": F("string", required=True, max_len=64),
}
# ``{runbook_id: {name: scalar}}``; the catalogue schema is checked by the agent itself.
RUNBOOK_PARAMS = F(
    "object",
    max_items=10000,
    keys=F("string", max_len=64),
    values=F(
        "object",
        max_items=MAX_PARAMS,
        keys=F.of(ids.PARAM_NAME),
        values=F("scalar", minimum=-MAX_INT, maximum=MAX_INT, max_len=MAX_PARAM_STR),
    ),
)
_RUNBOOK_LIST = F("array", required=True, max_items=10000, items=F("string", max_len=64))
RUNBOOKS: dict[str, F] = {
    "enabled": _RUNBOOK_LIST,
    "disabled": _RUNBOOK_LIST,
    "params": RUNBOOK_PARAMS,
}
CHECKIN_RESPONSE: dict[str, F] = {
    "server_time": F.of(ids.TIME, required=True),
    "next_checkin_s": F("integer", required=True, minimum=1, maximum=86400),
    "targets": F(
        "array",
        max_items=MAX_TARGETS,
        items=F("object", fields=TARGET),
        description="left out (and named in unchanged) when holds.targets is current",
    ),
    "targets_hash": F.of(
        ids.HASH,
        description="version of these targets (credential ids, versions and fields, the box "
        "key and quarantine; never a secret): sent back as holds.targets",
    ),
    "rules": F(
        "object",
        fields=RULES,
        description="left out (and named in unchanged) when holds.rules is current",
    ),
    "unchanged": F(
        "array",
        max_items=len(PARTS),
        items=F("string", enum=PARTS),
        description="answer to holds: the parts left out because the agent holds the current "
        "one (keep what you hold and verified)",
    ),
    "orders": F(
        "array", required=True, max_items=MAX_ORDERS, items=F("object", fields=SIGNED_ORDER)
    ),
    "policy": F(
        "object",
        description="the signed osiris.policy/1 envelope (osiris_core.policy checks it); left "
        "out when the agent's policy_version is current",
    ),
    "runbooks": F("object", fields=RUNBOOKS, description="legacy, unused"),
    "window": F("object", fields=WINDOW, description="legacy, unused"),
    "policy_version": F.of(ids.AGENT_VERSION, description="legacy, unused"),
}


def validate_checkin_response(resp: Any) -> None:
    """The server's answer; the agent still verifies every signature inside it separately.

    ``policy`` is the signed ``osiris.policy/1`` envelope (``osiris_core.policy``), left out when
    the agent's ``policy_version`` is still current. Everything the agent *does* comes from it:
    the legacy unsigned ``runbooks``, ``window`` and ``policy_version`` fields are still accepted
    from an older server but never used (``runbooks.params`` included).

    To a request with ``holds`` the answer carries ``unchanged`` (the parts left out because
    they are current) and ``targets_hash`` with any targets; ``rules`` and ``targets`` are each
    either sent or named unchanged. "Unchanged" is no document: the agent keeps what it holds
    and verified, and asks again in full if it holds nothing of the kind
    (``osiris_agent/checkin.py``)."""
    if isinstance(resp, dict) and "policy" in resp:
        validate_policy_envelope(resp["policy"], "policy")
    validate(CHECKIN_RESPONSE, resp, root="response")
    unchanged = resp.get("unchanged", [])
    if len(set(unchanged)) != len(unchanged):
        raise SchemaError("unchanged: a part is named twice")
    for part in PARTS:
        if part in unchanged and part in resp:
            raise SchemaError(f"{part}: both sent and named unchanged")
    for part in ("rules", "targets"):
        if part not in resp and part not in unchanged:
            raise SchemaError(f"{part}: missing (neither sent nor named unchanged)")
    if ("targets_hash" in resp) != ("targets" in resp and "unchanged" in resp):
        raise SchemaError("targets_hash: sent exactly with targets in a partial answer")
    if "rules" in resp:
        signed = resp["rules"]["signed"]
        if signed["version"] != resp["rules"]["version"]:
            raise SchemaError("rules.signed.version does not match rules.version")
    if "runbooks" in resp and set(resp["runbooks"]["enabled"]) & set(resp["runbooks"]["disabled"]):
        raise SchemaError("runbooks: a runbook is both enabled and disabled")


def rules_message(rules: list[Any], version: str) -> dict[str, Any]:
    """What the order key signs for the rules: canonical({"rules": [...], "version": v})."""
    return {"rules": rules, "version": version}
