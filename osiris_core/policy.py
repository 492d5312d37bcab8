"""The signed policy ``osiris.policy/1`` (DESIGN §3.6): everything the server tells one appliance
to *do*, in one document signed by the order key the appliance pinned at enrolment.

Why one signed document: before it, runbook toggles, parameters and the maintenance window
travelled unsigned in the check-in answer, so whoever could answer a check-in (or edit the
server's database) could make the agent run ``chmod 0666 /etc/shadow`` and sign ``healed``. Now
the agent takes runbooks, parameters and the window *only* from a policy that verifies, is for
this appliance and site, is not older than the one in force, and whose every parameter passes the
catalogue's one validator (``Runbook.validate_params``: semantic bounds, trust allow-lists).
Anything else is refused as a whole and the last good policy stays in force.

Document (canonical JSON, DESIGN §3.1; every field required)::

    {"schema": "osiris.policy/1", "appliance_id": A, "site_id": S,
     "version": <int ≥ 1, only grows per appliance>, "issued_at": <RFC 3339>,
     "runbooks": {"enabled": [id…], "disabled": [id…]},
     "params": {runbook_id: {name: bool | int | str}},        # values set (defaults implicit)
     "window": {"days": [...], "start": "HH:MM", "duration_min": n, "timezone": tz},
     "checkin_interval_s": n,                                   # the answer can only shorten it
     "l2": {"allowed": bool, "min_confidence": 0..100},         # can only restrict local L2
     "allowlists": {runbook_id: {name: [value…]}},             # trust-redirecting params
     "releases": [<signed osiris.release/1 envelope>…],          # for release-bound params
     "changes": [{"runbook_id", "param", "scope", "old", "new", "by", "at"}…],
     "ruleset_hash": "sha256:<hex of canonical(signed rules document)>"}

    envelope = {"policy": document, "sig": {"alg": "ed25519", "key_id": K, "value": b64}}

``changes`` holds, for each trust-redirecting parameter set for this appliance (site or
appliance scope), the record of its latest change: who, which parameter, old and new value,
when. The agent turns a change of such a value into a ``policy_change`` evidence bundle.

Why this file is long: the document's structure check, its building and signing (the server) and
its acceptance (the agent) are the two ends of one signed format; together, a field added on one
side is seen on the other in the same diff.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from osiris_core import canonical, ids
from osiris_core.catalog.bounds import CheckedParams, TrustContext
from osiris_core.errors import CanonicalError, OsirisError, SchemaError
from osiris_core.keys import Signer, Verifier
from osiris_core.release import ReleaseRefused, verify_release

SCHEMA = "osiris.policy/1"
FIELDS = frozenset(
    {
        "schema", "appliance_id", "site_id", "version", "issued_at", "runbooks", "params",
        "window", "checkin_interval_s", "l2", "allowlists", "releases", "changes",
        "ruleset_hash",
    }
)  # fmt: skip
# What "the content" is: every field but the version and when it was issued, so the server can
# tell whether a new version is due (content differs from the last one issued).
NOT_CONTENT = frozenset({"version", "issued_at"})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANGE_FIELDS = frozenset({"runbook_id", "param", "scope", "old", "new", "by", "at"})
MAX_RUNBOOKS = 10000
MAX_PARAMS = 64
MAX_PARAM_STR = 512
MAX_ALLOW = 64
MAX_RELEASES = 32
MAX_CHANGES = 256
MAX_INT = 2**53 - 1

# The id grammar is osiris_core.ids: one definition per kind for every document.
_APPLIANCE = ids.APPLIANCE_ID.regex
_SITE = ids.SITE_ID.regex
_RB = ids.RUNBOOK_ID.regex
_PARAM = ids.PARAM_NAME.regex
_HHMM = ids.HHMM.regex
_HASH = ids.HASH.regex
_KEY_ID = ids.KEY_ID.regex


class PolicyRefused(OsirisError):
    """A policy the agent must not put in force; ``str(e)`` says why (it goes into evidence)."""

    code = "E_POLICY"


# ---------------------------------------------------------------- structure


def _fail(path: str, msg: str) -> SchemaError:
    return SchemaError(f"policy.{path}: {msg}")


def _obj(v: Any, path: str, keys: Iterable[str]) -> dict[str, Any]:
    want = set(keys)
    if not isinstance(v, dict) or set(v) != want:
        raise _fail(path, f"must be an object with exactly {', '.join(sorted(want))}")
    return v


def _int(v: Any, path: str, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _fail(path, f"must be an integer in [{lo}, {hi}]")
    return v


def _str(v: Any, path: str, pattern: re.Pattern[str] | None = None, max_len: int = 128) -> str:
    if not isinstance(v, str) or len(v) > max_len:
        raise _fail(path, f"must be a string of at most {max_len} characters")
    if pattern is not None and pattern.fullmatch(v) is None:
        raise _fail(path, "has an invalid format")
    return v


def _scalar(v: Any, path: str, nullable: bool = False) -> None:
    if v is None and nullable:
        return
    if type(v) is bool:
        return
    if type(v) is int:
        _int(v, path, -MAX_INT, MAX_INT)
        return
    _str(v, path, max_len=MAX_PARAM_STR)


def _sig(v: Any, path: str) -> dict[str, Any]:
    s = _obj(v, path, ("alg", "key_id", "value"))
    if s["alg"] != "ed25519":
        raise _fail(path + ".alg", "must be ed25519")
    _str(s["key_id"], path + ".key_id", _KEY_ID)
    _str(s["value"], path + ".value", max_len=128)
    return s


def _window(v: Any, path: str) -> None:
    w = _obj(v, path, ("days", "start", "duration_min", "timezone"))
    if not isinstance(w["days"], list) or len(w["days"]) > 7:
        raise _fail(path + ".days", "must be a list of at most 7 days")
    for i, d in enumerate(w["days"]):
        if d not in DAYS:
            raise _fail(f"{path}.days[{i}]", f"must be one of {', '.join(DAYS)}")
    _str(w["start"], path + ".start", _HHMM)
    _int(w["duration_min"], path + ".duration_min", 0, 7 * 24 * 60)
    _str(w["timezone"], path + ".timezone", max_len=64)


def validate_policy(doc: Any) -> None:
    """``SchemaError`` unless ``doc`` is a well-formed ``osiris.policy/1`` document (structure
    only: parameter *values* are judged by the catalogue, see :func:`verify_policy`)."""
    d = _obj(doc, "", FIELDS) if isinstance(doc, dict) else None
    if d is None:
        raise SchemaError("policy must be an object")
    if d["schema"] != SCHEMA:
        raise _fail("schema", f"must be {SCHEMA!r}")
    _str(d["appliance_id"], "appliance_id", _APPLIANCE)
    _str(d["site_id"], "site_id", _SITE)
    _int(d["version"], "version", 1, MAX_INT)
    _str(d["issued_at"], "issued_at", max_len=32)
    try:
        canonical.parse_time(d["issued_at"])
    except SchemaError:
        raise _fail("issued_at", "must be an RFC 3339 UTC time") from None
    rb = _obj(d["runbooks"], "runbooks", ("enabled", "disabled"))
    for k in ("enabled", "disabled"):
        if not isinstance(rb[k], list) or len(rb[k]) > MAX_RUNBOOKS:
            raise _fail(f"runbooks.{k}", f"must be a list of at most {MAX_RUNBOOKS} ids")
        for i, x in enumerate(rb[k]):
            _str(x, f"runbooks.{k}[{i}]", _RB, 64)
    if set(rb["enabled"]) & set(rb["disabled"]):
        raise _fail("runbooks", "a runbook is both enabled and disabled")
    params = d["params"]
    if not isinstance(params, dict) or len(params) > MAX_RUNBOOKS:
        raise _fail("params", "must be an object of runbooks")
    for rid, values in params.items():
        _str(rid, "params.<key>", _RB, 64)
        if not isinstance(values, dict) or not 1 <= len(values) <= MAX_PARAMS:
            raise _fail(f"params.{rid}", f"must be an object of 1..{MAX_PARAMS} parameters")
        for name, value in values.items():
            _str(name, f"params.{rid}.<key>", _PARAM, 40)
            _scalar(value, f"params.{rid}.{name}")
    _window(d["window"], "window")
    _int(d["checkin_interval_s"], "checkin_interval_s", 1, 86400)
    l2 = _obj(d["l2"], "l2", ("allowed", "min_confidence"))
    if type(l2["allowed"]) is not bool:
        raise _fail("l2.allowed", "must be true or false")
    _int(l2["min_confidence"], "l2.min_confidence", 0, 100)
    allow = d["allowlists"]
    if not isinstance(allow, dict) or len(allow) > MAX_RUNBOOKS:
        raise _fail("allowlists", "must be an object of runbooks")
    for rid, names in allow.items():
        _str(rid, "allowlists.<key>", _RB, 64)
        if not isinstance(names, dict) or not 1 <= len(names) <= MAX_PARAMS:
            raise _fail(f"allowlists.{rid}", "must be an object of parameters")
        for name, values in names.items():
            _str(name, f"allowlists.{rid}.<key>", _PARAM, 40)
            where = f"allowlists.{rid}.{name}"
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_ALLOW:
                raise _fail(where, f"must be a list of 1..{MAX_ALLOW} values")
            for i, v in enumerate(values):
                _str(v, f"{where}[{i}]", max_len=MAX_PARAM_STR)
            if len(set(values)) != len(values):
                raise _fail(where, "lists a value twice")
    rels = d["releases"]
    if not isinstance(rels, list) or len(rels) > MAX_RELEASES:
        raise _fail("releases", f"must be a list of at most {MAX_RELEASES} release envelopes")
    for i, env in enumerate(rels):
        e = _obj(env, f"releases[{i}]", ("release", "sig"))
        if not isinstance(e["release"], dict):
            raise _fail(f"releases[{i}].release", "must be an object")
        _sig(e["sig"], f"releases[{i}].sig")
    changes = d["changes"]
    if not isinstance(changes, list) or len(changes) > MAX_CHANGES:
        raise _fail("changes", f"must be a list of at most {MAX_CHANGES} change records")
    for i, c in enumerate(changes):
        where = f"changes[{i}]"
        _obj(c, where, CHANGE_FIELDS)
        _str(c["runbook_id"], where + ".runbook_id", _RB, 64)
        _str(c["param"], where + ".param", _PARAM, 40)
        if c["scope"] not in ("site", "appliance"):
            raise _fail(where + ".scope", "must be site or appliance")
        _scalar(c["old"], where + ".old", nullable=True)
        _scalar(c["new"], where + ".new", nullable=True)
        _str(c["by"], where + ".by", max_len=200)
        _str(c["at"], where + ".at", max_len=32)
    _str(d["ruleset_hash"], "ruleset_hash", _HASH)


def validate_envelope(env: Any, path: str = "policy") -> None:
    """The shape a check-in answer's ``policy`` must have before the agent even looks at it."""
    if not isinstance(env, dict) or set(env) != {"policy", "sig"}:
        raise SchemaError(f"{path}: must be an object with exactly policy and sig")
    if not isinstance(env["policy"], dict):
        raise SchemaError(f"{path}.policy: must be an object")
    try:
        _sig(env["sig"], "sig")
    except SchemaError as exc:
        raise SchemaError(f"{path}.{str(exc).removeprefix('policy.')}") from None


