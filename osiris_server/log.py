"""The transparency log service: the single sequencer behind every receipt (DESIGN §3.3).

Every accepted evidence envelope becomes one leaf of an RFC 6962 Merkle tree. The log signs C2SP
checkpoints over it; appliances check inclusion + consistency and cosign. The tables live in a
``logstore.LogStore`` — ``DATA/log.db`` (SQLite, WAL, ``synchronous=FULL``) or the schema
``osiris_log`` of the server's PostgreSQL database — and this module never sees a connection:
every write is a function handed to ``store.transact`` (ONE read-write transaction under the
store's one writer lock), every read goes through ``store.reading()``.

Storage
-------
``leaves(idx PK, leaf_hash UNIQUE, entry)`` holds the entry bytes verbatim (retention.py may later
blank an old evidence entry; its leaf hash stays, so no root or proof changes); the UNIQUE leaf hash
makes ``append`` idempotent. ``hashes(level, idx)`` holds every *complete* subtree of level ≥ 1,
written in the same transaction as the leaves that complete it (level 0 is ``leaves.leaf_hash``);
together they are an ``osiris_core.tlog.HashStore``, so every root and proof is O(log² n) point
reads, never O(n). ``checkpoints(size PK, root, note, signed_at)`` keeps every checkpoint ever
signed, from the size-0 checkpoint (RFC 6962 empty root) signed when an empty log is first opened,
so there is always a checkpoint to serve and a witness always has a starting point.

``cosigners(name, key_id PK, size, timestamp, line, received_at)`` keeps each cosigner's (each
appliance's) newest cosignature: one row per cosigner key, replaced only by a cosignature over a
larger checkpoint, or over the same checkpoint with a later timestamp. There is no shared cap, so
no cosigner (no tenant, however many appliances it enrols) can push out another's row. A
cosignature timestamped more than ``COSIG_MAX_FUTURE_S`` ahead of the server's clock is refused
(a far-future timestamp would otherwise pin that row). SQLite files written before this table
existed kept ``cosignatures(size, name, key_id, …)`` with the newest 20 per checkpoint; on open,
each cosigner's newest row of it moves into ``cosigners`` and the old table is dropped.

Why no two inconsistent checkpoints can ever be signed, even across kill -9
-----------------------------------------------------------------------------
The writer lock is the store's: SQLite's ``BEGIN IMMEDIATE`` (exclusive across the processes
sharing the file), or on PostgreSQL ``pg_advisory_xact_lock(LOG_LOCK_KEY)`` taken first in the
transaction (exclusive across every session of every host; released by COMMIT, ROLLBACK or the
death of the session). Under it, at READ COMMITTED, each statement sees every transaction
committed before the lock was granted (``logstore/postgres.py`` says why, and refuses any
other isolation default).

1. A leaf gets its index inside one write transaction under the writer lock, and that
   transaction is committed and durable (SQLite: WAL + ``synchronous=FULL``; PostgreSQL:
   ``synchronous_commit`` on, which every log transaction sets for itself) *before*
   ``append`` returns. Indices are never reused: ``leaves`` only grows.
2. A checkpoint is signed only over ``size`` = the number of *committed* leaves, with the root
   recomputed from committed rows read under the lock. So every signed checkpoint describes a
   durable prefix of one append-only sequence, and any two of them are prefixes of the same
   sequence: consistent.
3. The checkpoint row is written in the same lock scope (the same transaction) as the tree read
   it signs, and the note is published — returned to a waiter — only after that commit. A
   crash between signing and storing loses a signature nobody ever saw; and had it escaped, it
   would still describe durable leaves (point 2).
4. On open, the latest stored checkpoint's root is recomputed from the stored tree; any mismatch
   (restored old backup, edited file or rows, lost WAL) refuses to start with ``LogError``
   instead of signing a fork. Signing is serialised (one signer at a time), so sizes only grow.
A crash *during* an append transaction rolls it back (SQLite's journal; PostgreSQL aborts the
transaction of a dead session): that batch was never acknowledged, and the client's retry is
idempotent by leaf hash.

Any number of processes — gunicorn workers on one file, or ``osiris-server`` processes on any
number of hosts sharing one PostgreSQL database — may share one log: under the writer lock
``append`` and ``_sign_current`` first re-read the committed tree (``_resync``: size, frontier,
newest checkpoint). Indices therefore continue the one sequence whoever appends, and a
checkpoint is always signed over the committed tree read under the lock and stored in that same
lock scope — points 1-3 hold across processes and hosts, with the in-memory state of each
process only a cache that every write transaction checks against the store first.

Batching (Tessera-style)
------------------------
``wait_checkpoint`` does not sign per request. A waiter that needs a newer checkpoint becomes the
*leader* if nobody is signing and at least ``interval_s`` has passed since the last signature;
it signs the whole current tree and wakes every waiter. All others wait on a condition and share
that one signature. So under load there is at most one signature per ``interval_s`` (``0``: sign
at once, still shared by whoever is waiting). A background thread signs when the tree grew and
nobody asked for ``idle_s`` seconds, so every leaf is covered by a checkpoint within ``idle_s``.
An idle log with no new leaves is *not* re-signed: checkpoints carry no timestamp, so re-signing
the same (size, root) proves nothing; liveness comes from the witnesses' cosignature timestamps
(a witness re-cosigns old == new as a heartbeat).

Why this file is long: it is one class around one argument. The proof above (no two inconsistent
checkpoints are ever signed, even across kill -9 and several processes and hosts) spans the
writer lock, the append transaction, signing and the open-time check; every method that writes
is part of it, and split over files the argument could no longer be checked in one place. The
storage itself (tables, engines, DDL per dialect) is in ``logstore/``.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from osiris_core import note as notes
from osiris_core import tlog
from osiris_core.errors import NoteError, OsirisError, ProofError
from osiris_core.keys import Signer, Verifier
from osiris_server.logstore import LogStore, open_log_store
from osiris_server.logstore.base import LogError
from osiris_server.logstore.nodes import PointReads, walk
from osiris_server.storage.base import Tx

_T = TypeVar("_T")

MAX_ENTRY_BYTES = 65535  # tlog-tiles entry bundles are uint16-length-prefixed
COSIG_MAX_FUTURE_S = 300  # a cosignature may be at most this far ahead of the server's clock
# a served note carries the log's signature plus at most this many cosignature lines (C2SP and
# Go's sumdb/note refuse notes with more than 100 signatures)
MAX_NOTE_COSIGNATURES = notes.MAX_SIGNATURES - 1
_IN_CHUNK = 500  # names per "IN (...)" query (SQLite's variable limit is far above)
_VERIFY_CHUNK = 1000  # leaves per read in verify_storage (bounded memory on a big log)


@dataclass(frozen=True)
class AppendResult:
    """Where an entry sits; ``new`` is False when it was already in the log."""

    index: int
    leaf_hash: bytes
    new: bool


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint the log signed: ``note`` is the full signed note text."""

    size: int
    root: bytes
    note: str


