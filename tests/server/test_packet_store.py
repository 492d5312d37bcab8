"""The packet store (POST/GET /api/v1/sites/{id}/packets) over real HTTP, and its WORM copy.

Attacks: a partner storing a packet for a site that is not its own, an operator storing one
site's packet under another site, a packet whose files were changed after the build (a report
saying "all met"), a zip that escapes its folder, a non-zip; each is refused with a clear error
and stores nothing. The same bytes twice are one packet.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import pytest

from osiris_server import worm
from tests.server.test_worm import cfg_for, uploader, versions
from tests.server.worm_fixtures import aws_env, fake_packet, make_bucket, moto_url

__all__ = ["aws_env", "moto_url"]
ZIP = {"Content-Type": "application/zip"}


def post(client: Any, site_id: str, body: bytes, **headers: str) -> Any:
    return client.post(f"/api/v1/sites/{site_id}/packets", content=body,
                       headers={**ZIP, **headers})  # fmt: skip


def stored(server: Any) -> list[dict[str, Any]]:
    return server.app.db.query("SELECT * FROM packets")


def test_store_list_and_same_bytes_twice(server) -> None:
    site = server.site()["id"]
    body = fake_packet(site)
    r = post(server.admin, site, body)
    assert r.status_code == 201, r.text
    p = r.json()["packet"]
    assert r.json()["new"] is True
    assert p["month"] == "2026-10" and p["bytes"] == len(body)
    assert (server.data / f"packets/{p['sha256']}.zip").read_bytes() == body
    assert ((server.data / f"packets/{p['sha256']}.zip").stat().st_mode & 0o077) == 0
    again = post(server.admin, site, body)
    assert again.status_code == 200 and again.json() == {"packet": p, "new": False}
    assert len(stored(server)) == 1
    listed = server.admin.get(f"/api/v1/sites/{site}/packets").json()["packets"]
    assert listed == [p]
    audit = server.app.db.query("SELECT * FROM audit WHERE action = 'packet.store'")
    assert len(audit) == 1


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda s: fake_packet(s, manifest_site="other-site"), "for site 'other-site'"),
        (lambda s: fake_packet(s, tamper=True), "does not match its manifest entry"),
        (lambda s: fake_packet(s, extra={"../evil": b"x"}), "unsafe entry name"),
        (lambda s: b"PK\x03\x04 not really a zip", "not a zip file"),
        (lambda s: b"", "not a zip file"),
    ],
)
def test_what_is_not_an_intact_packet_of_the_site_is_refused(server, make, why) -> None:
    site = server.site()["id"]
    r = post(server.admin, site, make(site))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "E_PACKET"
    assert why in r.json()["error"]["message"]
    assert stored(server) == []
    assert not (server.data / "packets").exists() or list((server.data / "packets").iterdir()) == []


def test_an_unlisted_file_is_refused(server) -> None:
    site = server.site()["id"]
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(fake_packet(site))) as src, zipfile.ZipFile(buf, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        z.writestr("report.html", b"<h1>all met</h1>")
    r = post(server.admin, site, buf.getvalue())
    assert r.status_code == 400 and "not listed" in r.json()["error"]["message"]


def test_a_partner_stores_only_for_its_own_sites(server) -> None:
    mine = server.admin.post("/api/v1/partners", json={"name": "P"}).json()
    pc = server.client(api_key=mine["api_key"])
    own = pc.post("/api/v1/sites", json={"name": "P clinic"}).json()["id"]
    other = server.site("Not theirs")["id"]
    r = post(pc, other, fake_packet(other))
    assert r.status_code == 404  # no existence hint
    assert pc.get(f"/api/v1/sites/{other}/packets").status_code == 404
    assert post(pc, own, fake_packet(own)).status_code == 201
    assert [p["site_id"] for p in stored(server)] == [own]


def test_auditor_reads_but_cannot_store_and_json_is_refused(server) -> None:
    site = server.site()["id"]
    tok = server.admin.post("/api/v1/tokens", json={"role": "auditor", "name": "a"}).json()
    auditor = server.client(tok["token"])
    assert post(auditor, site, fake_packet(site)).status_code == 403
    assert auditor.get(f"/api/v1/sites/{site}/packets").status_code == 200
    r = server.admin.post(f"/api/v1/sites/{site}/packets", json={"zip": "x"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "E_MEDIA_TYPE"
    assert stored(server) == []


def test_a_stored_packet_ends_up_in_worm(server, moto_url, aws_env) -> None:
    bucket = make_bucket(moto_url)
    site = server.site()["id"]
    p = post(server.admin, site, fake_packet(site)).json()["packet"]
    out = uploader(server, cfg_for(moto_url, bucket)).run()
    assert out["uploaded"] >= 1
    key = f"osiris/packets/{site}/{p['sha256']}.zip"
    assert key in versions(moto_url, bucket)
    st = worm.status(server.app.db, cfg_for(moto_url, bucket), None)
    assert st["kinds"]["packets"]["uploaded"] == 1
    assert st["kinds"]["packets"]["bytes"] == p["bytes"]


def test_a_packet_may_be_larger_than_any_json_body_but_is_bounded(server_factory) -> None:
    """A month's packet (~150 MB at 100,000 bundles) is far over max_body_bytes: the packet
    route takes up to max_packet_bytes, every JSON route still refuses over max_body_bytes,
    and a packet over its own bound is 413 with nothing stored."""
    server = server_factory(max_body_bytes=4096, max_packet_bytes=256 * 1024)
    site = server.site()["id"]
    big = fake_packet(site, extra={"bundles.jsonl": os.urandom(100 * 1024)})  # incompressible
    assert 4096 < len(big) < 256 * 1024
    r = post(server.admin, site, big)
    assert r.status_code == 201, r.text
    huge = fake_packet(site, month="2026-09", extra={"bundles.jsonl": os.urandom(300 * 1024)})
    r = post(server.admin, site, huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "E_TOO_LARGE", r.text
    assert len(stored(server)) == 1
    r = server.admin.post("/api/v1/sites", json={"name": "x" * 5000})
    assert r.status_code == 413, r.text
