"""The offline evidence verifier: what an auditor runs, trusting keys rather than the MSP.

Fail-closed and deterministic: every bundle goes through the same ordered checks, each with a
stable code (docs/evidence-format.md §Verification), and nothing is believed that was not checked:
unknown signature lines are ignored, a known key with a bad signature fails, and `extra` lines or
checkpoint extensions are never trusted. No network: the export folder and its keys are enough.

Speed matters (DESIGN §5: ≥ 50 % of raw Ed25519 verify/s): a line first goes through the fast
path (verify_fast.py: C-decoder parse, unsorted re-encoding, compiled spec predicates, one
signature check, the inclusion path hashed only up to a tree node already proven under the same
checkpoint); only a line it does not pass runs the ordered checks below, which give the verdict
and message, so the report is the same either way (``fast_path=False`` is the reference). Each
distinct checkpoint note is verified once and cached.

Why this file is long: it is the one ordered pipeline of checks an auditor reads against
docs/evidence-format.md §8, from parse to chain, with the per-bundle checker, the in-order
aggregator and the worker pool that must produce identical output for any worker count; split
up, the order of the checks and which step owns which code would be spread over several files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import canonical
from .catalog.loader import check_aliases
from .errors import OsirisError
from .evidence import GENESIS_HASH, validate_envelope
from .keys import KEY_TYPE_COSIGNATURE, Verifier
from .note import Checkpoint, TlogProof, open_note
from .trust import (
    AttestationError,
    KeyEpoch,
    TrustRoots,
    appliance_of,
    fingerprint,
    key_epochs,
    original_key,
)
from .verify_fast import ChainFacts, FastPath, Tally

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
# Checks in the order they run on each bundle; the summary prints one PASS line per check.
CHECKS = (
    ("E_PARSE", "strict JSON parse"),
    ("E_NONCANONICAL", "canonical bytes"),
    ("E_SCHEMA", "schema osiris.evidence/1"),
    ("E_SIG", "Ed25519 signature by the appliance's key, valid for the bundle's seq"),
    ("E_CHAIN", "hash chain links (prev_hash, order)"),
    ("E_GAP", "no missing seq numbers"),
    ("E_INCLUSION", "inclusion in the log"),
    ("E_CHECKPOINT_SIG", "checkpoint signed by the log key"),
    ("E_COSIG", "cosignatures by known appliance keys"),
    ("E_TIME_SKEW", "finished_at not after the cosigned existed-by time"),
)
# Codes that only ever fail (no PASS line): what the trust roots and chain edges refute.
FAIL_ONLY = (
    ("E_LOG_UNTRUSTED", "the checkpoint is not signed by a trusted log key"),
    ("E_KEY_UNTRUSTED", "a bundle is signed by a key (or appliance) the trust roots do not know"),
    ("E_KEY_NOT_VALID_AT", "a bundle is signed by a key of its appliance not valid at its seq"),
    ("E_ATTESTED_HEAD", "the chain differs from the chain head the appliance attested"),
    ("E_AFTER_DECOMMISSION", "a bundle follows the appliance's decommission bundle"),
    ("E_LOG_FORK", "an appliance witnessed a different tree of the same size"),
)
# Warnings --strict (and --packet) do not fail on: a token nobody asked to trust (no --tsa-ca)
# says no more than no token at all. W_TSA_MISSING with --tsa-ca does fail: the auditor pinned
# a TSA, so a dropped token is the MSP hiding the time (timestamp.py, docs/auditor.md).
NOT_STRICT = ("W_TSA_UNPINNED",)
DECOMMISSION_CHECK = "appliance_decommission"
UNTRUSTED = "export only — untrusted"
DEFAULT_SKEW_S = 300
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
PARALLEL_MIN = 4000  # below this, starting worker processes costs more than it saves
CHUNK = 1000

# A document that came out of canonical.loads is already inside the canonical subset, so it can
# be re-encoded without canonical.dumps' type walk (the walk would double the per-bundle cost).
_ENCODE = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
).encode
_SIG_MARK = b',"sig":{'
# What a line the fast path passed counts for (verify_fast.py): every per-bundle check, and the
# cosignature checks when its checkpoint has cosignatures; E_CHAIN/E_GAP the chain checks count.
_FAST_PASSED = ("E_PARSE", "E_NONCANONICAL", "E_SCHEMA", "E_SIG", "E_CHECKPOINT_SIG", "E_INCLUSION")
_FAST_COSIG = ("E_COSIG", "E_TIME_SKEW")


class UnusableInput(OsirisError):
    """The export folder cannot be read at all (exit 2): nothing could be checked."""

    code = "E_INPUT"


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.code} {self.subject} {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "level": self.level,
            "code": self.code,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass
class Report:
    bundles: int = 0
    findings: list[Finding] = field(default_factory=list)
    passed: dict[str, int] = field(default_factory=dict)
    existed_by: str | None = None
    checkpoint_size: int | None = None
    checkpoint_root: bytes | None = None
    # What the verifier trusted: role, key name, fingerprint, where the key came from.
    keys_used: list[dict[str, str]] = field(default_factory=list)
    # Per appliance: first/last seq, their finished_at, last check, bundle count, site.
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == FAIL]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARN]

    def ok(self, strict: bool = False) -> bool:
        strict_warnings = [w for w in self.warnings if w.code not in NOT_STRICT]
        return not self.failures and not (strict and strict_warnings)

    def lines(self) -> list[str]:
        out = [
            f"TRUST {k['role']} {k['name']} {k['fingerprint']} from {k['source']}"
            for k in self.keys_used
        ]
        out += [f.line() for f in self.findings]
        failed_codes = {f.code for f in self.failures}
        for code, what in CHECKS:
            n = self.passed.get(code, 0)
            if n and code not in failed_codes:
                out.append(f"PASS {code} bundles {n} checked: {what}")
        return out

    def summary(self, strict: bool = False) -> str:
        verdict = "PASS" if self.ok(strict) else "FAIL"
        s = (
            f"summary: {self.bundles} bundles, {len(self.failures)} failures, "
            f"{len(self.warnings)} warnings: {verdict}"
        )
        if self.existed_by:
            s += f" (existed by {self.existed_by})"
        return s

    def as_dict(self, strict: bool = False) -> dict[str, Any]:
        return {
            "ok": self.ok(strict),
            "bundles": self.bundles,
            "failures": len(self.failures),
            "warnings": len(self.warnings),
            "checkpoint_size": self.checkpoint_size,
            "existed_by": self.existed_by,
            "findings": [f.as_dict() for f in self.findings],
            "passed": dict(sorted(self.passed.items())),
            "keys_used": list(self.keys_used),
        }


@dataclass
class _Keys:
    """The keys a verification runs with, each with its source (trust root or export)."""

    logs: list[Verifier]
    log_source: dict[str, str]  # vkey → source
    epochs: dict[str, list[KeyEpoch]]  # appliance id → its signing keys and their seq ranges
    sign_source: dict[str, str]  # vkey → source
    cosigners: list[Verifier]
    cosign_source: dict[str, str]  # key name → source
    trusted_appliances: bool  # the trust roots name appliances: no other appliance is believed
    heads: dict[str, tuple[int, str]]  # attested chain heads
    witnessed: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # attested cps
    unpinned: list[str] = field(default_factory=list)  # what only the export vouched for


def _read_keys_json(folder: Path) -> dict[str, Any]:
    path = folder / "keys.json"
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise UnusableInput(f"{path}: missing (not an evidence export?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnusableInput(f"{path}: unreadable: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("log"), str):
        raise UnusableInput(f"{path}: must be an object with a 'log' vkey")
    apps = raw.get("appliances", [])
    if not isinstance(apps, list) or not all(isinstance(v, str) for v in apps):
        raise UnusableInput(f"{path}: 'appliances' must be a list of vkeys")
    rots = raw.get("rotations", {})
    if not isinstance(rots, dict) or not all(isinstance(v, list) for v in rots.values()):
        raise UnusableInput(f"{path}: 'rotations' must map appliance ids to statement lists")
    return raw


def _export_epochs(
    path: Path, signing: list[Verifier], rotations: dict[str, list[Any]]
) -> dict[str, list[KeyEpoch]]:
    """Key epochs as the export claims them (untrusted): rotation statements are followed from
    the enrolment key; a key with no history is valid for every seq."""
    by_app: dict[str, list[Verifier]] = {}
    for v in signing:
        app = appliance_of(v.name)
        if app is not None:
            by_app.setdefault(app, []).append(v)
    out: dict[str, list[KeyEpoch]] = {}
    for app, vs in by_app.items():
        rots = rotations.get(app) or []
        if rots:
            current = next(
                (v for v in vs if v.vkey == (rots[-1].get("rotation") or {}).get("new_vkey")),
                vs[0],
            )
            try:
                out[app] = key_epochs(original_key(current.vkey, rots), rots, f"{path}: {app}")
                continue
            except AttestationError as e:
                raise UnusableInput(str(e)) from None
        out[app] = [KeyEpoch(v, 1, None) for v in vs]
    return out


def _load_keys(folder: Path, trust: TrustRoots | None) -> _Keys:
    path = folder / "keys.json"
    raw = _read_keys_json(folder)
    try:
        export_log = Verifier.from_vkey(raw["log"])
        verifiers = [Verifier.from_vkey(v) for v in raw.get("appliances", [])]
    except OsirisError as e:
        raise UnusableInput(f"{path}: {e}") from None
    trust = trust or TrustRoots()
    unpinned: list[str] = []
    if trust.logs:
        logs = [v for v, _src in trust.logs.values()]
        log_source = {k: src for k, (_v, src) in trust.logs.items()}
    else:
        logs = [export_log]
        log_source = {export_log.vkey: UNTRUSTED}
        unpinned.append(f"log key {export_log.name}")
    heads: dict[str, tuple[int, str]] = {}
    witnessed: list[tuple[str, str, int, bytes]] = []
    if trust.appliances:
        epochs = {a: list(t.epochs) for a, t in trust.appliances.items() if t.epochs}
        sign_source = {
            e.verifier.vkey: t.source for t in trust.appliances.values() for e in t.epochs
        }
        cosigners = [c for t in trust.appliances.values() for c in t.cosign]
        cosign_source = {c.name: t.source for t in trust.appliances.values() for c in t.cosign}
        heads = {a: (t.head_seq, t.head_hash) for a, t in trust.appliances.items() if t.head_seq}
        witnessed = [(t.source, *t.checkpoint) for t in trust.appliances.values() if t.checkpoint]
    else:
        signing = [v for v in verifiers if v.key_type != KEY_TYPE_COSIGNATURE]
        cosigners = [v for v in verifiers if v.key_type == KEY_TYPE_COSIGNATURE]
        epochs = _export_epochs(path, signing, raw.get("rotations", {}))
        sign_source = {v.vkey: UNTRUSTED for v in signing}
        for es in epochs.values():
            for e in es:
                sign_source.setdefault(e.verifier.vkey, UNTRUSTED)
        cosign_source = {c.name: UNTRUSTED for c in cosigners}
        if signing:
            unpinned.append("appliance keys")
    return _Keys(
        logs=logs,
        log_source=log_source,
        epochs=epochs,
        sign_source=sign_source,
        cosigners=cosigners,
        cosign_source=cosign_source,
        trusted_appliances=bool(trust.appliances),
        heads=heads,
        unpinned=unpinned,
        witnessed=witnessed,
    )


@dataclass
class _OpenedCheckpoint:
    checkpoint: Checkpoint | None
    error: str | None
    cosig_times: dict[str, int]
    log_vkey: str | None = None


@dataclass
class _LineResult:
    """What the per-bundle checks found; chain checks need order, so the parent does them."""

    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    # appliance, seq, prev_hash, hash, finished_at, check, site
    chain: ChainFacts | None = None
    cosig_earliest: int | None = None
    no_cosig: bool = False
    key_used: str | None = None
    log_used: str | None = None
    cosigners_used: tuple[str, ...] = ()


class _Checker:
    """The order-independent checks of one bundle line (parse → … → time); one per process."""

    def __init__(self, keys: _Keys, proofs: Path, top: Checkpoint | None, skew_s: int) -> None:
        self.keys = keys
        self.proofs = proofs
        self.top = top
        self.skew_s = skew_s
        self._cp_cache: dict[str, _OpenedCheckpoint] = {}
        self.fast: FastPath | None = None  # set once the top checkpoint is known

    def open_checkpoint(self, note: str) -> _OpenedCheckpoint:
        cached = self._cp_cache.get(note)
        if cached is not None:
            return cached
        try:
            opened = open_note(note, [*self.keys.logs, *self.keys.cosigners])
            used = next((v for v in self.keys.logs if v.name in opened.verified), None)
            if used is None:
                names = ", ".join(sorted({v.name for v in self.keys.logs}))
                raise OsirisError(f"not signed by a trusted log key ({names})")
            cp = Checkpoint.parse(opened.text)
            if cp.origin != used.name:
                raise OsirisError(f"origin {cp.origin!r} is not the log key's name {used.name!r}")
            result = _OpenedCheckpoint(cp, None, opened.timestamps, used.vkey)
        except OsirisError as e:
            result = _OpenedCheckpoint(None, str(e), {})
        self._cp_cache[note] = result
        return result

    def check(self, lineno: int, line: bytes) -> _LineResult:
        r = _LineResult()
        subject = f"bundles.jsonl:{lineno}"
        try:
            env = canonical.loads(line)
        except OsirisError as e:
            r.findings.append(Finding(FAIL, "E_PARSE", subject, str(e)))
            return r
        r.passed.append("E_PARSE")
        try:
            same = _ENCODE(env).encode("utf-8") == line
        except (TypeError, ValueError, UnicodeEncodeError) as e:
            r.findings.append(Finding(FAIL, "E_NONCANONICAL", subject, f"cannot re-encode: {e}"))
            return r
        if not same:
            r.findings.append(
                Finding(FAIL, "E_NONCANONICAL", subject, "bytes are not in canonical form")
            )
            return r
        r.passed.append("E_NONCANONICAL")
        try:
            validate_envelope(env)
        except OsirisError as e:
            r.findings.append(Finding(FAIL, "E_SCHEMA", subject, str(e)))
            return r
        r.passed.append("E_SCHEMA")
        bundle = env["bundle"]
        # The line is canonical {"bundle":{…},"sig":{…}}, so the bundle's canonical bytes are the
        # slice between the two keys: no second encoding needed.
        bundle_bytes = line[len(b'{"bundle":') : line.rindex(_SIG_MARK)]
        bhash = "sha256:" + hashlib.sha256(bundle_bytes).hexdigest()
        subject = f"{bundle['appliance_id']}#{bundle['seq']}"
        self._check_sig(r, env, bundle, bundle_bytes, subject)
        r.chain = (
            bundle["appliance_id"],
            bundle["seq"],
            bundle["prev_hash"],
            bhash,
            bundle["finished_at"],
            bundle["check"],
            bundle["site_id"],
        )
        self._check_inclusion(r, line, bundle, bhash, subject)
        return r

    def _check_sig(
        self, r: _LineResult, env: dict[str, Any], bundle: dict[str, Any], data: bytes, subj: str
    ) -> None:
        sig = env["sig"]
        app = bundle["appliance_id"]
        seq = bundle["seq"]
        epochs = self.keys.epochs.get(app)
        if not epochs:
            if self.keys.trusted_appliances:
                r.findings.append(
                    Finding(
                        FAIL,
                        "E_KEY_UNTRUSTED",
                        subj,
                        f"appliance {app} is not named by any trust root",
                    )
                )
            else:
                r.findings.append(
                    Finding(FAIL, "E_SIG", subj, f"signed by unknown key {sig['key_id']}")
                )
            return
        name = f"osiris/appliance/{app}"
        candidates = [
            e for e in epochs if e.verifier.key_id_hex == sig["key_id"] and e.verifier.name == name
        ]
        if not candidates:
            code = "E_KEY_UNTRUSTED" if self.keys.trusted_appliances else "E_SIG"
            r.findings.append(
                Finding(FAIL, code, subj, f"signed by unknown key {sig['key_id']} (not {name})")
            )
            return
        raw = base64.b64decode(sig["value"])
        good = [e for e in candidates if e.verifier.verify(data, raw)]
        if not good:
            r.findings.append(Finding(FAIL, "E_SIG", subj, "signature does not verify"))
            return
        valid = [
            e for e in good if e.first_seq <= seq and (e.last_seq is None or seq <= e.last_seq)
        ]
        if not valid:
            e = good[0]
            span = f"{e.first_seq}..{'' if e.last_seq is None else e.last_seq}"
            r.findings.append(
                Finding(
                    FAIL,
                    "E_KEY_NOT_VALID_AT",
                    subj,
                    f"signed by key {sig['key_id']}, which signs seq {span} only (rotated)",
                )
            )
            return
        r.key_used = valid[0].verifier.vkey
        r.passed.append("E_SIG")

    def _check_inclusion(
        self, r: _LineResult, line: bytes, bundle: dict[str, Any], bhash: str, subject: str
    ) -> None:
        path = self.proofs / f"{bhash.removeprefix('sha256:')}.tlog-proof"
        fail = r.findings.append
        try:
            proof = _parse_proof(path.read_bytes())
        except FileNotFoundError:
            fail(Finding(FAIL, "E_INCLUSION", subject, f"no proof file {path.name}"))
            return
        except (OSError, OsirisError) as e:
            fail(Finding(FAIL, "E_INCLUSION", subject, f"unreadable proof: {e}"))
            return
        opened = self.open_checkpoint(proof.checkpoint)
        if opened.checkpoint is None:
            fail(Finding(FAIL, "E_CHECKPOINT_SIG", subject, opened.error or "invalid checkpoint"))
            return
        r.passed.append("E_CHECKPOINT_SIG")
        r.log_used = opened.log_vkey
        cp = opened.checkpoint
        top = self.top
        if top is not None and (
            cp.origin != top.origin
            or cp.size > top.size
            or (cp.size == top.size and cp.root != top.root)
        ):
            fail(
                Finding(
                    FAIL,
                    "E_INCLUSION",
                    subject,
                    "proof's checkpoint is not part of the exported log",
                )
            )
            return
        try:
            if proof.index >= cp.size:
                raise OsirisError(f"index {proof.index} is not below tree size {cp.size}")
            root = _root_from_path(
                hashlib.sha256(b"\x00" + line).digest(), proof.index, cp.size, proof.hashes
            )
            if root != cp.root:
                raise OsirisError(f"inclusion path for index {proof.index} does not reach the root")
        except OsirisError as e:
            fail(Finding(FAIL, "E_INCLUSION", subject, str(e)))
            return
        r.passed.append("E_INCLUSION")
        if not opened.cosig_times:
            r.no_cosig = True
            return
        r.passed.append("E_COSIG")
        r.cosigners_used = tuple(sorted(opened.cosig_times))
        earliest = min(opened.cosig_times.values())
        finished = int(canonical.parse_time(bundle["finished_at"]).timestamp())
        if finished > earliest + self.skew_s:
            fail(
                Finding(
                    FAIL,
                    "E_TIME_SKEW",
                    subject,
                    f"finished_at is after the earliest cosignature time {earliest} "
                    f"(+{self.skew_s}s)",
                )
            )
            return
        r.passed.append("E_TIME_SKEW")
        r.cosig_earliest = earliest


class _Aggregator:
    """Folds line results, in file order, into the report; owns the chain checks."""

    def __init__(self, keys: _Keys, aliases: Mapping[str, str]) -> None:
        self.keys = keys
        self.aliases = aliases  # former check id -> check id (the catalogue's aliases)
        self.report = Report()
        self._chains: dict[str, tuple[int, str]] = {}
        self._no_cosig = 0
        self._existed_by: int | None = None
        self._keys_used: set[str] = set()
        self._logs_used: set[str] = set()
        self._cosigners_used: set[str] = set()

    def add(self, r: _LineResult) -> None:
        rep = self.report
        rep.findings.extend(r.findings)
        for code in r.passed:
            rep.passed[code] = rep.passed.get(code, 0) + 1
        if r.no_cosig:
            self._no_cosig += 1
        if r.cosig_earliest is not None and (
            self._existed_by is None or r.cosig_earliest > self._existed_by
        ):
            self._existed_by = r.cosig_earliest
        if r.key_used is not None:
            self._keys_used.add(r.key_used)
        if r.log_used is not None:
            self._logs_used.add(r.log_used)
        self._cosigners_used.update(r.cosigners_used)
        if r.chain is not None:
            self._check_chain(*r.chain)

    def merge(self, t: Tally) -> None:
        """Fold in what the fast path's passing lines add (their chain facts came in order)."""
        passed = self.report.passed
        if t.full + t.no_cosig:
            for code in _FAST_PASSED:
                passed[code] = passed.get(code, 0) + t.full + t.no_cosig
        if t.full:
            for code in _FAST_COSIG:
                passed[code] = passed.get(code, 0) + t.full
        self._no_cosig += t.no_cosig
        if t.existed_by is not None and (
            self._existed_by is None or t.existed_by > self._existed_by
        ):
            self._existed_by = t.existed_by
        self._keys_used |= t.keys
        self._logs_used |= t.logs
        self._cosigners_used |= t.cosigners

    def _ok(self, code: str) -> None:
        self.report.passed[code] = self.report.passed.get(code, 0) + 1

    def _fail(self, code: str, subject: str, message: str) -> None:
        self.report.findings.append(Finding(FAIL, code, subject, message))

    def _check_chain(
        self,
        app: str,
        seq: int,
        prev_hash: str,
        bhash: str,
        finished_at: str,
        check: str,
        site: str,
    ) -> None:
        subject = f"{app}#{seq}"
        if isinstance(check, str):
            check = self.aliases.get(check, check)  # a former id counts as its check's id
        info = self.report.chains.get(app)
        if info is not None and info["last_check"] == DECOMMISSION_CHECK:
            self._fail(
                "E_AFTER_DECOMMISSION",
                subject,
                f"follows the decommission bundle seq {info['last_seq']}",
            )
        head = self.keys.heads.get(app)
        if head is not None and head[0] == seq and head[1] != bhash:
            self._fail(
                "E_ATTESTED_HEAD",
                subject,
                f"the appliance attested a different bundle at seq {seq} ({head[1][:19]}…)",
            )
        if info is None:
            self.report.chains[app] = {
                "site_id": site,
                "first_seq": seq,
                "first_finished_at": finished_at,
                "last_seq": seq,
                "last_finished_at": finished_at,
                "last_check": check,
                "bundles": 1,
                "sites": {site},
            }
        else:
            info.update(last_seq=seq, last_finished_at=finished_at, last_check=check)
            info["bundles"] += 1
            info["sites"].add(site)
        prev = self._chains.get(app)
        if prev is None:
            if seq != 1:
                self.report.findings.append(
                    Finding(
                        WARN,
                        "W_CHAIN_START",
                        subject,
                        f"chain starts at seq {seq}; earlier links are not in this export",
                    )
                )
            elif prev_hash != GENESIS_HASH:
                self._fail("E_CHAIN", subject, "seq 1 does not link to the genesis hash")
            else:
                self._ok("E_CHAIN")
            self._ok("E_GAP")
        else:
            last_seq, last_hash = prev
            if seq == last_seq + 1:
                self._ok("E_GAP")
                if prev_hash != last_hash:
                    self._fail(
                        "E_CHAIN", subject, f"prev_hash does not match the hash of seq {last_seq}"
                    )
                else:
                    self._ok("E_CHAIN")
            elif seq > last_seq + 1:
                missing = (
                    f"seq {last_seq + 1}"
                    if seq == last_seq + 2
                    else f"seq {last_seq + 1}..{seq - 1}"
                )
                self._fail("E_GAP", subject, f"{missing} missing from the chain")
            else:
                self._fail("E_CHAIN", subject, f"out of order or repeated: follows seq {last_seq}")
        self._chains[app] = (seq, bhash)

    def _trust_lines(self) -> list[dict[str, str]]:
        k = self.keys
        out: list[dict[str, str]] = []
        for vkey in sorted(self._logs_used):
            v = Verifier.from_vkey(vkey)
            out.append(
                {
                    "role": "log",
                    "name": v.name,
                    "fingerprint": fingerprint(vkey),
                    "source": k.log_source.get(vkey, UNTRUSTED),
                }
            )
        for vkey in sorted(self._keys_used):
            v = Verifier.from_vkey(vkey)
            out.append(
                {
                    "role": "appliance",
                    "name": v.name,
                    "fingerprint": fingerprint(vkey),
                    "source": k.sign_source.get(vkey, UNTRUSTED),
                }
            )
        for c in k.cosigners:
            if c.name in self._cosigners_used:
                out.append(
                    {
                        "role": "cosigner",
                        "name": c.name,
                        "fingerprint": fingerprint(c.vkey),
                        "source": k.cosign_source.get(c.name, UNTRUSTED),
                    }
                )
        return out

    def finish(self, n: int) -> Report:
        self.report.bundles = n
        if self._no_cosig:
            self.report.findings.append(
                Finding(
                    WARN,
                    "W_NO_COSIG",
                    "bundles",
                    f"{self._no_cosig} bundles have no appliance cosignature on their checkpoint",
                )
            )
        for what in self.keys.unpinned:
            self.report.findings.append(
                Finding(
                    WARN,
                    "W_UNPINNED",
                    "keys.json",
                    f"{what}: from the export only (untrusted); pin with --trust "
                    "(the clinic's attestation), --log-key or `osiris trust add`",
                )
            )
        if self._existed_by is not None:
            self.report.existed_by = canonical.format_time(
                datetime.fromtimestamp(self._existed_by, UTC)
            )
        self.report.keys_used = self._trust_lines()
        for info in self.report.chains.values():
            info["sites"] = sorted(info["sites"])
        return self.report


