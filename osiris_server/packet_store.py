"""The server's packet store: ``<data>/packets/<sha256>.zip`` plus one ``packets`` row each.

Why the server keeps packets at all: the monthly packet is what an auditor reads, so it goes to
the WORM copy (osiris_server/worm.py) beside the log's data; the server can only put up what it
holds. An operator (or a partner, for its own sites) uploads the zip ``osiris packet build``
wrote; the server stores it content-addressed (the same bytes twice are one packet).

What is checked here is that the zip is a packet *of that site*, intact as its manifest lists
it: a readable zip with safe entry names, a canonical ``osiris.packet/3`` manifest whose
``site_id`` is the site of the URL and whose period is well-formed, every other file listed with
its sha256 and size and nothing unlisted. The signatures, chains and completeness are the
auditor's to check offline (``osiris evidence verify --packet``), against keys the auditor pins,
never the MSP's server; a packet that fails there fails there, WORM copy or not.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from osiris_core import canonical, ids
from osiris_core.errors import OsirisError
from osiris_core.files import write_private
from osiris_core.packet import SCHEMA, UNLISTED, check_period, month_period
from osiris_core.packet import _safe_names as safe_names  # the verifier's own entry-name rule
from osiris_core.verify import UnusableInput

# unpacked bytes a stored packet may hold per byte uploaded (zip of JSON: ~10x); bounds the
# hashing a hostile upload can ask of the server
MAX_RATIO = 100
MIN_UNPACKED_CAP = 64 << 20


class PacketStoreError(OsirisError):
    """An upload that is not an intact packet of the site (400)."""

    code = "E_PACKET"
    http_status = 400


def inspect(body: bytes, site_id: str) -> dict[str, Any]:
    """The packet's row fields if ``body`` is an intact packet of ``site_id``; else raises
    ``PacketStoreError`` saying what is wrong."""
    try:
        z = zipfile.ZipFile(io.BytesIO(body))
    except (zipfile.BadZipFile, ValueError):
        raise PacketStoreError("the body is not a zip file (send the packet zip)") from None
    with z:
        try:
            names = safe_names(z)
        except UnusableInput as exc:
            raise PacketStoreError(str(exc)) from None
        if len(set(names)) != len(names):
            raise PacketStoreError("packet: an entry name appears twice")
        cap = max(MIN_UNPACKED_CAP, MAX_RATIO * len(body))
        if sum(i.file_size for i in z.infolist()) > cap:
            raise PacketStoreError("packet: unpacks to more than the server accepts")
        if "manifest.json" not in names:
            raise PacketStoreError("packet: no manifest.json")
        try:
            m = canonical.loads_canonical(z.read("manifest.json"))
        except (OsirisError, zipfile.BadZipFile, EOFError) as exc:
            raise PacketStoreError(f"packet: manifest.json: {exc}") from None
        if not isinstance(m, dict) or m.get("schema") != SCHEMA:
            raise PacketStoreError(f"packet: manifest.json is not an {SCHEMA} document")
        if m.get("site_id") != site_id:
            raise PacketStoreError(
                f"packet: its manifest is for site {str(m.get('site_id'))[:64]!r}, not {site_id}"
            )
        period, month = m.get("period"), m.get("month")
        try:
            if not isinstance(period, dict):
                raise PacketStoreError("period missing")
            start, end = check_period((period.get("start"), period.get("end")))
            if month is not None and (
                not isinstance(month, str) or month_period(month) != (start, end)
            ):
                raise PacketStoreError("month does not match the period")
        except OsirisError as exc:
            raise PacketStoreError(f"packet: manifest.json: {exc}") from None
        _check_files(z, names, m.get("files"))
    return {
        "sha256": hashlib.sha256(body).hexdigest(),
        "site_id": site_id,
        "period_start": start,
        "period_end": end,
        "month": month,
        "bytes": len(body),
    }


def _check_files(z: zipfile.ZipFile, names: list[str], files: Any) -> None:
    if not isinstance(files, list):
        raise PacketStoreError("packet: manifest.json lists no files")
    listed: dict[str, tuple[str, int]] = {}
    for f in files:
        if not (
            isinstance(f, dict)
            and isinstance(f.get("path"), str)
            and isinstance(f.get("sha256"), str)
            and isinstance(f.get("size"), int)
        ):
            raise PacketStoreError("packet: a manifest files entry is malformed")
        listed[f["path"]] = (f["sha256"], f["size"])
    extra = sorted(set(names) - set(listed) - set(UNLISTED))
    if extra:
        raise PacketStoreError(f"packet: {extra[0][:100]!r} is not listed in the manifest")
    for path, (sha, size) in listed.items():
        if path not in names:
            raise PacketStoreError(f"packet: {path[:100]!r} is listed but missing")
        h = hashlib.sha256()
        n = 0
        try:
            with z.open(path) as src:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
            raise PacketStoreError(f"packet: {path[:100]!r} cannot be read: {exc}") from None
        if h.hexdigest() != sha or n != size:
            raise PacketStoreError(f"packet: {path[:100]!r} does not match its manifest entry")


def relpath(sha256: str) -> str:
    """Where a packet lives under the data directory."""
    if not ids.HEX64.match(sha256):
        raise PacketStoreError("not a sha256")
    return f"packets/{sha256}.zip"


def store_file(data_dir: Path, sha256: str, body: bytes) -> str:
    """Write the zip (0600, atomically) unless it is already there; returns its relative path."""
    rel = relpath(sha256)
    path = data_dir / rel
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(path, body)
    return rel