# ---------------------------------------------------------------- building and signing


def make_policy(
    *,
    appliance_id: str,
    site_id: str,
    version: int,
    issued_at: str,
    runbooks: Mapping[str, list[str]],
    params: Mapping[str, Mapping[str, Any]],
    window: Mapping[str, Any],
    checkin_interval_s: int,
    l2: Mapping[str, Any],
    allowlists: Mapping[str, Mapping[str, list[str]]],
    releases: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    ruleset_hash: str,
) -> dict[str, Any]:
    """A validated, unsigned policy document."""
    doc = {
        "schema": SCHEMA,
        "appliance_id": appliance_id,
        "site_id": site_id,
        "version": version,
        "issued_at": issued_at,
        "runbooks": {"enabled": list(runbooks["enabled"]), "disabled": list(runbooks["disabled"])},
        "params": {rb: dict(v) for rb, v in sorted(params.items()) if v},
        "window": dict(window),
        "checkin_interval_s": checkin_interval_s,
        "l2": dict(l2),
        "allowlists": {
            rb: {n: list(vals) for n, vals in sorted(names.items()) if vals}
            for rb, names in sorted(allowlists.items())
            if any(names.values())
        },
        "releases": copy.deepcopy(list(releases)),
        "changes": copy.deepcopy(list(changes)),
        "ruleset_hash": ruleset_hash,
    }
    validate_policy(doc)
    return doc


