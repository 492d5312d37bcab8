"""Appliances: identity, registered keys, token hash and last check-in status."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from osiris_core.canonical import format_time
from osiris_core.keys import public_fingerprint, vkey_fingerprint
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jload, next_feed_seq, now

PUBLIC_COLS = (
    "id, site_id, hostname, mac, signing_vkey, cosign_vkey, agent_version, created_at,"
    " revoked_at, last_seen_at, last_seen_epoch, status_json, log_size_seen, quarantined,"
    " confirmed_by, confirmed_at, box_pub"
)


def create(w: Writer, row: dict[str, Any]) -> None:
    w.insert("appliances", {**row, "feed_seq": next_feed_seq(w, "appliances")})


def by_token_hash(db: Database, token_hash: str) -> dict[str, Any] | None:
    """The appliance a token belongs to, plus what a check-in needs to know first.

    ``g_site``/``g_own`` are the cache generations (``db/gen.py``) of its site and of itself,
    ``open_orders`` counts its pending or delivered, unexpired orders. Folding them into the
    auth lookup makes a check-in with nothing new one SQL statement instead of four, which
    matters at thousands of check-ins/s (each statement is also a GIL hand-off)."""
    return db.one(
        "SELECT a.id, a.site_id, a.signing_vkey, a.cosign_vkey, a.token_hash,"
        " (SELECT gen FROM cache_gen WHERE scope = 'site:' || a.site_id) AS g_site,"
        " (SELECT gen FROM cache_gen WHERE scope = 'appliance:' || a.id) AS g_own,"
        " (SELECT COUNT(*) FROM orders o WHERE o.appliance_id = a.id"
        "  AND o.status IN ('pending', 'delivered') AND o.expires_epoch > ?) AS open_orders"
        " FROM appliances a WHERE a.token_hash = ? AND a.revoked_at IS NULL",
        [int(time.time()), token_hash],
    )


def get(db: Database, appliance_id: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {PUBLIC_COLS} FROM appliances WHERE id = ?", [appliance_id])


def list_for_sites(db: Database, site_ids: list[str] | None) -> list[dict[str, Any]]:
    if site_ids is None:
        return db.query(f"SELECT {PUBLIC_COLS} FROM appliances ORDER BY site_id, hostname")
    if not site_ids:
        return []
    marks = ",".join("?" for _ in site_ids)
    return db.query(
        f"SELECT {PUBLIC_COLS} FROM appliances WHERE site_id IN ({marks}) ORDER BY hostname",
        site_ids,
    )


def ids_for_sites(db: Database, site_ids: list[str] | None) -> list[str]:
    """Ids of the appliances (revoked ones too) of these sites; None: of every site."""
    if site_ids is None:
        return [r["id"] for r in db.query("SELECT id FROM appliances")]
    out: list[str] = []
    for i in range(0, len(site_ids), 500):
        chunk = site_ids[i : i + 500]
        marks = ",".join("?" for _ in chunk)
        out += [
            r["id"]
            for r in db.query(f"SELECT id FROM appliances WHERE site_id IN ({marks})", chunk)
        ]
    return out


def confirm(w: Writer, appliance_id: str, actor: str) -> bool:
    """Lift the quarantine (an admin's decision); False if it was not quarantined."""
    return (
        w.execute(
            "UPDATE appliances SET quarantined = 0, confirmed_by = ?, confirmed_at = ?"
            " WHERE id = ? AND quarantined = 1 AND revoked_at IS NULL",
            [actor, now(), appliance_id],
        )
        > 0
    )


def revoke(w: Writer, appliance_id: str) -> bool:
    return (
        w.execute(
            "UPDATE appliances SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [now(), appliance_id],
        )
        > 0
    )


def public(row: dict[str, Any], offline_after: int | None = None) -> dict[str, Any]:
    """API view: parsed status and an online flag (unseen for 3 intervals = offline)."""
    out = {k: v for k, v in row.items() if k != "status_json"}
    out["status"] = jload(row.get("status_json"), None)
    # what the box's setup screen shows (osiris-agent setup), for the operator to compare
    out["signing_fingerprint"] = vkey_fingerprint(row.get("signing_vkey"))
    out["cosign_fingerprint"] = vkey_fingerprint(row.get("cosign_vkey"))
    box = row.get("box_pub")
    out["box_fingerprint"] = public_fingerprint(base64.b64decode(box)) if box else None
    if offline_after is not None:
        seen = row.get("last_seen_epoch")
        out["online"] = seen is not None and seen >= int(time.time()) - offline_after
    return out


class HeartbeatBuffer:
    """Check-in heartbeats, written behind in one transaction every ``interval`` seconds.

    Why: a check-in must not pay an fsync'd commit; thousands per second arrive. A crash loses
    at most ``interval`` seconds of *last seen* times, which the next check-in rewrites anyway.
    Reads that must be exact (stats, appliance views) call ``flush()`` first.

    Several server processes (gunicorn workers, or servers on several hosts sharing one
    PostgreSQL) each buffer heartbeats and flush on their own clock, so a process may flush an
    appliance's *older* check-in after another flushed a newer one. The flush is therefore
    monotonic: a row is only overwritten by a heartbeat at least as new as the stored
    ``last_seen_epoch`` (portable SQL, no engine-specific GREATEST/MAX), so *last seen* and the
    status beside it never move backwards.
    """

    def __init__(self, db: Database, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._pending: dict[str, tuple[str, int, str, int, str]] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self,
        appliance_id: str,
        status: dict[str, Any],
        log_size_seen: int,
        agent_version: str,
        at: float | None = None,
    ) -> None:
        """Buffer a check-in seen ``at`` (default now; a time is what the flush orders by)."""
        seen = time.time() if at is None else at
        item = (
            format_time(datetime.fromtimestamp(seen, UTC)),
            int(seen),
            json.dumps(status),
            log_size_seen,
            agent_version,
        )
        with self._lock:
            self._pending[appliance_id] = item
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="osiris-heartbeats", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a closed db at shutdown; next flush retries
                pass

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch or self.db.closed:
                return
            with self.db.write() as w:
                w.executemany(
                    "UPDATE appliances SET last_seen_at = ?, last_seen_epoch = ?, status_json = ?,"
                    " log_size_seen = ?, agent_version = ? WHERE id = ?"
                    " AND (last_seen_epoch IS NULL OR last_seen_epoch <= ?)",
                    [(*v, k, v[1]) for k, v in batch.items()],
                )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def active_in_site(db: Database | Writer, appliance_id: str, site_id: str) -> bool:
    """Whether ``appliance_id`` is an enrolled, unrevoked appliance of ``site_id``."""
    return (
        db.one(
            "SELECT id FROM appliances WHERE id = ? AND site_id = ? AND revoked_at IS NULL",
            [appliance_id, site_id],
        )
        is not None
    )


def active_ids(db: Database | Writer, site_id: str) -> list[str]:
    """The site's unrevoked appliances' ids, sorted."""
    rows = db.query(
        "SELECT id FROM appliances WHERE site_id = ? AND revoked_at IS NULL ORDER BY id", [site_id]
    )
    return [r["id"] for r in rows]


def active_release_pins(db: Database | Writer, site_id: str) -> list[tuple[str, str | None]]:
    """The site's unrevoked appliances, sorted, each with the id of the release key it pinned at
    enrolment (None: enrolled before release keys; api/updates.py sends it an order-key release)."""
    rows = db.query(
        "SELECT id, release_key_id FROM appliances WHERE site_id = ? AND revoked_at IS NULL"
        " ORDER BY id",
        [site_id],
    )
    return [(r["id"], r["release_key_id"]) for r in rows]


def box_and_quarantine(db: Database | Writer, appliance_id: str) -> dict[str, Any] | None:
    """``{box_pub, quarantined}`` of the appliance (what a sealed delivery needs), or None."""
    return db.one("SELECT box_pub, quarantined FROM appliances WHERE id = ?", [appliance_id])


def active_keys(w: Database | Writer, appliance_id: str) -> dict[str, Any] | None:
    """``{signing_vkey, cosign_vkey}`` of an unrevoked appliance, or None."""
    return w.one(
        "SELECT signing_vkey, cosign_vkey FROM appliances WHERE id = ? AND revoked_at IS NULL",
        [appliance_id],
    )


def swap_signing_key(w: Writer, appliance_id: str, old_vkey: str, new_vkey: str) -> int:
    """Replace the signing key if it still is ``old_vkey``; rows changed (1, or 0 if not)."""
    return w.execute(
        "UPDATE appliances SET signing_vkey = ? WHERE id = ? AND signing_vkey = ?",
        [new_vkey, appliance_id, old_vkey],
    )