def _note_text(signed: str) -> str:
    """The text of a signed note: everything up to and including the first of its last "\n\n"."""
    split = signed.rfind("\n\n")
    if split < 0:
        raise NoteError("stored checkpoint is not a signed note")
    return signed[: split + 1]


class TransparencyLog:
    """Append-only Merkle log with batched checkpoint signing; safe to share between threads."""

    def __init__(
        self,
        store: LogStore,
        signer: Signer,
        origin: str,
        interval_s: float,
        idle_s: float,
    ) -> None:
        self._store = store
        self._where = f"log database {store.describe()}"
        self._signer = signer
        self._verifier = signer.verifier()
        self._origin = origin
        self._interval = max(0.0, float(interval_s))
        self._idle = float(idle_s)
        self._write_lock = threading.Lock()  # this process's side of the single sequencer
        self._cond = threading.Condition()  # guards the fields below
        self._size = 0
        self._latest: SignedCheckpoint | None = None
        self._signing = False
        self._last_sign_mono = -math.inf
        self._opened_mono = time.monotonic()
        self._closed = False
        self.signatures = 0  # checkpoints signed by this process (for tests and metrics)
        self._frontier: list[tuple[int, bytes] | None] = []
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ------------------------------------------------------------------ open / close
    @classmethod
    def open(
        cls,
        store: LogStore | Path | str,
        signer: Signer,
        origin: str,
        *,
        interval_s: float = 1.0,
        idle_s: float = 300.0,
        full_check: bool = False,
    ) -> TransparencyLog:
        """Open (or create) the log; refuse to start on a stored tree that disagrees with its
        own latest checkpoint. ``store``: a ``LogStore`` (the log closes it), a SQLite file
        path, or a ``postgresql://`` URL. ``origin`` is also the checkpoint key name. A log
        with no checkpoint yet (a new, empty one) gets its first checkpoint signed here.

        The default check recomputes the latest checkpoint's root from the stored subtree
        hashes (O(log n)); ``full_check`` also runs :meth:`verify_storage` (O(n)), which
        catches an edited entry hidden under an unchanged interior hash."""
        if signer.name != origin:
            raise LogError(f"log key name {signer.name!r} must equal the origin {origin!r}")
        if not isinstance(store, LogStore):
            store = open_log_store(store)
        log = cls(store, signer, origin, interval_s, idle_s)
        try:
            log._init_storage()
            if full_check:
                log.verify_storage()
        except BaseException:
            log.close()
            raise
        if log._idle > 0:
            log._heartbeat = threading.Thread(
                target=log._heartbeat_loop, name="osiris-log-heartbeat", daemon=True
            )
            log._heartbeat.start()
        return log

    def _init_storage(self) -> None:
        def init(tx: Tx) -> SignedCheckpoint | None:
            row = tx.one("SELECT value FROM meta WHERE key = 'origin'")
            if row is None:
                tx.execute("INSERT INTO meta (key, value) VALUES ('origin', ?)", [self._origin])
            elif row["value"] != self._origin:
                raise LogError(
                    f"{self._where} belongs to origin {row['value']!r}, not {self._origin!r}"
                )
            if self._store.has_table(tx, "cosignatures"):
                self._migrate_cosignatures(tx)
            counts = tx.one("SELECT COUNT(*) AS n, MAX(idx) AS m FROM leaves")
            size = int(counts["n"]) if counts else 0
            if size and int(counts["m"]) != size - 1:
                raise LogError(f"{self._where} has gaps in its leaf indices; refusing")
            self._size = size
            self._load_frontier(tx, size)
            return self._check_latest(tx, size)

        with self._write_lock:
            self._latest = self._store.transact(init)
        if self._latest is None:
            # the first checkpoint (size 0 for a new log: the empty root), so that there is
            # always one to serve and a witness has a starting point. Under the write lock and
            # after a resync, like every signature: a process opening the same store at the
            # same time reuses it instead of signing another
            self._sign_current(first=True)

    @staticmethod
    def _migrate_cosignatures(tx: Tx) -> None:
        """Move a pre-``cosigners`` database's ``cosignatures`` (newest 20 per checkpoint) into
        one row per cosigner key: its row over the largest checkpoint, newest timestamp first,
        leaving out far-future timestamps as ``add_cosignature`` would now refuse them. Runs
        inside the open transaction; only old SQLite files have the table."""
        limit = int(time.time()) + COSIG_MAX_FUTURE_S
        rows = tx.query(
            "SELECT name, key_id, size, timestamp, line, received_at FROM cosignatures"
            " WHERE timestamp <= ? ORDER BY name, key_id, size DESC, timestamp DESC",
            [limit],
        )
        kept: dict[tuple[str, bytes], tuple] = {}
        for r in rows:
            kept.setdefault((r["name"], bytes(r["key_id"])), tuple(r.values()))
        if kept:
            tx.executemany(
                "INSERT INTO cosigners (name, key_id, size, timestamp, line, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, key_id) DO NOTHING",
                list(kept.values()),
            )
        tx.execute("DROP TABLE cosignatures")

    def _load_frontier(self, tx: Tx, size: int) -> None:
        """The left siblings a future append will need: one per level where the count is odd."""
        store = PointReads(tx, size)
        frontier: list[tuple[int, bytes] | None] = []
        level = 0
        while (size >> level) > 0:
            n = size >> level
            frontier.append((n - 1, store.get(level, n - 1)) if n & 1 else None)
            level += 1
        self._frontier = frontier

    def _resync(self, tx: Tx) -> None:
        """Catch up with leaves and checkpoints another process committed (several processes,
        on any number of hosts, share one log). Call inside a write transaction: under the
        writer lock the tree cannot move, so the size, frontier and latest checkpoint read here
        are exact. Caller holds ``_write_lock``."""
        max_idx = tx.scalar("SELECT MAX(idx) FROM leaves")
        size = 0 if max_idx is None else int(max_idx) + 1
        if size != self._size:
            if size < self._size:  # pragma: no cover - leaves only grow
                raise LogError("the log shrank underneath this process; refusing to continue")
            self._load_frontier(tx, size)
            with self._cond:
                self._size = size
                self._cond.notify_all()
        latest = self._latest
        top = tx.scalar("SELECT MAX(size) FROM checkpoints")
        if top is not None and (latest is None or int(top) > latest.size):
            cp = tx.one("SELECT size, root, note FROM checkpoints WHERE size = ?", [int(top)])
            with self._cond:
                if cp is not None and (self._latest is None or int(cp["size"]) > self._latest.size):
                    self._latest = SignedCheckpoint(int(cp["size"]), bytes(cp["root"]), cp["note"])
                self._cond.notify_all()

    def refresh(self) -> int:
        """Re-read the committed size (another process may have appended); returns it."""
        with self._read() as r:
            max_idx = r.scalar("SELECT MAX(idx) FROM leaves")
        size = 0 if max_idx is None else int(max_idx) + 1
        if size > self.size():
            with self._write_lock:
                self._check_open()
                self._store.transact(self._resync)  # writes nothing: an empty commit
        return self.size()

    def _check_latest(self, tx: Tx, size: int) -> SignedCheckpoint | None:
        row = tx.one("SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
        if row is None:
            return None
        cp_size, cp_root, cp_note = int(row["size"]), bytes(row["root"]), row["note"]
        where = self._where
        if cp_size > size:
            raise LogError(
                f"{where} has a signed checkpoint of size {cp_size} but only {size} leaves; "
                "leaves were lost (old backup?) — refusing to start rather than fork the log"
            )
        try:
            body = notes.Checkpoint.parse(_note_text(cp_note))
        except NoteError as exc:
            raise LogError(f"{where}: stored checkpoint {cp_size} is malformed: {exc}") from None
        if body.origin != self._origin or body.size != cp_size or body.root != cp_root:
            raise LogError(f"{where}: stored checkpoint {cp_size} does not match its note")
        try:
            recomputed = self._walk(tx, size, lambda t: t.root(cp_size))
        except (LogError, ProofError) as exc:
            raise LogError(f"{where}: cannot recompute the root of size {cp_size}: {exc}") from None
        if recomputed != cp_root:
            raise LogError(
                f"{where}: the stored tree's root for size {cp_size} differs from the signed "
                "checkpoint — the log was altered; refusing to start"
            )
        return SignedCheckpoint(cp_size, cp_root, cp_note)

    def verify_storage(self) -> None:
        """Recompute every leaf hash from its entry and every stored subtree hash from the
        leaves (O(n), read in chunks); raise ``LogError`` at the first disagreement. For audits
        and startup."""
        size = self.size()
        frontier: list[tuple[int, bytes] | None] = []
        rows: list[tuple[int, int, bytes]] = []
        expect = 0
        with self._read() as r:
            while expect < size:
                chunk = r.query(
                    "SELECT idx, leaf_hash, entry FROM leaves WHERE idx >= ? AND idx < ?"
                    " ORDER BY idx",
                    [expect, min(size, expect + _VERIFY_CHUNK)],
                )
                if not chunk:
                    break
                for leaf in chunk:
                    idx, lh = int(leaf["idx"]), bytes(leaf["leaf_hash"])
                    if idx != expect:
                        raise LogError(f"log storage has a gap at index {expect}")
                    expect += 1
                    entry = bytes(leaf["entry"])
                    # a pruned leaf (retention.py) keeps its hash, not its bytes: log_audit
                    # checks each blank entry against the index's prune records
                    if entry and tlog.leaf_hash(entry) != lh:
                        raise LogError(f"log entry {idx} does not match its stored leaf hash")
                    rows.clear()
                    self._push(frontier, idx, lh, rows)
                    for level, i, h in rows:
                        got = r.scalar(
                            "SELECT hash FROM hashes WHERE level = ? AND idx = ?", [level, i]
                        )
                        if got is None or bytes(got) != h:
                            raise LogError(f"log subtree hash at level {level} index {i} is wrong")
            if expect != size:
                raise LogError(f"log storage holds {expect} leaves, expected {size}")
            cps = r.query("SELECT size, root FROM checkpoints")
        for cp in cps:
            cp_size = int(cp["size"])
            if cp_size > size or self.root(cp_size) != bytes(cp["root"]):
                raise LogError(f"stored checkpoint {cp_size} does not match the stored tree")

    def close(self) -> None:
        """Stop the heartbeat, wake any waiters, and close the store."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5.0)
        with self._write_lock:
            self._store.close()

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    @property
    def origin(self) -> str:
        return self._origin

    @property
    def verifier(self) -> Verifier:
        """The log's public key (its vkey is what ``GET /log/keys`` publishes)."""
        return self._verifier

    @property
    def store(self) -> LogStore:
        return self._store

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the transparency log is closed")

    def _read(self):  # noqa: ANN202 - a context manager yielding a Tx
        self._check_open()
        return self._store.reading()

    def _walk(self, tx: Tx, size: int, fn: Callable[[tlog.MerkleTree], _T]) -> _T:
        return walk(tx, size, fn, batched=self._store.batch_reads)

    def _tree_size(self, size: int) -> int:
        """The committed size a proof for ``size`` is made in (refreshed if ``size`` is
        beyond what this process has seen); ``ProofError`` past the log's end."""
        committed = self.size()
        if size > committed:
            committed = self.refresh()
        if size > committed:
            raise ProofError(f"tree size {size} is beyond the log size {committed}")
        return committed

    # ------------------------------------------------------------------ append
    def append(self, entries: list[bytes]) -> list[AppendResult]:
        """Append a batch in ONE fsync'd transaction; idempotent by leaf hash.

        Returns one result per input entry, in order (a repeated entry gets the index it
        already had, ``new=False``). Nothing is acknowledged unless it is durable.
        """
        prepared: list[tuple[bytes, bytes]] = []
        for e in entries:
            if not isinstance(e, bytes | bytearray | memoryview):
                raise LogError("log entries must be bytes")
            e = bytes(e)
            if len(e) > MAX_ENTRY_BYTES:
                raise LogError(f"log entry of {len(e)} bytes exceeds {MAX_ENTRY_BYTES}")
            prepared.append((e, tlog.leaf_hash(e)))
        if not prepared:
            return []
        with self._write_lock:
            self._check_open()
            results, size, frontier = self._store.transact(lambda tx: self._append_tx(tx, prepared))
            # committed: only now does this process's view move (``_resync`` in the next write
            # transaction re-reads the store anyway, so the view is a cache, never the truth)
            if size > self._size:
                self._frontier = frontier
                with self._cond:
                    self._size = size
                    self._cond.notify_all()
        return results

    def _append_tx(
        self, tx: Tx, prepared: list[tuple[bytes, bytes]]
    ) -> tuple[list[AppendResult], int, list[tuple[int, bytes] | None]]:
        """The append transaction: under the writer lock re-read the committed tree (another
        process may have appended since we last looked), give each new leaf the next index,
        store its leaf and the subtrees it completes. Returns results, new size, frontier."""
        self._resync(tx)
        size = self._size
        frontier = list(self._frontier)
        results: list[AppendResult] = []
        batch: dict[bytes, int] = {}
        leaf_rows: list[tuple[int, bytes, bytes]] = []
        hash_rows: list[tuple[int, int, bytes]] = []
        stored = self._stored_indices(tx, {lh for _e, lh in prepared})
        for entry, lh in prepared:
            idx = batch.get(lh)
            if idx is not None:
                results.append(AppendResult(idx, lh, False))
                continue
            found = stored.get(lh)
            if found is not None:
                batch[lh] = found
                results.append(AppendResult(found, lh, False))
                continue
            idx = size
            size += 1
            batch[lh] = idx
            leaf_rows.append((idx, lh, entry))
            self._push(frontier, idx, lh, hash_rows)
            results.append(AppendResult(idx, lh, True))
        if leaf_rows:
            tx.executemany("INSERT INTO leaves (idx, leaf_hash, entry) VALUES (?, ?, ?)", leaf_rows)
            if hash_rows:
                tx.executemany("INSERT INTO hashes (level, idx, hash) VALUES (?, ?, ?)", hash_rows)
        return results, size, frontier

    @staticmethod
    def _stored_indices(tx: Tx, hashes: set[bytes]) -> dict[bytes, int]:
        """The indices of those leaf hashes already in the log (one query per ``_IN_CHUNK``,
        not one per entry: on PostgreSQL each query is a round trip inside the writer lock)."""
        found: dict[bytes, int] = {}
        ordered = sorted(hashes)
        for i in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[i : i + _IN_CHUNK]
            marks = ",".join("?" for _ in chunk)
            for row in tx.query(
                f"SELECT idx, leaf_hash FROM leaves WHERE leaf_hash IN ({marks})", chunk
            ):
                found[bytes(row["leaf_hash"])] = int(row["idx"])
        return found

    @staticmethod
    def _push(
        frontier: list[tuple[int, bytes] | None],
        idx: int,
        lh: bytes,
        rows: list[tuple[int, int, bytes]],
    ) -> None:
        """Add leaf ``idx``: record each subtree it completes; keep even nodes as left siblings."""
        level, i, h = 0, idx, lh
        while i & 1:
            left = frontier[level]
            if left is None or left[0] != i - 1:  # pragma: no cover - internal invariant
                raise LogError("log frontier is out of step with the tree")
            h = tlog.node_hash(left[1], h)
            frontier[level] = None
            level += 1
            i >>= 1
            rows.append((level, i, h))
        while len(frontier) <= level:
            frontier.append(None)
        frontier[level] = (i, h)

    # ------------------------------------------------------------------ checkpoints
    def wait_checkpoint(self, min_size: int, timeout: float = 10.0) -> SignedCheckpoint:
        """A stored, signed checkpoint with ``size >= min_size`` (batched; see module doc)."""
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise LogError("min_size must be a non-negative integer")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise LogError("the transparency log is closed")
                latest = self._latest
                if latest is not None and latest.size >= min_size:
                    return latest
                now = time.monotonic()
                if now >= deadline:
                    raise LogError(
                        f"no checkpoint of size >= {min_size} within {timeout:g} s "
                        f"(log size {self._size})"
                    )
                grown = latest is None or self._size > latest.size
                if not self._signing and grown and self._size >= min_size:
                    due = self._last_sign_mono + self._interval
                    if now >= due:
                        self._signing = True
                        break  # we are the leader
                    self._cond.wait(min(due, deadline) - now)
                else:
                    self._cond.wait(deadline - now)
        return self._lead_signing()

    def _lead_signing(self) -> SignedCheckpoint:
        """Sign the current tree (caller set ``_signing``); always release the role."""
        try:
            return self._sign_current()
        finally:
            with self._cond:
                self._signing = False
                self._cond.notify_all()

    def _sign_current(self, first: bool = False) -> SignedCheckpoint:
        """Sign the whole committed tree — read, signed and stored in one write transaction.

        The transaction holds the store's writer lock (SQLite's ``BEGIN IMMEDIATE``, or the
        log's PostgreSQL advisory lock), which every process appending to this log takes too,
        so size and root come from one frozen, durable prefix of the one leaf sequence: two
        processes can never sign checkpoints that disagree. If another process already signed
        this exact size, its checkpoint is reused (Ed25519 is deterministic, so it is the same
        note anyway). ``first``: the checkpoint signed at open, which does not delay the next
        signature by ``interval_s``."""

        def sign(tx: Tx) -> tuple[SignedCheckpoint, bool]:
            self._resync(tx)
            size = self._size
            latest = self._latest
            if latest is not None and latest.size == size:
                return latest, False
            root = self._walk(tx, size, lambda t: t.root(size))
            body = notes.Checkpoint(self._origin, size, root).body()
            signed = notes.sign_note(body, [self._signer])
            tx.execute(
                "INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
                [size, root, signed, int(time.time())],
            )
            return SignedCheckpoint(size, root, signed), True

        with self._write_lock:
            self._check_open()
            cp, new = self._store.transact(sign)
        if not new:
            return cp
        with self._cond:
            if self._latest is None or cp.size > self._latest.size:
                self._latest = cp
            if not first:
                self._last_sign_mono = time.monotonic()
            self.signatures += 1
            self._cond.notify_all()
        return cp

    def _heartbeat_loop(self) -> None:
        """Sign when the tree grew but nobody asked for a checkpoint for ``idle_s``."""
        period = min(max(self._idle / 4, 0.01), 5.0)
        while not self._stop.wait(period):
            with self._cond:
                if self._closed:
                    return
                latest = self._latest
                grown = latest is None or self._size > latest.size
                since = max(self._last_sign_mono, self._opened_mono)
                quiet = time.monotonic() - since >= self._idle
                if not (grown and quiet) or self._signing:
                    continue
                self._signing = True
            try:
                self._lead_signing()
            except OsirisError:
                pass  # closed or unreachable underneath us; the next waiter will sign
            except Exception:  # noqa: BLE001 - a storage error; the next waiter (or tick) signs
                pass

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest signed checkpoint (log signature only; see ``checkpoint_at`` for cosigs)."""
        with self._cond:
            return self._latest

    def checkpoint_at(
        self, size: int, cosigners: Collection[str] | None = None
    ) -> SignedCheckpoint | None:
        """A stored checkpoint with the cosignature lines of the cosigners whose newest
        cosignature is over it appended.

        ``cosigners``: only lines by these key names (``osiris/appliance/<id>``); None: every
        cosigner. The log knows no tenants: callers serving a note pass the names their caller
        may see. At most ``MAX_NOTE_COSIGNATURES`` lines, the newest timestamps first."""
        with self._read() as r:
            row = r.one("SELECT root, note FROM checkpoints WHERE size = ?", [size])
        if row is None:
            return None
        lines = self.cosignature_lines(size, cosigners)
        note = notes.add_signature_lines(row["note"], lines) if lines else row["note"]
        return SignedCheckpoint(int(size), bytes(row["root"]), note)

    def cosignature_lines(self, size: int, cosigners: Collection[str] | None = None) -> list[str]:
        """The stored cosignature lines over checkpoint ``size`` (see ``checkpoint_at``),
        ordered by timestamp then name."""
        sql = "SELECT name, key_id, timestamp, line FROM cosigners WHERE size = ?"
        found: list[dict] = []
        with self._read() as r:
            if cosigners is None:
                found = r.query(sql, [size])
            else:
                names = sorted(set(cosigners))
                for i in range(0, len(names), _IN_CHUNK):
                    chunk = names[i : i + _IN_CHUNK]
                    marks = ",".join("?" for _ in chunk)
                    found += r.query(f"{sql} AND name IN ({marks})", [size, *chunk])
        rows = [(x["name"], bytes(x["key_id"]), int(x["timestamp"]), x["line"]) for x in found]
        rows.sort(key=lambda r: (-r[2], r[0], r[1]))
        kept = sorted(rows[:MAX_NOTE_COSIGNATURES], key=lambda r: (r[2], r[0], r[1]))
        return [r[3] for r in kept]

    def latest_cosigned(self, names: Collection[str]) -> int | None:
        """Size of the newest checkpoint cosigned by any of these cosigner names, or None.

        An export for one clinic uses it, so that every proof is against a checkpoint the
        clinic's own appliances vouched for (the auditor's quorum), not only the MSP's log key.
        Each cosigner keeps its own newest cosignature, so nobody else's can change the answer.
        """
        best: int | None = None
        unique = sorted(set(names))
        with self._read() as r:
            for i in range(0, len(unique), _IN_CHUNK):
                chunk = unique[i : i + _IN_CHUNK]
                marks = ",".join("?" for _ in chunk)
                top = r.scalar(f"SELECT MAX(size) FROM cosigners WHERE name IN ({marks})", chunk)
                if top is not None and (best is None or int(top) > best):
                    best = int(top)
        return best

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of every stored checkpoint, ascending."""
        with self._read() as r:
            return [int(x["size"]) for x in r.query("SELECT size FROM checkpoints ORDER BY size")]

    # ------------------------------------------------------------------ reads and proofs
    def size(self) -> int:
        """Leaves durably appended."""
        with self._cond:
            return self._size

    def find(self, leaf_hash: bytes) -> int | None:
        """Index of the leaf with this leaf hash, or None."""
        with self._read() as r:
            idx = r.scalar("SELECT idx FROM leaves WHERE leaf_hash = ?", [bytes(leaf_hash)])
        return None if idx is None else int(idx)

    def entry(self, index: int) -> bytes:
        """The entry bytes exactly as appended (``LogError`` once retention pruned them: a
        blank entry under a leaf hash that is not the empty entry's)."""
        with self._read() as r:
            row = r.one("SELECT entry, leaf_hash FROM leaves WHERE idx = ?", [index])
        if row is None or index >= self.size():
            raise LogError(f"no log entry at index {index}")
        entry = bytes(row["entry"])
        if not entry and bytes(row["leaf_hash"]) != tlog.leaf_hash(b""):
            raise LogError(f"log entry {index} was pruned after its retention (it is in WORM)")
        return entry

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 audit path for leaf ``index`` in the tree of ``size``."""
        committed = self._tree_size(size)
        with self._read() as r:
            return self._walk(r, committed, lambda t: t.inclusion_proof(index, size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 consistency proof from ``old`` to ``new``."""
        committed = self._tree_size(new)
        with self._read() as r:
            return self._walk(r, committed, lambda t: t.consistency_proof(old, new))

    def root(self, size: int) -> bytes:
        """Root of the tree of ``size`` recomputed from storage."""
        committed = self._tree_size(size)
        with self._read() as r:
            return self._walk(r, committed, lambda t: t.root(size))

    def inclusion_proofs(self, indices: Sequence[int], size: int) -> list[list[bytes]]:
        """The audit paths of many leaves in the tree of ``size``, their nodes read in one
        batch (an ingest batch's receipts share most of them)."""
        committed = self._tree_size(size)
        with self._read() as r:
            return self._walk(r, committed, lambda t: [t.inclusion_proof(i, size) for i in indices])

    def tlog_proof(self, index: int, checkpoint: SignedCheckpoint) -> str:
        """A c2sp.org/tlog-proof@v1 receipt for leaf ``index`` against ``checkpoint``."""
        return self.tlog_proofs([index], checkpoint)[0]

    def tlog_proofs(self, indices: Sequence[int], checkpoint: SignedCheckpoint) -> list[str]:
        """``tlog_proof`` for each of ``indices``, read in one batch."""
        paths = self.inclusion_proofs(indices, checkpoint.size)
        return [
            notes.TlogProof(index=i, hashes=h, checkpoint=checkpoint.note).format()
            for i, h in zip(indices, paths, strict=True)
        ]

    # ------------------------------------------------------------------ cosignatures
    def add_cosignature(
        self, size: int, line: str, verifier: Verifier, now: float | None = None
    ) -> int:
        """Verify and store a cosignature line over our stored checkpoint of ``size``.

        Keeps one row per cosigner key: this line replaces the stored one when it is over a
        larger checkpoint, or over the same checkpoint with a later timestamp (otherwise it is
        verified and ignored). A timestamp more than ``COSIG_MAX_FUTURE_S`` ahead of ``now``
        (default: the server's clock) is refused. Returns the cosignature timestamp;
        ``NoteError`` if invalid, refused, or over an unknown size.
        """
        if not isinstance(line, str):
            raise NoteError("cosignature line must be text")
        text = line[:-1] if line.endswith("\n") else line
        if "\n" in text or not text.startswith(notes.SIG_PREFIX):
            raise NoteError("cosignature must be one '— <name> <base64>' line")
        name, sep, b64 = text[len(notes.SIG_PREFIX) :].partition(" ")
        if not sep or not name or not b64:
            raise NoteError("cosignature line has no name or no signature")
        try:
            blob = base64.b64decode(b64.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise NoteError("cosignature is not valid base64") from None
        if isinstance(size, bool) or not isinstance(size, int):
            raise NoteError("cosignature size must be an integer")
        with self._read() as r:
            stored = r.scalar("SELECT note FROM checkpoints WHERE size = ?", [size])
        if stored is None:
            raise NoteError(f"no checkpoint of size {size} to cosign")
        body = _note_text(stored)
        ts = notes.verify_cosignature(body, name, blob, verifier)
        if ts is None:
            raise NoteError(f"cosignature by {name} does not verify for checkpoint {size}")
        clock = time.time() if now is None else now
        if ts > clock + COSIG_MAX_FUTURE_S:
            raise NoteError(
                f"cosignature by {name} is timestamped {ts - int(clock)} s ahead of the "
                f"server's clock (at most {COSIG_MAX_FUTURE_S} s allowed)"
            )
        row = (name, bytes(blob[:4]), size, ts, text + "\n", int(clock))
        with self._write_lock:
            self._check_open()
            self._store.transact(
                lambda tx: tx.execute(
                    "INSERT INTO cosigners (name, key_id, size, timestamp, line, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (name, key_id) DO UPDATE SET"
                    " size = excluded.size, timestamp = excluded.timestamp,"
                    " line = excluded.line, received_at = excluded.received_at"
                    " WHERE excluded.size > cosigners.size"
                    " OR (excluded.size = cosigners.size"
                    " AND excluded.timestamp > cosigners.timestamp)",
                    row,
                )
            )
        return ts