def content_sha256(doc: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the policy's content (everything but ``version`` and ``issued_at``)."""
    body = {k: v for k, v in doc.items() if k not in NOT_CONTENT}
    return hashlib.sha256(canonical.dumps(body)).hexdigest()


def envelope_sha256(env: Any) -> str:
    return hashlib.sha256(canonical.dumps(env)).hexdigest()


def sign_policy(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Sign canonical(doc) with the order key; refuses to sign a malformed policy."""
    validate_policy(doc)
    return {
        "policy": copy.deepcopy(doc),
        "sig": {
            "alg": "ed25519",
            "key_id": signer.key_id_hex,
            "value": base64.b64encode(signer.sign(canonical.dumps(doc))).decode("ascii"),
        },
    }


# ---------------------------------------------------------------- judging the parameters


def trust_values(catalog: Any, params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """``{runbook_id: {name: value}}`` of every trust-redirecting parameter in ``params``."""
    out: dict[str, dict[str, Any]] = {}
    for rid, values in params.items():
        rb = catalog.runbooks.get(rid)
        if rb is None:
            continue
        for name, value in values.items():
            spec = rb.params.get(name)
            if spec is not None and spec.trusted:
                out.setdefault(rid, {})[name] = value
    return out


def judge_params(
    catalog: Any, params: Mapping[str, Mapping[str, Any]], context: TrustContext
) -> tuple[dict[str, CheckedParams], list[dict[str, str]]]:
    """Every value through ``Runbook.validate_params`` with ``context``.

    Returns the accepted values per runbook and what was *skipped* because this catalogue does
    not know the runbook or parameter (a newer server; the catalogue default applies). A value
    the catalogue knows but refuses raises ``SchemaError`` naming it: one weakening value makes
    the whole policy unacceptable."""
    accepted: dict[str, CheckedParams] = {}
    skipped: list[dict[str, str]] = []
    for rid, values in sorted(params.items()):
        rb = catalog.runbooks.get(rid)
        if rb is None:
            skipped += [
                {"runbook_id": rid, "param": n, "reason": "unknown runbook"} for n in values
            ]
            continue
        known = {n: v for n, v in values.items() if n in rb.params}
        skipped += [
            {"runbook_id": rid, "param": n, "reason": "unknown param"}
            for n in values
            if n not in rb.params
        ]
        try:
            rb.validate_params(known, context)
        except SchemaError as exc:
            raise SchemaError(f"runbook {rid}: {exc}") from None
        accepted[rid] = CheckedParams(rid, known, context)
    return accepted, skipped


def server_context(
    allowlists: Mapping[str, Mapping[str, Iterable[str]]], releases: Iterable[dict[str, Any]]
) -> TrustContext:
    """The context the server judges values in: its own allow-lists and signed releases."""
    return TrustContext(
        {rb: {n: tuple(v) for n, v in names.items()} for rb, names in allowlists.items()},
        {env["release"]["system"]: env for env in releases},
    )


# ---------------------------------------------------------------- the agent's check


@dataclass
class AcceptedPolicy:
    """A verified policy: the envelope as received and what the agent derives from it."""

    envelope: dict[str, Any]
    doc: dict[str, Any]
    sha256: str  # of canonical(envelope)
    params: dict[str, CheckedParams]
    context: TrustContext  # allow-lists, verified releases, trust values pinned
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def version(self) -> int:
        return int(self.doc["version"])

    def trust_values(self, catalog: Any) -> dict[str, dict[str, Any]]:
        return trust_values(catalog, self.doc["params"])


def _decode_sig(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if len(raw) != 64 or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def verify_policy(
    envelope: Any,
    verifier: Verifier,
    *,
    appliance_id: str,
    site_id: str,
    catalog: Any,
    release_verifiers: Iterable[Verifier] = (),
    in_force: AcceptedPolicy | None = None,
) -> AcceptedPolicy:
    """Decide whether ``envelope`` may become the policy in force; ``PolicyRefused`` (never
    another exception) naming why not.

    In order: structure, key id, signature, schema, appliance, site, version (lower than the
    policy in force: a rollback; equal with other content: a reused version), release
    signatures, then every parameter through the catalogue's validator with the policy's own
    allow-lists and releases. The same version with the same bytes returns ``in_force``."""
    if not isinstance(envelope, dict) or set(envelope) != {"policy", "sig"}:
        raise PolicyRefused("malformed: envelope must be an object with exactly policy and sig")
    doc, sig = envelope["policy"], envelope["sig"]
    if not isinstance(sig, dict) or set(sig) != {"alg", "key_id", "value"}:
        raise PolicyRefused("malformed: sig must have alg, key_id and value")
    if sig["alg"] != "ed25519" or not isinstance(sig["key_id"], str):
        raise PolicyRefused("malformed: sig.alg must be ed25519")
    if sig["key_id"] != verifier.key_id_hex:
        raise PolicyRefused(f"bad signature: signed by unknown key {str(sig['key_id'])[:16]!r}")
    raw = _decode_sig(sig["value"]) if isinstance(sig["value"], str) else None
    if raw is None:
        raise PolicyRefused("malformed: sig.value is not base64 of a 64-byte signature")
    try:
        msg = canonical.dumps(doc)
    except (CanonicalError, RecursionError) as exc:
        raise PolicyRefused(f"malformed: not canonical JSON data ({exc})") from None
    if not verifier.verify(msg, raw):
        raise PolicyRefused("bad signature: the policy does not verify with the pinned order key")
    try:
        validate_policy(doc)
    except (SchemaError, RecursionError) as exc:
        raise PolicyRefused(f"malformed: {exc}") from None
    if doc["appliance_id"] != appliance_id:
        raise PolicyRefused(f"wrong appliance: the policy is for {doc['appliance_id']}")
    if doc["site_id"] != site_id:
        raise PolicyRefused(f"wrong site: the policy is for site {doc['site_id']}")
    digest = envelope_sha256(envelope)
    if in_force is not None:
        if doc["version"] < in_force.version:
            raise PolicyRefused(
                f"rollback: version {doc['version']} is lower than version "
                f"{in_force.version} in force"
            )
        if doc["version"] == in_force.version:
            if digest == in_force.sha256:
                return in_force
            raise PolicyRefused(f"version {doc['version']} reused for a different policy")
    verifiers = list(release_verifiers) or [verifier]
    releases: dict[str, dict[str, Any]] = {}
    for i, env in enumerate(doc["releases"]):
        try:
            rel = verify_release(env, verifiers)
        except ReleaseRefused as exc:
            raise PolicyRefused(f"release #{i}: {exc}") from None
        releases[rel["system"]] = env
    context = TrustContext(
        {rb: {n: tuple(v) for n, v in names.items()} for rb, names in doc["allowlists"].items()},
        releases,
    )
    try:
        accepted, skipped = judge_params(catalog, doc["params"], context)
    except SchemaError as exc:
        raise PolicyRefused(f"parameter refused: {exc}") from None
    pinned = context.pin(trust_values(catalog, doc["params"]))
    accepted = {rid: CheckedParams(rid, dict(v), pinned) for rid, v in accepted.items()}
    return AcceptedPolicy(
        envelope=copy.deepcopy(envelope),
        doc=copy.deepcopy(doc),
        sha256=digest,
        params=accepted,
        context=pinned,
        skipped=skipped,
    )