def _parse_proof(data: bytes) -> TlogProof:
    """A strict, allocation-light tlog-proof parser for the verifier's hot loop.

    Same grammar as note.TlogProof.parse; the embedded checkpoint is verified separately (and
    cached), so it is only split off here.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OsirisError("proof is not UTF-8") from None
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise OsirisError("proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise OsirisError(f"proof does not start with {PROOF_HEADER}")
    i = 1
    if i < len(lines) and lines[i].startswith("extra "):
        i += 1  # unauthenticated, never used
    if i >= len(lines) or not lines[i].startswith("index "):
        raise OsirisError("proof has no index line")
    digits = lines[i][6:]
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and digits != "0"):
        raise OsirisError("proof index is not a decimal number")
    hashes = []
    for h in lines[i + 1 :]:
        try:
            raw = binascii.a2b_base64(h, strict_mode=True)
        except binascii.Error:
            raise OsirisError("proof hash is not base64") from None
        if len(raw) != 32:
            raise OsirisError("proof hash is not 32 bytes")
        hashes.append(raw)
    if len(hashes) > 64:
        raise OsirisError("proof has more than 64 hashes")
    return TlogProof(index=int(digits), hashes=hashes, checkpoint=checkpoint)


def _root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 (same algorithm as tlog.root_from_inclusion, inputs pre-checked)."""
    fn, sn, r = index, size - 1, leaf
    sha = hashlib.sha256
    for p in path:
        if sn == 0:
            raise OsirisError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise OsirisError("inclusion proof too short")
    return r


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UnusableInput(f"{path}: unreadable: {e}") from None
    with f:
        for i, raw in enumerate(f, start=1):
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line:
                yield i, line


