"""The durable outbox: evidence is signed, chained and queued in one fsync'd transaction.

Why this shape (DESIGN §6 "nothing acknowledged is lost"):

* :meth:`Outbox.record` reads the chain head, builds the next bundle, signs it and inserts it
  into ``evidence`` and ``outbox`` and moves the head — all inside one ``BEGIN IMMEDIATE``
  transaction that SQLite (WAL, ``synchronous=FULL``) fsyncs at commit. A kill -9 before the
  commit leaves no trace; after it, the bundle is on disk and will be sent. Two processes (the
  running agent and ``osiris-agent outbox flush``) cannot fork the chain: the write lock
  serialises them and the head is re-read inside the lock.
* Delivery is at-least-once: a bundle stays queued until the server's receipt for it has been
  verified (see ``witness.py``); a resend after a crash is harmless because the server is
  idempotent by bundle hash.
* The queue is bounded (``outbox.max_entries`` / ``max_bytes``). When full, :meth:`record` raises
  :class:`OutboxFull` instead of dropping anything already queued; the caller turns that into an
  ``outbox_full`` incident, so nothing is lost *silently*.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from osiris_core import canonical
from osiris_core.errors import OsirisError
from osiris_core.evidence import GENESIS_HASH, Chain, bundle_hash, envelope_bytes, sign_bundle
from osiris_core.keys import Signer

from .keyring import KeyRotated
from .state import StateDB

_DEPTH_KEY = "outbox_entries"
_BYTES_KEY = "outbox_bytes"


class Decommissioned(OsirisError):
    """The appliance was decommissioned: its chain is closed and nothing more is signed."""

    code = "E_DECOMMISSIONED"


class OutboxFull(OsirisError):
    """The outbox holds ``max_entries`` bundles or ``max_bytes`` bytes; nothing was recorded."""

    code = "E_OUTBOX_FULL"


@dataclass
class Pending:
    """One queued bundle as sent to the server."""

    seq: int
    bundle_hash: str
    data: bytes  # canonical envelope bytes: the log leaf data
    attempts: int
    state: str
    last_error: str | None

    @property
    def envelope(self) -> dict[str, Any]:
        return json.loads(self.data)


class Outbox:
    """The evidence chain plus the queue of bundles awaiting a verified receipt."""

    def __init__(self, db: StateDB, max_entries: int = 100_000, max_bytes: int = 1 << 30) -> None:
        self.db = db
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    # -- the chain ----------------------------------------------------------------------------

    @property
    def decommissioned(self) -> int | None:
        """The seq of the bundle that closed the chain, or None while the chain is open."""
        v = self.db.get("decommissioned")
        return int(v) if v is not None else None

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest bundle this appliance signed; (0, genesis) before any."""
        seq = int(self.db.get("chain_seq", "0") or 0)
        return seq, self.db.get("chain_head", GENESIS_HASH) or GENESIS_HASH

    def record(self, signer: Signer, appliance_id: str, **fields: Any) -> dict[str, Any]:
        """Build, sign, chain and queue one bundle in one durable transaction; return its envelope.

        Raises :class:`OutboxFull` (nothing written) when the queue is at its bound, and
        ``SchemaError`` for an invalid bundle (nothing written either). Inside the same write
        lock, before anything is written: :class:`Decommissioned` once the chain was closed,
        and :class:`~osiris_agent.keyring.KeyRotated` when ``signer`` is not the key
        ``state.db`` names (a rotation committed by another process: the caller reloads).
        """
        with self.db.tx() as conn:
            guard = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('decommissioned', 'signing_vkey')"
                ).fetchall()
            )
            if "decommissioned" in guard:
                raise Decommissioned(
                    f"this appliance was decommissioned (chain closed at seq "
                    f"{guard['decommissioned']}); no further evidence is signed"
                )
            want = guard.get("signing_vkey")
            if want is not None and want != signer.vkey:
                raise KeyRotated("the signing key was rotated; reload it before signing")
            depth, used = self._counters(conn)
            if depth >= self.max_entries:
                raise OutboxFull(f"outbox holds {depth} bundles (limit {self.max_entries})")
            seq, head = self.head()
            chain = Chain(appliance_id, seq=seq, head=head)
            bundle = chain.next(**fields)
            envelope = sign_bundle(bundle, signer)
            data = envelope_bytes(envelope)
            if used + len(data) > self.max_bytes:
                raise OutboxFull(f"outbox holds {used} bytes (limit {self.max_bytes})")
            h = chain.advance(bundle)
            conn.execute(
                "INSERT INTO evidence(seq, bundle_hash, envelope, host_id, check_id, outcome, "
                "created_at) VALUES(?, ?, ?, ?, ?, ?, ?)",
                (
                    bundle["seq"],
                    h,
                    data,
                    bundle["host_id"],
                    bundle["check"],
                    bundle["outcome"],
                    bundle["finished_at"],
                ),
            )
            conn.execute("INSERT INTO outbox(seq, size) VALUES(?, ?)", (bundle["seq"], len(data)))
            self._set_counters(depth + 1, used + len(data))
            self.db.set("chain_seq", str(chain.seq))
            self.db.set("chain_head", chain.head)
        return envelope

    # -- O(1) queue counters --------------------------------------------------------------------
    #
    # Why counters: ``record`` must know the queue's depth and bytes to enforce its bounds, and a
    # ``COUNT(*)``/``SUM(size)`` scan on every enqueue costs O(queue) — exactly when the server is
    # down and the queue is long. The counters live in ``meta`` and change in the same
    # transaction as the rows they count (insert here, delete in :meth:`ack`), so a kill -9 can
    # never separate them; a database written before the counters existed gets them from one scan.

    def _counters(self, conn: Any) -> tuple[int, int]:
        depth, used = self.db.get(_DEPTH_KEY), self.db.get(_BYTES_KEY)
        if depth is None or used is None:
            d, u = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
            return int(d), int(u)
        return int(depth), int(used)

    def _set_counters(self, depth: int, used: int) -> None:
        self.db.set(_DEPTH_KEY, str(depth))
        self.db.set(_BYTES_KEY, str(used))

    def counters(self) -> tuple[int, int]:
        """(entries, bytes) as the O(1) counters say (tests compare them with a full scan)."""
        with self.db.tx() as conn:
            return self._counters(conn)

    # -- the queue ----------------------------------------------------------------------------

    def depth(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def queued_bytes(self) -> int:
        return int(self.db.conn.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0])

    def pending(self, limit: int = 100, include_rejected: bool = False) -> list[Pending]:
        """Oldest queued bundles first (chain order, so the server sees seq without gaps)."""
        where = "" if include_rejected else "WHERE o.state = 'pending'"
        rows = self.db.conn.execute(
            "SELECT o.seq, e.bundle_hash, e.envelope, o.attempts, o.state, o.last_error "
            f"FROM outbox o JOIN evidence e ON e.seq = o.seq {where} ORDER BY o.seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [Pending(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def ack(self, seq: int, log_index: int, receipt: str) -> None:
        """Store the verified receipt and drop the entry from the queue (one transaction)."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE evidence SET log_index = ?, receipt = ?, acked_at = ? WHERE seq = ?",
                (log_index, receipt, canonical.utc_now(), seq),
            )
            depth, used = self._counters(conn)
            row = conn.execute("DELETE FROM outbox WHERE seq = ? RETURNING size", (seq,)).fetchone()
            if row is not None:  # a second ack of the same entry changes nothing
                self._set_counters(max(0, depth - 1), max(0, used - int(row[0])))

    def note_failure(self, seqs: list[int], error: str) -> None:
        """Count a failed attempt; the entries stay queued."""
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(error[:500], s) for s in seqs],
            )

    def mark_rejected(self, seq: int, error: str) -> None:
        """The server refused this bundle: keep it (never drop evidence) but stop resending it."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'rejected', attempts = attempts + 1, last_error = ? "
                "WHERE seq = ?",
                (error[:500], seq),
            )

    def requeue_rejected(self) -> int:
        """Put rejected entries back in line (a technician's ``outbox flush --retry-rejected``)."""
        with self.db.tx() as conn:
            cur = conn.execute("UPDATE outbox SET state = 'pending' WHERE state = 'rejected'")
            return cur.rowcount

    def last_receipt(self) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT seq, bundle_hash, log_index, acked_at FROM evidence "
            "WHERE receipt IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {"seq": row[0], "bundle_hash": row[1], "log_index": row[2], "acked_at": row[3]}

    def list_entries(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT o.seq, e.bundle_hash, e.host_id, e.check_id, e.outcome, e.created_at, "
            "o.attempts, o.state, o.last_error FROM outbox o JOIN evidence e ON e.seq = o.seq "
            "ORDER BY o.seq LIMIT ?",
            (limit,),
        ).fetchall()
        keys = (
            "seq",
            "bundle_hash",
            "host_id",
            "check",
            "outcome",
            "created_at",
            "attempts",
            "state",
            "last_error",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- pruning ------------------------------------------------------------------------------

    def prune(self, keep_last: int, min_age_days: int, now: datetime | None = None) -> int:
        """Delete old local bundles: only beyond the newest ``keep_last``, only older than
        ``min_age_days``, and only those with a verified receipt (the log keeps them)."""
        now = now or datetime.now(UTC)
        cutoff = canonical.format_time(now - timedelta(days=min_age_days))
        with self.db.tx() as conn:
            cur = conn.execute(
                "DELETE FROM evidence WHERE receipt IS NOT NULL AND created_at < ? "
                "AND seq NOT IN (SELECT seq FROM outbox) "
                "AND seq <= (SELECT COALESCE(MAX(seq), 0) FROM evidence) - ?",
                (cutoff, keep_last),
            )
            return cur.rowcount

    def evidence_count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM evidence").fetchone()[0])

    def envelopes(self) -> list[dict[str, Any]]:
        """Every locally kept envelope in chain order (tests, exports)."""
        rows = self.db.conn.execute("SELECT envelope FROM evidence ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]


def hash_of(data: bytes) -> str:
    """Bundle hash of canonical envelope bytes."""
    return bundle_hash(json.loads(data)["bundle"])


class Backoff:
    """Exponential backoff with full jitter and a cap (AWS "full jitter"): the n-th wait is
    uniform in ``[0, min(cap, base·2^n)]``, so a fleet that lost its server does not come back
    in lockstep, and a long outage never makes the agent wait more than ``cap`` seconds."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.failures = 0
        self.rng = rng or random.Random()

    def ceiling(self) -> float:
        return min(self.cap, self.base * (2 ** min(self.failures, 62)))

    def failure(self) -> float:
        """Record a failure and return the next wait in seconds."""
        self.failures += 1
        return self.rng.uniform(0.0, self.ceiling())

    def success(self) -> None:
        self.failures = 0
