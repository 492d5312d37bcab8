"""A partner's brand: display name, colour and logo (validated in osiris_server/branding.py).

Kept apart from ``partners`` so that a partner listing (``SELECT *``) never carries a logo's
bytes; the logo is read only by the routes that serve it.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import now

META_COLS = "partner_id, display_name, colour, logo_type, logo_sha256, updated_by, updated_at"


def get(db: Database | Writer, partner_id: str) -> dict[str, Any] | None:
    """The brand without the logo bytes (None: never set)."""
    return db.one(f"SELECT {META_COLS} FROM partner_branding WHERE partner_id = ?", [partner_id])


def logo(db: Database, partner_id: str) -> tuple[str, bytes] | None:
    row = db.one(
        "SELECT logo_type, logo FROM partner_branding WHERE partner_id = ? AND logo IS NOT NULL",
        [partner_id],
    )
    if row is None:
        return None
    return str(row["logo_type"]), bytes(row["logo"])


def put(w: Writer, partner_id: str, values: dict[str, Any], by: str) -> None:
    """Set the given fields (display_name, colour, logo_type + logo + logo_sha256); others stay."""
    cur = w.one("SELECT partner_id FROM partner_branding WHERE partner_id = ?", [partner_id])
    row = {**values, "updated_by": by, "updated_at": now()}
    if cur is None:
        w.insert("partner_branding", {"partner_id": partner_id, **row})
        return
    sets = ", ".join(f"{k} = ?" for k in row)
    sql = f"UPDATE partner_branding SET {sets} WHERE partner_id = ?"
    w.execute(sql, [*row.values(), partner_id])
