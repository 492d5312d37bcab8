"""Appliance signing-key rotations (``osiris.key-rotation/1`` statements, osiris_core.trust).

One row per accepted statement, in ``effective_seq`` order per appliance; ``statement`` is the
canonical JSON of the signed statement exactly as accepted, so ``GET /log/keys`` hands auditors
the same bytes the appliance signed. Rows are never changed or deleted.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer


def for_appliance(db: Database | Writer, appliance_id: str) -> list[dict[str, Any]]:
    """Every rotation of one appliance, oldest first."""
    return db.query(
        "SELECT appliance_id, effective_seq, old_vkey, new_vkey, statement, received_at"
        " FROM appliance_key_rotations WHERE appliance_id = ? ORDER BY effective_seq",
        [appliance_id],
    )


def for_appliances(db: Database, appliance_ids: list[str]) -> dict[str, list[str]]:
    """``{appliance_id: [statement JSON, …]}`` (oldest first) for those that ever rotated."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(appliance_ids), 500):
        chunk = appliance_ids[i : i + 500]
        marks = ",".join("?" for _ in chunk)
        for r in db.query(
            "SELECT appliance_id, statement FROM appliance_key_rotations"
            f" WHERE appliance_id IN ({marks}) ORDER BY appliance_id, effective_seq",
            chunk,
        ):
            out.setdefault(r["appliance_id"], []).append(r["statement"])
    return out


def insert(w: Writer, row: dict[str, Any]) -> None:
    w.insert("appliance_key_rotations", row)


def key_history(db: Database | Writer, appliance_id: str) -> list[dict[str, Any]]:
    """The appliance's current signing key beside each rotation statement, oldest first (one
    row with ``statement`` None when it never rotated; no row when there is no appliance)."""
    return db.query(
        "SELECT a.signing_vkey, r.statement FROM appliances a"
        " LEFT JOIN appliance_key_rotations r ON r.appliance_id = a.id"
        " WHERE a.id = ? ORDER BY r.effective_seq",
        [appliance_id],
    )
