"""What a signed-in clinic contact sees, and that the portal only reads (both engines).

The status table is the packet report's own verdicts (osiris_core.report.build_report over the
same bundles); another site's packet is a 404; pages carry a strict CSP and no script; remote
text is escaped and stripped of control characters; no GET under /portal changes the index
beyond the session's last-seen time and the audit."""

from __future__ import annotations

import hashlib
import re

from osiris_server.db import branding as db_branding
from osiris_server.portal import views
from tests.server.conftest import checkin_body
from tests.server.packet_fixture import fake_packet
from tests.server.portal_fixture import Portal

MAIL = "manager@clinic.example"
WINRM = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5", "username": "u",
         "password": "Pw-PORTAL-1"}  # fmt: skip


def _seed(portal: Portal, name: str = "North Clinic") -> tuple[dict, object]:
    s = portal.server
    site = portal.site_with_contact(MAIL, name)
    assert s.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).status_code == 201
    a = s.enroll(site["id"])
    c = s.client(a.token)
    envs = [a.envelope(host_id="dc01", check="firewall", outcome="compliant"),
            a.envelope(host_id="dc01", check="windows_bitlocker", outcome="alert",
                       post_state={"observed": {"x": 1}}),
            a.envelope(host_id="dc01", check="windows_audit_policy",
                       outcome="compliant")]  # fmt: skip
    r = c.post("/api/v1/evidence", json={"envelopes": envs, "log_size_seen": 0})
    assert r.status_code == 200, r.text
    assert c.post("/api/v1/checkin", json=checkin_body(a)).status_code == 200
    return site, a


def _post_packet(portal: Portal, site_id: str, month: str) -> bytes:
    body = fake_packet(site_id, month)
    r = portal.server.admin.post(f"/api/v1/sites/{site_id}/packets", content=body,
                                 headers={"Content-Type": "application/zip"})  # fmt: skip
    assert r.status_code == 201, r.text
    return body


def test_dashboard_shows_the_packet_reports_verdicts(portal: Portal) -> None:
    site, a = _seed(portal)
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    page = c.get("/portal/").text
    report = views.status_report(portal.server.app, site["id"])
    rows = re.findall(r"<strong>([^<]+)</strong>.*?class=\"status st-([a-z_]+)\"", page, re.S)
    assert rows, page[:2000]
    assert dict(rows) == {ctl["citation"]: ctl["status"] for ctl in report["controls"]}
    # never a pass for missing data: one day of evidence in a 30-day window is not "met"
    assert all(ctl["status"] != "met" for ctl in report["controls"])
    assert "Not evidenced" in page and "Partially met" in page
    assert "appliance-1" in page and "online" in page
    assert "Compliance over time" in page and "<svg" in page and "<table" in page
    # the open finding (bitlocker drift) is an open exception
    assert re.search(r"windows_bitlocker</td>", page)


def test_packets_are_the_sites_own_and_come_back_byte_for_byte(portal: Portal) -> None:
    site, _ = _seed(portal)
    other = portal.site_with_contact("someone@other.example", "Other Clinic")
    mine = _post_packet(portal, site["id"], "2026-10")
    theirs = _post_packet(portal, other["id"], "2026-10")
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    page = c.get("/portal/").text
    sha = hashlib.sha256(mine).hexdigest()
    assert f"/portal/packets/{sha}" in page and "osiris evidence verify --packet" in page
    r = c.get(f"/portal/packets/{sha}")
    assert r.status_code == 200 and r.content == mine
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    # another site's packet, a made-up one, a malformed id: the same 404 page
    for bad in (hashlib.sha256(theirs).hexdigest(), "0" * 64, "../../etc/passwd"):
        r = c.get(f"/portal/packets/{bad}")
        assert r.status_code == 404 and theirs not in r.content
    # signed out: no packet at all
    assert portal.browser().get(f"/portal/packets/{sha}").status_code == 401


