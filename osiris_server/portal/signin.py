"""Asking for a sign-in link, and following one.

Why every answer to "send me a link" is the same: whether an address is registered must not be
learnable from the portal (the answer, its status and its timing do not depend on it: mail goes
out from a background thread). Links go only to registered addresses, one per (contact, site),
and each is bound to that contact and site.

Limits hold across workers because they count rows, not memory: at most
``per_address_per_hour`` requests for one address and ``per_source_per_hour`` from one source
(an IPv4 address or an IPv6 /64), whether the address is registered or not. Requests past a
limit write nothing (one audit row when it is reached), and a made-up link writes nothing: a
flood cannot grow the index or the audit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_server.db import audit as db_audit
from osiris_server.db import portal as db_portal
from osiris_server.db import tenants as db_tenants
from osiris_server.http import source_key
from osiris_server.portal import sessions

if TYPE_CHECKING:
    from osiris_server.app import App

EMAIL_RE = re.compile(r"[^@\s<>\"'(),;:\\\[\]]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}")
TOKEN_BYTES = 24  # 192 bits (the issue asks at least 128)


class LimitReached(Exception):
    """Too many sign-in requests for this address or from this source in the last hour."""


def normalise_email(raw: str) -> str | None:
    """The address as stored and compared (trimmed, lower case), or None if it is not one."""
    e = raw.strip().lower()
    if len(e) > 254 or EMAIL_RE.fullmatch(e) is None:
        return None
    return e


def email_hash(email: str) -> str:
    return hashlib.sha256(b"osiris-portal-email\n" + email.encode()).hexdigest()


def link_hash(token: str) -> str:
    return hashlib.sha256(b"osiris-portal-link\n" + token.encode("ascii", "replace")).hexdigest()


def request_links(app: App, email: str, remote_addr: str) -> list[tuple[dict[str, Any], str]]:
    """Record the request and make one link per live contact with ``email``: [(contact, token)]
    for the mailer. Raises :class:`LimitReached` (nothing made) over either limit."""
    cfg = app.cfg.portal
    assert cfg is not None
    now = int(time.time())
    src = source_key(remote_addr)
    eh = email_hash(email)
    out: list[tuple[dict[str, Any], str]] = []
    with app.db.write() as w:
        db_portal.forget_requests(w, now - 3600)
        db_portal.forget_links(w, now - 86400)
        db_portal.forget_sessions(w, now - 86400)
        by_addr = db_portal.requests_since(w, now - 3600, email_hash=eh)
        by_src = db_portal.requests_since(w, now - 3600, source=src)
        limited = by_addr >= cfg.per_address_per_hour or by_src >= cfg.per_source_per_hour
        if not limited:
            db_portal.record_request(w, now, src, eh)
        elif by_addr == cfg.per_address_per_hour or by_src == cfg.per_source_per_hour:
            # audited once, when the limit is reached; a flood past it writes nothing at all
            # (so it can neither grow the index nor the audit)
            db_portal.record_request(w, now, src, eh)
            db_audit.record(w, "portal", "portal.link_limited", eh[:16], None, remote_addr,
                            {"per_address": by_addr, "per_source": by_src})  # fmt: skip
        for contact in [] if limited else db_portal.contacts_by_email(w, email):
            token = secrets.token_urlsafe(TOKEN_BYTES)
            db_portal.add_link(w, link_hash(token), contact, now, cfg.link_ttl_min * 60,
                               remote_addr)  # fmt: skip
            db_audit.record(w, "portal", "portal.link_sent", contact["id"], contact["site_id"],
                            remote_addr, {"expires_in_min": cfg.link_ttl_min})  # fmt: skip
            out.append((contact, token))
    if limited:
        raise LimitReached
    return out


def mail_for(app: App, contact: dict[str, Any], token: str) -> tuple[str, str]:
    """(subject, body) of one sign-in mail: the link, what it is for, when it expires."""
    cfg = app.cfg.portal
    assert cfg is not None
    site = db_tenants.get_site(app.db, contact["site_id"]) or {}
    name = site.get("name") or contact["site_id"]
    url = f"{cfg.url}/link/{token}"
    body = (
        f"Hello{(' ' + contact['name']) if contact.get('name') else ''},\n\n"
        f"Someone (hopefully you) asked to sign in to the compliance portal of {name}.\n"
        f"Open this link within {cfg.link_ttl_min} minutes; it works once:\n\n{url}\n\n"
        "If you did not ask for it, ignore this message: nobody can sign in without the link.\n"
    )
    return f"Your sign-in link for {name}", body


def follow(app: App, token: str, remote_addr: str) -> tuple[str, dict[str, Any]] | None:
    """Consume the link and start a session: (cookie value, contact), or None when the link is
    unknown, used, expired, or its contact or site is gone (nothing changes then)."""
    h = link_hash(token)
    now = int(time.time())
    with app.db.write() as w:
        row = db_portal.link(w, h)
        if row is None:  # a guess: nothing to audit against, and nothing is written for it
            return None
        contact = db_portal.contact(w, row["contact_id"])
        why = None
        if row["used_epoch"] is not None:
            why = "used"
        elif row["expires_epoch"] <= now:
            why = "expired"
        elif contact is None or contact["revoked_at"] is not None:
            why = "contact removed"
        elif contact["site_id"] != row["site_id"]:
            why = "site mismatch"  # cannot happen through the API; refuse rather than assume
        if why is not None or not db_portal.consume_link(w, h, now):
            db_audit.record(w, "portal", "portal.link_refused", row["contact_id"], row["site_id"],
                            remote_addr, {"why": why or "raced"})  # fmt: skip
            return None
        assert contact is not None
        secret = sessions.start(app, w, contact, remote_addr)
        db_audit.record(w, f"contact:{contact['id']}", "portal.sign_in", contact["id"],
                        contact["site_id"], remote_addr,
                        {"at": canonical.utc_now()})  # fmt: skip
    return secret, contact
