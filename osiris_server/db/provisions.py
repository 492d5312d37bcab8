"""Claim codes (hashed, expiring, single use) and MAC-based enrollment requests."""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now

PUBLIC_COLS = "id, site_id, created_by, created_at, expires_at, used_at, appliance_id, mac"


def create(w: Writer, row: dict[str, Any]) -> None:
    w.insert("provisions", row)


def by_code_hash(w: Writer, code_hash: str) -> dict[str, Any] | None:
    return w.one("SELECT * FROM provisions WHERE code_hash = ?", [code_hash])


def mark_used(w: Writer, provision_id: str, appliance_id: str) -> bool:
    """Single use enforced by the UPDATE's condition: a second claim changes no row."""
    return (
        w.execute(
            "UPDATE provisions SET used_at = ?, appliance_id = ? WHERE id = ? AND used_at IS NULL",
            [now(), appliance_id, provision_id],
        )
        == 1
    )


def get(db: Database, provision_id: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {PUBLIC_COLS} FROM provisions WHERE id = ?", [provision_id])


def list_for_sites(db: Database, site_ids: list[str] | None) -> list[dict[str, Any]]:
    if site_ids is None:
        return db.query(f"SELECT {PUBLIC_COLS} FROM provisions ORDER BY created_at DESC")
    if not site_ids:
        return []
    marks = ",".join("?" for _ in site_ids)
    return db.query(
        f"SELECT {PUBLIC_COLS} FROM provisions WHERE site_id IN ({marks}) ORDER BY created_at DESC",
        site_ids,
    )


def delete_unused(w: Writer, provision_id: str) -> bool:
    w.execute(
        "UPDATE mac_requests SET provision_id = NULL, code_enc = NULL, status = 'pending',"
        " site_id = NULL WHERE provision_id = ?",
        [provision_id],
    )
    return w.execute("DELETE FROM provisions WHERE id = ? AND used_at IS NULL", [provision_id]) > 0


# ---- MAC requests


def mac_get(db: Database | Writer, mac: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM mac_requests WHERE mac = ?", [mac])


def mac_count_pending(w: Writer) -> int:
    row = w.one("SELECT COUNT(*) AS n FROM mac_requests WHERE status = 'pending'")
    return int(row["n"]) if row else 0


def mac_request(w: Writer, mac: str, source: str, requester_hash: str | None = None) -> None:
    w.execute(
        "INSERT INTO mac_requests (mac, status, requested_at, source, requester_hash)"
        " VALUES (?, 'pending', ?, ?, ?) ON CONFLICT (mac) DO NOTHING",
        [mac, now(), source, requester_hash],
    )


def mac_approve(
    w: Writer, mac: str, site_id: str, provision_id: str, code_enc: str, actor: str
) -> None:
    w.execute(
        "INSERT INTO mac_requests (mac, status, requested_at) VALUES (?, 'pending', ?)"
        " ON CONFLICT (mac) DO NOTHING",
        [mac, now()],
    )
    w.execute(
        "UPDATE mac_requests SET status = 'approved', site_id = ?, provision_id = ?,"
        " code_enc = ?, approved_at = ?, approved_by = ? WHERE mac = ?",
        [site_id, provision_id, code_enc, now(), actor, mac],
    )


def mac_delete(w: Writer, mac: str) -> bool:
    row = w.one("SELECT provision_id FROM mac_requests WHERE mac = ?", [mac])
    if row is None:
        return False
    w.execute("DELETE FROM mac_requests WHERE mac = ?", [mac])
    if row["provision_id"]:
        w.execute("DELETE FROM provisions WHERE id = ? AND used_at IS NULL", [row["provision_id"]])
    return True


def mac_list(db: Database) -> list[dict[str, Any]]:
    return db.query(
        "SELECT mac, status, site_id, provision_id, requested_at, source, approved_at,"
        " approved_by, requester_hash FROM mac_requests ORDER BY requested_at"
    )


def mac_forget_claimed(w: Writer, provision_id: str) -> None:
    w.execute("DELETE FROM mac_requests WHERE provision_id = ?", [provision_id])
