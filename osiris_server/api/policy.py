"""The signed policy each appliance receives (DESIGN §3.6): built, versioned and signed here.

One ``osiris.policy/1`` document per appliance holds everything the server tells it to *do* —
runbook toggles, parameters, the maintenance window, check-in cadence, L2 limits, the site's
allow-lists for trust-redirecting parameters with the signed releases they name, the record of
the latest change of each trust-redirecting value, and the hash of the signed rules. It is
signed with the order key the appliance pinned at enrolment.

Versions: ``policy_versions`` keeps the last policy issued to each appliance. Whenever the
computed content (everything but ``version`` and ``issued_at``) differs from it, the next
version is signed and stored in the same transaction before the answer leaves, so a version
is never reused for other content, even across restarts and processes. Content is recomputed
only when the site's or the appliance's change generation moves (``db/gen.py``: every write to
the rows the policy is made of bumps one of them) or the rules change; otherwise a check-in costs
one dictionary lookup, and the answer leaves the policy out when the appliance already has it.

Every parameter value goes through the catalogue's validator with the site's allow-lists before
it is put in a policy; a stored value that no longer passes (an allow-list shrank, a row older
than the bound) is left out, so its catalogue default — the baseline — applies.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core import policy as core_policy
from osiris_core.canonical import utc_now
from osiris_core.errors import SchemaError
from osiris_server.db import gen
from osiris_server.db import runbooks as db_runbooks

if TYPE_CHECKING:
    from osiris_server.app import App

Params = dict[str, dict[str, Any]]
MAX_ENTRIES = 200_000

_lock = threading.Lock()
# id(app) -> {site_id: (generation, inputs)}
_site_inputs: dict[int, dict[str, tuple[int, dict[str, Any]]]] = {}
# id(app) -> {appliance_id: (key, version, envelope_json or None)}
_issued: dict[int, dict[str, tuple[tuple, int, str | None]]] = {}
_rules_hash: dict[int, tuple[int, str]] = {}


def ruleset_hash(app: App, site_id: str | None = None) -> str:
    """``sha256:`` + hex SHA-256 of the canonical signed rules document (what the agent hashes);
    with ``site_id``, of that site's rule set (baseline + its promoted learned rules)."""
    if site_id is not None:
        return app.rule_sets.for_site(site_id)[2]
    key = id(app.signed_rules)
    hit = _rules_hash.get(id(app))
    if hit is None or hit[0] != key:
        signed = app.signed_rules.get("signed", {})
        hit = (key, "sha256:" + hashlib.sha256(canonical.dumps(signed)).hexdigest())
        _rules_hash[id(app)] = hit
    return hit[1]


def trusted_names(app: App) -> dict[str, list[str]]:
    """``{runbook_id: [trust-redirecting param, …]}`` of this server's catalogue."""
    out: dict[str, list[str]] = {}
    for rid, rb in app.catalog_runbooks().items():
        names = [n for n, p in rb.params.items() if p.trusted]
        if names:
            out[rid] = names
    return out


def release_systems(app: App, allow: dict[str, dict[str, list[str]]]) -> list[str]:
    """The store paths on the site's allow-lists of ``release``-bound parameters."""
    out: list[str] = []
    for rid, names in allow.items():
        rb = app.catalog_runbooks().get(rid)
        for name, values in names.items():
            p = rb.params.get(name) if rb is not None else None
            if p is not None and p.bound is not None and p.bound.kind == "release":
                out += [v for v in values if v not in out]
    return out


def site_inputs(app: App, site_id: str, generation: int) -> dict[str, Any]:
    """Allow-lists, releases, site-scope change records and L2 limits of a site, cached while
    the site's generation holds."""
    per = _site_inputs.setdefault(id(app), {})
    hit = per.get(site_id)
    if hit is not None and hit[0] == generation:
        return hit[1]
    allow = db_runbooks.allowlists(app.db, site_id)
    inputs = {
        "allowlists": allow,
        "releases": db_runbooks.releases(app.db, release_systems(app, allow)),
        "changes": db_runbooks.latest_trust_changes(app.db, "site", site_id),
        "l2": db_runbooks.l2_settings(app.db, site_id),
    }
    if len(per) >= MAX_ENTRIES:
        per.clear()
    per[site_id] = (generation, inputs)
    return inputs


def context(app: App, inputs: dict[str, Any]) -> Any:
    """The trust context the server judges values in (the site's allow-lists and releases)."""
    return core_policy.server_context(inputs["allowlists"], inputs["releases"])


def judged_params(app: App, effective: Params, ctx: Any) -> tuple[Params, list[dict[str, str]]]:
    """Effective values this catalogue knows and its validator accepts; the rest is dropped."""
    known = app.catalog_runbooks()
    kept: Params = {}
    dropped: list[dict[str, str]] = []
    for rid, values in sorted(effective.items()):
        rb = known.get(rid)
        if rb is None:
            continue
        for name, value in sorted(values.items()):
            if name not in rb.params:
                continue
            try:
                rb.validate_params({name: value}, ctx)
            except SchemaError as exc:
                dropped.append({"runbook_id": rid, "param": name, "reason": str(exc)[:200]})
                continue
            kept.setdefault(rid, {})[name] = value
    return kept, dropped


