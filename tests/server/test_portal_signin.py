"""Portal sign-in by magic link, against a real server and a real SMTP server (both engines):
the link goes only to a registered address, the answer is the same either way, a link works
once, for 15 minutes, for its own contact and site; sessions time out and end at sign-out."""

from __future__ import annotations

import time

from tests.server.portal_fixture import Portal, link_in

MAIL = "manager@clinic.example"


def test_a_registered_contact_signs_in_and_out(portal: Portal) -> None:
    site = portal.site_with_contact(MAIL, "North Clinic")
    c = portal.browser()
    r = portal.sign_in(c, MAIL.upper())  # addresses compare case-insensitively
    assert r.status_code == 303 and r.headers["location"] == "/portal/"
    cookie = r.headers["set-cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/portal", "Max-Age="):
        assert attr in cookie, cookie
    assert "Secure" not in cookie  # served over http here; https portals set it (unit test)
    page = c.get("/portal/")
    assert page.status_code == 200 and "North Clinic" in page.text
    assert "HIPAA controls" in page.text and "<script" not in page.text.lower()
    msg = portal.box.messages[-1]
    assert msg["X-Rcpt"] == MAIL and "North Clinic" in msg["Subject"]
    assert "15 minutes" in msg.get_payload(decode=True).decode()
    # sign out: the cookie is cleared and the session is over, even if the cookie is replayed
    r = c.post("/portal/sign-out")
    assert r.status_code == 303 and "Max-Age=0" in r.headers["set-cookie"]
    replay = portal.browser()
    replay.cookies.set("osiris_portal", cookie.split(";")[0].split("=", 1)[1], path="/portal")
    assert replay.get("/portal/").headers["location"] == "/portal/sign-in"
    actions = [e["action"] for e in portal.server.admin.get(
        "/api/v1/audit", params={"site": site["id"], "limit": 100}).json()["audit"]]  # fmt: skip
    for a in ("portal.contact_add", "portal.link_sent", "portal.sign_in", "portal.sign_out"):
        assert a in actions, actions


def test_same_answer_whether_registered_or_not_and_no_mail_to_strangers(
    portal: Portal,
) -> None:
    portal.site_with_contact(MAIL)
    c = portal.browser()
    known = portal.ask(c, MAIL)
    unknown = portal.ask(c, "stranger@elsewhere.example")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(MAIL, "X") == unknown.text.replace("stranger@elsewhere.example", "X")
    portal.box.wait(1)
    time.sleep(0.5)
    assert [m["X-Rcpt"] for m in portal.box.messages] == [MAIL]
    # the unregistered address is stored nowhere (only a hash counts it for the limits)
    assert b"stranger@elsewhere.example" not in portal.server.index_bytes()


def test_a_link_works_once_and_not_after_expiry(portal: Portal) -> None:
    portal.site_with_contact(MAIL)
    c = portal.browser()
    assert portal.ask(c, MAIL).status_code == 200
    path = link_in(portal.box.wait(1)[0])[len(portal.server.url) :]
    assert c.get(path).status_code == 200  # a GET (a mail scanner) consumes nothing
    assert c.get(path).status_code == 200
    assert c.post(path).status_code == 303
    again = portal.browser()
    for r in (again.get(path), again.post(path)):
        assert r.status_code == 410 and "no longer works" in r.text
        assert "set-cookie" not in r.headers
    # an expired link: the same refusal, and no session
    assert portal.ask(c, MAIL).status_code == 200
    path2 = link_in(portal.box.wait(2)[1])[len(portal.server.url) :]
    token = path2.rsplit("/", 1)[1]
    from osiris_server.portal.signin import link_hash

    portal.server.index_sql("UPDATE portal_links SET expires_epoch = ? WHERE token_hash = ?",
                            [int(time.time()) - 1, link_hash(token)])  # fmt: skip
    r = portal.browser().post(path2)
    assert r.status_code == 410 and "set-cookie" not in r.headers
    # a made-up link
    r = portal.browser().post("/portal/link/" + "A" * 32)
    assert r.status_code == 410


