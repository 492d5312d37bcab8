"""A partner's brand as the server accepts it: display name, colour, logo (PNG or SVG).

Why this strict: the brand is shown to clinics (the portal, the packet report, the console), so
it is attacker-chosen content placed in pages we sign our name under. The colour goes into CSS,
so only ``#rrggbb`` passes. A PNG must really be one (signature, CRC-checked chunks, IHDR within
1024x1024). An SVG is a document that can script: it is parsed with the stdlib parser only after
refusing any DOCTYPE/ENTITY (billion laughs, XXE; defusedxml is not a dependency), then rebuilt
from an allow-list of shape/text/gradient elements and presentation attributes. Dangerous
content (script, foreignObject, style elements, ``on*`` handlers, external or ``javascript:``/
``data:`` references, ``url(...)`` other than ``url(#id)``) is refused with a 400 naming it, so
the partner learns their file was not taken as is; harmless editor leftovers (metadata,
Inkscape/Sodipodi namespaces) are dropped. What is stored is the re-serialised tree and its
sha256. The portal uses the same rules (``logo``/``display_name``/``colour``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import unicodedata
import zlib
from typing import Any
from xml.etree import ElementTree as ET

from osiris_server.http import HttpError, bad_request

PNG = "image/png"
SVG_TYPE = "image/svg+xml"
LOGO_TYPES = (PNG, SVG_TYPE)
PNG_MAX = 256 * 1024
SVG_MAX = 64 * 1024
MAX_SIDE = 1024
NAME_MAX = 80
MAX_DEPTH = 40
# base64 of the largest logo, and some slack for line breaks
B64_MAX = (PNG_MAX + 2) // 3 * 4 + 4096

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

ELEMENTS = frozenset(
    "svg g path rect circle ellipse line polyline polygon text tspan defs linearGradient "
    "radialGradient stop title desc".split()
)
DROPPED_ELEMENTS = frozenset({"metadata"})
# editor namespaces whose elements and attributes are bookkeeping, never rendering
EDITOR_NS = (
    "http://sodipodi.sourceforge.net/",
    "http://www.inkscape.org/",
    "http://inkscape.sourceforge.net/",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://creativecommons.org/ns#",
    "http://web.resource.org/cc/",
    "http://purl.org/dc/elements/1.1/",
    "http://ns.adobe.com/",
)
PRESENTATION = frozenset(
    """fill fill-opacity fill-rule stroke stroke-width stroke-linecap stroke-linejoin
    stroke-miterlimit stroke-dasharray stroke-dashoffset stroke-opacity opacity color
    clip-rule visibility display font-family font-size font-weight font-style font-variant
    font-stretch text-anchor dominant-baseline alignment-baseline baseline-shift letter-spacing
    word-spacing text-decoration writing-mode stop-color stop-opacity vector-effect
    shape-rendering text-rendering paint-order""".split()
)
GEOMETRY = frozenset(
    """id x y x1 y1 x2 y2 cx cy r rx ry fx fy fr dx dy rotate width height d points viewBox
    preserveAspectRatio transform offset gradientUnits gradientTransform spreadMethod version
    textLength lengthAdjust pathLength""".split()
)
ATTRIBUTES = PRESENTATION | GEOMETRY
REFUSED_ELEMENTS = {
    "script": "a script element",
    "foreignObject": "a foreignObject element",
    "style": "a style element",
}
_URL = re.compile(r"url\(\s*(['\"]?)([^)'\"]*)\1\s*\)", re.I)
_LOCAL_URL = re.compile(r"#[A-Za-z_][\w.\-]*\Z")
_DOCTYPE = re.compile(rb"<!\s*(doctype|entity|element|attlist|notation)", re.I)
_XML_DECL_ENC = re.compile(rb"<\?xml[^>]*encoding\s*=\s*['\"]([^'\"]+)['\"]", re.I)
_COLOUR = re.compile(r"#[0-9a-f]{6}\Z")


def brand_error(message: str) -> HttpError:
    return bad_request(message, "E_BRAND")


def logo_error(message: str) -> HttpError:
    return bad_request(message, "E_LOGO")


# ------------------------------------------------------------------ name, colour


def display_name(value: Any) -> str:
    """NFC, stripped, 1..80 printable characters: control and format characters are refused
    (a bidi override would make a name read as another one)."""
    if not isinstance(value, str):
        raise brand_error("display_name must be a string")
    s = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(s) <= NAME_MAX:
        raise brand_error(f"display_name must be 1..{NAME_MAX} characters")
    for ch in s:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise brand_error(f"display_name has a non-printable character U+{ord(ch):04X}")
    return s


def colour(value: Any) -> str:
    """``#rrggbb`` only, lower-cased: anything else could escape a CSS declaration."""
    s = value.lower() if isinstance(value, str) else ""
    if not _COLOUR.match(s):
        raise brand_error("colour must be #rrggbb (six hex digits)")
    return s


