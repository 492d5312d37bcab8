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
# optional (unauthenticated) extra line, the index (decimal, no leading zero), then the hashes
# (at most 64; each is decoded strictly to 32 bytes, or equal to the text of a proven node).
_HEAD = re.compile(re.escape(PROOF_HEADER) + r"\n(?:extra [^\n]*\n)?index (0|[1-9][0-9]*)(\n|\Z)")
# Above this many remembered nodes the memory is dropped and rebuilt (a very large export).
MAX_NODES = 1 << 17


def split_proof(text: str) -> tuple[int, list[str], str] | None:
    """(index, base64 hash lines bottom-up, checkpoint note) of a proof, or None when its
    head is not in the grammar (the hash lines themselves are checked by ``ProvenTree.prove``)."""
    head, sep, note = text.partition("\n\n")
    if not sep:
        return None
    m = _HEAD.match(head)
    if m is None:
        return None
    rest = head[m.end() :]
    hashes = rest.split("\n") if rest else []
    if len(hashes) > MAX_PATH or (m.group(2) and not rest):
        return None
    return int(m.group(1)), hashes, note


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


class ProvenTree:
    """The nodes of one checkpoint's tree proven so far: leaf range [lo, hi) → (hash, its
    base64, the base64 of the siblings above it up to the root, bottom-up)."""

    def __init__(self, size: int, root: bytes) -> None:
        self.size = size
        self.root = root
        self.nodes: dict[tuple[int, int], tuple[bytes, str, list[str]]] = {}
        self._seed()

    def _seed(self) -> None:
        self.nodes.clear()
        self.nodes[(0, self.size)] = (self.root, _b64(self.root), [])

    def prove(self, leaf: bytes, index: int, hashes: list[str]) -> bool:
        """True only if this inclusion path of ``leaf`` at ``index`` reaches the signed root
        (RFC 9162 §2.1.3.2, walked with the leaf ranges of the nodes it passes)."""
        size = self.size
        if not 0 <= index < size:
            return False
        nodes = self.nodes
        sha = hashlib.sha256
        a2b = binascii.a2b_base64
        cur, lo, hi = leaf, index, index + 1
        fn, sn, lv = index, size - 1, 0
        learned: list[tuple[tuple[int, int], bytes, str | None, int]] = []
        j = 0
        n = len(hashes)
        while True:
            known = nodes.get((lo, hi))
            if known is not None:
                # the path reached a proven node: same value, and above it the proven siblings
                if known[0] != cur or hashes[j:] != known[2]:
                    return False
                break
            if j == n:
                return False  # too short (or, at the root, which is always known)
            if fn == sn and not fn & 1:  # the right edge: no sibling at this level
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
                    lv += 1
                if not fn:
                    return False
            text = hashes[j]
            try:
                s = a2b(text, strict_mode=True)
            except binascii.Error:
                return False
            if len(s) != 32:
                return False
            learned.append(((lo, hi), cur, None, j))
            if fn & 1:
                s_rng = ((fn - 1) << lv, fn << lv)
                cur = sha(b"\x01" + s + cur).digest()
                lo = s_rng[0]
            else:
                s_rng = ((fn + 1) << lv, min((fn + 2) << lv, size))
                cur = sha(b"\x01" + cur + s).digest()
                hi = s_rng[1]
            learned.append((s_rng, s, text, -1 - j))
            fn >>= 1
            sn >>= 1
            lv += 1
            j += 1
        if len(nodes) + len(learned) > MAX_NODES:
            self._seed()
            return True
        for rng, value, text, k in learned:
            if k >= 0:  # a node on the path, whose siblings above are hashes[k:]
                nodes[rng] = (value, _b64(value), hashes[k:])
            else:  # a sibling: above it, the path node beside it, then the hashes above
                k = -1 - k
                nodes[rng] = (value, text, [nodes[learned[2 * k][0]][1], *hashes[k + 1 :]])
        return True