def test_limits_per_address_and_per_source(portal: Portal) -> None:
    portal.site_with_contact(MAIL)
    c = portal.browser()
    for _ in range(5):
        assert portal.ask(c, MAIL).status_code == 200
    r = portal.ask(c, MAIL)
    assert r.status_code == 429 and r.headers["retry-after"] == "3600"
    portal.box.wait(5)
    time.sleep(0.5)
    assert len(portal.box.messages) == 5  # the sixth request mailed nothing
    # per source: unregistered addresses count too (30 an hour from one source by default)
    for i in range(24):
        assert portal.ask(c, f"x{i}@nowhere.example").status_code == 200
    assert portal.ask(c, "y@nowhere.example").status_code == 429


def test_removing_a_contact_ends_its_links_and_sessions(portal: Portal) -> None:
    site = portal.site_with_contact(MAIL)
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    assert c.get("/portal/").status_code == 200
    assert portal.ask(portal.browser(), MAIL).status_code == 200
    pending = link_in(portal.box.wait(2)[1])[len(portal.server.url) :]
    r = portal.server.admin.delete(f"/api/v1/sites/{site['id']}/contacts/{site['contact']['id']}")
    assert r.status_code == 200, r.text
    assert c.get("/portal/").headers["location"] == "/portal/sign-in"
    assert portal.browser().post(pending).status_code == 410


def test_sessions_time_out_and_forged_cookies_find_nothing(portal: Portal) -> None:
    portal.site_with_contact(MAIL)
    c = portal.browser()
    assert portal.sign_in(c, MAIL).status_code == 303
    assert c.get("/portal/").status_code == 200
    now = int(time.time())
    # idle: last seen longer ago than session_idle_min
    portal.server.index_sql("UPDATE portal_sessions SET seen_epoch = ?", [now - 31 * 60])
    assert c.get("/portal/").status_code == 303
    c2 = portal.browser()
    assert portal.sign_in(c2, MAIL).status_code == 303
    # absolute: past session_max_h, however active
    sql = "UPDATE portal_sessions SET expires_epoch = ? WHERE ended_epoch IS NULL"
    portal.server.index_sql(sql, [now - 1])
    assert c2.get("/portal/").status_code == 303
    for forged in ("A" * 43, "x", "' OR 1=1 --", "a" * 5000):
        f = portal.browser()
        f.cookies.set("osiris_portal", forged, path="/portal")
        r = f.get("/portal/")
        assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in"


def test_bad_input_gets_a_page_not_a_traceback(portal: Portal) -> None:
    c = portal.browser()
    for body in ({"email": "not an address"}, {"email": ""}, {}):
        r = c.post("/portal/sign-in", data=body)
        assert r.status_code == 400 and "Enter your e-mail address" in r.text
        assert r.headers["content-type"].startswith("text/html")
    r = c.post("/portal/sign-in", content=b"\xff\xfe", headers={
        "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    r = c.post("/portal/sign-in", data={"email": "a" * 5000})
    assert r.status_code == 413
    # another site's form (a cross-site POST): refused, nothing mailed
    r = portal.ask(c, MAIL, Origin="https://evil.example")
    assert r.status_code == 403 and portal.box.messages == []


def test_a_flood_writes_nothing_past_the_limit(portal: Portal) -> None:
    c = portal.browser()
    for i in range(30):
        assert portal.ask(c, f"u{i}@nowhere.example").status_code == 200
    for _ in range(3):
        assert portal.ask(c, "again@nowhere.example").status_code == 429
    rows = portal.server.index_rows()
    before = (len(rows["portal_requests"]), len(rows["audit"]))
    for i in range(20):
        assert portal.ask(c, f"more{i}@nowhere.example").status_code == 429
        assert portal.browser().post(f"/portal/link/guess{i:040d}").status_code == 410
    rows = portal.server.index_rows()
    assert (len(rows["portal_requests"]), len(rows["audit"])) == before
    limited = [a for a in rows["audit"] if a["action"] == "portal.link_limited"]
    assert len(limited) == 1