def count_bundles(folder: Path) -> int:
    try:
        with open(Path(folder) / "bundles.jsonl", "rb") as f:
            return sum(1 for raw in f if raw.strip())
    except OSError:
        return 0


_WORKER: _Checker | None = None


def _worker_init(checker: _Checker) -> None:
    global _WORKER
    _WORKER = checker


def _check_lines(
    checker: _Checker, chunk: list[tuple[int, bytes]]
) -> list[ChainFacts | _LineResult]:
    """Each line through the fast path; what it does not pass, through the ordered checks."""
    fast = checker.fast
    if fast is None:
        return [checker.check(i, line) for i, line in chunk]
    out: list[ChainFacts | _LineResult] = []
    for i, line in chunk:
        facts = fast.check(line)
        out.append(checker.check(i, line) if facts is None else facts)
    return out


def _worker_chunk(chunk: list[tuple[int, bytes]]) -> tuple[list[ChainFacts | _LineResult], Tally]:
    assert _WORKER is not None
    results = _check_lines(_WORKER, chunk)
    return results, (Tally() if _WORKER.fast is None else _WORKER.fast.take())


def _fold(agg: _Aggregator, results: list[ChainFacts | _LineResult]) -> None:
    for r in results:
        if type(r) is tuple:
            agg._check_chain(*r)
        else:
            agg.add(r)  # type: ignore[arg-type]


