"""The portal's routes (``/portal``): HTML for people, never JSON, never a traceback.

Every handler runs inside :func:`_html`: the portal off is a plain 404 page, an error is a
page naming what to do next, and every answer carries the security headers of pages.py. The
routes are kept out of the OpenAPI document (they are not the API). POSTs refuse another
site's ``Origin`` (with the SameSite=Strict cookie: no cross-site request is acted on).
"""

from __future__ import annotations

import hashlib
import re
import time
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from osiris_core import ids
from osiris_server.db import audit as db_audit
from osiris_server.db import branding as db_branding
from osiris_server.db import packets as db_packets
from osiris_server.db import portal as db_portal
from osiris_server.db import tenants as db_tenants
from osiris_server.http import HttpError, Request, Response, Route
from osiris_server.packet_store import relpath
from osiris_server.portal import chart, sessions, signin, views
from osiris_server.portal.pages import SECURITY_HEADERS, page, redirect

if TYPE_CHECKING:
    from osiris_server.app import App

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 4096
_COLOUR = re.compile(r"#[0-9a-f]{6}")


def _error(status: int, heading: str, message: str, **ctx: Any) -> Response:
    ctx.setdefault("brand", None)
    ctx.setdefault("site", None)
    ctx.setdefault("signed_in", False)
    return page("error.html.j2", status, heading=heading, message=message, **ctx)


def error_page(status: int, message: str) -> Response:
    """The page for an error raised before any portal handler ran (unknown page, method, size)."""
    heading = "Not found" if status in (404, 405) else "Something is wrong"
    if status == 404:
        message = "There is no such page on this portal."
    return _error(status, heading, message)


def _html(handler: Any) -> Any:
    def run(app: App, req: Request, **kw: str) -> Response:
        if app.cfg.portal is None:
            return _error(404, "Not found", "There is no portal on this server.")
        try:
            return handler(app, req, **kw)
        except HttpError as exc:
            return _error(exc.status, "Something is wrong", exc.message)

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _same_origin(app: App, req: Request) -> None:
    origin = req.header("Origin")
    if origin is None:
        return
    cfg = app.cfg.portal
    assert cfg is not None
    want = urlsplit(cfg.url)
    if origin != f"{want.scheme}://{want.netloc}":
        raise HttpError(403, "E_ORIGIN", "This form was sent from another site; nothing was done.")


def _form(req: Request) -> dict[str, str]:
    if len(req.body) > MAX_FORM_BYTES:
        raise HttpError(413, "E_TOO_LARGE", "That form is too large.")
    try:
        text = req.body.decode("utf-8")
        parsed = parse_qs(text, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "E_INPUT", "That form could not be read.") from None
    return {k: v[0] for k, v in parsed.items() if v}


def _brand_of_site(app: App, site: dict[str, Any] | None) -> dict[str, Any] | None:
    if not site or not site.get("partner_id"):
        return None
    return db_branding.get(app.db, site["partner_id"])


def _signed_in(app: App, req: Request) -> dict[str, Any]:
    s = sessions.current(app, req)
    if s is None:
        raise HttpError(401, "E_SESSION", "You are not signed in, or your session has ended.")
    return s


# ---- pages


def home(app: App, req: Request) -> Response:
    s = sessions.current(app, req)
    if s is None:
        return redirect("/portal/sign-in")
    d = views.dashboard(app, s["site_id"])
    counts = {}
    for c in d["controls"]:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    order = [k for k in ("not_met", "partially_met", "not_evidenced", "met") if k in counts]
    for p in d["packets"]:
        label = p.get("month") or (p.get("period_start") or "")[:10] or p["sha256"][:12]
        p["filename"] = re.sub(r"[^A-Za-z0-9._-]", "_", f"{d['site']['id']}-{label}.zip")
        p["size"] = f"{(p.get('bytes') or 0) / 1e6:.1f} MB"
    return page(
        "dashboard.html.j2", signed_in=True, window_days=views.WINDOW_DAYS,
        counts=[(k, counts[k]) for k in order], glyphs=views.STATUS_WORD,
        chart=chart.chart(d["series"], "Hosts by state per day"), **d,
    )  # fmt: skip


def sign_in_form(app: App, req: Request) -> Response:
    cfg = app.cfg.portal
    assert cfg is not None
    msg = "You are signed out." if req.query.get("m") == ["out"] else None
    return page("sign_in.html.j2", brand=None, site=None, signed_in=False, message=msg,
                error=False, ttl=cfg.link_ttl_min)  # fmt: skip


def sign_in(app: App, req: Request) -> Response:
    """The same answer whether or not the address is registered (signin.py)."""
    cfg = app.cfg.portal
    assert cfg is not None and app.portal_mailer is not None
    _same_origin(app, req)
    email = signin.normalise_email(_form(req).get("email", ""))
    ctx = {"brand": None, "site": None, "signed_in": False, "ttl": cfg.link_ttl_min}
    if email is None:
        return page("sign_in.html.j2", 400, message="Enter your e-mail address, like "
                    "name@clinic.example.", error=True, **ctx)  # fmt: skip
    try:
        links = signin.request_links(app, email, req.remote_addr)
    except signin.LimitReached:
        return page("sign_in.html.j2", 429, message="Too many sign-in requests. Try again in an "
                    "hour.", error=True, headers=[("Retry-After", "3600")], **ctx)  # fmt: skip
    for contact, token in links:
        subject, body = signin.mail_for(app, contact, token)
        app.portal_mailer.submit(contact["email"], subject, body)
    return page("sign_in.html.j2", 200, message=f"If {email} is registered with a clinic, a "
                f"sign-in link is on its way. It works once, for {cfg.link_ttl_min} minutes.",
                error=False, **ctx)  # fmt: skip


