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
        "UPDATE enroll_requests SET provision_id = NULL, code_enc = NULL, status = 'pending',"
        " site_id = NULL WHERE provision_id = ?",
        [provision_id],
    )
    return w.execute("DELETE FROM provisions WHERE id = ? AND used_at IS NULL", [provision_id]) > 0


# ---- MAC enrolment requests: one row per (MAC, requester)


def mac_get(db: Database | Writer, mac: str, requester_hash: str) -> dict[str, Any] | None:
    return db.one(
        "SELECT * FROM enroll_requests WHERE mac = ? AND requester_hash = ?", [mac, requester_hash]
    )


def mac_expire(w: Writer, now_epoch: int) -> None:
    """Forget pending requests past their expiry (approved ones expire with their code)."""
    w.execute(
        "DELETE FROM enroll_requests WHERE status = 'pending' AND expires_epoch < ?", [now_epoch]
    )


def mac_count_pending_from(w: Writer, source: str) -> int:
    row = w.one(
        "SELECT COUNT(*) AS n FROM enroll_requests WHERE status = 'pending' AND source = ?",
        [source],
    )
    return int(row["n"]) if row else 0


def mac_request(w: Writer, mac: str, requester_hash: str, source: str, expires_epoch: int) -> None:
    w.execute(
        "INSERT INTO enroll_requests (mac, requester_hash, source, requested_at, expires_epoch,"
        " status) VALUES (?, ?, ?, ?, ?, 'pending') ON CONFLICT (mac, requester_hash) DO NOTHING",
        [mac, requester_hash, source, now(), expires_epoch],
    )


def mac_approve(
    w: Writer,
    mac: str,
    requester_hash: str,
    site_id: str,
    provision_id: str,
    code_enc: str,
    actor: str,
    expires_epoch: int,
) -> None:
    w.execute(
        "UPDATE enroll_requests SET status = 'approved', site_id = ?, provision_id = ?,"
        " code_enc = ?, approved_at = ?, approved_by = ?, expires_epoch = ?"
        " WHERE mac = ? AND requester_hash = ?",
        [site_id, provision_id, code_enc, now(), actor, expires_epoch, mac, requester_hash],
    )


def mac_delete(w: Writer, mac: str, requester_hash: str | None = None) -> int:
    """Remove the MAC's requests (or one requester's); their unused claim codes go too."""
    where, args = "mac = ?", [mac]
    if requester_hash is not None:
        where, args = "mac = ? AND requester_hash = ?", [mac, requester_hash]
    rows = w.query(f"SELECT provision_id FROM enroll_requests WHERE {where}", args)
    w.execute(f"DELETE FROM enroll_requests WHERE {where}", args)
    for r in rows:
        if r["provision_id"]:
            w.execute(
                "DELETE FROM provisions WHERE id = ? AND used_at IS NULL", [r["provision_id"]]
            )
    return len(rows)


def mac_list(db: Database) -> list[dict[str, Any]]:
    return db.query(
        "SELECT mac, requester_hash, status, site_id, provision_id, requested_at, source,"
        " expires_epoch, approved_at, approved_by FROM enroll_requests ORDER BY requested_at"
    )


def mac_forget_claimed(w: Writer, provision_id: str) -> None:
    w.execute("DELETE FROM enroll_requests WHERE provision_id = ?", [provision_id])


def encrypted_codes(w: Writer) -> list[dict[str, Any]]:
    """Approved requests' sealed claim codes (for vault key rotation)."""
    return w.query(
        "SELECT mac, requester_hash, code_enc FROM enroll_requests WHERE code_enc IS NOT NULL"
    )


def set_code_enc(w: Writer, mac: str, requester_hash: str, code_enc: str) -> None:
    w.execute(
        "UPDATE enroll_requests SET code_enc = ? WHERE mac = ? AND requester_hash = ?",
        [code_enc, mac, requester_hash],
    )


def code_context(mac: str, requester_hash: str) -> str:
    """Vault context of an approved request's claim code: bound to the MAC *and* requester."""
    return f"mac:{mac}:{requester_hash}"
