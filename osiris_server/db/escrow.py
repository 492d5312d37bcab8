"""Escrowed recovery keys (BitLocker): one row per (site, host, protector), secret only as a
vault token.

Why its own table and not a credential: a credential is something the server *hands out* at
check-in; an escrowed key is something an appliance *hands in* and nobody but an admin reveal
ever reads back. Keeping them apart means no check-in, listing or backup path that serves
credentials can ever serve a recovery key.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now

# what a listing may show: every column but the secret
PUBLIC_COLS = "id, site_id, appliance_id, host_id, kind, protector_id, created_at"


def context(site_id: str, appliance_id: str, escrow_id: str) -> str:
    """Vault context: binds a ciphertext to its site, its uploader and its row."""
    return f"site:{site_id}/appliance:{appliance_id}/escrow:{escrow_id}"


def new_row_id() -> str:
    return new_id("esc")


def find(
    db: Database | Writer, site_id: str, host_id: str, protector_id: str
) -> dict[str, Any] | None:
    """The escrow row of this protector (public columns), or None."""
    return db.one(
        f"SELECT {PUBLIC_COLS} FROM key_escrow WHERE site_id = ? AND host_id = ?"
        " AND protector_id = ?",
        [site_id, host_id, protector_id],
    )


def create(w: Writer, row: dict[str, Any]) -> None:
    w.insert("key_escrow", {**row, "created_at": now()})


def for_site(db: Database | Writer, site_id: str) -> list[dict[str, Any]]:
    """Public columns only: a listing never carries a secret or its ciphertext."""
    return db.query(
        f"SELECT {PUBLIC_COLS} FROM key_escrow WHERE site_id = ? ORDER BY host_id, created_at",
        [site_id],
    )


def secret_of(db: Database | Writer, site_id: str, escrow_id: str) -> dict[str, Any] | None:
    """The row with its vault token (the admin reveal only)."""
    return db.one(
        f"SELECT {PUBLIC_COLS}, secret_enc FROM key_escrow WHERE id = ? AND site_id = ?",
        [escrow_id, site_id],
    )


def all_secret_rows(w: Writer) -> list[dict[str, Any]]:
    """Every token with what its context needs (vault key rotation rewraps them)."""
    return w.query("SELECT id, site_id, appliance_id, secret_enc FROM key_escrow")


def set_secret(w: Writer, escrow_id: str, secret_enc: str) -> None:
    w.execute("UPDATE key_escrow SET secret_enc = ? WHERE id = ?", [secret_enc, escrow_id])
