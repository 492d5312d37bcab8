"""Partner branding over the real server (issue 19 item 3): who may set and read it, and every
hostile input refused with a clear 400 that changes nothing."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import pytest

from tests.brand_fixtures import GOOD_SVG, HOSTILE_SVGS, b64, make_png
from tests.server.conftest import Server


def _partner(server: Server, name: str = "Acme IT") -> tuple[str, str]:
    r = server.admin.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"], r.json()["api_key"]


def _path(pid: str, what: str = "branding") -> str:
    return f"/api/v1/partners/{pid}/{what}"


@pytest.fixture
def brand(server: Server) -> tuple[Server, str, object]:
    pid, key = _partner(server)
    c = server.client(api_key=key)
    body = {"display_name": "Acme", "colour": "#12AB34", "logo_b64": b64(make_png()),
            "logo_type": "image/png"}  # fmt: skip
    r = c.put(_path(pid), json=body)
    assert r.status_code == 200, r.text
    return server, pid, c


def test_set_get_and_remove(brand) -> None:
    server, pid, c = brand
    png = make_png()
    got = c.get(_path(pid)).json()
    assert got["display_name"] == "Acme" and got["colour"] == "#12ab34"
    assert got["logo_type"] == "image/png"
    assert got["logo_sha256"] == hashlib.sha256(png).hexdigest()
    assert "logo" not in got and "logo_b64" not in got
    r = c.get(_path(pid, "logo"))
    assert r.status_code == 200 and r.content == png
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    # the partner listing never carries the bytes
    assert "logo" not in server.admin.get(f"/api/v1/partners/{pid}").text
    # only the colour changes; the rest stays
    r = c.put(_path(pid), json={"colour": "#000000"})
    assert r.status_code == 200 and r.json()["display_name"] == "Acme"
    assert r.json()["logo_sha256"] == got["logo_sha256"]
    # logo null removes it; display_name null falls back to the partner's name
    r = c.put(_path(pid), json={"logo": None, "display_name": None})
    assert r.status_code == 200, r.text
    assert r.json()["logo_type"] is None and r.json()["display_name"] is None
    assert c.get(_path(pid, "logo")).status_code == 404
    rows = server.admin.get("/api/v1/audit", params={"action": "partner.branding"}).json()
    details = [e["detail"] for e in reversed(rows["audit"])]
    assert details[0]["fields"] == ["colour", "display_name", "logo", "logo_type"]
    assert details[0]["logo_sha256"] == got["logo_sha256"]
    assert details[-1]["logo_sha256"] is None
    assert b64(png) not in str(rows)


def test_never_set_is_empty_and_unknown_partner_is_404(server: Server) -> None:
    pid, _key = _partner(server)
    got = server.admin.get(_path(pid)).json()
    assert got["partner_id"] == pid and got["display_name"] is None and got["logo_type"] is None
    assert server.admin.get(_path(pid, "logo")).status_code == 404
    r = server.admin.put(_path("ptn-nope"), json={"colour": "#000000"})
    assert r.status_code == 404


def test_another_partner_and_an_operator(brand) -> None:
    server, pid, _c = brand
    _other, other_key = _partner(server, "Other IT")
    o = server.client(api_key=other_key)
    for path in (_path(pid), _path(pid, "logo")):
        assert o.get(path).status_code == 404
    r = o.put(_path(pid), json={"display_name": "Hijacked"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "E_NOT_FOUND"
    tok = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    op = server.client(tok["token"])
    assert op.get(_path(pid)).status_code == 200  # MSP staff read every partner
    r = op.put(_path(pid), json={"display_name": "Operator's"})
    assert r.status_code == 403
    assert server.admin.get(_path(pid)).json()["display_name"] == "Acme"


BAD = {
    "colour red": {"colour": "red"},
    "colour #12345g": {"colour": "#12345g"},
    "colour css injection": {"colour": "#fff;}body{"},
    "colour short": {"colour": "#fff"},
    "name control char": {"display_name": "Acme\x1b[31m"},
    "name bidi override": {"display_name": "Acme\u202e"},
    "name empty": {"display_name": "   "},
    "name too long": {"display_name": "x" * 81},
    "oversized PNG": {"logo_b64": b64(make_png(pad=256 * 1024)), "logo_type": "image/png"},
    "huge PNG dimensions": {"logo_b64": b64(make_png(2000, 1)), "logo_type": "image/png"},
    "fake PNG signature": {"logo_b64": b64(b"\x89PNX\r\n\x1a\n" + make_png()[8:]),
                           "logo_type": "image/png"},
    "SVG sent as PNG": {"logo_b64": b64(GOOD_SVG), "logo_type": "image/png"},
    "PNG bad CRC": {"logo_b64": b64(make_png()[:-1] + b"\x00"), "logo_type": "image/png"},
    "not base64": {"logo_b64": "!!!", "logo_type": "image/png"},
    "gif": {"logo_b64": b64(b"GIF89a"), "logo_type": "image/gif"},
    "oversized SVG": {"logo_b64": b64(GOOD_SVG.replace("<title>", "<desc>" + "x" * 70000
                                                       + "</desc><title>")),
                      "logo_type": "image/svg+xml"},
    **{f"SVG {k}": {"logo_b64": b64(v), "logo_type": "image/svg+xml"}
       for k, v in HOSTILE_SVGS.items()},
    "nothing": {},
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_clear_400_and_changes_nothing(brand, case: str) -> None:
    server, pid, c = brand
    before = c.get(_path(pid)).json()
    logo_before = c.get(_path(pid, "logo")).content
    body = {"display_name": "Changed", **BAD[case]} if case != "nothing" else {}
    r = c.put(_path(pid), json=body)
    assert r.status_code == 400, (case, r.text)
    err = r.json()["error"]
    assert err["code"] in ("E_BRAND", "E_LOGO", "E_SCHEMA"), err
    assert err["message"] and "Traceback" not in r.text
    assert c.get(_path(pid)).json() == before
    assert c.get(_path(pid, "logo")).content == logo_before


@pytest.mark.parametrize(
    ("case", "word"),
    [("script", "script"), ("onload", "onload"), ("foreignObject", "foreignObject"),
     ("external href", "href"), ("style element", "style"), ("DOCTYPE (billion laughs)",
     "DOCTYPE"), ("ENTITY (XXE)", "ENTITY")],
)  # fmt: skip
def test_the_refusal_names_what_was_refused(brand, case: str, word: str) -> None:
    _server, pid, c = brand
    r = c.put(_path(pid), json={"logo_b64": b64(HOSTILE_SVGS[case]), "logo_type": "image/svg+xml"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_LOGO"
    assert word in r.json()["error"]["message"]


def test_a_harmless_svg_comes_back_sanitised_with_a_sandbox_csp(brand) -> None:
    server, pid, c = brand
    r = server.admin.put(_path(pid), json={"logo_b64": b64(GOOD_SVG), "logo_type": "image/svg+xml"})
    assert r.status_code == 200, r.text
    got = c.get(_path(pid, "logo"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/svg+xml"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    assert r.json()["logo_sha256"] == hashlib.sha256(got.content).hexdigest()
    text = got.text
    for gone in ("metadata", "rdf", "sodipodi", "inkscape", "namedview", "class=", "<!--",
                 "<?xml"):  # fmt: skip
        assert gone not in text, gone
    root = ET.fromstring(got.content)
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg" and root.get("viewBox") == "0 0 100 40"
    assert root.find(f"{svg}rect").get("fill") == "url(#g1)"
    assert root.find(f"{svg}circle").get("style") == "fill:#ff0000;stroke:none"
    assert "".join(root.find(f"{svg}text").itertext()) == "Acme IT"
