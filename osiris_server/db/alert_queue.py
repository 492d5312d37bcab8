"""The alert queue (migration 10): one row per alert to send, shared by every server process.

A row is written in the same transaction as the incident it announces (``enqueue``), so an
alert exists exactly when its incident does — a process killed a moment after the commit
loses nothing. Any process may ``claim`` due rows: the UPDATE only succeeds while the row is
unsent and its lease has run out (``claimed_until < now``), which on either engine lets one
claimer win (SQLite: one writer; PostgreSQL: the advisory writer lock, and the row lock's
re-check of the WHERE under READ COMMITTED). The winner sends, then ``mark_sent`` (only while
it still holds the claim) or ``release`` with a backoff; a claimer that died simply lets its
lease expire. Times are epoch seconds of the claimer's clock: the lease is minutes, far above
the clock skew of hosts kept by NTP.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db import lease
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now


def enqueue(w: Writer, incident_id: str, at: int) -> str:
    """Queue one alert for ``incident_id`` inside the caller's (the incident's) transaction."""
    alert_id = new_id("alr")
    w.insert(
        "alert_queue",
        {"id": alert_id, "incident_id": incident_id, "queued_epoch": at, "claimed_until": 0},
    )
    return alert_id


def claim(
    db: Database, claimer: str, at: int, lease_s: int, max_attempts: int, limit: int = 20
) -> list[dict[str, Any]]:
    """Claim up to ``limit`` due alerts for ``lease_s`` seconds; the rows this claimer won (the
    shared lease pattern, ``db/lease.py``: a plain read first, so an idle queue costs no write
    transaction; the UPDATE re-checks everything, so a stale read is harmless)."""

    def won(w: Writer, row: dict[str, Any]) -> dict[str, Any]:
        attempts = w.scalar("SELECT attempts FROM alert_queue WHERE id = ?", [row["id"]])
        return {**row, "attempts": int(attempts)}

    return lease.claim(
        db,
        "SELECT id, incident_id, attempts FROM alert_queue WHERE sent_epoch IS NULL"
        " AND claimed_until < ? AND attempts < ? ORDER BY queued_epoch, id LIMIT ?",
        [at, max_attempts, limit],
        "UPDATE alert_queue SET claimed_until = ?, claimed_by = ?, attempts = attempts + 1"
        " WHERE id = ? AND sent_epoch IS NULL AND claimed_until < ?",
        lambda row: [at + lease_s, claimer, row["id"], at],
        won,
    )


def mark_sent(db: Database, alert_id: str, incident_id: str, claimer: str, at: int) -> bool:
    """Record a delivered alert (and the incident's ``alerted_at``) if ``claimer`` still holds
    it; False if its lease ran out and another process took it over."""

    def run(w: Writer) -> bool:
        if not w.execute(
            "UPDATE alert_queue SET sent_epoch = ?, claimed_by = ? WHERE id = ? AND claimed_by = ?"
            " AND sent_epoch IS NULL",
            [at, claimer, alert_id, claimer],
        ):
            return False
        w.execute("UPDATE incidents SET alerted_at = ? WHERE id = ?", [now(), incident_id])
        return True

    return db.transact(run)


def release(db: Database, alert_id: str, claimer: str, retry_at: int, error: str) -> None:
    """Give a failed alert back, claimable again from ``retry_at``."""
    with db.write() as w:
        w.execute(
            "UPDATE alert_queue SET claimed_until = ?, claimed_by = NULL, last_error = ?"
            " WHERE id = ? AND claimed_by = ? AND sent_epoch IS NULL",
            [retry_at, error[:500], alert_id, claimer],
        )


def due_count(db: Database, at: int, max_attempts: int) -> int:
    """Alerts that some process could claim right now."""
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM alert_queue WHERE sent_epoch IS NULL AND claimed_until < ?"
            " AND attempts < ?",
            [at, max_attempts],
        )
        or 0
    )


def for_incident(db: Database, incident_id: str) -> list[dict[str, Any]]:
    """The queue rows of one incident (tests, support)."""
    return db.query(
        "SELECT * FROM alert_queue WHERE incident_id = ? ORDER BY queued_epoch, id", [incident_id]
    )