def _chunks(lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _top_checkpoint(folder: Path, checker: _Checker, agg: _Aggregator) -> Checkpoint | None:
    path = folder / "checkpoint"
    try:
        note = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UnusableInput(f"{path}: unreadable: {e}") from None
    opened = checker.open_checkpoint(note)
    if opened.checkpoint is None:
        trusted = any(src != UNTRUSTED for src in checker.keys.log_source.values())
        code = "E_LOG_UNTRUSTED" if trusted else "E_CHECKPOINT_SIG"
        agg.report.findings.append(Finding(FAIL, code, "checkpoint", opened.error or "invalid"))
        return None
    cp = opened.checkpoint
    agg.report.checkpoint_size = cp.size
    agg.report.checkpoint_root = cp.root
    for source, origin, size, root in checker.keys.witnessed:
        # an appliance cosigned a tree of this very size with another root: two histories
        if origin == cp.origin and size == cp.size and root != cp.root:
            agg.report.findings.append(
                Finding(
                    FAIL,
                    "E_LOG_FORK",
                    "checkpoint",
                    f"the appliance of {source} witnessed a different tree of size {size}: "
                    "the log was forked",
                )
            )
    if opened.log_vkey is not None:
        agg._logs_used.add(opened.log_vkey)
    return opened.checkpoint


def verify_export(
    folder: Path | str,
    *,
    trust: TrustRoots | None = None,
    skew_s: int = DEFAULT_SKEW_S,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    aliases: Mapping[str, str] | None = None,
    fast_path: bool = True,
    tsa_cas: Sequence[bytes] | None = None,
) -> Report:
    """Verify an export folder; raises UnusableInput when it cannot be read at all.

    ``tsa_cas``: the PEM chains of the TSAs the auditor pins (``--tsa-ca``); the export's
    ``checkpoint.tsr`` must then be a token by one of them over its ``checkpoint`` (E_TSA),
    and a missing one is W_TSA_MISSING. Without pins a token is reported (W_TSA_UNPINNED).

    ``trust``: keys pinned from outside the export (attestations, ``--log-key``, the trust
    store). Whatever it does not name comes from the export's keys.json and is reported
    ``W_UNPINNED``; whatever it names replaces the export's claim entirely.

    Large exports are checked by a pool of worker processes (one per core by default): the
    per-bundle checks are independent, and only the chain checks need file order, which the
    parent applies as results come back in order. Output is identical for any worker count.

    ``aliases`` (former check id -> check id; the packaged catalogue's by default) folds a bundle
    signed under an old check id into its check: the signature covers the id as signed, and the
    chain facts (last check, decommission) are judged under the current one.

    ``fast_path=False`` runs only the ordered checks: the reference the fast path (verify_fast.py,
    which must give the identical report for any input) is tested against.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UnusableInput(f"{folder}: not a folder")
    keys = _load_keys(folder, trust)
    bundles = folder / "bundles.jsonl"
    if not bundles.exists():
        raise UnusableInput(f"{bundles}: missing")
    agg = _Aggregator(keys, check_aliases() if aliases is None else aliases)
    checker = _Checker(keys, folder / "proofs", None, skew_s)
    checker.top = _top_checkpoint(folder, checker, agg)
    if fast_path:
        checker.fast = FastPath(
            keys.epochs, folder / "proofs", checker.open_checkpoint, checker.top, skew_s
        )
    if workers is None:
        workers = os.cpu_count() or 1
        if count_bundles(folder) < PARALLEL_MIN:
            workers = 1
    n = 0
    if workers <= 1:
        for chunk in _chunks(_lines(bundles), 256):
            _fold(agg, _check_lines(checker, chunk))
            n += len(chunk)
            if progress is not None:
                progress(n)
        if checker.fast is not None:
            agg.merge(checker.fast.take())
    else:
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ProcessPoolExecutor(workers, ctx, initializer=_worker_init, initargs=(checker,)) as ex:
            for results, tally in ex.map(_worker_chunk, _chunks(_lines(bundles), CHUNK)):
                _fold(agg, results)
                agg.merge(tally)
                n += len(results)
                if progress is not None:
                    progress(n)
    if progress is not None:
        progress(n)
    report = agg.finish(n)
    report.findings += tsa_findings(folder, tsa_cas)
    return report


def tsa_findings(folder: Path, tsa_cas: Sequence[bytes] | None) -> list[Finding]:
    """The RFC 3161 token beside the checkpoint (osiris_core/timestamp.py), judged against the
    pinned TSA chains: PASS/FAIL E_TSA, W_TSA_MISSING (pinned, no token), W_TSA_UNPINNED."""
    from . import timestamp

    path = folder / timestamp.TSR_NAME
    subject = timestamp.TSR_NAME
    if not path.is_file():
        if tsa_cas:
            why = "no RFC 3161 token beside the checkpoint, but a TSA is pinned (--tsa-ca)"
            return [Finding(WARN, "W_TSA_MISSING", subject, why)]
        return []
    try:
        der = path.read_bytes()
        note = (folder / "checkpoint").read_text("utf-8")
        if not tsa_cas:
            info = timestamp.token_info(der)
            if not timestamp.covers(der, note):
                raise timestamp.TsaError("the token covers another checkpoint (digest differs)")
            msg = (
                f"a token by {info['tsa']} at {info['gen_time']}, not checked: pin the TSA's "
                "certificate chain with --tsa-ca to trust it"
            )
            return [Finding(WARN, "W_TSA_UNPINNED", subject, msg)]
        info = timestamp.verify_token(der, note, tsa_cas)
    except (OSError, UnicodeDecodeError, OsirisError) as e:
        return [Finding(FAIL, "E_TSA", subject, str(e))]
    msg = f"the checkpoint existed by {info['gen_time']} (RFC 3161 token by {info['tsa']})"
    return [Finding(PASS, "E_TSA", subject, msg)]
