"""The brand rules themselves (osiris_server/branding.py), for the inputs the API test does not
spell out: encodings, nesting, character references, CSS tricks, PNG structure."""

from __future__ import annotations

import struct
import zlib

import pytest

from osiris_server import branding
from osiris_server.http import HttpError
from tests.brand_fixtures import make_png, svg


def _refused(data: bytes, word: str = "") -> str:
    with pytest.raises(HttpError) as e:
        branding.sanitise_svg(data)
    assert e.value.status == 400 and e.value.code == "E_LOGO"
    assert word in str(e.value)
    return str(e.value)


@pytest.mark.parametrize(
    ("doc", "word"),
    [
        (svg("<g>" * 60 + "</g>" * 60), "deeper"),
        (svg("<rect fill='&#x6A;avascript:alert(1)'/>"), "javascript"),
        (svg("<rect style='fill:\\75rl(http://x)'/>"), "\\\\"),
        (svg("<rect fill='url(#a) url(http://x/y)'/>"), "url()"),
        (svg("<rect style='fill:expression(alert(1))'/>"), "expression"),
        (svg("<a href='#x'><rect/></a>"), "<a>"),
        (svg("<use href='#x'/>"), "<use>"),
        (svg("<set attributeName='href' to='javascript:x'/>"), "<set>"),
        (svg("<h:script xmlns:h='http://www.w3.org/1999/xhtml'/>"), "namespace"),
        (svg("<rect/>", "xmlns:x='urn:x' x:onclick='alert(1)'"), "onclick"),
        (svg("<text><![CDATA[<!ENTITY x 'y'>]]></text>"), "DOCTYPE"),
        (b'<?xml version="1.0" encoding="UTF-16"?><svg/>', "UTF-8"),
        (svg("<rect/>").encode("utf-16"), "UTF-8"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'/>", "root"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>", "well-formed"),
    ],
)
def test_refused(doc: str | bytes, word: str) -> None:
    _refused(doc.encode() if isinstance(doc, str) else doc, word)


def test_kept_and_dropped() -> None:
    doc = svg(
        "<g transform='translate(1 2)' data-x='1' class='c'><path d='M0 0L1 1' "
        "xml:space='preserve' fill-rule='evenodd'/></g>"
        "<radialGradient id='r'><stop offset='1' stop-opacity='.5'/></radialGradient>"
        "<ellipse rx='1' ry='2' fill='url( \"#r\" )'/>",
        "xmlns:xlink='http://www.w3.org/1999/xlink' version='1.1'",
    ).encode()
    out = branding.sanitise_svg(b"\xef\xbb\xbf" + doc).decode()
    assert out.startswith('<svg version="1.1" xmlns="http://www.w3.org/2000/svg">')
    assert "data-x" not in out and "class" not in out
    assert '<path d="M0 0L1 1" xml:space="preserve" fill-rule="evenodd" />' in out
    assert 'fill="url( &quot;#r&quot; )"' in out


def test_the_sanitised_svg_stays_within_the_cap() -> None:
    doc = svg("<text>" + ">" * (60 * 1024) + "</text>").encode()
    assert len(doc) <= branding.SVG_MAX
    _refused(doc, "sanitised")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (make_png()[:30], "truncated"),
        (make_png().replace(b"IDAT", b"IDAx"), "CRC"),
        (b"\x89PNG\r\n\x1a\n" + _chunk(b"tEXt", b"a") + make_png()[8:], "IHDR"),
        (make_png(0, 1), "0x1"),
        (b"\x89PNG\r\n\x1a\n" + make_png()[8:33] + _chunk(b"IEND", b""), "no image data"),
        (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 3, 2, 0, 0, 0))
         + make_png()[33:], "malformed"),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 2**31) + b"IHDR" + b"\x00" * 20, "truncated"),
    ],
)  # fmt: skip
def test_png_refused(data: bytes, word: str) -> None:
    with pytest.raises(HttpError) as e:
        branding.check_png(data)
    assert e.value.code == "E_LOGO" and word in str(e.value), str(e.value)


def test_png_kept_as_sent() -> None:
    png = make_png(1024, 1)
    assert branding.check_png(png + b"trailing") == png + b"trailing"


@pytest.mark.parametrize(
    ("value", "want"),
    [("  Acme  ", "Acme"), ("Cafe\u0301", "Caf\u00e9"), ("Ärzte GmbH", "Ärzte GmbH")],
)
def test_display_name_normalised(value: str, want: str) -> None:
    assert branding.display_name(value) == want
