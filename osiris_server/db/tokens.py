"""Operator tokens (``osk_``) and partner API keys (``opk_``), stored only as SHA-256 hashes."""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now

PUBLIC_COLS = "id, kind, role, site_id, partner_id, name, created_at, created_by, revoked_at"


def create(
    w: Writer,
    kind: str,
    token_hash: str,
    role: str,
    name: str,
    created_by: str,
    site_id: str | None = None,
    partner_id: str | None = None,
) -> dict[str, Any]:
    row = {
        "id": new_id("tok"),
        "kind": kind,
        "token_hash": token_hash,
        "role": role,
        "site_id": site_id,
        "partner_id": partner_id,
        "name": name,
        "created_at": now(),
        "created_by": created_by,
        "revoked_at": None,
    }
    w.insert("tokens", row)
    return {k: v for k, v in row.items() if k != "token_hash"}


def by_hash(db: Database, token_hash: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM tokens WHERE token_hash = ? AND revoked_at IS NULL", [token_hash])


def get(db: Database, token_id: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {PUBLIC_COLS} FROM tokens WHERE id = ?", [token_id])


def list_all(db: Database) -> list[dict[str, Any]]:
    return db.query(f"SELECT {PUBLIC_COLS} FROM tokens ORDER BY created_at, id")


def revoke(w: Writer, token_id: str) -> bool:
    return (
        w.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [now(), token_id],
        )
        > 0
    )


def revoke_partner_keys(w: Writer, partner_id: str) -> None:
    w.execute(
        "UPDATE tokens SET revoked_at = ? WHERE partner_id = ? AND kind = 'partner'"
        " AND revoked_at IS NULL",
        [now(), partner_id],
    )


def any_exist(db: Database) -> bool:
    """Whether the index already holds any token (``init --db`` refuses such a database)."""
    return db.scalar("SELECT COUNT(*) FROM tokens") > 0
