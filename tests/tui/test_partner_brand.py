"""`osiris partner brand` and the branded packet report, against a real osiris-server of this
module's own (a partner and its brand would disturb the session's shared server).

The partner sets its brand with its own key; another partner's brand is a plain not-found; a
hostile SVG is the server's clear refusal (exit 2), and nothing changed. A packet of the
partner's site carries the display name, colour and logo in manifest.json and report.json,
shows the logo in report.html, and `osiris evidence verify --packet` still passes (the
verifier re-derives report.json with the partner from the manifest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from osiris_core import canonical
from osiris_core.controls import controls_for
from tests.brand_fixtures import HOSTILE_SVGS, make_png
from tests.tui.conftest import LiveServer, running
from tests.tui.test_packet_cli import MONTH, PLAN, _catalog_check, attest, run


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running(tmp_path_factory.mktemp("brand-cli")) as live:
        yield live


def _partner(srv: LiveServer, name: str) -> tuple[str, str]:
    with srv.admin() as h:
        r = h.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"], r.json()["api_key"]


@pytest.fixture(scope="module")
def acme(srv: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pid, key = _partner(srv, "Acme IT LLC")
    logo = tmp_path_factory.mktemp("logo") / "acme.png"
    logo.write_bytes(make_png(32, 16))
    r = run(srv, "partner", "brand", pid, "--name", "Acme Clinics IT", "--colour", "#1F6FEB",
            "--logo", str(logo), "--json", token=key)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return {"id": pid, "key": key, "logo": logo, "set": json.loads(r.stdout)}


def test_the_partner_sets_and_shows_its_brand(srv: LiveServer, acme: dict) -> None:
    png = acme["logo"].read_bytes()
    assert acme["set"]["display_name"] == "Acme Clinics IT"
    assert acme["set"]["colour"] == "#1f6feb"
    assert acme["set"]["logo_sha256"] == hashlib.sha256(png).hexdigest()
    r = run(srv, "partner", "brand", acme["id"], "--show", "--json", token=acme["key"])
    assert r.returncode == 0 and json.loads(r.stdout) == acme["set"]
    r = run(srv, "partner", "brand", acme["id"], "--show")  # admin, plain
    assert r.returncode == 0 and "display_name: Acme Clinics IT" in r.stdout


def test_another_partner_and_bad_input(srv: LiveServer, acme: dict, tmp_path: Path) -> None:
    _pid, other = _partner(srv, "Other IT")
    r = run(srv, "partner", "brand", acme["id"], "--name", "Hijack", token=other)
    assert r.returncode == 2 and "not found" in r.stderr
    r = run(srv, "partner", "brand", acme["id"], "--show", token=other)
    assert r.returncode == 2 and "not found" in r.stderr
    r = run(srv, "partner", "brand", acme["id"], "--colour", "red", token=acme["key"])
    assert r.returncode == 2 and "#rrggbb" in r.stderr
    r = run(srv, "partner", "brand", acme["id"], "--show", "--no-logo", token=acme["key"])
    assert r.returncode == 2 and "--show changes nothing" in r.stderr
    r = run(srv, "partner", "brand", acme["id"], "--json", token=acme["key"])  # no change: show
    assert r.returncode == 0 and json.loads(r.stdout) == acme["set"]
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a")
    r = run(srv, "partner", "brand", acme["id"], "--logo", str(gif), token=acme["key"])
    assert r.returncode == 2 and ".png or .svg" in r.stderr
    bad = tmp_path / "bad.svg"
    bad.write_text(HOSTILE_SVGS["script"])
    r = run(srv, "partner", "brand", acme["id"], "--logo", str(bad), token=acme["key"])
    assert r.returncode == 2 and "script" in r.stderr and "Traceback" not in r.stderr
    r = run(srv, "partner", "brand", acme["id"], "--show", "--json", token=acme["key"])
    assert json.loads(r.stdout) == acme["set"]  # nothing changed


def test_a_branded_packet_verifies_and_shows_the_logo(
    srv: LiveServer, acme: dict, tmp_path: Path
) -> None:
    site_id = f"brd-{uuid.uuid4().hex[:8]}"
    with srv.admin() as h:
        body = {"name": "Branded Clinic", "id": site_id, "partner_id": acme["id"]}
        assert h.post("/api/v1/sites", json=body).status_code == 201
    a = srv.enroll(site_id, f"{site_id}-app")
    fields = []
    for i, (day, check_id, outcome) in enumerate(PLAN):
        t = f"{day}T10:{i:02d}:00.000Z"
        fields.append({"host_id": "ws07", "check": check_id, "outcome": outcome,
                       "controls": list(controls_for(_catalog_check(check_id))),
                       "started_at": t, "finished_at": t})  # fmt: skip
    a.send_bundles(fields)
    a.witness()
    out = tmp_path / "p.zip"
    r = run(srv, "packet", "build", "--site", site_id, "--month", MONTH, "--out", str(out))
    assert r.returncode == 0, r.stderr
    png = acme["logo"].read_bytes()
    want = {"name": "Acme Clinics IT", "colour": "#1f6feb",
            "logo": {"type": "image/png", "sha256": hashlib.sha256(png).hexdigest(),
                     "b64": base64.b64encode(png).decode()}}  # fmt: skip
    with zipfile.ZipFile(out) as z:
        assert canonical.loads(z.read("manifest.json"))["partner"] == want
        assert canonical.loads(z.read("report.json"))["partner"] == want
        html = z.read("report.html").decode()
        assert z.read("report.pdf").startswith(b"%PDF-")
    assert f'src="data:image/png;base64,{want["logo"]["b64"]}"' in html
    att = attest(srv, a, tmp_path / "a.json")
    r = run(srv, "evidence", "verify", "--packet", str(out), "--trust", str(att))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
