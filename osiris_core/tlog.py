"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs, and proof verification.

Osiris logs every evidence envelope in an append-only Merkle tree so that anyone holding a
signed checkpoint can check (a) that a bundle is in the log (inclusion) and (b) that the log
never rewrote history between two checkpoints (consistency). The hashing and the proof shapes
are exactly RFC 6962 §2.1 (= RFC 9162 §2.1, SHA-256), so Go/JS auditors and C2SP witnesses
get byte-identical results.

Proof *generation* reads only hashes of complete, aligned subtrees from a :class:`HashStore`
(level 0 = leaf hashes, level L index i = hash of leaves [i·2^L, (i+1)·2^L)). That is the shape
of tlog-tiles and of the server's SQLite table, and it keeps every proof at O(log n) reads: the
RFC recursion only ever needs one non-complete subtree (the right edge), and that one is built
from at most log2(n) complete subtrees.

Proof *verification* uses the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and
raises :class:`~osiris_core.errors.ProofError` on any failure, never returning a boolean that a
caller could forget to check.

Why this file is long: it is RFC 6962/9162 in one place: the hashing, the proofs generated and the
proofs verified must agree bit for bit, and the outside test vectors exercise them together. It is
just over the limit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from osiris_core.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashStore",
    "MemoryStore",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

#: MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1).
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 ‖ data); the prefix keeps a leaf from posing as an inner node."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 ‖ left ‖ right), the hash of an inner node."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n ≥ 2): the RFC's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Compute MTH over already-hashed leaves in one O(n) pass.

    Uses a stack of complete subtrees (one per set bit of the count) rather than the
    recursive definition, so a month of bundles can be re-rooted without deep recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    stack: list[bytes] = []
    for count, h in enumerate(hashes, start=1):
        _check_hash(h, "leaf hash")
        stack.append(h)
        # Each trailing zero bit of the new count closes one complete subtree.
        c = count
        while c & 1 == 0:
            right = stack.pop()
            stack[-1] = _sha256(NODE_PREFIX + stack[-1] + right).digest()
            c >>= 1
    # Fold the remaining complete subtrees right to left: that is the left-balanced shape.
    root = stack.pop()
    while stack:
        root = _sha256(NODE_PREFIX + stack.pop() + root).digest()
    return root


# --------------------------------------------------------------------------- validation


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ProofError(f"{what} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{what} must be an integer")
    if value < 0:
        raise ProofError(f"{what} must not be negative, got {value}")
    return value


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    if isinstance(proof, bytes | bytearray | str):
        raise ProofError("proof must be a list of hashes, not a single string")
    return [_check_hash(p, f"proof[{i}]") for i, p in enumerate(proof)]


