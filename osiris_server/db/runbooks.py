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
