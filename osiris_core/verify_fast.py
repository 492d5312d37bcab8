"""The verifier's fast path: one bundle line that passes every per-bundle check, cheaply.

Why: offline verification must run at >= 50 % of raw Ed25519 verify/s (DESIGN §5). The ordered
checks in verify.py build a finding list, a dict copy per record and a full inclusion path per
bundle; almost every line of a real export passes them all. This path answers only "passes
everything" (a compact chain tuple) or ``None`` — "not shown here" — and on ``None`` the caller
runs the ordered checks, which give the verdict, the code and the message. So the fast path may
refuse more than the ordered checks, never less: each step below is the same check or a
stricter one.

* parse + canonical bytes: an ASCII line (so no non-ASCII key) with no surrogate escape, parsed
  by the C decoder with canonical.loads' number hooks (no float, |int| <= 2**53-1), whose
  objects all have sorted keys and nest within MAX_DEPTH (the layout predicate), must re-encode
  without sorting to exactly its own text (a duplicate key re-encodes shorter);
* schema: the ENVELOPE and BUNDLE specs compiled to predicates (spec_predicate.py) plus the very
  bundle_rules of evidence.validate_bundle;
* signature: the appliance's key epochs, the key id and name, the signature, the seq in range;
* inclusion: the proof's grammar, its checkpoint (verified once per note), the checkpoint
  inside the exported log, the path to the signed root with shared proven nodes
  (inclusion_cache.py); the cosignature time and the skew.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import json.encoder
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import canonical
from .canonical import MAX_SAFE_INT
from .errors import SchemaError
from .evidence import BUNDLE, ENVELOPE, bundle_rules
from .inclusion_cache import ProvenTree, split_proof
from .schema import F
from .spec_predicate import compile_record

# appliance, seq, prev_hash, bundle hash, finished_at, check, site: what the chain checks need
ChainFacts = tuple[str, int, str, str, str, str, str]

_SIG_MARK = b',"sig":{'
_BUNDLE_AT = len(b'{"bundle":')
# ENVELOPE with its bundle as the BUNDLE record (= validate_envelope's two shape checks), in the
# canonical layout: keys in sorted order everywhere, nesting within MAX_DEPTH
_DOC_OK = compile_record({**ENVELOPE, "bundle": F("object", required=True, fields=BUNDLE)}, 1)
# canonical.dumps' encoder without sort_keys: on a document whose objects all have sorted keys
# (_DOC_OK) it writes the very same bytes, without sorting every object again
_ENCODE = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=False,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
).encode


def _no_default(o: Any) -> Any:
    raise TypeError(type(o).__name__)


if json.encoder.c_make_encoder is not None:  # the same C encoder, built once, not per call
    _C_ENCODE = json.encoder.c_make_encoder(
        None, _no_default, json.encoder.c_encode_basestring, None, ":", ",", False, False, False
    )

    def _ENCODE(o: Any) -> str:  # noqa: N802 (stands in for the encoder above)
        return "".join(_C_ENCODE(o, 0))


def _no_float(s: str) -> Any:
    raise ValueError(s)


def _int(s: str) -> int:
    if len(s) > 17:
        raise ValueError(s)
    v = int(s)
    if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
        raise ValueError(s)
    return v


# canonical.loads' decoder without the pairs hook (duplicate keys are caught by re-encoding,
# non-ASCII keys by the ASCII-only rule): the C scanner builds the dicts directly
# scan_once: the C scanner itself, without decode()'s whitespace regexes (a line must end where
# its value ends; any leading or trailing byte makes it fall back)
_SCAN = json.JSONDecoder(
    parse_float=_no_float, parse_int=_int, parse_constant=_no_float, strict=True
).scan_once


def _first_late(bound: int) -> str | None:
    """The first time whose whole seconds exceed ``bound``, in the bundle time format: a valid
    ``finished_at`` is then on time iff it sorts before it (fixed-width digits sort as times).
    None (compare parsed times instead) outside what a datetime can spell."""
    if bound < 0:
        return None
    try:
        return canonical.format_time(datetime.fromtimestamp(bound + 1, UTC))
    except (OverflowError, OSError, ValueError):
        return None


class Tally:
    """What the fast path's passes add to the report: counts and the sets of keys used (all
    order-free, so a worker returns them once per chunk)."""

    __slots__ = ("full", "no_cosig", "existed_by", "keys", "logs", "cosigners")

    def __init__(self) -> None:
        self.full = 0  # lines that passed every per-bundle check, cosignature included
        self.no_cosig = 0  # lines that passed all but had no cosignature (W_NO_COSIG)
        self.existed_by: int | None = None
        self.keys: set[str] = set()
        self.logs: set[str] = set()
        self.cosigners: set[str] = set()


class FastPath:
    """The fast path of one verification (one per process, like verify._Checker)."""

    def __init__(
        self,
        epochs: dict[str, list[Any]],
        proofs: Path,
        open_checkpoint: Callable[[str], Any],
        top: Any,
        skew_s: int,
    ) -> None:
        self.epochs = epochs
        self.proofs = str(proofs) + os.sep
        self.open_checkpoint = open_checkpoint
        self.top = top
        self.skew_s = skew_s
        self.tally = Tally()
        self._last_note: str | None = None
        self._last_opened: Any = None
        self._keys: dict[tuple[str, str], list[tuple[Any, int, int | None, str]]] = {}
        self._trees: dict[int, tuple[ProvenTree, int | None, str | None, tuple[str, ...]]] = {}

    def take(self) -> Tally:
        t, self.tally = self.tally, Tally()
        return t

    def _candidates(self, app: str, key_id: str) -> list[tuple[Any, int, int | None, str]]:
        found = self._keys.get((app, key_id))
        if found is None:
            name = f"osiris/appliance/{app}"
            found = [
                (e.verifier, e.first_seq, e.last_seq, e.verifier.vkey)
                for e in self.epochs.get(app) or ()
                if e.verifier.key_id_hex == key_id and e.verifier.name == name
            ]
            self._keys[(app, key_id)] = found
        return found

    def _read(self, name: str) -> bytes | None:
        try:
            fd = os.open(self.proofs + name, os.O_RDONLY)
        except OSError:
            return None
        try:
            parts = []
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                parts.append(b)
        except OSError:
            return None
        finally:
            os.close(fd)
        return b"".join(parts)

    def check(self, line: bytes) -> ChainFacts | None:
        """The chain facts of a line that passes every per-bundle check, else None."""
        if not line.isascii() or b"\\ud" in line or b"\\uD" in line:
            return None
        text = line.decode("ascii")
        try:
            env, end = _SCAN(text, 0)
            if end != len(text) or not _DOC_OK(env) or _ENCODE(env) != text:
                return None
        except (StopIteration, ValueError, TypeError, RecursionError):
            return None
        bundle = env["bundle"]
        try:
            bundle_rules(bundle)
        except SchemaError:
            return None
        bundle_bytes = line[_BUNDLE_AT : line.rindex(_SIG_MARK)]
        app = bundle["appliance_id"]
        seq = bundle["seq"]
        sig = env["sig"]
        raw = binascii.a2b_base64(sig["value"])
        key = None
        for verifier, first, last, vkey in self._candidates(app, sig["key_id"]):
            if (
                verifier.verify(bundle_bytes, raw)
                and first <= seq
                and (last is None or seq <= last)
            ):
                key = vkey
                break
        if key is None:
            return None
        bhash = hashlib.sha256(bundle_bytes).hexdigest()
        if not self._included(line, bhash, bundle):
            return None
        self.tally.keys.add(key)
        return (
            app,
            seq,
            bundle["prev_hash"],
            "sha256:" + bhash,
            bundle["finished_at"],
            bundle["check"],
            bundle["site_id"],
        )

    def _included(self, line: bytes, bhash: str, bundle: dict[str, Any]) -> bool:
        data = self._read(bhash + ".tlog-proof")
        if data is None:
            return False
        try:
            parts = split_proof(data.decode("utf-8"))
        except UnicodeDecodeError:
            return False
        if parts is None:
            return False
        index, hashes, note = parts
        if note == self._last_note:  # proofs mostly share one note: no need to hash it again
            opened = self._last_opened
        else:
            opened = self.open_checkpoint(note)
            self._last_note, self._last_opened = note, opened
        cp = opened.checkpoint
        if cp is None:
            return False
        top = self.top
        if top is not None and (
            cp.origin != top.origin
            or cp.size > top.size
            or (cp.size == top.size and cp.root != top.root)
        ):
            return False
        state = self._trees.get(id(opened))
        if state is None:
            times = opened.cosig_times
            earliest = min(times.values()) if times else None
            limit = _first_late(earliest + self.skew_s) if earliest is not None else None
            state = (ProvenTree(cp.size, cp.root), earliest, limit, tuple(sorted(times)))
            self._trees[id(opened)] = state  # `opened` lives in the checker's cache
        tree, earliest, limit, cosigners = state
        if not tree.prove(hashlib.sha256(b"\x00" + line).digest(), index, hashes):
            return False
        t = self.tally
        if earliest is None:
            t.no_cosig += 1
        else:
            finished_at = bundle["finished_at"]  # bundle_rules parsed it: the fixed-width form
            if limit is not None:
                if finished_at >= limit:
                    return False
            elif int(canonical.parse_time(finished_at).timestamp()) > earliest + self.skew_s:
                return False
            t.full += 1
            if t.existed_by is None or earliest > t.existed_by:
                t.existed_by = earliest
            t.cosigners.update(cosigners)
        t.logs.add(opened.log_vkey)
        return True
