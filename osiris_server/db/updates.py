"""Agent releases, rollouts and what each appliance's update order became (issue 16 item 6).

A rollout's per-appliance state is not stored: it is read from the order's own row (pending,
delivered, expired) and the evidence the appliance signed about it (one bundle per step:
``requested``, ``switched``, then ``healthy`` or ``rolled_back``; outcomes compliant ×3 or
reverted). Storing a copy would be a second truth that can disagree with the signed one.
"""

from __future__ import annotations

import json
from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now

_CHUNK = 500


def put_release(w: Writer, release: dict[str, Any], envelope: dict[str, Any], actor: str) -> bool:
    """Store a signed agent release; False if that version exists already (never replaced)."""
    if w.one("SELECT 1 AS x FROM agent_releases WHERE version = ?", [release["version"]]):
        return False
    w.insert(
        "agent_releases",
        {"version": release["version"], "system": release["system"],
         "envelope": json.dumps(envelope, sort_keys=True), "created_at": now(),
         "created_by": actor},
    )  # fmt: skip
    return True


def release(db: Database, version: str) -> dict[str, Any] | None:
    row = db.one("SELECT version, envelope, created_at, created_by FROM agent_releases"
                 " WHERE version = ?", [version])  # fmt: skip
    if row is None:
        return None
    return {**row, "envelope": json.loads(row["envelope"])}


def releases(db: Database) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT version, envelope, created_at, created_by FROM agent_releases ORDER BY created_at"
    )
    return [{**r, "envelope": json.loads(r["envelope"])} for r in rows]


def create_rollout(w: Writer, row: dict[str, Any], targets: list[dict[str, str]]) -> None:
    """The rollout and its orders' membership (the orders themselves are in ``orders``)."""
    w.insert("rollouts", row)
    w.executemany(
        "INSERT INTO rollout_orders (order_id, rollout_id, site_id, appliance_id)"
        " VALUES (?, ?, ?, ?)",
        [(t["order_id"], row["id"], t["site_id"], t["appliance_id"]) for t in targets],
    )


def rollout(db: Database, rollout_id: str) -> dict[str, Any] | None:
    return db.one(
        "SELECT id, version, system, sites_json, allow_downgrade, created_at, created_by"
        " FROM rollouts WHERE id = ?",
        [rollout_id],
    )


def rollouts(db: Database) -> list[dict[str, Any]]:
    return db.query(
        "SELECT id, version, system, sites_json, allow_downgrade, created_at, created_by"
        " FROM rollouts ORDER BY created_at DESC, id"
    )


def rollout_targets(db: Database, rollout_id: str) -> list[dict[str, Any]]:
    """Each appliance of a rollout with its order's row and its host facts."""
    return db.query(
        "SELECT r.order_id, r.site_id, r.appliance_id, o.status AS order_status,"
        " o.expires_epoch, a.hostname, a.agent_version, a.last_seen_at"
        " FROM rollout_orders r JOIN orders o ON o.id = r.order_id"
        " JOIN appliances a ON a.id = r.appliance_id"
        " WHERE r.rollout_id = ? ORDER BY r.site_id, a.hostname, r.appliance_id",
        [rollout_id],
    )


def latest_targets(db: Database, appliance_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each appliance's newest rollout membership (rollout id, version, order id)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(appliance_ids), _CHUNK):
        chunk = appliance_ids[i : i + _CHUNK]
        marks = ",".join("?" for _ in chunk)
        rows = db.query(
            "SELECT r.appliance_id, r.order_id, r.rollout_id, ro.version, ro.created_at"
            " FROM rollout_orders r JOIN rollouts ro ON ro.id = r.rollout_id"
            f" WHERE r.appliance_id IN ({marks}) ORDER BY ro.created_at, ro.id",
            chunk,
        )
        for r in rows:
            out[r["appliance_id"]] = r  # the newest wins
    return out


def order_steps(db: Database, order_ids: list[str]) -> dict[str, list[str]]:
    """The outcomes of the evidence each order produced, in the appliance's chain order."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(order_ids), _CHUNK):
        chunk = order_ids[i : i + _CHUNK]
        marks = ",".join("?" for _ in chunk)
        rows = db.query(
            f"SELECT order_id, outcome FROM evidence WHERE order_id IN ({marks})"
            " ORDER BY appliance_id, seq",
            chunk,
        )
        for r in rows:
            out.setdefault(r["order_id"], []).append(r["outcome"])
    return out