# --------------------------------------------------------------------------- verification


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Recompute the root implied by an inclusion proof (RFC 9162 §2.1.3.2, steps 1–5).

    ``leaf`` is the *leaf hash* (SHA-256(0x00 ‖ entry)), not the entry. Raises
    :class:`ProofError` when the index is out of range or the proof has the wrong length;
    the caller compares the result with a trusted root (see :func:`verify_inclusion`).
    """
    r = _check_hash(leaf, "leaf hash")
    index = _check_int(index, "leaf index")
    size = _check_int(size, "tree size")
    path = _check_proof(proof)
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            raise ProofError(f"inclusion proof too long for index {index} in size {size}")
        if fn & 1 or fn == sn:
            r = _sha256(NODE_PREFIX + p + r).digest()
            if not fn & 1:
                # Skip levels where this node has no right sibling (right edge).
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof too short for index {index} in size {size}")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` sits at ``index`` in the tree of ``size`` with ``root``.

    Returns ``None`` on success and raises :class:`ProofError` otherwise, so a failed check can
    never be mistaken for a pass.
    """
    root = _check_hash(root, "root")
    computed = root_from_inclusion(leaf, index, size, proof)
    if not hmac.compare_digest(computed, root):
        raise ProofError(
            f"inclusion proof for index {index} in size {size} does not lead to the given root"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    RFC 9162 §2.1.4.2. Edge cases, as in transparency-dev/merkle: ``old_size == new_size``
    needs an empty proof and equal roots; ``old_size == 0`` is trivially consistent with an
    empty proof (the empty tree is a prefix of every tree); ``old_size > new_size`` is a
    rollback and always fails. Raises :class:`ProofError`.
    """
    old_size = _check_int(old_size, "old size")
    new_size = _check_int(new_size, "new size")
    old_root = _check_hash(old_root, "old root")
    new_root = _check_hash(new_root, "new root")
    path = _check_proof(proof)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if path:
            raise ProofError("consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"roots differ for the same tree size {old_size}")
        return
    if old_size == 0:
        if path:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not path:
        raise ProofError(f"empty consistency proof from size {old_size} to {new_size}")

    # Step 2: when the old tree is a complete subtree, its root is the proof's implicit start.
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof too long for {old_size} -> {new_size}")
        if fn & 1 or fn == sn:
            fr = _sha256(NODE_PREFIX + c + fr).digest()
            sr = _sha256(NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof too short for {old_size} -> {new_size}")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


# --------------------------------------------------------------------------- stores


@runtime_checkable
class HashStore(Protocol):
    """Hashes of complete subtrees; the only thing :class:`MerkleTree` reads.

    ``get(level, index)`` returns the hash of leaves [index·2^level, (index+1)·2^level) and is
    only called for subtrees that lie entirely below ``size()``. The server implements this over
    SQLite rows (tile-like), the tests and verifier over memory.
    """

    def get(self, level: int, index: int) -> bytes: ...

    def size(self) -> int: ...


class MemoryStore:
    """An in-memory :class:`HashStore`: one list per level of complete subtree hashes."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash, fill the parents it completes, and return its index.

        Amortised O(1): on average one parent is completed per append.
        """
        h = _check_hash(leaf_hash, "leaf hash")
        levels = self._levels
        level0 = levels[0]
        index = len(level0)
        level0.append(h)
        i, lvl = index, 0
        while i & 1:
            row = levels[lvl]
            h = _sha256(NODE_PREFIX + row[i - 1] + h).digest()
            lvl += 1
            if lvl == len(levels):
                levels.append([])
            levels[lvl].append(h)
            i >>= 1
        return index

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Append many leaf hashes in order."""
        for h in leaf_hashes:
            self.append(h)

    def get(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree at (level, index); ``ProofError`` if it is not complete."""
        try:
            if level < 0 or index < 0:
                raise IndexError
            return self._levels[level][index]
        except IndexError:
            raise ProofError(f"no complete subtree at level {level} index {index}") from None

    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])


# --------------------------------------------------------------------------- tree


class MerkleTree:
    """Roots and proofs for any tree size up to ``store.size()``, read from a :class:`HashStore`.

    Every method reads O(log n) subtree hashes (at most a few times log2(n)), never O(n), and
    only via ``store.get`` / ``store.size``, so the same code serves memory and SQLite.
    """

    def __init__(self, store: HashStore) -> None:
        self.store = store

    @property
    def size(self) -> int:
        """Current number of leaves in the store."""
        return self.store.size()

    def _check_size(self, size: int, what: str = "tree size") -> int:
        size = _check_int(size, what)
        have = self.store.size()
        if size > have:
            raise ProofError(f"{what} {size} is beyond the log size {have}")
        return size

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) for a subtree the RFC recursion can produce.

        The range must be non-empty and ``start`` a multiple of the smallest power of two
        ≥ ``end - start`` (true of every node in the left-balanced tree). A complete subtree is
        one read; otherwise the left part is complete and only the right part recurses, so the
        cost is at most ⌈log2(end - start)⌉ + 1 reads.
        """
        start = _check_int(start, "start")
        end = _check_int(end, "end")
        n = end - start
        if n <= 0:
            raise ProofError(f"empty subtree range [{start}, {end})")
        span = 1 << (n - 1).bit_length()
        if start % span:
            raise ProofError(f"[{start}, {end}) is not a node of the Merkle tree")
        self._check_size(end, "subtree end")
        return self._subtree(start, end)

    def _subtree(self, start: int, end: int) -> bytes:
        """:meth:`subtree_hash` without argument checks (callers already validated the range),
        so a proof costs one ``size()`` call in total rather than one per level."""
        n = end - start
        get = self.store.get
        # Walk down the right edge collecting complete left parts, then fold back up.
        lefts: list[bytes] = []
        while n & (n - 1):  # not a power of two
            k = _split(n)
            lefts.append(get(k.bit_length() - 1, start // k))
            start += k
            n -= k
        h = get(n.bit_length() - 1, start // n)
        for left in reversed(lefts):
            h = _sha256(NODE_PREFIX + left + h).digest()
        return h

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        size = self.store.size() if size is None else self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 6962 §2.1.1, ordered from the leaf up to the root."""
        size = self.store.size() if size is None else self._check_size(size)
        index = _check_int(index, "leaf index")
        if index >= size:
            raise ProofError(f"leaf index {index} is not below tree size {size}")
        # Descend from the root; siblings are found top-down and returned bottom-up.
        siblings: list[bytes] = []
        start, n, m = 0, size, index
        while n > 1:
            k = _split(n)
            if m < k:
                siblings.append(self._subtree(start + k, start + n))
                n = k
            else:
                siblings.append(self._subtree(start, start + k))
                start += k
                m -= k
                n -= k
        siblings.reverse()
        return siblings

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """PROOF(old, D[0:new]) of RFC 6962 §2.1.2 (SUBPROOF with b = true).

        Empty when ``old`` is 0 or equals ``new``; ``ProofError`` when ``old > new``.
        """
        new = self.store.size() if new is None else self._check_size(new, "new size")
        old = _check_int(old, "old size")
        if old > new:
            raise ProofError(f"old size {old} is larger than new size {new}")
        if old == 0 or old == new:
            return []
        nodes: list[bytes] = []
        start, n, m, complete = 0, new, old, True
        while m != n:
            k = _split(n)
            if m <= k:
                nodes.append(self._subtree(start + k, start + n))
                n = k
            else:
                nodes.append(self._subtree(start, start + k))
                start += k
                m -= k
                n -= k
                complete = False
        if not complete:
            # SUBPROOF(m, D[m], false) = [MTH(D[m])]: the old tree's last subtree.
            nodes.append(self._subtree(start, start + n))
        nodes.reverse()
        return nodes
