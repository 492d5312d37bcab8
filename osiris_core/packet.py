"""The evidence packet: one zip an auditor checks offline for one site and one period (a month).

Layout (docs/evidence-format.md §Packets)::

    manifest.json      canonical JSON: site, period, checkpoint size, per-appliance seq ranges
                       and boundary bundles, per-control outcome counts, every other file with
                       its sha256 and size
    keys.json, bundles.jsonl, proofs/…, checkpoint     the evidence export, verbatim
    consistency.json   (optional) the log's consistency proof from the previous packet's
                       checkpoint to this one
    checkpoint.tsr     (optional) RFC 3161 token over the checkpoint body (osiris_core/timestamp)
    report.json        the report (osiris.packet-report/1, osiris_core/report.py): per-control
                       status, population reconciliation, exceptions, healing, heat map, reviews
    report.html, …     views of report.json written by the builder's renderers (optional)
    verify/README      how to re-verify offline

Completeness is proved by the appliances' own signatures, never by the manifest: for every
appliance, the packet holds one unbroken piece of its hash chain that starts at the **start
boundary** (the last bundle before the period, or seq 1) and ends at the **end boundary** (the
first bundle after the period, whose ``prev_hash`` links to the period's last bundle) or at a
signed decommission bundle. Dropping any bundle from the start, middle or end breaks a link the
verifier checks; an appliance the trust roots name that is missing from the packet fails. The
manifest is unsigned on purpose: whoever builds the packet could sign anything, so a signature
over it would only say who built it (authorship), not that it is complete.

This module is pure: it reads and writes files.

Why this file is long: the packet's builder and its verifier are two halves of one format; the
manifest one writes is exactly what the other re-derives (population, boundaries, per-control
counts, consistency), and keeping both beside the one ``Summary`` they share is what stops them
from disagreeing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, canonical, tlog
from .catalog.loader import check_aliases
from .errors import NoteError, OsirisError, ProofError, SchemaError
from .keys import Verifier
from .note import Checkpoint, open_note
from .report import build_report, chain_edges
from .trust import TrustRoots
from .verify import (
    DECOMMISSION_CHECK,
    FAIL,
    PASS,
    Finding,
    Report,
    UnusableInput,
    verify_export,
)

SCHEMA = "osiris.packet/3"
CONSISTENCY_SCHEMA = "osiris.packet-consistency/1"
EXCEPTION_OUTCOMES = ("failed", "escalated", "deferred", "alert", "rejected", "expired")
MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
EXPORT_FILES = ("keys.json", "bundles.jsonl", "checkpoint")
OPTIONAL_FILES = ("consistency.json", "checkpoint.tsr")
REPORT_FILE = "report.json"
TSR_FILE = "checkpoint.tsr"
RESERVED = (REPORT_FILE, "manifest.json")
RENDERED_RE = re.compile(r"report\.[a-z]{2,5}")
PLATFORMS = ("windows", "linux", "nixos")
UNLISTED = ("manifest.json",)  # not listed inside the manifest itself
MAX_UNZIPPED = 4 << 30  # refuse zip bombs: a year of a large clinic is far below this
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same inputs give the same zip bytes

VERIFY_README = """\
Re-verifying this packet offline
================================

1. Get the clinic's attestation(s) from the clinic itself, not from the MSP: on each appliance
   a technician runs `osiris-agent attest --out FILE`, and reads you the key fingerprints it
   prints, so you can compare them. The attestation pins the appliance's keys, its key history,
   and the log key the appliance pinned when it enrolled.
2. Run:  osiris evidence verify --packet <this file>.zip --trust <attestation.json> [...]
   It checks, without any network access:
   - E_MANIFEST        every file's sha256 and size match manifest.json, nothing missing or
                       extra, counts and seq ranges match bundles.jsonl (integrity only);
   - every bundle: parse, canonical bytes, schema, Ed25519 signature by a key the attestation
     pins and that is valid at the bundle's seq, hash chain with no gaps, inclusion in the
     log, checkpoint signed by the pinned log key, cosignatures, time;
   - completeness: each appliance's chain runs from its start boundary (seq 1 or the last
     bundle before the period) to its end boundary (the first bundle after the period) or its
     decommission bundle (E_START_BOUNDARY, E_END_BOUNDARY, E_GAP); every attested appliance
     of the site has evidence (E_APPLIANCE_MISSING).
   - E_REPORT          report.json is exactly the report the packet's own evidence gives
                       (report.html / report.pdf are views of it: integrity only);
   Packets are verified strictly: keys that only the packet vouches for (W_UNPINNED) fail.
   Add --tsa-ca <the TSA's PEM chain> to check checkpoint.tsr, the RFC 3161 token proving
   when the checkpoint existed (E_TSA); with it pinned, a packet without a token fails
   (W_TSA_MISSING).
   Exit 0 = verified, 1 = a check failed, 2 = the file or a trust file cannot be used.
