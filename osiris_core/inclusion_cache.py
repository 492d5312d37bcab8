"""Inclusion proofs of many leaves under one checkpoint, checked with shared proof nodes.

Why: an export's bundles are proven against the same checkpoint, and neighbouring leaves share
almost all of their RFC 9162 inclusion path. Recomputing every path from the leaf to the root
costs log2(n) SHA-256 and base64 decodes per bundle; here every tree node a proof has *proven*
(hashed up to the signed root, or up to a node proven before) is remembered, so a new proof
is hashed only until it reaches a proven node — about two hashes per leaf for an export in log
order.

The answer is the same as the full recomputation (tlog.root_from_inclusion), never weaker: a
proof is accepted here only if its path reaches a proven node with the proven value *and* every
sibling hash above that node is, text for text, the sibling that was proven there — so the full
recomputation of this very proof reaches the signed root too. Anything else (a different value,
an unknown sibling, a malformed line, a path of the wrong length) answers ``False``: "not shown
here", and the verifier's full path gives the verdict and its message.
"""

from __future__ import annotations

import binascii
import hashlib
import re

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PATH = 64
# The proof text before its checkpoint, in the grammar of note.TlogProof.parse: the header, an
# optional (unauthenticated) extra line, the index (decimal, no leading zero), then at most 64
# hashes, each exactly what binascii.a2b_base64(strict_mode=True) decodes to 32 bytes.
_HEAD = re.compile(
    re.escape(PROOF_HEADER)
    + r"\n(?:extra [^\n]*\n)?index (0|[1-9][0-9]*)"
    + r"((?:\n[A-Za-z0-9+/]{43}=){0,"
    + str(MAX_PATH)
    + "})"
)
# Above this many remembered nodes the memory is dropped and rebuilt (a very large export).
MAX_NODES = 1 << 17


def split_proof(text: str) -> tuple[int, list[str], str] | None:
    """(index, base64 hashes bottom-up, checkpoint note) of a well-formed proof, else None."""
    head, sep, note = text.partition("\n\n")
    if not sep:
        return None
    m = _HEAD.fullmatch(head)
    if m is None:
        return None
    hashes = m.group(2)
    return int(m.group(1)), (hashes[1:].split("\n") if hashes else []), note


def _path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) of the siblings on ``index``'s path, top-down (RFC 9162 §2.1.1
    splits at the largest power of two below the subtree's size)."""
    lo, hi = 0, size
    out = []
    while hi - lo > 1:
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        if index < mid:
            out.append((mid, hi))
            hi = mid
        else:
            out.append((lo, mid))
            lo = mid
    return out


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


class ProvenTree:
    """The nodes of one checkpoint's tree proven so far: leaf range → (hash, its base64)."""

    def __init__(self, size: int, root: bytes) -> None:
        self.size = size
        self.root = root
        self.nodes: dict[tuple[int, int], tuple[bytes, str]] = {}
        self._seed()

    def _seed(self) -> None:
        self.nodes.clear()
        self.nodes[(0, self.size)] = (self.root, _b64(self.root))

    def prove(self, leaf: bytes, index: int, hashes: list[str]) -> bool:
        """True only if this inclusion path of ``leaf`` at ``index`` reaches the root."""
        if not 0 <= index < self.size:
            return False
        sibs = _path_ranges(index, self.size)
        depth = len(sibs)
        if len(hashes) != depth:
            return False
        nodes = self.nodes
        sha = hashlib.sha256
        cur, lo, hi = leaf, index, index + 1
        learned: list[tuple[tuple[int, int], bytes, str | None]] = []
        j = 0  # hashes[j] is the sibling at depth `depth - j` (sibs[depth - 1 - j])
        while True:
            known = nodes.get((lo, hi))
            if known is not None:
                if known[0] != cur:
                    return False
                break
            if j == depth:
                return False  # unreachable: the root is always known
            learned.append(((lo, hi), cur, None))
            s_lo, s_hi = sibs[depth - 1 - j]
            text = hashes[j]
            s = binascii.a2b_base64(text, strict_mode=True)
            learned.append(((s_lo, s_hi), s, text))
            if s_lo < lo:
                cur = sha(b"\x01" + s + cur).digest()
                lo = s_lo
            else:
                cur = sha(b"\x01" + cur + s).digest()
                hi = s_hi
            j += 1
        # above the proven node, every sibling must be the one proven there, text for text
        for k in range(j, depth):
            known = nodes.get(sibs[depth - 1 - k])
            if known is None or known[1] != hashes[k]:
                return False
        if len(nodes) + len(learned) > MAX_NODES:
            self._seed()
            return True
        for rng, value, text in learned:
            nodes[rng] = (value, _b64(value) if text is None else text)
        return True
