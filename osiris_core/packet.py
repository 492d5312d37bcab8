"""The monthly evidence packet: one zip an auditor can check offline for one site and month.

Layout (docs/evidence-format.md §Monthly packet)::

    manifest.json      canonical JSON: site, month, period, checkpoint size, per-appliance bundle
                       counts and seq ranges, per-control outcome counts, every other file with
                       its sha256 and size
    manifest.sig       a signed note "osiris-packet-manifest\\n<site>\\n<month>\\n<sha256>\\n" by
                       the server's log key, the key auditors already pin for checkpoints
    keys.json, bundles.jsonl, proofs/…, checkpoint     the evidence export, verbatim
    report.md          human-readable: period, population, per-control table, exceptions
    verify/README      how to re-verify offline

Why a signed manifest on top of the log: the log proves every bundle is in the tree, but not that
the packet holds *all* of the month's bundles. The manifest fixes the population (counts and seq
ranges per appliance) under the same key as the checkpoints, so dropping a bundle from the zip, or
adding one, is a failed check rather than a judgement call.

This module is pure: it reads and writes files; the signature comes from a callback.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, canonical
from .controls import CONTROLS
from .errors import NoteError, OsirisError, SchemaError
from .keys import Verifier
from .note import Checkpoint, open_note
from .verify import FAIL, PASS, Finding, Report, UnusableInput, verify_export

SCHEMA = "osiris.packet/1"
NOTE_HEADER = "osiris-packet-manifest"
EXCEPTION_OUTCOMES = ("failed", "escalated", "deferred", "alert", "rejected", "expired")
MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
EXPORT_FILES = ("keys.json", "bundles.jsonl", "checkpoint")
SIGNED_FILES = ("manifest.json", "manifest.sig")  # not listed inside the manifest itself
MAX_UNZIPPED = 4 << 30  # refuse zip bombs: a year of a large clinic is far below this
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same inputs give the same zip bytes

VERIFY_README = """\
Re-verifying this packet offline
================================

1. Obtain the Osiris log key (a vkey "<origin>+<keyid>+<base64>") from a source you trust,
   e.g. GET /api/v1/log/keys on Central Command, or the key pinned in your last audit, and
   compare it with "log" in keys.json.
2. Run:  osiris evidence verify --packet <this file>.zip
   It checks, without any network access:
   - E_MANIFEST      every file's sha256 and size match manifest.json, no file is missing or
                     extra, and the bundle counts, seq ranges and period match bundles.jsonl;
   - E_MANIFEST_SIG  manifest.sig is a signed note by the log key over
                     "osiris-packet-manifest\\n<site>\\n<month>\\n<sha256 of manifest.json>\\n";
   - then every bundle: parse, canonical bytes, schema, Ed25519 signature, hash chain with no
     seq gaps inside the month, inclusion in the log, checkpoint signature, cosignatures, time.
   Exit 0 = verified, 1 = a check failed, 2 = the file cannot be used.
3. Without Osiris: docs/evidence-format.md describes every byte; sha256sum and any Ed25519
   library are enough to write the same checks.
"""


class PacketError(OsirisError):
    """A packet that cannot be built (bad month, empty month, unreadable export)."""

    code = "E_PACKET"


# ------------------------------------------------------------------ month and signed note


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


def in_period(finished_at: str, period: tuple[str, str]) -> bool:
    return period[0] <= finished_at < period[1]


def manifest_note_text(site_id: str, month: str, manifest_sha256: str) -> str:
    """The note body the server signs; its first line cannot be a checkpoint origin line
    followed by a decimal size and a 32-byte root, so the signature cannot pass as a checkpoint."""
    month_period(month)
    if not re.fullmatch(r"[0-9a-f]{64}", manifest_sha256):
        raise SchemaError("manifest sha256 must be 64 lowercase hex digits")
    if not site_id or "\n" in site_id:
        raise SchemaError("site id must be one non-empty line")
    return f"{NOTE_HEADER}\n{site_id}\n{month}\n{manifest_sha256}\n"


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
    """What the month's bundles say, gathered in one pass (manifest and report share it)."""

    appliances: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, set[str]] = field(default_factory=dict)  # appliance → hosts with evidence
    controls: dict[str, dict[str, int]] = field(default_factory=dict)
    ruleset_hashes: set[str] = field(default_factory=set)
    policy_versions: set[str] = field(default_factory=set)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    outside: int = 0  # bundles whose finished_at is outside the period

    def add(self, b: dict[str, Any], period: tuple[str, str]) -> None:
        app = b["appliance_id"]
        a = self.appliances.get(app)
        if a is None:
            a = self.appliances[app] = {"bundles": 0, "seq_first": b["seq"], "seq_last": b["seq"]}
        a["bundles"] += 1
        a["seq_first"] = min(a["seq_first"], b["seq"])
        a["seq_last"] = max(a["seq_last"], b["seq"])
        self.hosts.setdefault(app, set()).add(b["host_id"])
        for c in b.get("controls") or []:
            counts = self.controls.setdefault(c, {})
            counts[b["outcome"]] = counts.get(b["outcome"], 0) + 1
        if b.get("ruleset_hash"):
            self.ruleset_hashes.add(b["ruleset_hash"])
        if b.get("policy_version"):
            self.policy_versions.add(b["policy_version"])
        if b["outcome"] in EXCEPTION_OUTCOMES:
            self.exceptions.append(
                {
                    "appliance_id": app,
                    "seq": b["seq"],
                    "host_id": b["host_id"],
                    "check": b["check"],
                    "outcome": b["outcome"],
                    "finished_at": b["finished_at"],
                }
            )
        if not in_period(b["finished_at"], period):
            self.outside += 1


