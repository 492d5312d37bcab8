"""Signed orders queued for appliances: pending -> delivered -> done (or expired)."""

from __future__ import annotations

import time
from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jload, now

COLS = (
    "id, site_id, appliance_id, kind, params_json, disruptive, envelope, status, created_at,"
    " created_by, expires_at, expires_epoch, delivered_at, done_at, result_bundle_hash,"
    " result_outcome"
)


def create(w: Writer, row: dict[str, Any]) -> None:
    w.insert("orders", row)


def _out(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["params"] = jload(row.pop("params_json"), {})
    row["disruptive"] = bool(row["disruptive"])
    row["envelope"] = jload(row["envelope"])
    if row["status"] in ("pending", "delivered") and row["expires_epoch"] < time.time():
        row["status"] = "expired"
    row.pop("expires_epoch")
    return row


def list_for_appliance(db: Database, appliance_id: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.query(
        f"SELECT {COLS} FROM orders WHERE appliance_id = ? ORDER BY created_at DESC, id LIMIT ?",
        [appliance_id, limit],
    )
    return [_out(r) for r in rows]


def get(db: Database, order_id: str) -> dict[str, Any] | None:
    row = db.one(f"SELECT {COLS} FROM orders WHERE id = ?", [order_id])
    return _out(row) if row else None


def pending_envelopes(db: Database, appliance_id: str) -> list[tuple[str, str]]:
    """(id, envelope json) of orders not yet handed out and not expired."""
    rows = db.query(
        "SELECT id, envelope FROM orders WHERE appliance_id = ? AND status = 'pending'"
        " AND expires_epoch > ? ORDER BY created_at, id",
        [appliance_id, int(time.time())],
    )
    return [(r["id"], r["envelope"]) for r in rows]


def for_checkin(db: Database, appliance_id: str) -> tuple[list[tuple[str, str]], int]:
    """One query for a check-in: (pending (id, envelope) as ``pending_envelopes``, the number
    of delivered orders still awaiting their result as ``awaiting_result``)."""
    rows = db.query(
        "SELECT id, envelope, status FROM orders WHERE appliance_id = ?"
        " AND status IN ('pending', 'delivered') AND expires_epoch > ? ORDER BY created_at, id",
        [appliance_id, int(time.time())],
    )
    pending = [(r["id"], r["envelope"]) for r in rows if r["status"] == "pending"]
    return pending, len(rows) - len(pending)


def awaiting_result(db: Database, appliance_id: str) -> int:
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM orders WHERE appliance_id = ? AND status = 'delivered'"
            " AND expires_epoch > ?",
            [appliance_id, int(time.time())],
        )
        or 0
    )


def mark_delivered(w: Writer, ids: list[str]) -> None:
    ts = now()
    w.executemany(
        "UPDATE orders SET status = 'delivered', delivered_at = ?"
        " WHERE id = ? AND status = 'pending'",
        [(ts, i) for i in ids],
    )


def mark_done(w: Writer, appliance_id: str, order_id: str, bundle_hash: str, outcome: str) -> None:
    w.execute(
        "UPDATE orders SET status = 'done', done_at = ?, result_bundle_hash = ?,"
        " result_outcome = ? WHERE id = ? AND appliance_id = ? AND status <> 'done'",
        [now(), bundle_hash, outcome, order_id, appliance_id],
    )
