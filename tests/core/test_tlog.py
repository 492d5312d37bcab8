"""Tests for osiris_core.tlog: published RFC 6962 vectors, an independent naive reference,
exhaustive small-tree proofs, tampering, argument errors and the O(log² n) read bound."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osiris_core.errors import ProofError
from osiris_core.tlog import (
    EMPTY_ROOT,
    HashStore,
    MemoryStore,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------- vectors

# RFC 6962 / certificate-transparency test leaves (reference §1.1).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

# MTH(D[0:n]) for n = 0..8, as published with those leaves (transparency-dev proof/verify_test.go).
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (0-based leaf index, tree size, PATH) — transparency-dev lists these 1-based.
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, PROOF) — transparency-dev proof/verify_test.go.
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


# --------------------------------------------------------------------------- naive reference


def naive_mth(data: list[bytes]) -> bytes:
    """MTH straight from the RFC 6962 §2.1 definition, over raw entries."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(data[:k]) + naive_mth(data[k:])).digest()


def _naive_h(hashes: list[bytes]) -> bytes:
    """MTH over leaf hashes, recursively (RFC definition, no stores, no stacks)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _naive_h(hashes[:k]) + _naive_h(hashes[k:])).digest()


def naive_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1."""
    n = len(hashes)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return naive_path(m, hashes[:k]) + [_naive_h(hashes[k:])]
    return naive_path(m - k, hashes[k:]) + [_naive_h(hashes[:k])]


