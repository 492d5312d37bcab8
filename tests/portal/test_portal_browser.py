"""The clinic portal in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against the real ``osiris-server`` (a subprocess) mailing through a real SMTP server
(aiosmtpd), with a real packet built by ``osiris packet build`` from a real agent's evidence.

A contact goes from "send me a link" to a downloaded packet that ``osiris evidence verify``
passes against the appliance's attestation, and signs out. Refused, each in the browser: a
reused link, an expired link, another site's packet URL, a forged cookie. Screenshots of every
step are written to the test's tmp dir (and to $OSIRIS_PORTAL_SHOTS when set)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osiris_core import canonical
from tests.e2e.conftest import Central, _env, enroll_agent, free_port, seed_site
from tests.e2e.test_hostile_msp import osiris, run_cycles
from tests.server.packet_fixture import fake_packet
from tests.server.portal_fixture import link_in, smtp_box  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium)"),
    pytest.mark.timeout(300),
]
MAIL = "practice.manager@north-clinic.example"


@pytest.fixture()
def mailbox(smtp_box):  # noqa: ANN001, F811 - the SMTP server of tests/server/portal_fixture.py
    box, cfg = smtp_box
    return box, cfg.port


@pytest.fixture()
def central(tmp_path: Path, mailbox):
    _box, smtp_port = mailbox
    data = tmp_path / "srv"
    init = subprocess.run([sys.executable, "-m", "osiris_server.cli", "init", "--data", str(data),
                           "--json"], env=_env(), capture_output=True, text=True)  # fmt: skip
    assert init.returncode == 0, init.stderr[-500:]
    port = free_port()
    with open(data / "server.toml", "a") as f:
        f.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nstarttls = false\n'
                f'sender = "portal@msp.example"\n\n[portal]\n'
                f'url = "http://127.0.0.1:{port}/portal"\n')  # fmt: skip
    c = Central(data, port, json.loads(init.stdout)["admin_token"], tmp_path / "srv.log")
    c.start()
    try:
        yield c
    finally:
        c.stop()


class Shots:
    def __init__(self, tmp: Path) -> None:
        self.dirs = [tmp / "shots"]
        if os.environ.get("OSIRIS_PORTAL_SHOTS"):
            self.dirs.append(Path(os.environ["OSIRIS_PORTAL_SHOTS"]))
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    def __call__(self, page, name: str) -> None:  # noqa: ANN001
        for d in self.dirs:
            page.screenshot(path=str(d / f"{len(self.taken):02d}-{name}.png"), full_page=True)
        self.taken.append(name)


def _packet(central: Central, site, tmp: Path) -> tuple[Path, Path]:  # noqa: ANN001
    """A real packet of the site (a real agent's evidence), stored on the server, and the
    appliance's attestation the auditor pins."""
    cfg = tmp / "cli"
    agent = enroll_agent(central, site, tmp / "agent")
    t0 = canonical.utc_now()
    run_cycles(agent, 2)
    time.sleep(0.01)
    end = canonical.utc_now()
    run_cycles(agent, 2)  # after the period, cosigned at the next check-in
    agent.close()
    att = tmp / "appliance.json"
    r = subprocess.run([sys.executable, "-m", "osiris_agent.cli", "attest", "--state",
                        str(tmp / "agent"), "--out", str(att)],
                       capture_output=True, text=True, env=_env(), timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    zp = tmp / "packet.zip"
    r = osiris(central, cfg, "packet", "build", "--site", site.id, "--from", t0, "--to", end,
               "--out", str(zp))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = osiris(central, cfg, "packet", "upload", str(zp), "--site", site.id)
    assert r.returncode == 0, r.stderr
    return zp, att


def _expire_links(central: Central) -> None:
    db = sqlite3.connect(central.data / "osiris.db")
    with db:
        db.execute("UPDATE portal_links SET expires_epoch = ? WHERE used_epoch IS NULL",
                   [int(time.time()) - 1])  # fmt: skip
    db.close()


def test_contact_signs_in_downloads_a_verifiable_packet_and_signs_out(
    central: Central, mailbox, tmp_path: Path
) -> None:
    box, _ = mailbox
    site = seed_site(central)
    packet, att = _packet(central, site, tmp_path)
    central.api("POST", f"/sites/{site.id}/contacts", {"email": MAIL, "name": "Pat"})
    # the site's partner brands what its clinic sees
    from tests.brand_fixtures import b64, make_png

    pid = central.api("GET", f"/sites/{site.id}")["partner_id"]
    central.api("PUT", f"/partners/{pid}/branding", {
        "display_name": "Northwind IT", "colour": "#7a1f5c",
        "logo_b64": b64(make_png(48, 24)), "logo_type": "image/png"})  # fmt: skip
    other = seed_site(central)  # another clinic, with a packet of its own
    other_zip = fake_packet(other.id, "2026-10")
    import hashlib

    import httpx

    r = httpx.post(f"{central.url}/api/v1/sites/{other.id}/packets", content=other_zip,
                   headers={"Authorization": f"Bearer {central.admin}",
                            "Content-Type": "application/zip"})  # fmt: skip
    assert r.status_code == 201, r.text
    other_sha = hashlib.sha256(other_zip).hexdigest()
    base = central.url + "/portal"
    shots = Shots(tmp_path)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(accept_downloads=True)
            page = ctx.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda rq: requests.append(rq.url))
            page.goto(base + "/")
            assert page.url == base + "/sign-in"
            shots(page, "sign-in")
            page.get_by_label("Your e-mail address").fill(MAIL)
            page.get_by_role("button", name="Send me a link").click()
            page.wait_for_load_state()
            assert "a sign-in link is on its way" in page.inner_text("main")
            shots(page, "link-sent")
            link = link_in(box.wait(1)[0])
            page.goto(link)
            shots(page, "confirm")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/")
            text = page.inner_text("body")
            assert "Compliance of Clinic" in text and "HIPAA controls" in text
            assert "164.312" in text and "Appliances" in text and "online" in text
            assert "osiris evidence verify --packet" in text
            assert "Northwind IT" in page.inner_text("header")
            logo = page.locator("header img.logo")
            assert logo.evaluate("img => img.complete && img.naturalWidth") == 48
            rule = page.locator("header").evaluate("h => getComputedStyle(h).borderBottomColor")
            assert rule == "rgb(122, 31, 92)", rule  # the partner's colour, from brand.css
            shots(page, "dashboard")
            with page.expect_download() as dl:
                page.locator("a[download]").first.click()
            got = tmp_path / "downloaded.zip"
            dl.value.save_as(got)
            assert got.read_bytes() == packet.read_bytes()
            r = osiris(central, tmp_path / "cli", "evidence", "verify", "--packet", str(got),
                       "--trust", str(att))  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
            # the same page on a phone: one column, nothing wider than the screen
            phone = browser.new_context(viewport={"width": 390, "height": 844},
                                        storage_state=ctx.storage_state())  # fmt: skip
            mobile = phone.new_page()
            mobile.goto(base + "/")
            assert "HIPAA controls" in mobile.inner_text("body")
            width = mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            shots(mobile, "dashboard-phone")
            phone.close()
            # another site's packet, by URL: refused
            page.goto(f"{base}/packets/{other_sha}")
            assert "No such packet" in page.inner_text("main")
            shots(page, "other-site-packet")
            # sign out; the portal is closed again
            page.goto(base + "/")
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(base + "/sign-in?m=out")
            assert "You are signed out" in page.inner_text("main")
            shots(page, "signed-out")
            page.goto(base + "/")
            assert page.url == base + "/sign-in"
            # the used link: refused
            page.goto(link)
            assert "This link no longer works" in page.inner_text("main")
            shots(page, "reused-link")
            # an expired link: refused, even though it was never used
            page.goto(base + "/sign-in")
            page.get_by_label("Your e-mail address").fill(MAIL)
            page.get_by_role("button", name="Send me a link").click()
            late = link_in(box.wait(2)[1])
            _expire_links(central)
            page.goto(late)
            assert "This link no longer works" in page.inner_text("main")
            shots(page, "expired-link")
            # same-origin only, no script errors (the CSP allows no script at all)
            # the refusals above are answered 404/410 on purpose; anything else is a fault
            status_logs = [e for e in errors if e.startswith("Failed to load resource: the "
                           "server responded with a status of 4")]  # fmt: skip
            assert [e for e in errors if e not in status_logs] == [], errors
            assert all(u.startswith(central.url) for u in requests), requests
            ctx.close()
            # a forged cookie signs nobody in
            forged = browser.new_context()
            forged.add_cookies([{"name": "osiris_portal", "value": "A" * 43,
                                 "url": base + "/"}])  # fmt: skip
            fp = forged.new_page()
            fp.goto(base + "/")
            assert fp.url == base + "/sign-in"
            shots(fp, "forged-cookie")
            forged.close()
        finally:
            browser.close()
    assert len(shots.taken) >= 9