def test_every_portal_get_only_reads(portal: Portal) -> None:
    site, _ = _seed(portal)
    _post_packet(portal, site["id"], "2026-10")
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    sha = portal.server.admin.get(f"/api/v1/sites/{site['id']}/packets").json()["packets"][0]
    paths = ["/portal", "/portal/", "/portal/sign-in", "/portal/static/portal.css",
             "/portal/brand.css", "/portal/logo", f"/portal/packets/{sha['sha256']}"]  # fmt: skip

    def state() -> dict:
        rows = portal.server.index_rows()
        rows.pop("audit")  # a download is audited
        rows["portal_sessions"] = [{k: v for k, v in r.items() if k != "seen_epoch"}
                                   for r in rows["portal_sessions"]]  # fmt: skip
        return rows

    before = state()
    for p in paths:
        r = c.get(p)
        assert r.status_code in (200, 303, 404), (p, r.status_code)
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "<script" not in r.text.lower()
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["referrer-policy"] == "same-origin"
    assert state() == before
    # and the router has no other method under /portal than these GETs and three form POSTs
    routes = [(r.method, r.template) for r in portal.server.app.router.routes
              if r.template.startswith("/portal")]  # fmt: skip
    assert sorted(m for m, _ in routes if m != "GET") == ["POST", "POST", "POST"]
    assert {t for m, t in routes if m == "POST"} == {
        "/portal/sign-in", "/portal/link/{token}", "/portal/sign-out"}  # fmt: skip


def test_remote_text_is_escaped_and_brand_shown(portal: Portal) -> None:
    s = portal.server
    partner = s.admin.post("/api/v1/partners", json={"name": "Acme IT"}).json()["partner"]
    site, a = _seed(portal, '<script>alert(1)</script>\x1b[31m "Clinic"')
    s.index_sql("UPDATE sites SET partner_id = ? WHERE id = ?", [partner["id"], site["id"]])
    with s.app.db.write() as w:
        db_branding.put(w, partner["id"], {"display_name": "Acme <b>IT</b>", "colour": "#0a7f3f"},
                        "test")  # fmt: skip
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    page = c.get("/portal/").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "\x1b" not in page
    assert "Acme &lt;b&gt;IT&lt;/b&gt;" in page
    css = c.get("/portal/brand.css")
    assert css.text.strip() == ":root { --accent: #0a7f3f; }"
    # a colour that is not #rrggbb never reaches CSS, whatever the database holds
    s.index_sql("UPDATE partner_branding SET colour = ?", ["red;}body{display:none"])
    assert c.get("/portal/brand.css").text == ""


def test_portal_off_is_a_plain_404_page(server) -> None:
    r = server.client().get("/portal/")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no portal" in r.text
    assert server.client().post("/portal/sign-in", data={"email": MAIL}).status_code == 404