def naive_subproof(m: int, hashes: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 §2.1.2."""
    n = len(hashes)
    if m == n:
        return [] if b else [_naive_h(hashes)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return naive_subproof(m, hashes[:k], b) + [_naive_h(hashes[k:])]
    return naive_subproof(m - k, hashes[k:], False) + [_naive_h(hashes[:k])]


# --------------------------------------------------------------------------- fixtures

N_SMALL = 300
DATA = [f"osiris-leaf-{i}".encode() for i in range(N_SMALL)]
HASHES = [leaf_hash(d) for d in DATA]


@pytest.fixture(scope="module")
def ct_tree() -> MerkleTree:
    return MerkleTree(MemoryStore([leaf_hash(d) for d in CT_LEAVES]))


@pytest.fixture(scope="module")
def tree300() -> MerkleTree:
    return MerkleTree(MemoryStore(HASHES))


_TREE300 = MerkleTree(MemoryStore(HASHES))
_ROOTS300 = [_TREE300.root(n) for n in range(N_SMALL + 1)]


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# --------------------------------------------------------------------------- hashing


def test_empty_root_and_domain_separation() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert leaf_hash(b"").hex() == CT_ROOTS[1]
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # A leaf whose data is a‖b must not collide with the node (a, b).
    assert leaf_hash(a + b) != node_hash(a, b)
    assert node_hash(a, b) != node_hash(b, a)


def test_rfc6962_roots(ct_tree: MerkleTree) -> None:
    for n, want in enumerate(CT_ROOTS):
        assert ct_tree.root(n).hex() == want, n
        assert naive_mth(CT_LEAVES[:n]).hex() == want, n
        assert root_from_leaf_hashes([leaf_hash(d) for d in CT_LEAVES[:n]]).hex() == want, n
    # The abbreviated figures of the reference (evidence.md §1.1) match the full values.
    r1, r8 = ct_tree.root(1).hex(), ct_tree.root(8).hex()
    assert r1.startswith("6e340b9c") and r1.endswith("a01d")
    assert r8 == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert ct_tree.root() == ct_tree.root(8)
    assert ct_tree.size == 8


def test_reference_proof_prefixes(ct_tree: MerkleTree) -> None:
    inc = _hexes(ct_tree.inclusion_proof(5, 8))
    assert [h[:8] for h in inc] == ["bc1a0643", "ca854ea1", "d37ee418"]
    con = _hexes(ct_tree.consistency_proof(6, 8))
    assert [h[:8] for h in con] == ["0ebc5d34", "ca854ea1", "d37ee418"]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_rfc6962_inclusion_vectors(
    ct_tree: MerkleTree, index: int, size: int, path: list[str]
) -> None:
    proof = ct_tree.inclusion_proof(index, size)
    assert _hexes(proof) == path
    leaf = leaf_hash(CT_LEAVES[index])
    root = bytes.fromhex(CT_ROOTS[size])
    assert root_from_inclusion(leaf, index, size, proof) == root
    verify_inclusion(leaf, index, size, proof, root)
    # transparency-dev style corruptions: every one must be rejected.
    probes: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [root, *proof], root),
    ]
    if index > 0:
        probes.append((leaf, index - 1, size, proof, root))
    if size // 2 > index:
        probes.append((leaf, index, size // 2, proof, root))
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 3)
        probes.append((leaf, index, size, bad, root))
    for args in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_rfc6962_consistency_vectors(
    ct_tree: MerkleTree, old: int, new: int, path: list[str]
) -> None:
    proof = ct_tree.consistency_proof(old, new)
    assert _hexes(proof) == path
    r1, r2 = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    verify_consistency(old, new, r1, r2, proof)
    if not proof:
        return
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, SOME_HASH, r2, proof),
        (old, new, r1, SOME_HASH, proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], 4)
        probes.append((old, new, r1, r2, bad))
    for args in probes:
        with pytest.raises(ProofError):
            verify_consistency(*args)


# --------------------------------------------------------------------------- against the naive MTH


def test_roots_match_naive_for_every_small_size(tree300: MerkleTree) -> None:
    for n in range(0, 130):
        want = naive_mth(DATA[:n])
        assert tree300.root(n) == want, n
        assert root_from_leaf_hashes(HASHES[:n]) == want, n


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.binary(max_size=8))
def test_roots_match_naive_for_random_sizes(n: int, salt: bytes) -> None:
    data = [salt + i.to_bytes(4, "big") for i in range(n)]
    store = MemoryStore()
    for i, d in enumerate(data):
        assert store.append(leaf_hash(d)) == i
    want = naive_mth(data)
    assert MerkleTree(store).root() == want
    assert root_from_leaf_hashes([leaf_hash(d) for d in data]) == want


def test_proofs_match_naive_generators(tree300: MerkleTree) -> None:
    for n in range(1, 48):
        hs = HASHES[:n]
        for m in range(n):
            assert tree300.inclusion_proof(m, n) == naive_path(m, hs), (m, n)
        for m in range(1, n):
            assert tree300.consistency_proof(m, n) == naive_subproof(m, hs, True), (m, n)


# --------------------------------------------------------------------------- every proof verifies


def test_every_inclusion_proof_verifies_up_to_300(tree300: MerkleTree) -> None:
    count = 0
    for n in range(1, N_SMALL + 1):
        root = _ROOTS300[n]
        for i in range(n):
            proof = tree300.inclusion_proof(i, n)
            verify_inclusion(HASHES[i], i, n, proof, root)
            count += 1
    assert count == N_SMALL * (N_SMALL + 1) // 2


def test_every_consistency_proof_verifies_up_to_64(tree300: MerkleTree) -> None:
    for n in range(0, 65):
        for m in range(0, n + 1):
            proof = tree300.consistency_proof(m, n)
            verify_consistency(m, n, _ROOTS300[m], _ROOTS300[n], proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sampled_consistency_proofs_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=0, max_value=N_SMALL))
    m = data.draw(st.integers(min_value=0, max_value=n))
    proof = _TREE300.consistency_proof(m, n)
    verify_consistency(m, n, _ROOTS300[m], _ROOTS300[n], proof)


# --------------------------------------------------------------------------- tampering


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bit_flip_breaks_inclusion(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=N_SMALL))
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = _TREE300.inclusion_proof(i, n)
    leaf, root = HASHES[i], _ROOTS300[n]
    bit = data.draw(st.integers(min_value=0, max_value=255))
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1))
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        root = _flip(root, bit)
    else:
        proof = list(proof)
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, i, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bit_flip_breaks_consistency(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=N_SMALL))
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    proof = _TREE300.consistency_proof(m, n)
    r1, r2 = _ROOTS300[m], _ROOTS300[n]
    bit = data.draw(st.integers(min_value=0, max_value=255))
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1))
    if target == -2:
        r1 = _flip(r1, bit)
    elif target == -1:
        r2 = _flip(r2, bit)
    else:
        proof = list(proof)
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_consistency(m, n, r1, r2, proof)


def test_every_element_flip_breaks_small_proofs(tree300: MerkleTree) -> None:
    """Deterministic sweep: for n ≤ 40 flip a varying bit of every hash in every proof."""
    for n in range(1, 41):
        root = _ROOTS300[n]
        for i in range(n):
            proof = tree300.inclusion_proof(i, n)
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = _flip(bad[j], (i * 31 + j * 7 + n) % 256)
                with pytest.raises(ProofError):
                    verify_inclusion(HASHES[i], i, n, bad, root)
            with pytest.raises(ProofError):
                verify_inclusion(_flip(HASHES[i], (i + n) % 256), i, n, proof, root)
        for m in range(1, n):
            proof = tree300.consistency_proof(m, n)
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = _flip(bad[j], (m * 13 + j * 5 + n) % 256)
                with pytest.raises(ProofError):
                    verify_consistency(m, n, _ROOTS300[m], root, bad)


def test_wrong_index_or_checkpoint_fails(tree300: MerkleTree) -> None:
    """A proof for (i, n) verifies for no other index, and against no other (size, root)."""
    for n in range(1, 41):
        for i in range(n):
            proof = tree300.inclusion_proof(i, n)
            for j in range(n):
                if j != i:
                    with pytest.raises(ProofError):
                        verify_inclusion(HASHES[i], j, n, proof, _ROOTS300[n])
            for n2 in {n - 1, n + 1, n * 2, n // 2, 64}:
                if n2 > i and n2 != n:
                    with pytest.raises(ProofError):
                        verify_inclusion(HASHES[i], i, n2, proof, _ROOTS300[n2])
            with pytest.raises(ProofError):
                verify_inclusion(HASHES[i], n, n, proof, _ROOTS300[n])


def test_consistency_detects_a_fork() -> None:
    """Two logs sharing a prefix then diverging: no proof bridges one to the other."""
    honest = MerkleTree(MemoryStore(HASHES[:50]))
    forked_store = MemoryStore(HASHES[:20])
    for i in range(20, 50):
        forked_store.append(leaf_hash(b"forged-%d" % i))
    forked = MerkleTree(forked_store)
    for old in (1, 16, 20):
        verify_consistency(
            old, 50, honest.root(old), forked.root(50), forked.consistency_proof(old, 50)
        )
    for old in (21, 25, 32, 49):
        with pytest.raises(ProofError):
            verify_consistency(
                old, 50, honest.root(old), forked.root(50), forked.consistency_proof(old, 50)
            )
    with pytest.raises(ProofError):
        verify_consistency(50, 50, honest.root(50), forked.root(50), [])


# --------------------------------------------------------------------------- edge cases and errors


def test_consistency_edge_cases() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, a, [])
    verify_consistency(3, 3, a, a, [])
    with pytest.raises(ProofError, match="roots differ"):
        verify_consistency(3, 3, a, b, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(3, 3, a, a, [b])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 1, EMPTY_ROOT, a, [EMPTY_ROOT])
    with pytest.raises(ProofError, match="larger"):
        verify_consistency(2, 1, a, b, [])
    with pytest.raises(ProofError, match="empty consistency proof"):
        verify_consistency(1, 2, a, b, [])


def test_inclusion_edge_cases() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:
        with pytest.raises(ProofError, match="not below"):
            verify_inclusion(h, index, size, [], h)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(h, 0, 1, [h], h)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(h, 0, 2, [], h)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "ab" * 16, None, 5])
def test_bad_hash_lengths_and_types(bad: object) -> None:
    h = leaf_hash(b"x")
    proof = _TREE300.inclusion_proof(3, 10)
    root = _ROOTS300[10]
    with pytest.raises(ProofError):
        verify_inclusion(bad, 3, 10, proof, root)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[3], 3, 10, proof, bad)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_inclusion(HASHES[3], 3, 10, [*proof[:-1], bad], root)  # type: ignore[list-item]
    with pytest.raises(ProofError):
        verify_consistency(3, 3, bad, h, [])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_consistency(0, 3, h, bad, [])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_consistency(3, 10, _ROOTS300[3], root, [bad])  # type: ignore[list-item]
    with pytest.raises(ProofError):
        MemoryStore().append(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, True, 1.0, "3", None])
def test_bad_sizes_and_indices(bad: object) -> None:
    h = HASHES[0]
    with pytest.raises(ProofError):
        verify_inclusion(h, bad, 10, [], h)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_inclusion(h, 0, bad, [], h)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_consistency(bad, 10, h, h, [h])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_consistency(1, bad, h, h, [h])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        _TREE300.inclusion_proof(bad, 10)  # type: ignore[arg-type]
    if bad is not None:  # None means "the whole tree" for root()
        with pytest.raises(ProofError):
            _TREE300.root(bad)  # type: ignore[arg-type]


def test_proof_must_be_a_list() -> None:
    with pytest.raises(ProofError, match="list"):
        verify_inclusion(HASHES[0], 0, 2, HASHES[1], _ROOTS300[2])  # type: ignore[arg-type]


def test_tree_argument_errors(tree300: MerkleTree) -> None:
    with pytest.raises(ProofError, match="beyond"):
        tree300.root(N_SMALL + 1)
    with pytest.raises(ProofError, match="not below"):
        tree300.inclusion_proof(10, 10)
    with pytest.raises(ProofError, match="beyond"):
        tree300.inclusion_proof(0, N_SMALL + 1)
    with pytest.raises(ProofError, match="larger"):
        tree300.consistency_proof(11, 10)
    with pytest.raises(ProofError, match="beyond"):
        tree300.consistency_proof(1, N_SMALL + 1)
    with pytest.raises(ProofError, match="not a node"):
        tree300.subtree_hash(1, 3)
    with pytest.raises(ProofError, match="empty"):
        tree300.subtree_hash(4, 4)
    assert tree300.consistency_proof(0, 10) == []
    assert tree300.consistency_proof(10, 10) == []
    assert tree300.inclusion_proof(N_SMALL - 1) == tree300.inclusion_proof(N_SMALL - 1, N_SMALL)
    assert tree300.subtree_hash(8, 16) == _naive_h(HASHES[8:16])
    assert tree300.subtree_hash(256, 300) == _naive_h(HASHES[256:300])
    assert MerkleTree(MemoryStore()).root() == EMPTY_ROOT


def test_memory_store_levels() -> None:
    store = MemoryStore()
    assert isinstance(store, HashStore)
    for size in range(1, 70):
        store.append(HASHES[size - 1])
        level = 0
        while size >> level:
            full = size >> level
            last = full - 1
            span = 1 << level
            assert store.get(level, last) == _naive_h(HASHES[last * span : (last + 1) * span])
            with pytest.raises(ProofError):
                store.get(level, full)  # incomplete subtrees are never stored
            level += 1
    with pytest.raises(ProofError):
        store.get(-1, 0)
    assert store.size() == 69


def test_historic_roots_survive_appends() -> None:
    store = MemoryStore()
    tree = MerkleTree(store)
    seen: list[bytes] = [tree.root()]
    for h in HASHES[:100]:
        store.append(h)
        seen.append(tree.root())
    assert [tree.root(n) for n in range(101)] == seen


# --------------------------------------------------------------------------- O(log² n) reads


class CountingStore:
    """Exposes only get/size (so MerkleTree cannot reach anything else) and counts reads."""

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner
        self.reads = 0
        self.size_calls = 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self._inner.get(level, index)

    def size(self) -> int:
        self.size_calls += 1
        return self._inner.size()


@pytest.fixture(scope="module")
def million() -> CountingStore:
    store = MemoryStore()
    append = store.append
    sha = hashlib.sha256
    for i in range(1_000_000):
        append(sha(b"\x00" + i.to_bytes(4, "big")).digest())
    return CountingStore(store)


def test_million_leaf_proofs_use_few_reads(million: CountingStore) -> None:
    tree = MerkleTree(million)
    n = million.size()
    assert n == 1_000_000
    bound = 2 * math.log2(n) ** 2
    worst = 0
    sizes = [n, n - 1, 999_937, 524_289, 2**19, 777_777]
    for size in sizes:
        million.reads = 0
        root = tree.root(size)
        worst = max(worst, million.reads)
        for index in (0, 1, size // 3, size // 2, size - 2, size - 1):
            million.reads = million.size_calls = 0
            proof = tree.inclusion_proof(index, size)
            worst = max(worst, million.reads)
            assert million.size_calls <= 1  # one size() per proof, not one per level
            leaf = million._inner.get(0, index)
            verify_inclusion(leaf, index, size, proof, root)
        for old in (1, 3, size // 2 + 1, size - 1, 2**18 + 12345):
            if old > size:
                continue
            million.reads = 0
            proof = tree.consistency_proof(old, size)
            worst = max(worst, million.reads)
            million.reads = 0
            old_root = tree.root(old)
            verify_consistency(old, size, old_root, root, proof)
    assert 0 < worst <= bound
    # In fact the bound is logarithmic: one complete sibling per level plus one right edge.
    assert worst <= 3 * math.ceil(math.log2(n))


def test_root_matches_stack_root_at_scale(million: CountingStore) -> None:
    leaves = [million._inner.get(0, i) for i in range(100_003)]
    assert MerkleTree(million).root(100_003) == root_from_leaf_hashes(leaves)