def summarize(folder: Path, period: tuple[str, str]) -> Summary:
    s = Summary()
    try:
        for b in _iter_bundles(folder):
            s.add(b, period)
    except (KeyError, TypeError) as e:
        raise PacketError(f"bundles.jsonl: a bundle lacks a field: {e}") from None
    return s


def _checkpoint_size(folder: Path) -> int:
    try:
        text = (folder / "checkpoint").read_text("utf-8")
        body = text[: text.index("\n\n") + 1]
        return Checkpoint.parse(body).size
    except (OSError, ValueError, OsirisError) as e:
        raise PacketError(f"checkpoint: unreadable: {e}") from None


def _appliance_names(folder: Path) -> list[str]:
    """Appliance ids whose keys the export carries: the site's enrolled population."""
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
            if rel in SIGNED_FILES:
                continue
            digest, size = _sha256_file(p)
            out.append({"path": rel, "sha256": digest, "size": size})
    return out


def build_manifest(
    staged: Path, *, site_id: str, month: str, summary: Summary, tool_version: str = __version__
) -> dict[str, Any]:
    """The manifest of a staged packet folder (every file but manifest.json/.sig is listed)."""
    start, end = month_period(month)
    return {
        "schema": SCHEMA,
        "site_id": site_id,
        "month": month,
        "period": {"start": start, "end": end},
        "checkpoint_size": _checkpoint_size(staged),
        "tool_version": tool_version,
        "bundles": sum(a["bundles"] for a in summary.appliances.values()),
        "appliances": {k: summary.appliances[k] for k in sorted(summary.appliances)},
        "controls": {
            c: dict(sorted(summary.controls[c].items())) for c in sorted(summary.controls)
        },
        "exceptions": len(summary.exceptions),
        "ruleset_hashes": sorted(summary.ruleset_hashes),
        "policy_versions": sorted(summary.policy_versions),
        "files": _file_entries(staged),
    }


def _md(s: Any) -> str:
    """One table cell: no pipes or newlines can break the table."""
    return str(s).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def control_status(counts: dict[str, int]) -> str:
    bad = sum(n for o, n in counts.items() if o in EXCEPTION_OUTCOMES)
    return "exceptions" if bad else "evidenced"


