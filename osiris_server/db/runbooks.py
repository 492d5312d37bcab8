"""Runbook toggles and parameter values per site and per appliance.

Effective state = appliance override ?? site setting ?? catalogue ``default_enabled``.
A row stores an explicit ``enabled`` 0/1 per runbook, so "all disabled" is representable and
never confused with "nothing configured" (lessons D).
"""

from __future__ import annotations

import json
from typing import Any

from osiris_server.db import gen
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now


def settings(db: Database, scope: str, scope_id: str) -> dict[str, bool]:
    rows = db.query(
        "SELECT runbook_id, enabled FROM runbook_toggles WHERE scope = ? AND scope_id = ?",
        [scope, scope_id],
    )
    return {r["runbook_id"]: bool(r["enabled"]) for r in rows}


def apply(w: Writer, scope: str, scope_id: str, changes: dict[str, bool | None], actor: str):
    """Set (True/False) or clear (None) one toggle per runbook id."""
    ts = now()
    for rb, value in sorted(changes.items()):
        w.execute(
            "DELETE FROM runbook_toggles WHERE scope = ? AND scope_id = ? AND runbook_id = ?",
            [scope, scope_id, rb],
        )
        if value is not None:
            w.insert(
                "runbook_toggles",
                {
                    "scope": scope,
                    "scope_id": scope_id,
                    "runbook_id": rb,
                    "enabled": int(value),
                    "updated_at": ts,
                    "updated_by": actor,
                },
            )
    gen.bump(w, f"{scope}:{scope_id}")  # site:<id> / appliance:<id>, as gen.*_scope spell them


def effective(
    defaults: dict[str, bool], site: dict[str, bool], appliance: dict[str, bool]
) -> dict[str, Any]:
    enabled, disabled = [], []
    for rb in sorted(defaults):
        on = appliance.get(rb, site.get(rb, defaults[rb]))
        (enabled if on else disabled).append(rb)
    return {"enabled": enabled, "disabled": disabled}


# ---- parameter values (policy thresholds) per site / appliance
#
# One row per (scope, runbook, parameter): an appliance overrides one value and inherits the
# rest from its site; a value nobody set is the catalogue default (filled in by the agent's
# ``Runbook.validate_params``, so it is never copied here and a catalogue change reaches every
# site that did not choose otherwise).