3. Without Osiris: docs/evidence-format.md describes every byte; sha256sum and any Ed25519
   library are enough to write the same checks.
"""


class PacketError(OsirisError):
    """A packet that cannot be built (bad period, empty export, unreadable export)."""

    code = "E_PACKET"


# ------------------------------------------------------------------ periods


def month_period(month: str) -> tuple[str, str]:
    """``YYYY-MM`` → (first instant, first instant of the next month) as canonical times.

    The end is exclusive; canonical time strings have a fixed width, so string comparison is
    time comparison.
    """
    m = MONTH_RE.fullmatch(month) if isinstance(month, str) else None
    if m is None:
        raise SchemaError(f"month must be YYYY-MM, not {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    nyear, nmon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return (f"{year:04d}-{mon:02d}-01T00:00:00.000Z", f"{nyear:04d}-{nmon:02d}-01T00:00:00.000Z")


def check_period(period: Any) -> tuple[str, str]:
    """A (start, end) pair of canonical times with start < end (end exclusive)."""
    if not isinstance(period, list | tuple) or len(period) != 2:
        raise SchemaError("period must be (start, end)")
    start, end = period
    for t in (start, end):
        try:
            if not isinstance(t, str) or canonical.format_time(canonical.parse_time(t)) != t:
                raise ValueError
        except (OsirisError, ValueError, TypeError):
            raise SchemaError(f"period bound {t!r} is not a canonical UTC time") from None
    if not start < end:
        raise SchemaError("period start must be before its end")
    return start, end


def in_period(finished_at: str, period: tuple[str, str]) -> bool:
    return period[0] <= finished_at < period[1]


# ------------------------------------------------------------------ building


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _iter_bundles(folder: Path) -> Iterator[dict[str, Any]]:
    try:
        f = open(folder / "bundles.jsonl", "rb")
    except OSError as e:
        raise PacketError(f"{folder / 'bundles.jsonl'}: unreadable: {e}") from None
    with f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if line:
                env = canonical.loads(line)
                if not isinstance(env, dict) or not isinstance(env.get("bundle"), dict):
                    raise PacketError("bundles.jsonl: a line is not an envelope")
                yield env["bundle"]


@dataclass
class Summary:
    """What a packet's bundles say, gathered in one pass (manifest and report share it).

    Which bundles are the period's is decided by chain position, not by each bundle's clock:
    per appliance, the first bundle is the start boundary when it finished before the period,
    the last is the end boundary when it finished at or after the period's end; everything in
    between is the period's evidence."""

    period: tuple[str, str]
    _items: dict[str, list[tuple[int, str, str, str, str, tuple[str, ...]]]] = field(
        default_factory=dict
    )
    sites: set[str] = field(default_factory=set)
    appliances: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, set[str]] = field(default_factory=dict)  # appliance → hosts with evidence
    controls: dict[str, dict[str, int]] = field(default_factory=dict)
    ruleset_hashes: set[str] = field(default_factory=set)
    policy_versions: set[str] = field(default_factory=set)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    _extra: dict[tuple[str, int], tuple[str | None, str | None]] = field(default_factory=dict)
    # Former check id -> check id (the catalogue's aliases): a bundle signed under an old id is
    # listed and judged under its check's current id. Per-control counts come from the
    # bundle's own signed ``controls``, so each bundle counts once per control either way.
    aliases: Mapping[str, str] = field(default_factory=check_aliases)

    def add(self, b: dict[str, Any]) -> None:
        app = b["appliance_id"]
        self.sites.add(b["site_id"])
        controls = tuple(b.get("controls") or ())
        check = b["check"]
        if isinstance(check, str):
            check = self.aliases.get(check, check)
        item = (b["seq"], b["finished_at"], check, b["outcome"], b["host_id"], controls)
        self._items.setdefault(app, []).append(item)
        self._extra[(app, b["seq"])] = (b.get("ruleset_hash"), b.get("policy_version"))

    def finish(self) -> Summary:
        start, end = self.period
        for app, items in self._items.items():
            items.sort()
            first, last = items[0], items[-1]
            sb = first[0] if first[1] < start else None
            eb = last[0] if last[1] >= end else None
            content = [it for it in items if not (it[0] == sb and sb is not None) and it[0] != eb]
            self.appliances[app] = {
                "bundles": len(items),
                "in_period": len(content),
                "seq_first": first[0],
                "seq_last": last[0],
                "start_boundary": sb,
                "end_boundary": eb,
                "decommissioned": last[2] == DECOMMISSION_CHECK,
            }
            for seq, finished, check, outcome, host, controls in content:
                self.hosts.setdefault(app, set()).add(host)
                for c in controls:
                    counts = self.controls.setdefault(c, {})
                    counts[outcome] = counts.get(outcome, 0) + 1
                rh, pv = self._extra[(app, seq)]
                if rh:
                    self.ruleset_hashes.add(rh)
                if pv:
                    self.policy_versions.add(pv)
                if outcome in EXCEPTION_OUTCOMES:
                    self.exceptions.append(
                        {
                            "appliance_id": app,
                            "seq": seq,
                            "host_id": host,
                            "check": check,
                            "outcome": outcome,
                            "finished_at": finished,
                        }
                    )
        return self

    def open_ends(self) -> list[str]:
        """Appliances whose piece of chain has no end boundary and no decommission bundle."""
        return sorted(
            a
            for a, v in self.appliances.items()
            if v["end_boundary"] is None and not v["decommissioned"]
        )


