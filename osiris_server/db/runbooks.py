"""Runbook toggles per site and per appliance.

Effective state = appliance override ?? site setting ?? catalogue ``default_enabled``.
A row stores an explicit ``enabled`` 0/1 per runbook, so "all disabled" is representable and
never confused with "nothing configured" (lessons D).
"""

from __future__ import annotations

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