# ------------------------------------------------------------------ logo


def decode_logo(b64: Any, logo_type: Any) -> tuple[str, bytes, str]:
    """(content type, the bytes to store, their sha256 hex) of an uploaded logo."""
    if logo_type not in LOGO_TYPES:
        raise logo_error("logo_type must be image/png or image/svg+xml")
    if not isinstance(b64, str) or len(b64) > B64_MAX:
        raise logo_error("logo_b64 must be base64 of at most 256 KiB")
    try:
        raw = base64.b64decode("".join(b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise logo_error("logo_b64 is not valid base64") from None
    data = check_png(raw) if logo_type == PNG else sanitise_svg(raw)
    return logo_type, data, hashlib.sha256(data).hexdigest()


def check_png(data: bytes) -> bytes:
    """The bytes unchanged if they are a PNG: signature, IHDR first with sane fields, every
    chunk's CRC, an IDAT and an IEND (bytes after IEND are ignored)."""
    if len(data) > PNG_MAX:
        raise logo_error(f"the PNG is {len(data)} bytes; at most {PNG_MAX} (256 KiB)")
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise logo_error("not a PNG (bad signature)")
    pos, seen = 8, []
    while True:
        if pos + 12 > len(data):
            raise logo_error("the PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise logo_error("the PNG is truncated")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise logo_error(f"the PNG's {kind!r} chunk has a bad CRC")
        if not seen and kind != b"IHDR":
            raise logo_error("the PNG does not start with IHDR")
        if kind == b"IHDR":
            _ihdr(body, first=not seen)
        seen.append(kind)
        pos += 12 + length
        if kind == b"IEND":
            break
    if b"IDAT" not in seen:
        raise logo_error("the PNG has no image data")
    return data


def _ihdr(body: bytes, *, first: bool) -> None:
    if not first or len(body) != 13:
        raise logo_error("the PNG's IHDR is malformed")
    w, h, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", body)
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise logo_error(f"the PNG is {w}x{h}; at most {MAX_SIDE}x{MAX_SIDE}")
    allowed = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
    if depth not in allowed.get(ctype, ()) or comp or filt or inter not in (0, 1):
        raise logo_error("the PNG's IHDR is malformed")


def sanitise_svg(data: bytes) -> bytes:
    """The SVG rebuilt from the allow-list, UTF-8, no XML declaration."""
    if len(data) > SVG_MAX:
        raise logo_error(f"the SVG is {len(data)} bytes; at most {SVG_MAX} (64 KiB)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    m = _XML_DECL_ENC.match(data)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii"):
        raise logo_error("the SVG must be UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise logo_error("the SVG must be UTF-8") from None
    if _DOCTYPE.search(data):
        raise logo_error("the SVG has a DOCTYPE/ENTITY declaration (refused)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise logo_error(f"the SVG is not well-formed XML ({e})") from None
    if _local(root.tag) != "svg" or _ns(root.tag) not in ("", SVG_NS):
        raise logo_error("the SVG's root element is not <svg>")
    out = _clean(root, 0)
    assert out is not None
    # plain names with the declarations spelled out: what we emit is exactly what is seen
    out.set("xmlns", SVG_NS)
    if any("xlink:href" in e.attrib for e in out.iter()):
        out.set("xmlns:xlink", XLINK_NS)
    clean = ET.tostring(out, encoding="unicode").encode("utf-8")
    if len(clean) > SVG_MAX:  # escaping can grow it; what is stored and reported stays capped
        raise logo_error(f"the sanitised SVG is {len(clean)} bytes; at most {SVG_MAX} (64 KiB)")
    return clean


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _editor(ns: str) -> bool:
    return any(ns.startswith(p) for p in EDITOR_NS)


def _clean(el: ET.Element, depth: int) -> ET.Element | None:
    """A clean copy of ``el`` (None: dropped as harmless); raises on dangerous content."""
    if not isinstance(el.tag, str):
        return None  # a comment or processing instruction
    if depth > MAX_DEPTH:
        raise logo_error(f"the SVG nests deeper than {MAX_DEPTH} elements")
    ns, name = _ns(el.tag), _local(el.tag)
    if _editor(ns):
        return None
    if ns not in ("", SVG_NS):
        raise logo_error(f"the SVG has an element from another namespace ({name}; refused)")
    if name in REFUSED_ELEMENTS:
        raise logo_error(f"the SVG has {REFUSED_ELEMENTS[name]} (refused)")
    if name in DROPPED_ELEMENTS:
        return None
    if name not in ELEMENTS:
        raise logo_error(f"the SVG has a <{name}> element, which logos may not use (refused)")
    out = ET.Element(name)
    for key, value in el.attrib.items():
        kept = _attribute(name, key, value)
        if kept is not None:
            out.set(*kept)
    out.text = el.text if name in ("text", "tspan", "title", "desc") else None
    for child in el:
        c = _clean(child, depth + 1)
        if c is not None:
            c.tail = child.tail if name in ("text", "tspan") else None
            out.append(c)
    return out


def _attribute(element: str, key: str, value: str) -> tuple[str, str] | None:
    ns, name = _ns(key), _local(key)
    if name.lower().startswith("on"):
        raise logo_error(f"the SVG has an event handler attribute {name} on <{element}> (refused)")
    if name == "href" and ns in ("", XLINK_NS):
        if not _LOCAL_URL.match(value.strip()):
            raise logo_error(f"the SVG links outside itself ({name}={value[:60]!r}; refused)")
        return ("xlink:href" if ns else "href"), value.strip()
    if ns == XML_NS and name == "space":
        return "xml:space", "preserve" if value == "preserve" else "default"
    if ns or _editor(ns):
        return None  # inkscape:label, sodipodi:docname, ...: bookkeeping
    if name == "style":
        style = _style(element, value)
        return ("style", style) if style else None
    if name not in ATTRIBUTES:
        return None  # class, data-*, unknown: harmless, dropped
    return name, _value(element, name, value)


def _value(element: str, name: str, value: str) -> str:
    """The value if it references nothing outside the document (refused otherwise)."""
    squashed = re.sub(r"\s+", "", value).lower()
    for bad in ("javascript:", "data:", "expression(", "@import", "\\", "<", "vbscript:"):
        if bad in squashed:
            raise logo_error(f"the SVG's {name} on <{element}> has {bad!r} (refused)")
    if "url(" in squashed:
        urls = _URL.findall(value)
        if squashed.count("url(") != len(urls) or not all(_LOCAL_URL.match(u) for _q, u in urls):
            raise logo_error(f"the SVG's {name} on <{element}> has a url() not url(#id) (refused)")
    return value


def _style(element: str, value: str) -> str:
    """A style attribute kept to its presentation properties, each value checked."""
    kept = []
    for decl in value.split(";"):
        if ":" not in decl:
            continue
        prop, _sep, val = decl.partition(":")
        prop = prop.strip().lower()
        val = _value(element, f"style {prop}", val.strip())
        if prop in PRESENTATION:
            kept.append(f"{prop}:{val}")
    return ";".join(kept)


def fields_from(body: dict[str, Any]) -> dict[str, Any]:
    """The brand columns a PUT body sets (validated); a null field clears it."""
    out: dict[str, Any] = {}
    if "display_name" in body:
        v = body["display_name"]
        out["display_name"] = None if v is None else display_name(v)
    if "colour" in body:
        out["colour"] = None if body["colour"] is None else colour(body["colour"])
    remove = ("logo" in body and body["logo"] is None) or (
        "logo_b64" in body and body["logo_b64"] is None
    )
    if "logo" in body and body["logo"] is not None:
        raise logo_error("logo may only be null (send logo_b64 and logo_type to set one)")
    if remove:
        out.update(logo=None, logo_type=None, logo_sha256=None)
    elif "logo_b64" in body:
        ctype, data, digest = decode_logo(body["logo_b64"], body.get("logo_type"))
        out.update(logo=data, logo_type=ctype, logo_sha256=digest)
    elif body.get("logo_type") is not None:
        raise logo_error("logo_type without logo_b64")
    if not out:
        raise brand_error("nothing to change: send display_name, colour or logo_b64/logo_type")
    return out
