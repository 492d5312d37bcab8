"""The clinic portal's rows: contacts, single-use sign-in links, sessions, sign-in requests.

Every secret (a link's token, a session's cookie) is stored only as its SHA-256, so a copy of
the database signs nobody in. Links and sessions live in the index, not in a process: every
worker and a restarted server see the same ones (the earlier implementation kept them in a
dict, reference/lessons.md B7). A link is consumed by an UPDATE that matches only an unused,
unexpired row, so two clicks racing cannot both start a session.
"""

from __future__ import annotations

from typing import Any

from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import new_id, now

CONTACT_COLS = "id, site_id, email, name, created_by, created_at, revoked_at"


# ---- contacts


def add_contact(w: Writer, site_id: str, email: str, name: str | None, by: str) -> dict[str, Any]:
    row = {"id": new_id("pct"), "site_id": site_id, "email": email, "name": name,
           "created_by": by, "created_at": now(), "revoked_at": None}  # fmt: skip
    w.insert("portal_contacts", row)
    return row


def live_contact(db: Database | Writer, site_id: str, email: str) -> dict[str, Any] | None:
    return db.one(
        f"SELECT {CONTACT_COLS} FROM portal_contacts"
        " WHERE site_id = ? AND email = ? AND revoked_at IS NULL",
        [site_id, email],
    )


def contacts_by_email(db: Database | Writer, email: str) -> list[dict[str, Any]]:
    """Every live contact with that address (one per site that registered it)."""
    return db.query(
        f"SELECT {CONTACT_COLS} FROM portal_contacts WHERE email = ? AND revoked_at IS NULL"
        " ORDER BY site_id",
        [email],
    )


def contact(db: Database | Writer, contact_id: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {CONTACT_COLS} FROM portal_contacts WHERE id = ?", [contact_id])


def contacts_of(db: Database, site_id: str) -> list[dict[str, Any]]:
    return db.query(
        f"SELECT {CONTACT_COLS} FROM portal_contacts WHERE site_id = ? AND revoked_at IS NULL"
        " ORDER BY email",
        [site_id],
    )


def revoke_contact(w: Writer, contact_id: str, epoch: int) -> bool:
    """Remove a contact: its unused links and open sessions end with it."""
    changed = w.execute(
        "UPDATE portal_contacts SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        [now(), contact_id],
    )
    w.execute(
        "UPDATE portal_links SET used_epoch = ? WHERE contact_id = ? AND used_epoch IS NULL",
        [epoch, contact_id],
    )
    w.execute(
        "UPDATE portal_sessions SET ended_epoch = ? WHERE contact_id = ? AND ended_epoch IS NULL",
        [epoch, contact_id],
    )
    return changed > 0


# ---- sign-in requests (rate limits that hold across workers)


def record_request(w: Writer, epoch: int, source: str, email_hash: str) -> None:
    w.insert("portal_requests", {"at_epoch": epoch, "source": source, "email_hash": email_hash})


def requests_since(w: Writer, since_epoch: int, *, source: str | None = None,
                   email_hash: str | None = None) -> int:  # fmt: skip
    sql = "SELECT COUNT(*) FROM portal_requests WHERE at_epoch >= ?"
    params: list[Any] = [since_epoch]
    if source is not None:
        sql += " AND source = ?"
        params.append(source)
    if email_hash is not None:
        sql += " AND email_hash = ?"
        params.append(email_hash)
    return int(w.scalar(sql, params) or 0)


def forget_requests(w: Writer, before_epoch: int) -> None:
    w.execute("DELETE FROM portal_requests WHERE at_epoch < ?", [before_epoch])


# ---- links


def add_link(w: Writer, token_hash: str, contact: dict[str, Any], epoch: int, ttl_s: int,
             source: str) -> None:  # fmt: skip
    w.insert(
        "portal_links",
        {"token_hash": token_hash, "contact_id": contact["id"], "site_id": contact["site_id"],
         "created_epoch": epoch, "expires_epoch": epoch + ttl_s, "used_epoch": None,
         "source": source},
    )  # fmt: skip


def link(db: Database | Writer, token_hash: str) -> dict[str, Any] | None:
    return db.one(
        "SELECT token_hash, contact_id, site_id, created_epoch, expires_epoch, used_epoch"
        " FROM portal_links WHERE token_hash = ?",
        [token_hash],
    )


def consume_link(w: Writer, token_hash: str, epoch: int) -> bool:
    """Mark the link used; False when it was used, expired or unknown (nothing changes)."""
    return (
        w.execute(
            "UPDATE portal_links SET used_epoch = ? WHERE token_hash = ? AND used_epoch IS NULL"
            " AND expires_epoch > ?",
            [epoch, token_hash, epoch],
        )
        > 0
    )


def forget_links(w: Writer, before_epoch: int) -> None:
    w.execute("DELETE FROM portal_links WHERE expires_epoch < ?", [before_epoch])


# ---- sessions


def add_session(w: Writer, token_hash: str, contact: dict[str, Any], epoch: int, max_s: int,
                source: str) -> None:  # fmt: skip
    w.insert(
        "portal_sessions",
        {"token_hash": token_hash, "contact_id": contact["id"], "site_id": contact["site_id"],
         "created_epoch": epoch, "seen_epoch": epoch, "expires_epoch": epoch + max_s,
         "ended_epoch": None, "source": source},
    )  # fmt: skip


def session(db: Database | Writer, token_hash: str) -> dict[str, Any] | None:
    """A session with its contact's state (a removed contact ends every session of theirs)."""
    return db.one(
        "SELECT s.token_hash, s.contact_id, s.site_id, s.created_epoch, s.seen_epoch,"
        " s.expires_epoch, s.ended_epoch, c.email, c.name, c.revoked_at"
        " FROM portal_sessions s JOIN portal_contacts c ON c.id = s.contact_id"
        " WHERE s.token_hash = ?",
        [token_hash],
    )


def touch_session(w: Writer, token_hash: str, epoch: int) -> None:
    w.execute(
        "UPDATE portal_sessions SET seen_epoch = ? WHERE token_hash = ? AND ended_epoch IS NULL",
        [epoch, token_hash],
    )


def end_session(w: Writer, token_hash: str, epoch: int) -> bool:
    return (
        w.execute(
            "UPDATE portal_sessions SET ended_epoch = ? WHERE token_hash = ?"
            " AND ended_epoch IS NULL",
            [epoch, token_hash],
        )
        > 0
    )


def forget_sessions(w: Writer, before_epoch: int) -> None:
    w.execute("DELETE FROM portal_sessions WHERE expires_epoch < ?", [before_epoch])