def test_errors_before_any_portal_handler_are_pages_not_json(portal: Portal) -> None:
    c = portal.server.client()
    for r, status in (
        (c.get("/portal/no-such-page"), 404),
        (c.delete("/portal/sign-in"), 405),
        (
            c.post(
                "/portal/sign-in",
                content=b"x" * (4 << 20),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            413,
        ),
    ):
        assert r.status_code == status, (status, r.text[:200])
        assert r.headers["content-type"].startswith("text/html"), r.headers
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<!doctype html>" in r.text.lower() and '"error"' not in r.text
    # the API itself still answers JSON for the same failure
    r = c.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "E_NOT_FOUND"


def test_contacts_are_registered_by_staff_of_the_site_only(portal: Portal) -> None:
    s = portal.server
    p1 = s.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = s.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    c1, c2 = s.client(api_key=p1["api_key"]), s.client(api_key=p2["api_key"])
    site = c1.post("/api/v1/sites", json={"name": "P1 clinic"}).json()["id"]
    path = f"/api/v1/sites/{site}/contacts"
    assert c2.post(path, json={"email": MAIL}).status_code == 404  # no existence hint
    assert c2.get(path).status_code == 404
    tok = s.admin.post("/api/v1/tokens", json={"role": "client", "name": "c",
                                               "site_id": site}).json()["token"]  # fmt: skip
    assert s.client(tok).post(path, json={"email": MAIL}).status_code == 403
    assert c1.post(path, json={"email": "nope"}).status_code == 400
    r = c1.post(path, json={"email": f" {MAIL.upper()} "})
    assert r.status_code == 201 and r.json()["contact"]["email"] == MAIL
    assert c1.post(path, json={"email": MAIL}).status_code == 409
    assert [x["email"] for x in c1.get(path).json()["contacts"]] == [MAIL]
    cid = r.json()["contact"]["id"]
    assert c2.delete(f"{path}/{cid}").status_code == 404
    assert c1.delete(f"{path}/{cid}").status_code == 200
    assert c1.get(path).json()["contacts"] == []
    assert c1.post(path, json={"email": MAIL}).status_code == 201  # registered again


def test_the_partners_brand_set_through_the_api_heads_the_portal(portal: Portal) -> None:
    from tests.brand_fixtures import GOOD_SVG, b64

    s = portal.server
    p = s.admin.post("/api/v1/partners", json={"name": "Acme IT"}).json()
    pc = s.client(api_key=p["api_key"])
    site = pc.post("/api/v1/sites", json={"name": "Acme clinic"}).json()
    r = pc.put(f"/api/v1/partners/{p['partner']['id']}/branding", json={
        "display_name": "Acme Managed IT", "colour": "#0A7F3F",
        "logo_b64": b64(GOOD_SVG), "logo_type": "image/svg+xml"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert pc.post(f"/api/v1/sites/{site['id']}/contacts", json={"email": MAIL}).status_code == 201
    c = portal.browser()
    assert c.get("/portal/sign-in").text.count("Acme") == 0  # no brand before sign-in
    assert portal.sign_in(c, MAIL).status_code == 303
    page = c.get("/portal/").text
    assert "Acme Managed IT" in page and 'src="/portal/logo"' in page
    assert c.get("/portal/brand.css").text.strip() == ":root { --accent: #0a7f3f; }"
    logo = c.get("/portal/logo")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in logo.headers["content-security-policy"]
    assert b"metadata" not in logo.content and b"<svg" in logo.content  # the sanitised bytes
    # another partner's clinic contact sees no trace of Acme
    other = portal.site_with_contact("other@else.example", "Plain clinic")
    c2 = portal.browser()
    assert portal.sign_in(c2, "other@else.example").status_code == 303
    assert "Acme" not in c2.get("/portal/").text and c2.get("/portal/logo").status_code == 404
    assert other["id"] != site["id"]


def test_pages_are_accessible_markup(portal: Portal) -> None:
    """Semantic basics a screen reader needs: a language, one h1, every input labelled, every
    image described, table headers with a scope, status never by colour alone (glyph + word)."""
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []

        def handle_starttag(self, tag, attrs):  # noqa: ANN001
            self.tags.append((tag, dict(attrs)))

    _seed(portal)
    c = portal.browser()
    pages = [c.get("/portal/sign-in").text]
    assert portal.sign_in(c, MAIL).status_code == 303
    pages.append(c.get("/portal/").text)
    for html in pages:
        p = Collect()
        p.feed(html)
        tags = p.tags
        assert ("html", {"lang": "en"}) in tags
        assert sum(1 for t, _ in tags if t == "h1") == 1
        labels = {a.get("for") for t, a in tags if t == "label"}
        for t, a in tags:
            if t == "input" and a.get("type") != "hidden":
                assert a.get("id") in labels, a
            if t == "img":
                assert a.get("alt"), a
            if t == "th":
                assert a.get("scope") == "col", a
        assert '<meta name="viewport"' in html
    dash = pages[1]
    for word in ("Partially met", "Not evidenced"):
        assert re.search(r'class="status st-[a-z_]+">[✓◐✕?] ' + word, dash), word
