"""An auditor's full check of a stored log and the evidence index that points into it.

``osiris-server log verify`` and ``osiris-server restore`` run it. It reads the stored rows
(never through ``TransparencyLog``, whose code is what an audit must not take on trust) and
recomputes everything from the entry bytes up:

1. every leaf hash from its entry; indices dense from 0 (no gap, no duplicate leaf hash);
2. every stored interior subtree hash from the leaves (the hashes a served proof is made of),
   and no stored hash the tree does not have;
3. every stored checkpoint: its note parses, names the log's origin, states the size and root
   stored beside it, that root equals the recomputed root of that size, its signature verifies
   when the log's public key is known, and each checkpoint is consistent with the next
   (a consistency proof built from the stored hashes verifies);
4. every evidence row (every receipt the server ever gave): the entry at its index is an
   envelope whose bundle hash is the row's, and its inclusion proof, built from the stored
   hashes, verifies against the newest checkpoint's root. Rows appended after that checkpoint
   (a crash before the next signature) are counted as ``uncovered``, not as a failure.
5. pruned leaves (``osiris_server/retention.py``): an entry blanked by retention keeps its leaf
   hash, so points 2-4 still hold for it; a blank entry is accepted only where the index row
   names a recorded prune, and each prune's digest (index, leaf hash, bundle hash of every
   leaf it blanked) is recomputed from the stored leaf hashes. A blank entry without a prune
   record, or a prune whose leaves no longer match its digest, is a problem. Counted in
   ``pruned``.

Memory is O(n) (one 32-byte hash per leaf and per stored subtree; about 70 MB for a million
leaves); entries are streamed. Mismatches are collected (the first ``MAX_PROBLEMS``), not raised,
so one run reports everything an operator needs to see.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from osiris_core import canonical, tlog
from osiris_core import evidence as ev
from osiris_core import note as notes
from osiris_core.errors import OsirisError
from osiris_core.keys import Verifier

MAX_PROBLEMS = 50
_EMPTY_LEAF = tlog.leaf_hash(b"")  # an entry appended empty is an entry, not a pruned one
_CHUNK = 2000  # leaves per read: bounded memory for entries, few round trips on PostgreSQL

Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


@dataclass
class AuditReport:
    """What the audit found; ``ok`` only when ``problems`` is empty."""

    origin: str | None = None
    size: int = 0
    checkpoint_size: int | None = None
    root: str | None = None
    checkpoints: int = 0
    evidence: int = 0
    receipts_verified: int = 0
    uncovered: int = 0
    unindexed: int = 0
    pruned: int = 0
    signature: str = "unchecked"  # "verified", "unchecked" (no public key given), "failed"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, msg: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(msg)

    def summary(self) -> str:
        """One line for a terminal."""
        state = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        return (
            f"log {state}: {self.size} leaves, newest checkpoint "
            f"{self.checkpoint_size if self.checkpoint_size is not None else 'none'} "
            f"(root {self.root or '-'}), {self.checkpoints} checkpoints consistent, "
            f"signature {self.signature}, {self.receipts_verified}/{self.evidence} receipts "
            f"verified, {self.uncovered} not yet covered, {self.unindexed} leaves unindexed"
            + (f", {self.pruned} pruned (bodies in WORM)" if self.pruned else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "origin": self.origin,
            "size": self.size,
            "checkpoint_size": self.checkpoint_size,
            "root": self.root,
            "checkpoints": self.checkpoints,
            "evidence": self.evidence,
            "receipts_verified": self.receipts_verified,
            "uncovered": self.uncovered,
            "unindexed": self.unindexed,
            "pruned": self.pruned,
            "signature": self.signature,
            "problems": list(self.problems),
        }


def _blob(value: Any) -> bytes:
    """A stored hash or entry as bytes. A value of another type (an edit through SQLite's
    loose typing can store TEXT) becomes its UTF-8 bytes, so it simply fails its hash check
    instead of stopping the audit."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


