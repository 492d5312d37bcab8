"""Benchmark the Merkle log against raw SHA-256 on the same machine, in the same run.

Absolute numbers mean little across machines; the ratio to raw ``hashlib.sha256`` is what
shows whether ``osiris_core.tlog`` adds overhead beyond the hashing it cannot avoid (an append
costs about two SHA-256 calls amortised, an inclusion proof O(log n) store reads plus, when
verified, about log2(n) hashes).

Usage: ``python bench/tlog.py [N]`` (default N = 200,000 leaves). Prints one labelled figure
per line and exits 0.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from osiris_core.tlog import (  # noqa: E402
    MemoryStore,
    MerkleTree,
    leaf_hash,
    verify_inclusion,
)

DEFAULT_N = 200_000
PROOFS = 20_000


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_raw_sha256(count: int) -> float:
    """Hashes/s of hashlib.sha256 over 33-byte inputs (a leaf prefix plus 32 bytes)."""
    data = [b"\x00" + i.to_bytes(32, "big") for i in range(count)]
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for d in data:
        sha(d).digest()
    return _rate(count, time.perf_counter() - t0)


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else DEFAULT_N
    if n < 1:
        print("N must be at least 1", file=sys.stderr)
        return 2
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]

    raw = bench_raw_sha256(n)

    store = MemoryStore()
    append = store.append
    t0 = time.perf_counter()
    for h in leaves:
        append(h)
    appends = _rate(n, time.perf_counter() - t0)

    tree = MerkleTree(store)
    root = tree.root()
    rng = random.Random(6962)
    indices = [rng.randrange(n) for _ in range(PROOFS)]

    t0 = time.perf_counter()
    proofs = [tree.inclusion_proof(i, n) for i in indices]
    gen = _rate(PROOFS, time.perf_counter() - t0)

    t0 = time.perf_counter()
    for i, proof in zip(indices, proofs, strict=True):
        verify_inclusion(leaves[i], i, n, proof, root)
    ver = _rate(PROOFS, time.perf_counter() - t0)

    print(f"tree size:                     {n} leaves")
    print(f"raw hashlib.sha256:            {raw:,.0f} hashes/s")
    print(f"MemoryStore.append:            {appends:,.0f} appends/s")
    print(f"inclusion proofs generated:    {gen:,.0f} proofs/s")
    print(f"inclusion proofs verified:     {ver:,.0f} proofs/s")
    print(f"append rate / raw hash rate:   {appends / raw:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