def summarize(
    folder: Path, period: tuple[str, str], aliases: Mapping[str, str] | None = None
) -> Summary:
    s = Summary(period) if aliases is None else Summary(period, aliases=aliases)
    try:
        for b in _iter_bundles(folder):
            s.add(b)
    except (KeyError, TypeError) as e:
        raise PacketError(f"bundles.jsonl: a bundle lacks a field: {e}") from None
    return s.finish()


def _checkpoint(folder: Path) -> Checkpoint:
    try:
        text = (folder / "checkpoint").read_text("utf-8")
        body = text[: text.index("\n\n") + 1]
        return Checkpoint.parse(body)
    except (OSError, ValueError, OsirisError) as e:
        raise PacketError(f"checkpoint: unreadable: {e}") from None


def _checkpoint_size(folder: Path) -> int:
    return _checkpoint(folder).size


def _appliance_names(folder: Path) -> list[str]:
    """Appliance ids whose keys the export carries: the population the builder claims."""
    try:
        keys = canonical.loads((folder / "keys.json").read_bytes())
        names = {Verifier.from_vkey(v).name for v in keys.get("appliances", [])}
    except (OSError, OsirisError, AttributeError) as e:
        raise PacketError(f"keys.json: unreadable: {e}") from None
    return sorted(n.removeprefix("osiris/appliance/") for n in names)


