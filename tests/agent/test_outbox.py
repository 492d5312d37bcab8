"""The durable outbox on a real SQLite file: chain + queue in one transaction, bounds, pruning."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from osiris_agent.outbox import Backoff, Outbox, OutboxFull
from osiris_agent.state import StateDB
from osiris_core.evidence import GENESIS_HASH, bundle_hash, verify_envelope
from osiris_core.keys import Signer, appliance_key_name

APP = "app-1"


def _fields(i: int = 0) -> dict:
    return {"site_id": "site-1", "host_id": "h1", "check": "timesync", "outcome": "compliant",
            "action_taken": f"run {i}"}  # fmt: skip


@pytest.fixture()
def signer() -> Signer:
    return Signer.generate(appliance_key_name(APP))


def test_record_chains_signs_and_survives_reopen(tmp_path, signer) -> None:
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db)
    envs = [ob.record(signer, APP, **_fields(i)) for i in range(5)]
    db.close()
    # A fresh connection (another process would see the same): everything is on disk.
    db2 = StateDB.open_dir(tmp_path)
    ob2 = Outbox(db2)
    assert ob2.depth() == 5
    assert db2.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    prev = GENESIS_HASH
    for i, (env, p) in enumerate(zip(envs, ob2.pending(100), strict=True), start=1):
        verify_envelope(env, {signer.key_id_hex: signer.verifier()})
        assert env["bundle"]["seq"] == i and env["bundle"]["prev_hash"] == prev
        assert p.bundle_hash == bundle_hash(env["bundle"]) and p.envelope == env
        prev = p.bundle_hash
    assert ob2.head() == (5, prev)


def test_synchronous_full_is_set(tmp_path) -> None:
    db = StateDB.open_dir(tmp_path)
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_ack_removes_only_that_entry_and_keeps_receipt(tmp_path, signer) -> None:
    ob = Outbox(StateDB.open_dir(tmp_path))
    for i in range(3):
        ob.record(signer, APP, **_fields(i))
    first = ob.pending(1)[0]
    ob.ack(first.seq, 0, "receipt-text")
    assert ob.depth() == 2
    assert ob.last_receipt()["seq"] == first.seq
    assert [p.seq for p in ob.pending()] == [2, 3]


def test_full_outbox_refuses_without_dropping_or_advancing(tmp_path, signer) -> None:
    ob = Outbox(StateDB.open_dir(tmp_path), max_entries=3)
    for i in range(3):
        ob.record(signer, APP, **_fields(i))
    head = ob.head()
    with pytest.raises(OutboxFull):
        ob.record(signer, APP, **_fields(9))
    assert ob.depth() == 3 and ob.head() == head
    ob.ack(1, 0, "r")
    ob.record(signer, APP, **_fields(10))  # room again; chain continues from the same head
    assert ob.head()[0] == 4


def test_byte_bound(tmp_path, signer) -> None:
    ob = Outbox(StateDB.open_dir(tmp_path), max_bytes=3000)
    with pytest.raises(OutboxFull):
        for i in range(100):
            ob.record(signer, APP, **_fields(i))
    assert 0 < ob.queued_bytes() <= 3000


def test_failed_transaction_leaves_nothing(tmp_path, signer) -> None:
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db)
    ob.record(signer, APP, **_fields())
    with pytest.raises(sqlite3.IntegrityError):
        with db.tx():
            ob.record(signer, APP, **_fields(1))
            db.conn.execute("INSERT INTO outbox(seq, size) VALUES(1, 1)")  # duplicate PK
    assert ob.depth() == 1 and ob.head()[0] == 1


def test_prune_policy(tmp_path, signer) -> None:
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db)
    for i in range(10):
        ob.record(signer, APP, **_fields(i))
    for s in range(1, 9):  # 9 and 10 have no receipt
        ob.ack(s, s, "r")
    now = datetime.now(UTC)
    assert ob.prune(keep_last=2, min_age_days=1, now=now) == 0  # all too young
    later = now + timedelta(days=2)
    assert ob.prune(keep_last=3, min_age_days=1, now=later) == 7  # keep 8..10
    seqs = [r[0] for r in db.conn.execute("SELECT seq FROM evidence ORDER BY seq")]
    assert seqs == [8, 9, 10]
    assert ob.prune(keep_last=0, min_age_days=0, now=later) == 1  # 9, 10 lack receipts
    assert [r[0] for r in db.conn.execute("SELECT seq FROM evidence ORDER BY seq")] == [9, 10]


def test_backoff_full_jitter_and_cap() -> None:
    b = Backoff(base=1.0, cap=300.0, rng=random.Random(1))
    waits = [b.failure() for _ in range(40)]
    assert all(0 <= w <= 300 for w in waits)
    assert b.ceiling() == 300
    assert max(waits[:3]) <= 8
    assert max(waits[-20:]) > 30  # it really grows
    b.success()
    assert b.ceiling() == 1.0


def _scan(ob: Outbox) -> tuple[int, int]:
    return ob.depth(), ob.queued_bytes()


def test_counters_follow_every_change_and_survive_reopen(tmp_path, signer) -> None:
    """The O(1) counters equal a full scan after any mix of record/ack/reject/requeue/prune,
    a rolled-back transaction, and a reopen."""
    rng = random.Random(7)
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db)
    for i in range(60):
        op = rng.random()
        if op < 0.55 or not ob.pending(include_rejected=True):
            ob.record(signer, APP, **_fields(i))
        elif op < 0.8:
            p = rng.choice(ob.pending(include_rejected=True))
            ob.ack(p.seq, i, f"r{i}")
            ob.ack(p.seq, i, f"r{i}")  # a repeated ack changes nothing
        elif op < 0.9:
            if ob.pending():
                ob.mark_rejected(ob.pending()[0].seq, "nope")
        else:
            ob.requeue_rejected()
        assert ob.counters() == _scan(ob), f"step {i}"
    with pytest.raises(RuntimeError), db.tx():
        ob.record(signer, APP, **_fields(99))
        raise RuntimeError("crash after the enqueue, before the commit")  # rolled back
    assert ob.counters() == _scan(ob)
    ob.prune(0, 0, datetime.now(UTC) + timedelta(days=1))
    assert ob.counters() == _scan(ob) and ob.depth() > 0
    db.close()
    again = Outbox(StateDB.open_dir(tmp_path))
    assert again.counters() == _scan(again)


def test_enqueue_does_not_scan_the_queue(tmp_path, signer) -> None:
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db, max_entries=1000)
    for i in range(5):
        ob.record(signer, APP, **_fields(i))
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        ob.record(signer, APP, **_fields(5))
    finally:
        db.conn.set_trace_callback(None)
    assert any("INSERT INTO outbox" in q for q in seen)
    scans = [q for q in seen if "FROM outbox" in q or "COUNT(" in q.upper()]
    assert scans == [], scans


def test_counters_are_initialised_from_an_older_database(tmp_path, signer) -> None:
    """A state.db written before the counters existed: the first record counts once."""
    db = StateDB.open_dir(tmp_path)
    ob = Outbox(db, max_entries=4)
    for i in range(3):
        ob.record(signer, APP, **_fields(i))
    with db.tx():
        db.delete("outbox_entries")
        db.delete("outbox_bytes")
    ob.record(signer, APP, **_fields(3))
    assert ob.counters() == _scan(ob) and ob.depth() == 4
    with pytest.raises(OutboxFull):
        ob.record(signer, APP, **_fields(4))
