"""Portal sessions: a random cookie, stored as its SHA-256, with idle and absolute timeouts.

The cookie is ``HttpOnly`` (no script can read it), ``SameSite=Strict`` (no other site's page
can make the browser send it: no CSRF on sign-out), ``Path=/portal`` and ``Secure`` whenever the
portal's URL is https. A session ends at sign-out, after ``session_idle_min`` without a request,
at ``session_max_h`` after sign-in whatever happens, and when its contact is removed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from osiris_server.db import portal as db_portal

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.http import Request
    from osiris_server.portal.config import PortalConfig

COOKIE = "osiris_portal"
TOUCH_EVERY_S = 60  # write the last-seen time at most once a minute per session


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(b"osiris-portal\n" + secret.encode("utf-8", "surrogatepass")).hexdigest()


def presented(req: Request) -> str | None:
    raw = req.header("Cookie")
    if not raw or len(raw) > 8192:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    m = jar.get(COOKIE)
    if m is None or not 20 <= len(m.value) <= 100:
        return None
    return m.value


def set_cookie(cfg: PortalConfig, req: Request, value: str) -> tuple[str, str]:
    secure = cfg.secure_cookie or req.environ.get("wsgi.url_scheme") == "https"
    max_age = cfg.session_max_h * 3600
    attrs = f"{COOKIE}={value}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    return "Set-Cookie", attrs + ("; Secure" if secure else "")


def clear_cookie(cfg: PortalConfig, req: Request) -> tuple[str, str]:
    secure = cfg.secure_cookie or req.environ.get("wsgi.url_scheme") == "https"
    attrs = f"{COOKIE}=; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=0"
    return "Set-Cookie", attrs + ("; Secure" if secure else "")


def start(app: App, w: Any, contact: dict[str, Any], source: str) -> str:
    """A new session for ``contact`` inside the caller's write transaction; the cookie value."""
    secret = new_secret()
    cfg = app.cfg.portal
    assert cfg is not None
    db_portal.add_session(w, digest(secret), contact, int(time.time()), cfg.session_max_h * 3600,
                          source)  # fmt: skip
    return secret


def current(app: App, req: Request) -> dict[str, Any] | None:
    """The live session the request's cookie names, or None (unknown, ended, timed out, or its
    contact removed). A forged or guessed cookie finds nothing: only hashes are stored."""
    cfg = app.cfg.portal
    secret = presented(req)
    if cfg is None or secret is None:
        return None
    h = digest(secret)
    row = db_portal.session(app.db, h)
    now = int(time.time())
    if (
        row is None
        or row["ended_epoch"] is not None
        or row["revoked_at"] is not None
        or row["expires_epoch"] <= now
        or row["seen_epoch"] + cfg.session_idle_min * 60 <= now
    ):
        return None
    if now - row["seen_epoch"] >= TOUCH_EVERY_S:
        with app.db.write() as w:
            db_portal.touch_session(w, h, now)
    return row


def end(app: App, req: Request) -> dict[str, Any] | None:
    """End the request's session (sign-out); the ended row, or None when there was none."""
    secret = presented(req)
    if secret is None:
        return None
    h = digest(secret)
    row = db_portal.session(app.db, h)
    if row is None:
        return None
    with app.db.write() as w:
        db_portal.end_session(w, h, int(time.time()))
    return row