def content(
    app: App,
    appliance_id: str,
    site: dict[str, Any],
    site_t: dict[str, bool],
    site_p: Params,
    own_t: dict[str, bool],
    own_p: Params,
    inputs: dict[str, Any],
    own_changes: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, Any]:
    """Every field of the appliance's policy but ``version`` and ``issued_at``."""
    ctx = context(app, inputs)
    params, _dropped = judged_params(app, db_runbooks.effective_params(site_p, own_p), ctx)
    changes = []
    for rid, names in sorted(trusted_names(app).items()):
        for name in names:
            recs = [r for r in (own_changes.get((rid, name)), inputs["changes"].get((rid, name)))
                    if r is not None]  # fmt: skip
            if recs:  # the newest change that reached this appliance (its own scope wins a tie)
                changes.append(max(recs, key=lambda r: r["at"]))
    allow = {
        rid: {n: list(v) for n, v in names.items()}
        for rid, names in inputs["allowlists"].items()
        if rid in app.catalog_runbooks()
    }
    return {
        "appliance_id": appliance_id,
        "site_id": site["id"],
        "runbooks": db_runbooks.effective(app.runbook_defaults(), site_t, own_t),
        "params": params,
        "window": dict(site["window"]),
        "checkin_interval_s": int(site["checkin_interval_s"]),
        "l2": dict(inputs["l2"]),
        "allowlists": allow,
        "releases": list(inputs["releases"]),
        "changes": changes,
        "ruleset_hash": ruleset_hash(app, site["id"]),
    }


def issue(
    app: App, appliance_id: str, body: dict[str, Any], generations: tuple[int, int] | None = None
) -> tuple[int, str, bool]:
    """The current policy version for ``body`` (a policy's content), signing and storing the
    next version first when the content differs from the last one issued (and the site's and
    appliance's generations it was computed from are still the current ones). The flag says
    whether the version returned carries ``body`` (False: an older one was kept)."""
    draft = core_policy.make_policy(**body, version=1, issued_at=utc_now())  # validates early
    sha = core_policy.content_sha256(draft)
    row = db_runbooks.issued_policy(app.db, appliance_id)
    if row is not None and row["content_sha256"] == sha:
        return int(row["version"]), row["envelope"], True

    def build(version: int) -> tuple[str, str]:
        issued_at = utc_now()
        doc = core_policy.make_policy(**body, version=version, issued_at=issued_at)
        env = core_policy.sign_policy(doc, app.order_signer)
        return canonical.dumps(env).decode("ascii"), issued_at

    scopes = (gen.site_scope(body["site_id"]), gen.appliance_scope(appliance_id))
    with app.db.write() as w:  # durable before any answer names this version
        version, env_json, status = db_runbooks.issue_policy(
            w, appliance_id, build, sha, scopes, generations
        )
    return version, env_json, status != "stale"


def current(
    app: App,
    appliance_id: str,
    site: dict[str, Any],
    g_site: int,
    g_own: int,
    site_t: dict[str, bool],
    site_p: Params,
    own_t: dict[str, bool],
    own_p: Params,
    have: int | None = None,
) -> tuple[int, str | None]:
    """``(version, envelope JSON or None)`` for a check-in; the envelope is None when the
    appliance says it already has ``version`` (``have``)."""
    key = (g_site, g_own, ruleset_hash(app, site["id"]))
    per = _issued.setdefault(id(app), {})
    hit = per.get(appliance_id)
    if hit is not None and hit[0] == key:
        version, env_json = hit[1], hit[2]
        if have == version:
            if env_json is not None:
                per[appliance_id] = (key, version, None)  # delivered: forget the bytes
            return version, None
        if env_json is None:
            row = db_runbooks.issued_policy(app.db, appliance_id)
            env_json = row["envelope"] if row is not None else None
        if env_json is not None:
            return version, env_json
    inputs = site_inputs(app, site["id"], g_site)
    own_changes = (
        db_runbooks.latest_trust_changes(app.db, "appliance", appliance_id) if g_own else {}
    )
    body = content(app, appliance_id, site, site_t, site_p, own_t, own_p, inputs, own_changes)
    with _lock:
        version, env_json, fresh = issue(app, appliance_id, body, (g_site, g_own))
    if len(per) >= MAX_ENTRIES:
        per.clear()
    delivered = have == version
    if fresh:
        per[appliance_id] = (key, version, None if delivered else env_json)
    else:  # the generations moved while the content was computed: recompute next time
        per.pop(appliance_id, None)
    return version, (None if delivered else env_json)


def for_appliance(app: App, row: dict[str, Any]) -> tuple[int, str]:
    """The current signed policy of an enrolled appliance (for operators: GET …/policy)."""
    scopes = (gen.site_scope(row["site_id"]), gen.appliance_scope(row["id"]))
    g_site, g_own = gen.read_two(app.db, *scopes)
    _, site, _creds, site_t, site_p = app.checkin_cache.site(app, row["site_id"], g_site)
    own_t, own_p = app.checkin_cache.own(app, row["id"], g_own)
    version, env_json = current(app, row["id"], site, g_site, g_own, site_t, site_p, own_t, own_p)
    if env_json is None:  # pragma: no cover - have=None never suppresses the envelope
        raise RuntimeError("policy envelope missing")
    return version, env_json