def param_settings(db: Database, scope: str, scope_id: str) -> dict[str, dict[str, Any]]:
    """``{runbook_id: {name: value}}`` set at exactly this scope."""
    rows = db.query(
        "SELECT runbook_id, name, value_json FROM runbook_params"
        " WHERE scope = ? AND scope_id = ? ORDER BY runbook_id, name",
        [scope, scope_id],
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out.setdefault(r["runbook_id"], {})[r["name"]] = json.loads(r["value_json"])
    return out


def apply_params(
    w: Writer,
    scope: str,
    scope_id: str,
    runbook_id: str,
    changes: dict[str, Any],
    actor: str,
) -> None:
    """Set (a value) or clear (``None``) parameters of one runbook at one scope.

    Values must already be validated against the catalogue; the generation bump makes the
    next check-in of every appliance in scope see the change (``db/gen.py``)."""
    ts = now()
    for name, value in sorted(changes.items()):
        w.execute(
            "DELETE FROM runbook_params"
            " WHERE scope = ? AND scope_id = ? AND runbook_id = ? AND name = ?",
            [scope, scope_id, runbook_id, name],
        )
        if value is not None:
            w.insert(
                "runbook_params",
                {
                    "scope": scope,
                    "scope_id": scope_id,
                    "runbook_id": runbook_id,
                    "name": name,
                    "value_json": json.dumps(value),
                    "updated_at": ts,
                    "updated_by": actor,
                },
            )
    gen.bump(w, f"{scope}:{scope_id}")


def effective_params(
    site: dict[str, dict[str, Any]], appliance: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per parameter: appliance value ?? site value (defaults stay implicit)."""
    out = {rb: dict(values) for rb, values in site.items()}
    for rb, values in appliance.items():
        out.setdefault(rb, {}).update(values)
    return {rb: values for rb, values in sorted(out.items()) if values}


# ---- trust-redirecting parameters: per-site allow-lists (admin only), change records, releases
#
# A trust-redirecting value (update server, DNS servers, pinned baseline, desired system) must be
# on its site's allow-list; the allow-list, the releases and every change of such a value are
# site-scoped rows, so each write bumps ``site:<id>`` (the next check-in builds a new policy).


def allowlists(db: Database, site_id: str) -> dict[str, dict[str, list[str]]]:
    """``{runbook_id: {name: [value, …]}}`` of one site."""
    rows = db.query(
        "SELECT runbook_id, name, values_json FROM trust_allowlists WHERE site_id = ?"
        " ORDER BY runbook_id, name",
        [site_id],
    )
    out: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        values = json.loads(r["values_json"])
        if values:
            out.setdefault(r["runbook_id"], {})[r["name"]] = values
    return out


def set_allowlist(
    w: Writer, site_id: str, runbook_id: str, name: str, values: list[str], actor: str
) -> list[str]:
    """Replace one allow-list; returns the values it held before."""
    old = w.one(
        "SELECT values_json FROM trust_allowlists"
        " WHERE site_id = ? AND runbook_id = ? AND name = ?",
        [site_id, runbook_id, name],
    )
    w.execute(
        "DELETE FROM trust_allowlists WHERE site_id = ? AND runbook_id = ? AND name = ?",
        [site_id, runbook_id, name],
    )
    if values:
        w.insert(
            "trust_allowlists",
            {
                "site_id": site_id,
                "runbook_id": runbook_id,
                "name": name,
                "values_json": json.dumps(values),
                "updated_at": now(),
                "updated_by": actor,
            },
        )
    gen.bump(w, gen.site_scope(site_id))
    return json.loads(old["values_json"]) if old else []


def record_trust_change(
    w: Writer,
    site_id: str,
    scope: str,
    scope_id: str,
    runbook_id: str,
    name: str,
    old: Any,
    new: Any,
    actor: str,
) -> dict[str, Any]:
    """One change of a trust-redirecting value at a scope (``None`` = not set there)."""
    at = now()
    w.insert(
        "trust_changes",
        {
            "site_id": site_id,
            "scope": scope,
            "scope_id": scope_id,
            "runbook_id": runbook_id,
            "name": name,
            "old_json": None if old is None else json.dumps(old),
            "new_json": None if new is None else json.dumps(new),
            "actor": actor,
            "at": at,
        },
    )
    return {"runbook_id": runbook_id, "param": name, "scope": scope, "old": old, "new": new,
            "by": actor, "at": at}  # fmt: skip


def latest_trust_changes(db: Database, scope: str, scope_id: str) -> dict[tuple[str, str], dict]:
    """The newest change record per (runbook, parameter) at one scope, as the policy carries it."""
    rows = db.query(
        "SELECT runbook_id, name, scope, old_json, new_json, actor, at FROM trust_changes"
        " WHERE id IN (SELECT MAX(id) FROM trust_changes WHERE scope = ? AND scope_id = ?"
        " GROUP BY runbook_id, name)",
        [scope, scope_id],
    )
    out = {}
    for r in rows:
        out[(r["runbook_id"], r["name"])] = {
            "runbook_id": r["runbook_id"],
            "param": r["name"],
            "scope": r["scope"],
            "old": None if r["old_json"] is None else json.loads(r["old_json"]),
            "new": None if r["new_json"] is None else json.loads(r["new_json"]),
            "by": r["actor"],
            "at": r["at"],
        }
    return out


def trust_history(db: Database, site_id: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT scope, scope_id, runbook_id, name, old_json, new_json, actor, at"
        " FROM trust_changes WHERE site_id = ? ORDER BY id DESC LIMIT ?",
        [site_id, limit],
    )
    return [
        {
            "scope": r["scope"],
            "scope_id": r["scope_id"],
            "runbook_id": r["runbook_id"],
            "param": r["name"],
            "old": None if r["old_json"] is None else json.loads(r["old_json"]),
            "new": None if r["new_json"] is None else json.loads(r["new_json"]),
            "by": r["actor"],
            "at": r["at"],
        }
        for r in rows
    ]


def releases(db: Database, systems: list[str]) -> list[dict[str, Any]]:
    """The signed release envelopes for these store paths (those that have one), in order."""
    if not systems:
        return []
    marks = ",".join("?" for _ in systems)
    rows = db.query(f"SELECT system, envelope FROM releases WHERE system IN ({marks})", systems)
    by = {r["system"]: json.loads(r["envelope"]) for r in rows}
    return [by[s] for s in systems if s in by]


def put_release(w: Writer, system: str, envelope: dict[str, Any], actor: str) -> bool:
    """Store a signed release unless one exists for that system; True if it was new."""
    if w.one("SELECT 1 AS x FROM releases WHERE system = ?", [system]):
        return False
    w.insert(
        "releases",
        {"system": system, "envelope": json.dumps(envelope), "created_at": now(),
         "created_by": actor},
    )  # fmt: skip
    return True


DEFAULT_L2 = {"allowed": True, "min_confidence": 0}


def l2_settings(db: Database, site_id: str) -> dict[str, Any]:
    row = db.one("SELECT allowed, min_confidence FROM site_l2 WHERE site_id = ?", [site_id])
    if row is None:
        return dict(DEFAULT_L2)
    return {"allowed": bool(row["allowed"]), "min_confidence": int(row["min_confidence"])}


def set_l2(w: Writer, site_id: str, allowed: bool, min_confidence: int, actor: str) -> None:
    w.execute("DELETE FROM site_l2 WHERE site_id = ?", [site_id])
    w.insert(
        "site_l2",
        {"site_id": site_id, "allowed": int(allowed), "min_confidence": min_confidence,
         "updated_at": now(), "updated_by": actor},
    )  # fmt: skip
    gen.bump(w, gen.site_scope(site_id))


# ---- the policy issued to each appliance: version only grows, never reused


def issued_policy(db: Database, appliance_id: str) -> dict[str, Any] | None:
    return db.one(
        "SELECT version, content_sha256, envelope, issued_at FROM policy_versions"
        " WHERE appliance_id = ?",
        [appliance_id],
    )


def issue_policy(
    w: Writer,
    appliance_id: str,
    build: Any,
    content_sha256: str,
    scopes: tuple[str, str] | None = None,
    generations: tuple[int, int] | None = None,
) -> tuple[int, str, str]:
    """Inside the write transaction: reuse the last issued policy if its content is the same,
    else sign ``build(version)`` as the next version. Returns (version, envelope_json, status)
    with status ``same``, ``new`` or ``stale`` (see below).

    ``scopes``/``generations``: the change generations the content was computed from. If
    another process changed them meanwhile, the content may be stale, so nothing is issued
    (the last issued policy is returned; the next check-in computes the current content) —
    a stale content never becomes a newer version."""
    row = w.one(
        "SELECT version, content_sha256, envelope FROM policy_versions WHERE appliance_id = ?",
        [appliance_id],
    )
    if row is not None and row["content_sha256"] == content_sha256:
        return int(row["version"]), row["envelope"], "same"
    if row is not None and scopes is not None and generations is not None:
        got = {
            r["scope"]: int(r["gen"])
            for r in w.query("SELECT scope, gen FROM cache_gen WHERE scope IN (?, ?)", list(scopes))
        }
        if (got.get(scopes[0], 0), got.get(scopes[1], 0)) != tuple(generations):
            return int(row["version"]), row["envelope"], "stale"
    version = int(row["version"]) + 1 if row is not None else 1
    envelope_json, issued_at = build(version)
    if row is None:
        w.insert(
            "policy_versions",
            {"appliance_id": appliance_id, "version": version, "content_sha256": content_sha256,
             "envelope": envelope_json, "issued_at": issued_at},
        )  # fmt: skip
    else:
        w.execute(
            "UPDATE policy_versions SET version = ?, content_sha256 = ?, envelope = ?,"
            " issued_at = ? WHERE appliance_id = ?",
            [version, content_sha256, envelope_json, issued_at, appliance_id],
        )
    return version, envelope_json, "new"
