"""The watchdog's SQL (osiris_server/watchdog.py): its shared tick, what it watches, what is open.

All of it runs inside one ``Database.write()`` transaction per tick — the one writer across
processes and hosts — so two servers ticking together see each other's incidents and raise one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris_server.db.engine import Writer
from osiris_server.db.util import jload

KINDS = ("appliance_silent", "host_silent")


@dataclass(frozen=True)
class Tick:
    tick_epoch: int
    since_epoch: int
    ticked_by: str


def last_tick(w: Writer) -> Tick | None:
    row = w.one("SELECT tick_epoch, since_epoch, ticked_by FROM watchdog_state WHERE name = 'main'")
    if row is None:
        return None
    return Tick(int(row["tick_epoch"]), int(row["since_epoch"]), str(row["ticked_by"]))


def save_tick(w: Writer, tick: Tick, existed: bool) -> None:
    if existed:
        w.execute(
            "UPDATE watchdog_state SET tick_epoch = ?, since_epoch = ?, ticked_by = ?"
            " WHERE name = 'main'",
            [tick.tick_epoch, tick.since_epoch, tick.ticked_by],
        )
    else:
        w.insert(
            "watchdog_state",
            {
                "name": "main",
                "tick_epoch": tick.tick_epoch,
                "since_epoch": tick.since_epoch,
                "ticked_by": tick.ticked_by,
            },
        )


def appliances(w: Writer) -> list[dict[str, Any]]:
    """Every appliance not revoked, with its site's cadence and thresholds."""
    return w.query(
        "SELECT a.id, a.site_id, a.hostname, a.last_seen_epoch, a.created_at,"
        " s.checkin_interval_s, s.watchdog_missed_checkins, s.watchdog_host_silent_min"
        " FROM appliances a JOIN sites s ON s.id = a.site_id WHERE a.revoked_at IS NULL"
        " ORDER BY a.site_id, a.id"
    )


def hosts(w: Writer) -> list[dict[str, Any]]:
    """The clinic hosts appliances are given to check (one credential per site and host)."""
    return w.query(
        "SELECT site_id, host_id, MIN(created_at) AS created_at FROM credentials"
        " GROUP BY site_id, host_id ORDER BY site_id, host_id"
    )


def newest_evidence(w: Writer, site_id: str, host_id: str) -> dict[str, Any] | None:
    """The newest bundle received for a host (by index evidence_host)."""
    return w.one(
        "SELECT appliance_id, received_at FROM evidence WHERE site_id = ? AND host_id = ?"
        " ORDER BY received_at DESC LIMIT 1",
        [site_id, host_id],
    )


def open_incidents(w: Writer) -> list[dict[str, Any]]:
    """The watchdog's open incidents."""
    rows = w.query(
        "SELECT id, site_id, appliance_id, host_id, kind, details_json FROM incidents"
        " WHERE status = 'open' AND kind IN (?, ?)",
        list(KINDS),
    )
    return [{**r, "details": jload(r.pop("details_json"), {})} for r in rows]