def render_report(
    *, site_id: str, month: str, summary: Summary, population: list[str], checkpoint_size: int
) -> str:
    start, end = month_period(month)
    total = sum(a["bundles"] for a in summary.appliances.values())
    out = [
        f"# Osiris evidence packet: {_md(site_id)}, {month}",
        "",
        f"- Period: {start} to {end} (end exclusive), by each bundle's `finished_at`",
        f"- Scope: site `{_md(site_id)}`, {total} evidence bundles",
        f"- Proved against log checkpoint of size {checkpoint_size} (file `checkpoint`)",
        f"- Exceptions: {len(summary.exceptions)}",
        "",
        "## Population reconciliation",
        "",
        "| appliance | bundles | seq range | hosts with evidence |",
        "|---|---|---|---|",
    ]
    for app in sorted(set(population) | set(summary.appliances)):
        a = summary.appliances.get(app)
        if a is None:
            out.append(f"| {_md(app)} | 0 | - | NO EVIDENCE THIS MONTH |")
            continue
        hosts = ", ".join(sorted(summary.hosts.get(app, ())))
        out.append(
            f"| {_md(app)} | {a['bundles']} | {a['seq_first']}..{a['seq_last']} | {_md(hosts)} |"
        )
    outcomes = sorted({o for c in summary.controls.values() for o in c})
    out += [
        "",
        "## Controls (HIPAA Security Rule, 45 CFR 164)",
        "",
        "| citation | title | status | " + " | ".join(outcomes) + " |",
        "|---|---|---|" + "---|" * len(outcomes),
    ]
    for cit in sorted(set(summary.controls) | set(CONTROLS)):
        counts = summary.controls.get(cit, {})
        title = CONTROLS[cit].title if cit in CONTROLS else ""
        status = control_status(counts) if counts else "no evidence"
        cells = " | ".join(str(counts.get(o, 0)) for o in outcomes)
        out.append(f"| {_md(cit)} | {_md(title)} | {status} | {cells} |")
    out += ["", "## Exceptions", ""]
    if summary.exceptions:
        out += ["| time | appliance#seq | host | check | outcome |", "|---|---|---|---|---|"]
        for e in sorted(summary.exceptions, key=lambda e: (e["finished_at"], e["appliance_id"])):
            out.append(
                f"| {e['finished_at']} | {_md(e['appliance_id'])}#{e['seq']} | "
                f"{_md(e['host_id'])} | {_md(e['check'])} | {e['outcome']} |"
            )
    else:
        out.append(
            "None: no bundle this month is failed, escalated, deferred, alert, rejected or expired."
        )
    out += ["", "Verify offline: see `verify/README`.", ""]
    return "\n".join(out)


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


def build_packet(
    export: Path,
    out: Path,
    *,
    site_id: str,
    month: str,
    sign: Callable[[str], str],
    tool_version: str = __version__,
) -> dict[str, Any]:
    """Build the packet zip from an export folder of that month; returns the manifest.

    `export` must hold only the month's bundles (see `in_period`); `sign(sha256_hex)` returns
    the signed note over `manifest_note_text`. The export folder is copied, never changed.
    """
    export, out = Path(export), Path(out)
    period = month_period(month)
    summary = summarize(export, period)
    if summary.outside:
        raise PacketError(f"{summary.outside} bundles of the export fall outside {month}")
    population = _appliance_names(export)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".packet-stage-", dir=out.parent) as tmp:
        staged = Path(tmp)
        for name in EXPORT_FILES:
            (staged / name).write_bytes((export / name).read_bytes())
        (staged / "proofs").mkdir()
        proofs = export / "proofs"
        if proofs.is_dir():
            for p in sorted(proofs.iterdir()):
                if p.is_file():
                    (staged / "proofs" / p.name).write_bytes(p.read_bytes())
        (staged / "verify").mkdir()
        (staged / "verify" / "README").write_text(VERIFY_README, "utf-8")
        cp_size = _checkpoint_size(staged)
        report = render_report(
            site_id=site_id,
            month=month,
            summary=summary,
            population=population,
            checkpoint_size=cp_size,
        )
        (staged / "report.md").write_text(report, "utf-8")
        manifest = build_manifest(
            staged, site_id=site_id, month=month, summary=summary, tool_version=tool_version
        )
        data = canonical.dumps(manifest)
        note = sign(hashlib.sha256(data).hexdigest())
        (staged / "manifest.json").write_bytes(data)
        (staged / "manifest.sig").write_text(note, "utf-8")
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
            ("month", str),
            ("files", list),
            ("appliances", dict),
            ("checkpoint_size", int),
            ("period", dict),
        ):
            if not isinstance(m.get(key), typ):
                raise SchemaError(f"field {key!r} missing or not a {typ.__name__}")
        month_period(m["month"])
    except OsirisError as e:
        c.fail("E_MANIFEST", "manifest.json", str(e))
        return None, data
    return m, data