def _file_entries(root: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel in UNLISTED:
                continue
            digest, size = _sha256_file(p)
            out.append({"path": rel, "sha256": digest, "size": size})
    return out


def build_manifest(
    staged: Path,
    *,
    site_id: str,
    period: tuple[str, str],
    month: str | None,
    summary: Summary,
    tool_version: str = __version__,
    population: list[dict[str, Any]] | None = None,
    site_name: str | None = None,
    partner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a staged packet folder (every file but manifest.json is listed).

    ``population``, ``site_name`` and ``partner`` are what the builder was told (the site's
    targets, its name): unverifiable labels, recorded so that report.json can be re-derived."""
    return {
        "schema": SCHEMA,
        "site_id": site_id,
        "site_name": site_name,
        "partner": partner,
        "population": population or [],
        "month": month,
        "period": {"start": period[0], "end": period[1]},
        "checkpoint_size": _checkpoint_size(staged),
        "tool_version": tool_version,
        "bundles": sum(a["in_period"] for a in summary.appliances.values()),
        "appliances": {k: summary.appliances[k] for k in sorted(summary.appliances)},
        "controls": {
            c: dict(sorted(summary.controls[c].items())) for c in sorted(summary.controls)
        },
        "exceptions": len(summary.exceptions),
        "ruleset_hashes": sorted(summary.ruleset_hashes),
        "policy_versions": sorted(summary.policy_versions),
        "files": _file_entries(staged),
    }


def _zip_dir(staged: Path, out: Path) -> None:
    """Write the staged folder as a zip, atomically (temp file in the target folder, rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".packet-", suffix=".zip", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for p in sorted(staged.rglob("*")):
                    if p.is_file():
                        info = zipfile.ZipInfo(p.relative_to(staged).as_posix(), _ZIP_TIME)
                        info.compress_type = zipfile.ZIP_DEFLATED
                        info.external_attr = 0o644 << 16
                        with open(p, "rb") as src, z.open(info, "w") as dst:
                            while chunk := src.read(1 << 20):
                                dst.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def consistency_doc(previous_checkpoint: str, to_size: int, proof: list[bytes]) -> dict[str, Any]:
    """consistency.json: the log's proof that the previous packet's checkpoint is a prefix of
    this packet's (no history was rewritten between two packets)."""
    return {
        "schema": CONSISTENCY_SCHEMA,
        "from_checkpoint": previous_checkpoint,
        "to_size": to_size,
        "proof": [base64.b64encode(h).decode("ascii") for h in proof],
    }


def read_packet_checkpoint(zip_path: Path) -> tuple[str, dict[str, Any] | None]:
    """A packet's checkpoint note and its manifest (None if unreadable); for ``--previous``."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            note = z.read("checkpoint").decode("utf-8")
            try:
                m = canonical.loads(z.read("manifest.json"))
            except (KeyError, OsirisError):
                m = None
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise UnusableInput(f"{zip_path}: not a readable packet: {e}") from None
    return note, m if isinstance(m, dict) else None


def check_population(population: Any) -> list[dict[str, Any]]:
    """The expected population as given: ``[{host_id, platform, source}]``, sorted by host.

    Host ids are data (any non-empty text up to 255 characters): report.json is canonical JSON
    and every renderer escapes them, so markup or control characters stay inert."""
    if population is None:
        return []
    if not isinstance(population, list | tuple):
        raise SchemaError("population must be a list of {host_id, platform, source}")
    out: dict[str, dict[str, Any]] = {}
    for p in population:
        if not isinstance(p, dict) or set(p) != {"host_id", "platform", "source"}:
            raise SchemaError("each population entry is exactly {host_id, platform, source}")
        h, plat, src = p["host_id"], p["platform"], p["source"]
        if not isinstance(h, str) or not 0 < len(h) <= 255:
            raise SchemaError(f"population host_id {h!r} is not 1-255 characters of text")
        if plat is not None and plat not in PLATFORMS:
            raise SchemaError(f"population platform {plat!r} is not one of {PLATFORMS}")
        if not isinstance(src, str) or not 0 < len(src) <= 64:
            raise SchemaError("population source must be short text")
        if h in out:
            raise SchemaError(f"population lists host {h!r} twice")
        out[h] = {"host_id": h, "platform": plat, "source": src}
    return [out[h] for h in sorted(out)]


def _tsa_of(folder: Path) -> dict[str, Any] | None:
    """report.checkpoint.tsa: the TSA token's time and name, when the packet carries one and
    this Osiris can read it (osiris_core.timestamp); else null."""
    tsr = folder / TSR_FILE
    if not tsr.is_file():
        return None
    try:
        from . import timestamp  # type: ignore[attr-defined]

        info = timestamp.token_info(tsr.read_bytes())
    except (ImportError, AttributeError, OsirisError, ValueError, TypeError):
        return None
    return {"gen_time": info.get("gen_time"), "tsa": info.get("tsa")}


def report_of(folder: Path, m: Mapping[str, Any], aliases: Mapping[str, str] | None) -> dict:
    """report.json as it follows from a (staged or unpacked) packet folder and its manifest."""
    period = (m["period"]["start"], m["period"]["end"])
    note = (folder / "checkpoint").read_text("utf-8")
    return build_report(
        bundles=_iter_bundles(folder),
        edges=chain_edges(_iter_bundles(folder)),
        period=period,
        month=m.get("month"),
        site_id=m["site_id"],
        population=check_population(m.get("population")),
        appliances=_appliance_names(folder),
        checkpoint_note=note,
        checkpoint_size=_checkpoint_size(folder),
        tsa=_tsa_of(folder),
        site_name=m.get("site_name"),
        partner=m.get("partner"),
        tool_version=m.get("tool_version", __version__),
        aliases=aliases,
    )


def build_packet(
    export: Path,
    out: Path,
    *,
    site_id: str,
    period: tuple[str, str],
    month: str | None = None,
    consistency: dict[str, Any] | None = None,
    tool_version: str = __version__,
    aliases: Mapping[str, str] | None = None,
    population_expected: list[dict[str, Any]] | None = None,
    site_name: str | None = None,
    partner: dict[str, Any] | None = None,
    renderers: Mapping[str, Callable[[dict[str, Any]], bytes]] | None = None,
) -> dict[str, Any]:
    """Build the packet zip from an export folder holding, per appliance, the chain from its
    start boundary to its end boundary (``osiris packet build`` pulls exactly that); returns
    the manifest. The export folder is copied, never changed. ``aliases``: former check id ->
    check id (the packaged catalogue's by default). ``population_expected``: the hosts the
    site should have evidence for (``[{host_id, platform, source}]``, its targets); the
    appliances are added from keys.json. Writes report.json, then ``name`` = ``fn(report)``
    for each of ``renderers`` (views: report.html, report.pdf), all listed in the manifest."""
    export, out = Path(export), Path(out)
    period = check_period(period)
    population = check_population(population_expected)
    if site_name is not None and not isinstance(site_name, str):
        raise SchemaError("site_name must be text")
    for name in renderers or {}:
        if name in RESERVED or not RENDERED_RE.fullmatch(name):
            raise PacketError(f"renderer file name {name!r} is not report.<ext>")
    summary = summarize(export, period, aliases)
    if not summary.appliances:
        raise PacketError("the export holds no bundles")
    if summary.sites - {site_id}:
        raise PacketError(f"the export holds bundles of other sites: {sorted(summary.sites)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".packet-stage-", dir=out.parent) as tmp:
        staged = Path(tmp)
        for name in EXPORT_FILES:
            (staged / name).write_bytes((export / name).read_bytes())
        if (export / TSR_FILE).is_file():  # the RFC 3161 token (osiris_core/timestamp)
            (staged / TSR_FILE).write_bytes((export / TSR_FILE).read_bytes())
        (staged / "proofs").mkdir()
        proofs = export / "proofs"
        if proofs.is_dir():
            for p in sorted(proofs.iterdir()):
                if p.is_file():
                    (staged / "proofs" / p.name).write_bytes(p.read_bytes())
        if consistency is not None:
            (staged / "consistency.json").write_bytes(canonical.dumps(consistency))
        (staged / "verify").mkdir()
        (staged / "verify" / "README").write_text(VERIFY_README, "utf-8")
        labels = {"site_id": site_id, "month": month, "tool_version": tool_version,
                  "period": {"start": period[0], "end": period[1]}, "population": population,
                  "site_name": site_name, "partner": partner}  # fmt: skip
        report = report_of(staged, labels, aliases)
        (staged / REPORT_FILE).write_bytes(canonical.dumps(report))
        for name, render in sorted((renderers or {}).items()):
            data = render(report)
            if not isinstance(data, bytes):
                raise PacketError(f"renderer of {name} returned {type(data).__name__}, not bytes")
            (staged / name).write_bytes(data)
        manifest = build_manifest(
            staged,
            site_id=site_id,
            period=period,
            month=month,
            summary=summary,
            tool_version=tool_version,
            population=population,
            site_name=site_name,
            partner=partner,
        )
        (staged / "manifest.json").write_bytes(canonical.dumps(manifest))
        _zip_dir(staged, out)
    return manifest


# ------------------------------------------------------------------ verifying


def _safe_names(z: zipfile.ZipFile) -> list[str]:
    """Entry names, refusing anything that could write outside the extraction folder."""
    names: list[str] = []
    total = 0
    for info in z.infolist():
        n = info.filename
        mode = info.external_attr >> 16
        if (
            not n
            or n.startswith("/")
            or "\\" in n
            or ":" in n
            or any(part in ("", ".", "..") for part in n.rstrip("/").split("/"))
            or stat.S_ISLNK(mode)
        ):
            raise UnusableInput(f"packet: unsafe entry name {n!r}")
        total += info.file_size
        if total > MAX_UNZIPPED:
            raise UnusableInput("packet: unpacks to more than the size limit")
        if not info.is_dir():
            names.append(n)
    return names


def unpack(zip_path: Path, dest: Path) -> list[str]:
    """Extract a packet zip into `dest`; returns the file names (duplicates kept, to be flagged)."""
    try:
        z = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UnusableInput(f"{zip_path}: not a readable zip: {e}") from None
    with z:
        names = _safe_names(z)
        try:
            for n in dict.fromkeys(names):
                target = dest / n
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(n) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
            raise UnusableInput(f"{zip_path}: cannot extract: {e}") from None
    return names


class _Checks:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def fail(self, code: str, subject: str, msg: str) -> None:
        self.findings.append(Finding(FAIL, code, subject, msg))


def _load_manifest(folder: Path, c: _Checks) -> tuple[dict[str, Any] | None, bytes]:
    try:
        data = (folder / "manifest.json").read_bytes()
    except OSError:
        c.fail("E_MANIFEST", "manifest.json", "missing")
        return None, b""
    try:
        m = canonical.loads_canonical(data)
        if not isinstance(m, dict) or m.get("schema") != SCHEMA:
            raise SchemaError(f"not an {SCHEMA} document")
        for key, typ in (
            ("site_id", str),
            ("files", list),
            ("appliances", dict),
            ("checkpoint_size", int),
            ("period", dict),
        ):
            if not isinstance(m.get(key), typ):
                raise SchemaError(f"field {key!r} missing or not a {typ.__name__}")
        period = check_period((m["period"].get("start"), m["period"].get("end")))
        if m.get("month") is not None and month_period(m["month"]) != period:
            raise SchemaError("period does not match the month")
        check_population(m.get("population"))
    except OsirisError as e:
        c.fail("E_MANIFEST", "manifest.json", str(e))
        return None, data
    return m, data


def _check_files(folder: Path, names: list[str], m: dict[str, Any], c: _Checks) -> None:
    listed: dict[str, dict[str, Any]] = {}
    ok = True
    for f in m["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            c.fail("E_MANIFEST", "manifest.json", "a files entry has no path")
            return
        if f["path"] in listed:
            c.fail("E_MANIFEST", f["path"], "listed twice")
            ok = False
        listed[f["path"]] = f
    seen: set[str] = set()
    for n in names:
        if n in seen:
            c.fail("E_MANIFEST", n, "appears twice in the zip")
            ok = False
        seen.add(n)
        if n not in listed and n not in UNLISTED:
            c.fail("E_MANIFEST", n, "file is not listed in the manifest")
            ok = False
    for path, f in listed.items():
        if path not in seen:
            c.fail("E_MANIFEST", path, "listed in the manifest but missing")
            ok = False
            continue
        digest, size = _sha256_file(folder / path)
        if digest != f.get("sha256") or size != f.get("size"):
            c.fail("E_MANIFEST", path, "sha256 or size does not match the manifest")
            ok = False
    if ok:
        c.findings.append(
            Finding(PASS, "E_MANIFEST", "manifest.json", f"{len(listed)} files match")
        )


def _check_population(
    folder: Path, m: dict[str, Any], c: _Checks, aliases: Mapping[str, str] | None
) -> Summary | None:
    """The manifest's counts, seq ranges and boundaries against what bundles.jsonl holds."""
    try:
        period = (m["period"]["start"], m["period"]["end"])
        s = summarize(folder, period, aliases)
    except OsirisError as e:
        c.fail("E_MANIFEST", "bundles.jsonl", f"cannot summarise: {e}")
        return None
    if s.appliances != m["appliances"]:
        c.fail(
            "E_MANIFEST",
            "bundles.jsonl",
            "bundle counts, seq ranges or boundaries per appliance differ from the manifest",
        )
    controls = {k: dict(sorted(v.items())) for k, v in s.controls.items()}
    if controls != m.get("controls"):
        c.fail("E_MANIFEST", "bundles.jsonl", "per-control counts differ from the manifest")
    derived = {
        "bundles": sum(a["in_period"] for a in s.appliances.values()),
        "exceptions": len(s.exceptions),
        "ruleset_hashes": sorted(s.ruleset_hashes),
        "policy_versions": sorted(s.policy_versions),
    }
    for key, want in derived.items():
        if m.get(key) != want:
            c.fail("E_MANIFEST", "manifest.json", f"{key} does not follow from bundles.jsonl")
    try:
        if _checkpoint_size(folder) != m["checkpoint_size"]:
            c.fail("E_MANIFEST", "checkpoint", "size differs from the manifest")
    except PacketError as e:
        c.fail("E_MANIFEST", "checkpoint", str(e))
    return s


def _check_report(
    folder: Path, names: list[str], m: dict[str, Any], c: _Checks, aliases: Mapping[str, str] | None
) -> None:
    """report.json must be exactly what this packet's bundles, manifest population and
    checkpoint give (E_REPORT): an edited status, a dropped exception or a host taken out of
    the population is caught. The rendered views are checked by E_MANIFEST only."""
    if REPORT_FILE not in names:
        c.fail("E_REPORT", REPORT_FILE, "missing: the packet has no report")
        return
    try:
        want = canonical.dumps(report_of(folder, m, aliases))
    except (OsirisError, KeyError, TypeError, ValueError, OSError) as e:
        c.fail("E_REPORT", REPORT_FILE, f"cannot be re-derived from the packet: {e}")
        return
    if (folder / REPORT_FILE).read_bytes() != want:
        try:
            got = canonical.loads((folder / REPORT_FILE).read_bytes())
            wanted = canonical.loads(want)
            keys = sorted(k for k in wanted if not isinstance(got, dict) or got.get(k) != wanted[k])
        except OsirisError:
            keys = ["(not canonical JSON)"]
        c.fail(
            "E_REPORT",
            REPORT_FILE,
            f"differs from the report the packet's evidence gives (fields: {', '.join(keys)})",
        )
        return
    c.findings.append(
        Finding(PASS, "E_REPORT", REPORT_FILE, "re-derived from the bundles, byte for byte")
    )


def _check_completeness(
    m: dict[str, Any],
    report: Report,
    population: list[str],
    trust: TrustRoots | None,
    c: _Checks,
) -> set[str]:
    """Chain edges and population: what proves no bundle of the period is missing. Returns the
    subjects whose W_CHAIN_START is explained by a verified start boundary."""
    start, end = m["period"]["start"], m["period"]["end"]
    site = m["site_id"]
    explained: set[str] = set()
    ok = True
    for app, ch in sorted(report.chains.items()):
        subject = f"{app}#{ch['first_seq']}"
        if ch["sites"] != [site]:
            c.fail("E_SITE", app, f"bundles of site(s) {ch['sites']}, not {site}")
            ok = False
        if ch["first_seq"] != 1 and ch["first_finished_at"] >= start:
            c.fail(
                "E_START_BOUNDARY",
                subject,
                f"the chain starts inside the period at seq {ch['first_seq']}: its start "
                "boundary (the last bundle before the period) and the bundles between are "
                "missing",
            )
            ok = False
        else:
            explained.add(subject)
        if ch["last_finished_at"] < end and ch["last_check"] != DECOMMISSION_CHECK:
            c.fail(
                "E_END_BOUNDARY",
                f"{app}#{ch['last_seq']}",
                "no bundle after the period closes the chain: the period's last bundles may "
                "have been dropped, or the appliance went silent (only a signed decommission "
                "bundle closes a chain)",
            )
            ok = False
    required = set(population)
    if trust is not None:
        required |= {t.appliance_id for t in trust.for_site(site)}
    for app in sorted(required - set(report.chains)):
        c.fail(
            "E_APPLIANCE_MISSING",
            app,
            f"an appliance of site {site} has no evidence in the packet (not even boundary "
            "bundles)",
        )
        ok = False
    if ok:
        c.findings.append(
            Finding(
                PASS,
                "E_COMPLETE",
                "packet",
                f"{len(report.chains)} appliances, every chain closed at both ends of the period",
            )
        )
    return explained


def _log_verifiers(folder: Path, trust: TrustRoots | None) -> list[Verifier]:
    if trust is not None and trust.logs:
        return [v for v, _s in trust.logs.values()]
    try:
        return [Verifier.from_vkey(canonical.loads((folder / "keys.json").read_bytes())["log"])]
    except (OSError, OsirisError, KeyError, TypeError):
        return []


def _open_cp(note: str, logs: list[Verifier]) -> Checkpoint:
    opened = open_note(note, logs)
    if not any(v.name in opened.verified for v in logs):
        raise NoteError("not signed by a trusted log key")
    return Checkpoint.parse(opened.text)


def _chain_hashes(folder: Path) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for b in _iter_bundles(folder):
        out[(b["appliance_id"], b["seq"])] = (
            "sha256:" + hashlib.sha256(canonical.dumps(b)).hexdigest()
        )
    return out


def _check_consistency(
    folder: Path,
    names: list[str],
    report: Report,
    trust: TrustRoots | None,
    previous: Path | None,
    m: dict[str, Any] | None,
    c: _Checks,
) -> None:
    """consistency.json against this packet's checkpoint, and against ``--previous``."""
    subject = "consistency.json"
    logs = _log_verifiers(folder, trust)
    doc = None
    if "consistency.json" in names:
        try:
            doc = canonical.loads((folder / "consistency.json").read_bytes())
            if not isinstance(doc, dict) or doc.get("schema") != CONSISTENCY_SCHEMA:
                raise SchemaError(f"not an {CONSISTENCY_SCHEMA} document")
            old = _open_cp(doc["from_checkpoint"], logs)
            proof = [base64.b64decode(h, validate=True) for h in doc["proof"]]
            if report.checkpoint_size is None or report.checkpoint_root is None:
                raise ProofError("this packet's checkpoint did not verify")
            if doc.get("to_size") != report.checkpoint_size:
                raise ProofError("the proof is not to this packet's checkpoint")
            tlog.verify_consistency(
                old.size, report.checkpoint_size, old.root, report.checkpoint_root, proof
            )
            c.findings.append(
                Finding(
                    PASS,
                    "E_CONSISTENCY",
                    subject,
                    f"log size {old.size} (previous packet) is a prefix of "
                    f"{report.checkpoint_size}",
                )
            )
        except (OsirisError, KeyError, TypeError, ValueError) as e:
            c.fail("E_CONSISTENCY", subject, f"the log's history is not proved consistent: {e}")
            doc = None
    if previous is None:
        return
    prev_note, prev_m = read_packet_checkpoint(previous)
    try:
        prev_cp = _open_cp(prev_note, logs)
    except OsirisError as e:
        c.fail("E_PREVIOUS", str(previous), f"its checkpoint does not verify: {e}")
        return
    if doc is None:
        c.fail("E_PREVIOUS", subject, "no verified consistency proof from the previous packet")
        return
    from_cp = _open_cp(doc["from_checkpoint"], logs)
    if (from_cp.size, from_cp.root) != (prev_cp.size, prev_cp.root):
        c.fail(
            "E_PREVIOUS",
            subject,
            f"proves consistency from size {from_cp.size}, not from the previous packet's "
            f"checkpoint {prev_cp.size}",
        )
        return
    if m is not None and prev_m is not None and isinstance(prev_m.get("period"), dict):
        if prev_m["period"].get("end") != m["period"]["start"]:
            c.fail("E_PREVIOUS", str(previous), "its period does not end where this one starts")
            return
        if prev_m.get("site_id") != m["site_id"]:
            c.fail("E_PREVIOUS", str(previous), "it is a packet of another site")
            return
    # The two packets must share the chain link at the period edge: this packet's start
    # boundary is the previous packet's last bundle of its period.
    with tempfile.TemporaryDirectory(prefix="osiris-previous-") as tmp:
        unpack(previous, Path(tmp))
        try:
            prev_hashes = _chain_hashes(Path(tmp))
            mine = _chain_hashes(folder)
        except OsirisError as e:
            c.fail("E_PREVIOUS", str(previous), f"cannot read its bundles: {e}")
            return
    for app, a in sorted((m or {}).get("appliances", {}).items()):
        sb = a.get("start_boundary") if isinstance(a, dict) else None
        if (
            sb is not None
            and (app, sb) in prev_hashes
            and prev_hashes[(app, sb)] != mine.get((app, sb))
        ):
            c.fail(
                "E_PREVIOUS", f"{app}#{sb}", "differs from the same bundle in the previous packet"
            )
            return
    c.findings.append(
        Finding(PASS, "E_PREVIOUS", str(previous.name), "continues the previous packet")
    )


def verify_packet(
    zip_path: Path | str,
    *,
    trust: TrustRoots | None = None,
    previous: Path | str | None = None,
    skew_s: int | None = None,
    workers: int | None = None,
    aliases: Mapping[str, str] | None = None,
    tsa_cas: Sequence[bytes] | None = None,
) -> Report:
    """Verify a packet zip offline; raises UnusableInput when it cannot be opened at all.
    ``tsa_cas``: pinned TSA chains for ``checkpoint.tsr`` (``verify_export``'s E_TSA).

    Packet checks (E_MANIFEST integrity, completeness at both chain edges, population, log
    consistency with the previous packet) and the export verifier's per-bundle checks, all
    against ``trust``. A chain starting at a verified start boundary is expected (the period
    begins mid-chain), so its W_CHAIN_START is dropped; any other start still fails.
    ``aliases`` (former check id -> check id, the packaged catalogue's by default) is folded
    the same way by every step.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise UnusableInput(f"{zip_path}: not a file")
    prev = Path(previous) if previous is not None else None
    if prev is not None and not prev.is_file():
        raise UnusableInput(f"{prev}: not a file")
    c = _Checks()
    with tempfile.TemporaryDirectory(prefix="osiris-packet-") as tmp:
        folder = Path(tmp)
        names = unpack(zip_path, folder)
        m, _data = _load_manifest(folder, c)
        if m is not None:
            _check_files(folder, names, m, c)
            _check_population(folder, m, c, aliases)
            _check_report(folder, names, m, c, aliases)
        kw: dict[str, Any] = {"workers": workers, "trust": trust, "aliases": aliases}
        kw["tsa_cas"] = tsa_cas
        if skew_s is not None:
            kw["skew_s"] = skew_s
        report = verify_export(folder, **kw)
        explained: set[str] = set()
        if m is not None:
            try:
                population = _appliance_names(folder)
            except PacketError as e:
                c.fail("E_MANIFEST", "keys.json", str(e))
                population = []
            explained = _check_completeness(m, report, population, trust, c)
        _check_consistency(folder, names, report, trust, prev, m, c)
    kept = [
        f for f in report.findings if not (f.code == "W_CHAIN_START" and f.subject in explained)
    ]
    report.findings = c.findings + kept
    return report


__all__ = [
    "EXCEPTION_OUTCOMES",
    "SCHEMA",
    "PacketError",
    "Summary",
    "build_manifest",
    "build_packet",
    "check_period",
    "consistency_doc",
    "in_period",
    "month_period",
    "read_packet_checkpoint",
    "summarize",
    "unpack",
    "verify_packet",
]