class _Stored:
    """``tlog.HashStore`` over the stored hashes (level 0: the stored leaf hashes)."""

    def __init__(self, leaves: list[bytes], interior: dict[tuple[int, int], bytes]) -> None:
        self._leaves = leaves
        self._interior = interior

    def size(self) -> int:
        return len(self._leaves)

    def get(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._leaves[index]
        h = self._interior.get((level, index))
        if h is None:
            raise tlog.ProofError(f"no stored subtree hash at level {level} index {index}")
        return h


def _push(frontier: list[tuple[int, bytes] | None], idx: int, lh: bytes) -> list[tuple]:
    """Add leaf ``idx`` to the compact range; the (level, index, hash) subtrees it completes."""
    done = []
    level, i, h = 0, idx, lh
    while i & 1:
        left = frontier[level]
        assert left is not None and left[0] == i - 1
        h = tlog.node_hash(left[1], h)
        frontier[level] = None
        level += 1
        i >>= 1
        done.append((level, i, h))
    while len(frontier) <= level:
        frontier.append(None)
    frontier[level] = (i, h)
    return done


def audit(
    log_query: Query,
    index_query: Query | None,
    *,
    verifier: Verifier | None = None,
    origin: str | None = None,
) -> AuditReport:
    """Check the log read through ``log_query`` (its ``meta``, ``leaves``, ``hashes`` and
    ``checkpoints`` tables) and the evidence rows read through ``index_query`` (None: the
    index is not checked). ``origin``: the expected origin (server.toml's); ``verifier``:
    the log's public key, to check every checkpoint's signature."""
    rep = AuditReport()
    meta = log_query("SELECT value FROM meta WHERE key = 'origin'", ())
    rep.origin = meta[0]["value"] if meta else None
    if rep.origin is None:
        rep.problem("the log has no origin (not an Osiris log, or never opened)")
    elif origin is not None and rep.origin != origin:
        rep.problem(f"the log belongs to origin {rep.origin!r}, server.toml says {origin!r}")
    # Checkpoints first: every later read is of an append-only table, so whatever a running
    # server adds meanwhile only lies beyond what these checkpoints cover.
    cps = log_query("SELECT size, root, note FROM checkpoints ORDER BY size", ())
    rows, prunes = _index_rows(index_query) if index_query else ([], {})
    by_index: dict[int, str] = {}
    pruned_by: dict[int, int] = {}  # log index -> the prune that blanked it
    for r in rows:
        by_index[int(r["log_index"])] = r["bundle_hash"]
        if r.get("pruned_id") is not None:
            pruned_by[int(r["log_index"])] = int(r["pruned_id"])
    rep.evidence = len(by_index)
    pruned_leaves: dict[int, list[tuple[int, bytes, str]]] = {}

    tree_bad = False  # a stored hash is wrong: proofs from the store would be meaningless
    leaves: list[bytes] = []
    seen_hashes: set[bytes] = set()
    computed: dict[tuple[int, int], bytes] = {}
    frontier: list[tuple[int, bytes] | None] = []
    after = -1
    while True:
        chunk = log_query(
            "SELECT idx, leaf_hash, entry FROM leaves WHERE idx > ? ORDER BY idx LIMIT ?",
            (after, _CHUNK),
        )
        if not chunk:
            break
        for r in chunk:
            idx, lh, entry = int(r["idx"]), _blob(r["leaf_hash"]), _blob(r["entry"])
            after = idx
            if idx != len(leaves):
                rep.problem(f"leaf indices have a gap: expected {len(leaves)}, found {idx}")
                rep.size = len(leaves)
                return rep  # every later position would be off by the gap
            blank = not entry and lh != _EMPTY_LEAF  # a leaf whose entry bytes are gone
            if blank and idx in pruned_by and pruned_by[idx] in prunes:
                pruned_leaves.setdefault(pruned_by[idx], []).append((idx, lh, by_index[idx]))
                rep.pruned += 1
            elif blank:
                tree_bad = True
                rep.problem(f"leaf {idx}: its entry was removed without a recorded prune")
            elif tlog.leaf_hash(entry) != lh:
                tree_bad = True
                rep.problem(f"leaf {idx}: its entry does not hash to its stored leaf hash")
            if lh in seen_hashes:
                tree_bad = True
                rep.problem(f"leaf {idx}: duplicate leaf hash (the same entry logged twice)")
            seen_hashes.add(lh)
            leaves.append(lh)
            for level, i, h in _push(frontier, idx, lh):
                computed[(level, i)] = h
            want = by_index.get(idx)
            if want is None:
                rep.unindexed += 1
                continue
            if blank:
                continue  # pruned: checked against its prune record below
            try:
                got = ev.bundle_hash(canonical.loads(entry)["bundle"])
            except (OsirisError, KeyError, TypeError):
                got = None
            if got != want:
                rep.problem(f"evidence row {want} points at leaf {idx}, which holds another entry")
    rep.size = len(leaves)
    _check_prunes(rep, prunes, pruned_leaves)

    stored: dict[tuple[int, int], bytes] = {}
    for r in log_query("SELECT level, idx, hash FROM hashes", ()):
        level, i = int(r["level"]), int(r["idx"])
        if (i + 1) << level <= rep.size:  # not a subtree completed by a leaf appended since
            stored[(level, i)] = _blob(r["hash"])
    for key, h in computed.items():
        got = stored.get(key)
        if got is None:
            tree_bad = True
            rep.problem(f"stored subtree hash at level {key[0]} index {key[1]} is missing")
        elif not hmac.compare_digest(got, h):
            tree_bad = True
            rep.problem(f"stored subtree hash at level {key[0]} index {key[1]} is wrong")
    for key in stored.keys() - computed.keys():
        tree_bad = True
        rep.problem(f"stored subtree hash at level {key[0]} index {key[1]} is not in the tree")
    if tree_bad:
        rep.uncovered = len(by_index)
        return rep  # proofs built from wrong hashes would only repeat the finding
    tree = tlog.MerkleTree(_Stored(leaves, stored))
    _check_checkpoints(rep, cps, tree, verifier)
    for i in sorted(by_index):
        if i >= rep.size:
            rep.problem(f"evidence row {by_index[i]} points at leaf {i}, beyond the log")
    if rep.checkpoint_size is None:
        rep.uncovered = len(by_index)
        return rep
    n, root = rep.checkpoint_size, bytes.fromhex(rep.root or "")
    for i in sorted(by_index):
        if i >= rep.size:
            continue  # reported above
        if i >= n:
            rep.uncovered += 1
            continue
        try:
            tlog.verify_inclusion(leaves[i], i, n, tree.inclusion_proof(i, n), root)
            rep.receipts_verified += 1
        except tlog.ProofError as exc:
            rep.problem(f"receipt for leaf {i} does not verify: {exc}")
    return rep


def prune_digest(rows: list[tuple[int, bytes, str]]) -> str:
    """sha256 over ``"<index> <leaf hash hex> <bundle hash>\\n"`` per pruned leaf, in index
    order: what a prune record commits to (``osiris_server/retention.py`` writes it)."""
    h = hashlib.sha256()
    for idx, lh, bh in sorted(rows):
        h.update(f"{idx} {lh.hex()} {bh}\n".encode())
    return h.hexdigest()


def _index_rows(index_query: Query) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The evidence rows and the prune records. An index from before retention existed (a
    restored old backup, not migrated yet) has no ``pruned_id``: no prunes, nothing blank."""
    probe = index_query("SELECT * FROM evidence LIMIT 1", ())
    if not probe or "pruned_id" not in probe[0]:
        return index_query("SELECT log_index, bundle_hash FROM evidence", ()), {}
    rows = index_query("SELECT log_index, bundle_hash, pruned_id FROM evidence", ())
    prunes = {
        int(p["id"]): p
        for p in index_query("SELECT id, count, hashes_sha256 FROM retention_prunes", ())
    }
    return rows, prunes


def _check_prunes(
    rep: AuditReport,
    prunes: dict[int, dict[str, Any]],
    blanked: dict[int, list[tuple[int, bytes, str]]],
) -> None:
    """Each prune whose leaves are blank must match its recorded digest and count (a prune
    not yet applied to the log — crash between index and log — has no blank leaf yet)."""
    for pid, leaves in sorted(blanked.items()):
        p = prunes[pid]
        if len(leaves) != int(p["count"]) or prune_digest(leaves) != p["hashes_sha256"]:
            rep.problem(f"prune {pid}: the pruned leaves do not match its record")


def _check_checkpoints(
    rep: AuditReport,
    cps: Iterable[dict[str, Any]],
    tree: tlog.MerkleTree,
    verifier: Verifier | None,
) -> None:
    prev: tuple[int, bytes] | None = None
    sig_failed = False
    for r in cps:
        size, root, note = int(r["size"]), _blob(r["root"]), str(r["note"])
        if size > tree.size:
            rep.problem(f"checkpoint {size} is beyond the {tree.size} stored leaves (lost?)")
            continue
        try:
            text = note[: note.rfind("\n\n") + 1]
            body = notes.Checkpoint.parse(text)
        except OsirisError as exc:
            rep.problem(f"checkpoint {size}: its note is malformed: {exc}")
            continue
        if body.size != size or body.root != root or body.origin != rep.origin:
            rep.problem(f"checkpoint {size}: its note disagrees with its row or the origin")
            continue
        if tree.root(size) != root:
            rep.problem(f"checkpoint {size}: the stored tree's root differs from the signed one")
            continue
        if verifier is not None:
            try:
                notes.open_note(note, [verifier])
            except OsirisError:
                sig_failed = True
                rep.problem(f"checkpoint {size}: its signature does not verify with the log key")
        if prev is not None and prev[0] > 0:
            try:
                proof = tree.consistency_proof(prev[0], size)
                tlog.verify_consistency(prev[0], size, prev[1], root, proof)
            except tlog.ProofError as exc:
                rep.problem(f"checkpoints {prev[0]} -> {size} are inconsistent: {exc}")
        prev = (size, root)
        rep.checkpoints += 1
        rep.checkpoint_size, rep.root = size, root.hex()
    if verifier is not None and rep.checkpoints:
        rep.signature = "failed" if sig_failed else "verified"
