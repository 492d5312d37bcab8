"""Partners and sites: the tenants every other row hangs from."""

from __future__ import annotations

from typing import Any

from osiris_server.db import gen
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jdump, jload, new_id, now

DEFAULT_WINDOW = {"days": ["sun"], "start": "02:00", "duration_min": 120, "timezone": "UTC"}


def create_partner(w: Writer, name: str, contact_email: str | None) -> dict[str, Any]:
    row = {"id": new_id("ptr"), "name": name, "contact_email": contact_email, "created_at": now(),
           "alert_threshold": "high"}  # fmt: skip
    w.insert("partners", row)
    return row


def get_partner(db: Database, partner_id: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM partners WHERE id = ?", [partner_id])


def list_partners(db: Database, only: str | None = None) -> list[dict[str, Any]]:
    if only is not None:
        return db.query("SELECT * FROM partners WHERE id = ?", [only])
    return db.query("SELECT * FROM partners ORDER BY name")


def partner_name_taken(w: Writer, name: str) -> bool:
    return w.one("SELECT id FROM partners WHERE name = ?", [name]) is not None


def _site_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "partner_id", "name", "checkin_interval_s", "created_at")}
    out["watchdog_missed_checkins"] = row.get("watchdog_missed_checkins", 3)
    out["watchdog_host_silent_min"] = row.get("watchdog_host_silent_min", 1440)
    out["window"] = {
        "days": jload(row["window_days"], []),
        "start": row["window_start"],
        "duration_min": row["window_duration_min"],
        "timezone": row["timezone"],
    }
    return out


def create_site(
    w: Writer,
    site_id: str | None,
    name: str,
    partner_id: str | None,
    window: dict[str, Any],
    checkin_interval_s: int,
) -> dict[str, Any]:
    row = {
        "id": site_id or new_id("site"),
        "partner_id": partner_id,
        "name": name,
        "window_days": jdump(window["days"]),
        "window_start": window["start"],
        "window_duration_min": window["duration_min"],
        "timezone": window["timezone"],
        "checkin_interval_s": checkin_interval_s,
        "created_at": now(),
    }
    w.insert("sites", row)
    return _site_out(row)


def site_exists(w: Writer, site_id: str) -> bool:
    return w.one("SELECT id FROM sites WHERE id = ?", [site_id]) is not None


def get_site(db: Database, site_id: str) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM sites WHERE id = ?", [site_id])
    return _site_out(row) if row else None


def list_sites(db: Database, partner_id: str | None = None, site_id: str | None = None):
    sql = "SELECT * FROM sites WHERE 1=1"
    params: list[Any] = []
    if partner_id is not None:
        sql += " AND partner_id = ?"
        params.append(partner_id)
    if site_id is not None:
        sql += " AND id = ?"
        params.append(site_id)
    return [_site_out(r) for r in db.query(sql + " ORDER BY name, id", params)]


def update_site(w: Writer, site_id: str, changes: dict[str, Any]) -> None:
    cols: dict[str, Any] = {}
    if "name" in changes:
        cols["name"] = changes["name"]
    if "checkin_interval_s" in changes:
        cols["checkin_interval_s"] = changes["checkin_interval_s"]
    for key in ("watchdog_missed_checkins", "watchdog_host_silent_min"):
        if key in changes:
            cols[key] = changes[key]
    if "window" in changes:
        win = changes["window"]
        cols.update(
            window_days=jdump(win["days"]),
            window_start=win["start"],
            window_duration_min=win["duration_min"],
            timezone=win["timezone"],
        )
    if not cols:
        return
    sets = ", ".join(f"{k} = ?" for k in cols)
    w.execute(f"UPDATE sites SET {sets} WHERE id = ?", [*cols.values(), site_id])
    gen.bump(w, gen.site_scope(site_id))


def site_ids(db: Database, partner_id: str | None = None) -> list[str]:
    if partner_id is None:
        return [r["id"] for r in db.query("SELECT id FROM sites")]
    return [r["id"] for r in db.query("SELECT id FROM sites WHERE partner_id = ?", [partner_id])]


def partner_exists(db: Database | Writer, partner_id: str) -> bool:
    return db.one("SELECT id FROM partners WHERE id = ?", [partner_id]) is not None


def checkin_interval(db: Database | Writer, site_id: str) -> int | None:
    """The site's check-in interval in seconds (None: no such site)."""
    v = db.scalar("SELECT checkin_interval_s FROM sites WHERE id = ?", [site_id])
    return None if v is None else int(v)
