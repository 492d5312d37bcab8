"""Reading the log's tree from its store: point reads, and tree walks batched into one query.

A root or proof reads O(log² n) nodes (``leaves.leaf_hash`` at level 0, ``hashes`` above). On
SQLite each point read is a function call; on PostgreSQL it is a network round trip, so a proof
read node by node costs tens of round trips (measured: ~200 inclusion proofs/s at 10,000
leaves). ``walk`` runs a walk twice instead: first over ``_Recorder``, which only notes the
nodes asked for — *which* nodes a walk of ``osiris_core.tlog.MerkleTree`` reads depends on the
sizes and indices alone, never on the hash values — then fetches them all in one query and runs
the walk for real over the fetched nodes. A node missing from the store is an error either way,
never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from osiris_core import tlog
from osiris_server.logstore.base import LogError
from osiris_server.storage.base import Tx

T = TypeVar("T")
_CHUNK = 400  # nodes per query (far below either engine's parameter limit)


def _missing(level: int, index: int) -> LogError:
    return LogError(f"log storage is missing the subtree hash at level {level} {index}")


class PointReads:
    """``tlog.HashStore`` over the log's tables, one query per node, frozen at ``size``."""

    def __init__(self, tx: Tx, size: int) -> None:
        self._tx = tx
        self._size = size

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        if level == 0:
            h = self._tx.scalar("SELECT leaf_hash FROM leaves WHERE idx = ?", [index])
        else:
            h = self._tx.scalar(
                "SELECT hash FROM hashes WHERE level = ? AND idx = ?", [level, index]
            )
        if h is None:
            raise _missing(level, index)
        return bytes(h)


class _Recorder:
    """A store that answers every read with a placeholder and remembers what was read."""

    _PLACEHOLDER = b"\x00" * 32

    def __init__(self, size: int) -> None:
        self._size = size
        self.keys: set[tuple[int, int]] = set()

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        self.keys.add((level, index))
        return self._PLACEHOLDER


class _Fetched:
    def __init__(self, nodes: dict[tuple[int, int], bytes], size: int) -> None:
        self._nodes = nodes
        self._size = size

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        h = self._nodes.get((level, index))
        if h is None:
            raise _missing(level, index)
        return h


def fetch(tx: Tx, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of ``keys`` ((level, index) pairs), one query per ``_CHUNK`` keys."""
    out: dict[tuple[int, int], bytes] = {}
    ordered = sorted(keys)
    for i in range(0, len(ordered), _CHUNK):
        by_level: dict[int, list[int]] = {}
        for level, index in ordered[i : i + _CHUNK]:
            by_level.setdefault(level, []).append(index)
        parts: list[str] = []
        params: list[int] = []
        for level, idxs in by_level.items():
            marks = ",".join("?" for _ in idxs)
            if level == 0:
                parts.append(
                    f"SELECT 0 AS level, idx, leaf_hash AS hash FROM leaves WHERE idx IN ({marks})"
                )
                params += idxs
            else:
                parts.append(
                    f"SELECT level, idx, hash FROM hashes WHERE level = ? AND idx IN ({marks})"
                )
                params += [level, *idxs]
        for row in tx.query(" UNION ALL ".join(parts), params):
            out[(int(row["level"]), int(row["idx"]))] = bytes(row["hash"])
    return out


def walk(tx: Tx, size: int, fn: Callable[[tlog.MerkleTree], T], batched: bool = True) -> T:
    """``fn`` over the tree of the first ``size`` leaves, its nodes read in one batch — or,
    with ``batched=False`` (SQLite, where a point read is a function call, not a round trip,
    and one pass is faster than two), node by node."""
    if not batched:
        return fn(tlog.MerkleTree(PointReads(tx, size)))
    recorder = _Recorder(size)
    fn(tlog.MerkleTree(recorder))  # argument errors (ProofError) surface here, before any read
    if not recorder.keys:
        return fn(tlog.MerkleTree(_Fetched({}, size)))
    return fn(tlog.MerkleTree(_Fetched(fetch(tx, recorder.keys), size)))
