"""Logos for the branding tests: real PNGs built byte by byte, and SVGs good and hostile."""

from __future__ import annotations

import base64
import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(width: int = 4, height: int = 4, pad: int = 0) -> bytes:
    """A real RGB PNG (red); ``pad`` adds an ancillary chunk of that many bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    extra = _chunk(b"tEXt", b"c\x00" + b"x" * pad) if pad else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


GOOD_SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
     viewBox="0 0 100 40" width="100" height="40" sodipodi:docname="logo.svg">
  <metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>
  <sodipodi:namedview id="nv" inkscape:zoom="1"/>
  <!-- a comment -->
  <defs><linearGradient id="g1"><stop offset="0" stop-color="#123456"/></linearGradient></defs>
  <title>Acme IT</title>
  <rect x="0" y="0" width="100" height="40" fill="url(#g1)" class="bg" inkscape:label="bg"/>
  <circle cx="20" cy="20" r="10" style="fill:#ff0000;stroke:none;-inkscape-font:x"/>
  <text x="40" y="25" font-size="12">Acme <tspan fill="#000">IT</tspan></text>
</svg>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE svg [
 <!ENTITY a "aaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&c;</text></svg>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"""


def svg(inner: str, attrs: str = "") -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" {attrs}>{inner}</svg>'


HOSTILE_SVGS = {
    "script": svg("<script>alert(1)</script>"),
    "onload": svg("<rect width='1' height='1'/>", "onload=\"alert(1)\""),
    "foreignObject": svg("<foreignObject><p xmlns='http://www.w3.org/1999/xhtml'>x</p>"
                         "</foreignObject>"),
    "external href": svg("<g><path d='M0 0' xmlns:xlink='http://www.w3.org/1999/xlink' "
                         "xlink:href='http://evil.example/x'/></g>"),
    "style element": svg("<style>rect{fill:url(http://evil.example/t)}</style>"),
    "style url()": svg("<rect style='fill:url(http://evil.example/t)'/>"),
    "javascript:": svg("<rect fill='javascript:alert(1)'/>"),
    "DOCTYPE (billion laughs)": BILLION_LAUGHS,
    "ENTITY (XXE)": XXE,
    "image": svg("<image href='http://evil.example/x.png'/>"),
}  # fmt: skip
