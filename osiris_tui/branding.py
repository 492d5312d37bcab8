"""A partner's brand on the client side: the CLI sets and shows it, the packet report's header
and the console's header carry it.

The server is the judge of a logo (osiris_server/branding.py sanitises SVG and checks PNG); the
client only refuses what cannot be right (an unknown extension, a file over the caps) so the
user hears it before an upload. A logo pulled for a report is checked against the sha256 the
server announced, capped at the PNG cap (report.json stays bounded), and leaves as a data: URI
inside an ``<img>`` — an SVG there never runs a script.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from osiris_core.errors import OsirisError
from osiris_core.ids import HEX64

from .transport import NotFound, seg

PNG, SVG = "image/png", "image/svg+xml"
TYPES = {".png": PNG, ".svg": SVG}
CAPS = {PNG: 256 * 1024, SVG: 64 * 1024}
_COLOUR = re.compile(r"#[0-9a-f]{6}\Z")


class BrandInputError(OsirisError):
    """A logo file or colour the server would refuse anyway."""

    code = "E_BRAND"


def logo_file(path: Path) -> tuple[str, bytes]:
    """(content type, bytes) of a logo file, by its extension (.png or .svg)."""
    ctype = TYPES.get(path.suffix.lower())
    if ctype is None:
        raise BrandInputError(f"{path.name}: the logo must be a .png or .svg file")
    try:
        with path.open("rb") as f:
            data = f.read(CAPS[ctype] + 1)
    except OSError as e:
        raise BrandInputError(f"{path}: {e.strerror or e}") from None
    if len(data) > CAPS[ctype]:
        raise BrandInputError(f"{path.name}: over {CAPS[ctype] // 1024} KiB")
    return ctype, data


def brand_body(
    name: str | None, colour: str | None, logo: Path | None, no_logo: bool
) -> dict[str, Any]:
    """The PUT body of ``osiris partner brand``."""
    body: dict[str, Any] = {}
    if name is not None:
        body["display_name"] = name
    if colour is not None:
        if not _COLOUR.match(colour.lower()):
            raise BrandInputError(f"--colour must be #rrggbb, not {colour!r}")
        body["colour"] = colour.lower()
    if logo is not None and no_logo:
        raise BrandInputError("--logo and --no-logo exclude each other")
    if logo is not None:
        ctype, data = logo_file(logo)
        body["logo_b64"] = base64.b64encode(data).decode()
        body["logo_type"] = ctype
    if no_logo:
        body["logo"] = None
    if not body:
        raise BrandInputError("nothing to change: give --name, --colour, --logo or --no-logo")
    return body


def get_brand(client: Any, partner_id: str) -> dict[str, Any]:
    return dict(client.get(f"/partners/{seg(partner_id)}/branding"))


def set_brand(client: Any, partner_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.put(f"/partners/{seg(partner_id)}/branding", body))


def report_partner(client: Any, partner_id: str) -> dict[str, Any]:
    """The packet report's partner: ``{"name", "colour", "logo"}`` — the display name (else the
    partner's name, else its id), a ``#rrggbb`` colour or None, and ``{"type", "sha256",
    "b64"}`` or None. Whoever may not read the partner gets its id as the label, nothing else."""
    try:
        row = client.get(f"/partners/{seg(partner_id)}")
    except NotFound:  # an operator who may not read the partner: its id is the label
        return {"name": partner_id, "colour": None, "logo": None}
    brand: dict[str, Any] = {}
    try:
        brand = get_brand(client, partner_id)
    except NotFound:  # a server without branding yet
        pass
    name = brand.get("display_name") or row.get("name") or partner_id
    c = brand.get("colour")
    return {
        "name": str(name),
        "colour": c if isinstance(c, str) and _COLOUR.match(c) else None,
        "logo": _logo(client, partner_id, brand),
    }


def _logo(client: Any, partner_id: str, brand: dict[str, Any]) -> dict[str, str] | None:
    """The logo as the server announced it (type and sha256 must match what is served), else
    None: a report is built without a logo rather than with an unexpected one."""
    ctype, sha = brand.get("logo_type"), brand.get("logo_sha256")
    if ctype not in CAPS or not HEX64.match(sha):
        return None
    try:
        got_type, data = client.get_bytes(f"/partners/{seg(partner_id)}/logo", CAPS[PNG])
    except NotFound:
        return None
    if got_type.split(";")[0].strip() != ctype or len(data) > CAPS[ctype]:
        return None
    if hashlib.sha256(data).hexdigest() != sha:
        return None
    return {"type": ctype, "sha256": sha, "b64": base64.b64encode(data).decode()}


def console_brand(client: Any) -> tuple[str, str | None] | None:
    """(display name, colour or None) of the one partner this credential sees (a partner key
    sees only its own); None when it sees several or none (MSP staff)."""
    rows = client.get("/partners").get("partners", [])
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        return None
    pid = rows[0].get("id")
    if not isinstance(pid, str):
        return None
    try:
        brand = get_brand(client, pid)
    except NotFound:
        brand = {}
    name = brand.get("display_name") or rows[0].get("name") or pid
    c = brand.get("colour")
    return str(name), c if isinstance(c, str) and _COLOUR.match(c) else None