def _check_signature(
    folder: Path, m: dict[str, Any], data: bytes, c: _Checks, trusted_log: str | None
) -> None:
    subject = "manifest.sig"
    try:
        keys = canonical.loads((folder / "keys.json").read_bytes())
        log = Verifier.from_vkey(keys["log"])
    except (OSError, OsirisError, KeyError, TypeError) as e:
        c.fail("E_MANIFEST_SIG", subject, f"no usable log key in keys.json: {e}")
        return
    if trusted_log is not None and log.vkey != trusted_log:
        c.fail("E_MANIFEST_SIG", subject, "keys.json's log key is not the trusted log key")
        return
    try:
        note = (folder / "manifest.sig").read_text("utf-8")
        opened = open_note(note, [log])
    except FileNotFoundError:
        c.fail("E_MANIFEST_SIG", subject, "missing")
        return
    except (OSError, UnicodeDecodeError, NoteError) as e:
        c.fail("E_MANIFEST_SIG", subject, f"not signed by the log key {log.name}: {e}")
        return
    try:
        want = manifest_note_text(m["site_id"], m["month"], hashlib.sha256(data).hexdigest())
    except OsirisError as e:
        c.fail("E_MANIFEST_SIG", subject, str(e))
        return
    if opened.text != want:
        c.fail("E_MANIFEST_SIG", subject, "signed text does not name this manifest, site, month")
        return
    c.findings.append(Finding(PASS, "E_MANIFEST_SIG", subject, f"signed by {log.name}"))


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
        if n not in listed and n not in SIGNED_FILES:
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


def _check_population(folder: Path, m: dict[str, Any], c: _Checks) -> None:
    """The manifest's counts, seq ranges and period against what bundles.jsonl holds."""
    try:
        period = month_period(m["month"])
        s = summarize(folder, period)
    except OsirisError as e:
        c.fail("E_MANIFEST", "bundles.jsonl", f"cannot summarise: {e}")
        return
    if m["period"] != {"start": period[0], "end": period[1]}:
        c.fail("E_MANIFEST", "manifest.json", "period does not match the month")
    if s.outside:
        c.fail("E_MANIFEST", "bundles.jsonl", f"{s.outside} bundles finished outside {m['month']}")
    if s.appliances != m["appliances"]:
        c.fail(
            "E_MANIFEST",
            "bundles.jsonl",
            "bundle counts or seq ranges per appliance differ from the manifest",
        )
    controls = {k: dict(sorted(v.items())) for k, v in s.controls.items()}
    if controls != m.get("controls"):
        c.fail("E_MANIFEST", "bundles.jsonl", "per-control counts differ from the manifest")
    try:
        if _checkpoint_size(folder) != m["checkpoint_size"]:
            c.fail("E_MANIFEST", "checkpoint", "size differs from the manifest")
    except PacketError as e:
        c.fail("E_MANIFEST", "checkpoint", str(e))


def verify_packet(
    zip_path: Path | str,
    *,
    skew_s: int | None = None,
    workers: int | None = None,
    trusted_log_vkey: str | None = None,
) -> Report:
    """Verify a packet zip offline; raises UnusableInput when it cannot be opened at all.

    Packet checks (E_MANIFEST, E_MANIFEST_SIG) come first, then the export verifier runs on the
    contents. A chain that starts at the manifest's declared first seq is expected (the month
    begins mid-chain), so that W_CHAIN_START is dropped; any other start still warns.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise UnusableInput(f"{zip_path}: not a file")
    c = _Checks()
    with tempfile.TemporaryDirectory(prefix="osiris-packet-") as tmp:
        folder = Path(tmp)
        names = unpack(zip_path, folder)
        m, data = _load_manifest(folder, c)
        if m is not None:
            _check_signature(folder, m, data, c, trusted_log_vkey)
            _check_files(folder, names, m, c)
            _check_population(folder, m, c)
        kw: dict[str, Any] = {"workers": workers}
        if skew_s is not None:
            kw["skew_s"] = skew_s
        report = verify_export(folder, **kw)
    starts = set()
    if m is not None:
        for app, a in m["appliances"].items():
            if isinstance(a, dict):
                starts.add(f"{app}#{a.get('seq_first')}")
    kept = [f for f in report.findings if not (f.code == "W_CHAIN_START" and f.subject in starts)]
    report.findings = c.findings + kept
    return report


__all__ = [
    "EXCEPTION_OUTCOMES",
    "NOTE_HEADER",
    "SCHEMA",
    "PacketError",
    "Summary",
    "build_manifest",
    "build_packet",
    "control_status",
    "in_period",
    "manifest_note_text",
    "month_period",
    "render_report",
    "summarize",
    "unpack",
    "verify_packet",
]