def link_form(app: App, req: Request, token: str) -> Response:
    """Following the mailed link shows a button; only the POST consumes it (mail scanners
    fetch links with GET)."""
    row = db_portal.link(app.db, signin.link_hash(token))
    if row is None or row["used_epoch"] is not None or row["expires_epoch"] <= time.time():
        return _error(410, "This link no longer works",
                      "Sign-in links work once, for a few minutes. Ask for a new one.")  # fmt: skip
    site = db_tenants.get_site(app.db, row["site_id"])  # the link's clinic, and its partner's brand
    return page("link.html.j2", brand=_brand_of_site(app, site), site=site, signed_in=False,
                token=token)  # fmt: skip


def link_follow(app: App, req: Request, token: str) -> Response:
    cfg = app.cfg.portal
    assert cfg is not None
    _same_origin(app, req)
    got = signin.follow(app, token, req.remote_addr)
    if got is None:
        return _error(410, "This link no longer works",
                      "Sign-in links work once, for a few minutes. Ask for a new one.")  # fmt: skip
    secret, _contact = got
    return redirect("/portal/", [sessions.set_cookie(cfg, req, secret)])


def sign_out(app: App, req: Request) -> Response:
    cfg = app.cfg.portal
    assert cfg is not None
    _same_origin(app, req)
    row = sessions.end(app, req)
    if row is not None:
        with app.db.write() as w:
            db_audit.record(w, f"contact:{row['contact_id']}", "portal.sign_out",
                            row["contact_id"], row["site_id"], req.remote_addr, {})  # fmt: skip
    return redirect("/portal/sign-in?m=out", [sessions.clear_cookie(cfg, req)])


def packet(app: App, req: Request, digest: str) -> Response:
    sha256 = digest
    s = _signed_in(app, req)
    row = db_packets.get(app.db, sha256) if ids.HEX64.match(sha256) else None
    if row is None or row["site_id"] != s["site_id"]:
        raise HttpError(404, "E_NOT_FOUND", "No such packet for your clinic.")
    data = (app.cfg.data / relpath(sha256)).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:  # never hand out bytes the row does not name
        raise HttpError(500, "E_PACKET", "This packet's file is damaged; your MSP is told.")
    with app.db.write() as w:
        db_audit.record(w, f"contact:{s['contact_id']}", "portal.packet_download", sha256,
                        s["site_id"], req.remote_addr, {"bytes": len(data)})  # fmt: skip
    label = re.sub(r"[^A-Za-z0-9._-]", "_", f"{s['site_id']}-{row.get('month') or sha256[:12]}")
    return Response(200, data, "application/zip", [
        *SECURITY_HEADERS, ("Content-Disposition", f'attachment; filename="{label}.zip"'),
    ])  # fmt: skip


def stylesheet(app: App, req: Request) -> Response:
    css = resources.files("osiris_server.portal").joinpath("static/portal.css").read_bytes()
    return Response(200, css, "text/css; charset=utf-8", list(SECURITY_HEADERS))


def brand_css(app: App, req: Request) -> Response:
    s = sessions.current(app, req)
    site = db_tenants.get_site(app.db, s["site_id"]) if s else None
    brand = _brand_of_site(app, site)
    colour = (brand or {}).get("colour") or ""
    css = f":root {{ --accent: {colour}; }}\n" if _COLOUR.fullmatch(colour) else ""
    return Response(200, css.encode(), "text/css; charset=utf-8", list(SECURITY_HEADERS))


def logo(app: App, req: Request) -> Response:
    s = _signed_in(app, req)
    site = db_tenants.get_site(app.db, s["site_id"])
    got = db_branding.logo(app.db, site["partner_id"]) if site and site.get("partner_id") else None
    if got is None or got[0] not in ("image/png", "image/svg+xml"):
        raise HttpError(404, "E_NOT_FOUND", "No logo.")
    headers = list(SECURITY_HEADERS)
    if got[0] == "image/svg+xml":  # sanitised at upload; a sandbox on top
        headers = [("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline';"
                    " sandbox"), *SECURITY_HEADERS[1:]]  # fmt: skip
    return Response(200, got[1], got[0], headers)


def _r(method: str, template: str, handler: Any, summary: str) -> Route:
    media = FORM if method == "POST" else "application/json"
    return Route(method, template, _html(handler), "none", media_type=media, summary=summary,
                 tag="portal", html=True)  # fmt: skip


ROUTES = [
    _r("GET", "/portal", home, "Portal: the clinic's status (or the sign-in page)"),
    _r("GET", "/portal/", home, "Portal: the clinic's status (or the sign-in page)"),
    _r("GET", "/portal/sign-in", sign_in_form, "Portal: ask for a sign-in link"),
    _r("POST", "/portal/sign-in", sign_in, "Portal: mail a link to a registered address"),
    _r("GET", "/portal/link/{token}", link_form, "Portal: confirm a sign-in link"),
    _r("POST", "/portal/link/{token}", link_follow, "Portal: use a sign-in link"),
    _r("POST", "/portal/sign-out", sign_out, "Portal: end the session"),
    _r("GET", "/portal/packets/{digest}", packet, "Portal: download a packet"),
    _r("GET", "/portal/static/portal.css", stylesheet, "Portal: the stylesheet"),
    _r("GET", "/portal/brand.css", brand_css, "Portal: the partner's accent colour"),
    _r("GET", "/portal/logo", logo, "Portal: the partner's logo"),
]
