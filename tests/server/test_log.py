"""Transparency log service on real SQLite files: proofs, batching, crashes, cosignatures."""

from __future__ import annotations

import base64
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from osiris_core import note as notes
from osiris_core import tlog
from osiris_core.errors import NoteError, ProofError
from osiris_core.keys import Signer, write_private_key
from osiris_server.log import LogError, SignedCheckpoint, TransparencyLog

ORIGIN = "cc.example.test/osiris/log"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def _open(tmp_path, signer, **kw) -> TransparencyLog:
    kw.setdefault("interval_s", 0)
    return TransparencyLog.open(tmp_path / "log.db", signer, ORIGIN, **kw)


def _entries(prefix: str, n: int) -> list[bytes]:
    return [f'{{"bundle":"{prefix}-{i}","pad":"{"x" * (i % 7)}"}}'.encode() for i in range(n)]


def _check_note(cp: SignedCheckpoint, log: TransparencyLog) -> None:
    opened = notes.open_note(cp.note, [log.verifier])
    assert opened.verified == [ORIGIN]
    body = notes.Checkpoint.parse(opened.text)
    assert (body.origin, body.size, body.root) == (ORIGIN, cp.size, cp.root)
    assert body.extensions == ()


# ------------------------------------------------------------------ append


def test_append_idempotent_and_verbatim(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        a, b = b'{"a":1}', b'{"b":2}'
        r1 = log.append([a, b, a])
        assert [r.index for r in r1] == [0, 1, 0]
        assert [r.new for r in r1] == [True, True, False]
        assert r1[0].leaf_hash == tlog.leaf_hash(a)
        assert log.size() == 2
        r2 = log.append([b, b"", a])
        assert [(r.index, r.new) for r in r2] == [(1, False), (2, True), (0, False)]
        assert log.size() == 3
        assert log.entry(0) == a and log.entry(1) == b and log.entry(2) == b""
        assert log.find(tlog.leaf_hash(b)) == 1
        assert log.find(tlog.leaf_hash(b"missing")) is None
        assert log.append([]) == []
        with pytest.raises(LogError):
            log.entry(3)
        with pytest.raises(LogError):
            log.append(["not bytes"])  # type: ignore[list-item]
        with pytest.raises(LogError):
            log.append([b"x" * 65536])
        assert log.size() == 3
    finally:
        log.close()
    with sqlite3.connect(tmp_path / "log.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM leaves").fetchone()[0] == 3


def test_proofs_match_independent_tree(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        data: list[bytes] = []
        rng = random.Random(7)
        while len(data) < 45:
            batch = _entries(f"p{len(data)}", rng.randint(1, 6))
            log.append(batch)
            data.extend(batch)
        hashes = [tlog.leaf_hash(d) for d in data]
        n = len(data)
        assert log.size() == n
        for size in range(1, n + 1):
            root = tlog.root_from_leaf_hashes(hashes[:size])
            assert log.root(size) == root
            for index in range(size):
                proof = log.inclusion_proof(index, size)
                tlog.verify_inclusion(hashes[index], index, size, proof, root)
            for old in range(0, size + 1):
                proof = log.consistency_proof(old, size)
                tlog.verify_consistency(
                    old, size, tlog.root_from_leaf_hashes(hashes[:old]), root, proof
                )
        # a flipped proof hash fails
        proof = log.inclusion_proof(5, n)
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
        with pytest.raises(ProofError):
            tlog.verify_inclusion(hashes[5], 5, n, proof, log.root(n))
        with pytest.raises(ProofError):
            log.inclusion_proof(0, n + 1)
        # checkpoint + receipt
        cp = log.wait_checkpoint(n)
        assert cp.size == n and cp.root == tlog.root_from_leaf_hashes(hashes)
        _check_note(cp, log)
        receipt = notes.TlogProof.parse(log.tlog_proof(17, cp))
        assert receipt.index == 17 and receipt.checkpoint == cp.note
        body = notes.Checkpoint.parse(notes.open_note(receipt.checkpoint, [log.verifier]).text)
        tlog.verify_inclusion(hashes[17], 17, body.size, receipt.hashes, body.root)
    finally:
        log.close()


def test_every_pair_of_checkpoints_consistent(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        for i in range(25):
            res = log.append(_entries(f"c{i}", 1 + i % 4))
            cp = log.wait_checkpoint(res[-1].index + 1)
            assert cp.size == log.size()
        sizes = log.checkpoint_sizes()
        assert len(sizes) == 26 and sizes[0] == 0  # the size-0 checkpoint signed at open
        cps = [log.checkpoint_at(s) for s in sizes]
        for cp in cps:
            _check_note(cp, log)
        for i, a in enumerate(cps):
            for b in cps[i:]:
                proof = log.consistency_proof(a.size, b.size)
                tlog.verify_consistency(a.size, b.size, a.root, b.root, proof)
        assert log.checkpoint_at(sizes[0] + 1) is None or sizes[0] + 1 in sizes
        assert log.latest_checkpoint() == cps[-1]
    finally:
        log.close()


def test_reopen_continues_tree_at_every_frontier_shape(tmp_path, signer):
    data: list[bytes] = []
    for round_ in range(12):
        log = _open(tmp_path, signer)
        try:
            assert log.size() == len(data)
            if data:
                prev = log.latest_checkpoint()
                assert prev is not None and prev.size == len(data)
            batch = _entries(f"r{round_}", round_ % 5 + 1)
            log.append(batch)
            data.extend(batch)
            cp = log.wait_checkpoint(len(data))
            assert cp.root == tlog.root_from_leaf_hashes([tlog.leaf_hash(d) for d in data])
        finally:
            log.close()


def test_wait_timeout_and_closed(tmp_path, signer):
    log = _open(tmp_path, signer)
    log.append([b"one"])
    t0 = time.monotonic()
    with pytest.raises(LogError):
        log.wait_checkpoint(5, timeout=0.2)
    assert time.monotonic() - t0 < 2
    assert log.wait_checkpoint(0).size == 0  # the size-0 checkpoint signed at open
    assert log.wait_checkpoint(1).size == 1
    log.close()
    with pytest.raises(LogError):
        log.append([b"two"])
    with pytest.raises(LogError):
        log.wait_checkpoint(1)


# ------------------------------------------------------------------ batching


def test_concurrent_appends_share_signatures(tmp_path, signer):
    log = _open(tmp_path, signer, interval_s=0.05)
    threads, rounds, per = 16, 12, 5
    receipts: list[tuple[bytes, int, SignedCheckpoint]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                batch = _entries(f"t{t}-r{r}", per)
                res = log.append(batch)
                cp = log.wait_checkpoint(max(x.index for x in res) + 1)
                with lock:
                    receipts.extend((x.leaf_hash, x.index, cp) for x in res)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    try:
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        elapsed = time.monotonic() - t0
        assert not errors, errors
        waits = threads * rounds
        assert len(receipts) == waits * per
        assert log.size() == waits * per
        stored = len(log.checkpoint_sizes())
        assert stored == log.signatures
        # 192 waits shared far fewer signatures: at most one per interval_s of run time
        assert log.signatures <= elapsed / 0.05 + 2, (log.signatures, elapsed)
        assert log.signatures <= waits // 2, (log.signatures, waits)
        seen_notes = {}
        for lh, index, cp in receipts:
            assert index < cp.size
            if cp.note not in seen_notes:
                _check_note(cp, log)
                seen_notes[cp.note] = True
            tlog.verify_inclusion(lh, index, cp.size, log.inclusion_proof(index, cp.size), cp.root)
        print(f"{waits} waits, {log.signatures} signatures in {elapsed:.2f} s")
    finally:
        log.close()


def test_idle_heartbeat_signs_growth_only(tmp_path, signer):
    log = _open(tmp_path, signer, interval_s=1.0, idle_s=0.1)
    try:
        log.append(_entries("idle", 3))
        deadline = time.monotonic() + 30
        while (log.latest_checkpoint() is None or log.latest_checkpoint().size < 3) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        cp = log.latest_checkpoint()
        assert cp is not None and cp.size == 3
        _check_note(cp, log)
        count = log.signatures
        time.sleep(0.4)  # idle, no growth: no re-sign
        assert log.signatures == count
    finally:
        log.close()


# ------------------------------------------------------------------ refusal to start


def test_open_refuses_tampered_or_foreign_db(tmp_path, signer):
    log = _open(tmp_path, signer)
    log.append(_entries("t", 9))
    log.wait_checkpoint(9)
    log.close()
    db_path = tmp_path / "log.db"

    with pytest.raises(LogError):
        TransparencyLog.open(db_path, Signer.generate("other/osiris/log"), "other/osiris/log")
    with pytest.raises(LogError):
        TransparencyLog.open(db_path, signer, "other/osiris/log")  # key name != origin

    backup = db_path.read_bytes()

    def restore() -> None:
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"log.db{suffix}").unlink(missing_ok=True)
        db_path.write_bytes(backup)

    def tamper(sql: str, *args) -> None:
        restore()
        db = sqlite3.connect(db_path)
        with db:
            db.execute(sql, args)
        db.close()

    # the right edge (leaf 8 of 9) is read by the O(log n) start-up check
    tamper("UPDATE leaves SET leaf_hash = ? WHERE idx = 8", tlog.leaf_hash(b"forged"))
    with pytest.raises(LogError, match="differs"):
        _open(tmp_path, signer)
    # an interior leaf hides under the level-3 hash: only the full check sees it
    tamper("UPDATE leaves SET entry = ? WHERE idx = 4", b"forged")
    _open(tmp_path, signer).close()
    with pytest.raises(LogError, match="entry 4"):
        _open(tmp_path, signer, full_check=True)
    tamper("UPDATE leaves SET leaf_hash = ?, entry = ? WHERE idx = 4", tlog.leaf_hash(b"f"), b"f")
    with pytest.raises(LogError, match="level 1"):
        _open(tmp_path, signer, full_check=True)
    tamper("UPDATE hashes SET hash = ? WHERE level = 3 AND idx = 0", b"\x00" * 32)
    with pytest.raises(LogError):
        _open(tmp_path, signer)
    tamper("DELETE FROM leaves WHERE idx >= 7")
    with pytest.raises(LogError, match="lost"):
        _open(tmp_path, signer)
    tamper("DELETE FROM hashes WHERE level = 1")
    log = _open(tmp_path, signer)  # not on the O(log n) path ...
    with pytest.raises(LogError):
        log.inclusion_proof(2, 9)  # ... but no proof is ever made from missing rows
    log.close()
    with pytest.raises(LogError, match="level 1"):
        _open(tmp_path, signer, full_check=True)
    restore()
    _open(tmp_path, signer, full_check=True).close()


# ------------------------------------------------------------------ crash safety

CHILD = r"""
import base64, sys
from pathlib import Path
from osiris_core.keys import load_private_key
from osiris_server.log import TransparencyLog

db, keyfile, origin, trial = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
log = TransparencyLog.open(Path(db), load_private_key(keyfile), origin, interval_s=0, idle_s=0)
out = sys.stdout
out.write("READY\n"); out.flush()
i = 0
while True:
    batch = [f"trial{trial}-e{i + k}".encode() for k in range(1 + i % 3)]
    if i % 5 == 0 and i:
        batch.append(f"trial{trial}-e0".encode())  # a retry: must stay idempotent
    i += len(batch)
    res = log.append(batch)
    out.write("".join(f"A {r.index} {r.leaf_hash.hex()} {base64.b64encode(e).decode()}\n"
                      for r, e in zip(res, batch)))
    out.flush()
    if i % 2 == 0:
        cp = log.wait_checkpoint(max(r.index for r in res) + 1)
        out.write("C " + base64.b64encode(cp.note.encode()).decode() + "\n")
        out.flush()
"""


def test_kill_9_loses_nothing_acknowledged(tmp_path, signer):
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    keyfile = tmp_path / "log.key"
    write_private_key(keyfile, signer)
    db_path = tmp_path / "log.db"
    rng = random.Random(1234)
    acked: dict[int, tuple[bytes, bytes]] = {}
    signed: list[str] = []
    trials = 22
    for trial in range(trials):
        proc = subprocess.Popen(
            [sys.executable, str(child), str(db_path), str(keyfile), ORIGIN, str(trial)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline() == "READY\n", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.12))
        os.kill(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        for line in out.split("\n")[:-1]:  # the part after the last newline may be torn
            kind, _, rest = line.partition(" ")
            if kind == "A":
                parts = rest.split(" ")
                if len(parts) != 3:
                    continue
                idx, lh = int(parts[0]), bytes.fromhex(parts[1])
                entry = base64.b64decode(parts[2])
                if idx in acked:
                    assert acked[idx] == (lh, entry)  # same index, same leaf, across retries
                acked[idx] = (lh, entry)
            elif kind == "C":
                try:
                    signed.append(base64.b64decode(rest, validate=True).decode())
                except ValueError:
                    continue  # torn line

        log = TransparencyLog.open(db_path, signer, ORIGIN, interval_s=0, idle_s=0)
        try:
            for idx, (lh, entry) in acked.items():
                assert log.find(lh) == idx
                assert log.entry(idx) == entry
            latest = log.wait_checkpoint(log.size()) if log.size() else None
            for text in signed:
                opened = notes.open_note(text, [log.verifier])
                cp = notes.Checkpoint.parse(opened.text)
                assert log.root(cp.size) == cp.root
                if latest is not None:
                    tlog.verify_consistency(
                        cp.size,
                        latest.size,
                        cp.root,
                        latest.root,
                        log.consistency_proof(cp.size, latest.size),
                    )
            sizes = log.checkpoint_sizes()
            for a, b in zip(sizes, sizes[1:], strict=False):
                ca, cb = log.checkpoint_at(a), log.checkpoint_at(b)
                tlog.verify_consistency(a, b, ca.root, cb.root, log.consistency_proof(a, b))
        finally:
            log.close()
    assert len(acked) > trials  # the child made real progress before most kills
    assert len(signed) > trials // 2
    print(f"{trials} kills: {len(acked)} acknowledged entries, {len(signed)} checkpoints seen")


# ------------------------------------------------------------------ cosignatures


def test_cosignatures_accept_reject_and_keep_latest(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        log.append(_entries("w", 3))
        cp3 = log.wait_checkpoint(3)
        log.append(_entries("w2", 2))
        cp5 = log.wait_checkpoint(5)
        body3 = notes.open_note(cp3.note, [log.verifier]).text
        body5 = notes.open_note(cp5.note, [log.verifier]).text
        witness = Signer.generate("osiris/appliance/ap1", key_type=0x04)
        wv = witness.verifier()

        line = notes.cosign(body3, witness, 1_700_000_000)
        assert log.add_cosignature(3, line, wv) == 1_700_000_000
        got = log.checkpoint_at(3)
        assert line in got.note
        opened = notes.open_note(got.note, [log.verifier, wv])
        assert set(opened.verified) == {ORIGIN, "osiris/appliance/ap1"}
        assert opened.timestamps["osiris/appliance/ap1"] == 1_700_000_000
        assert log.checkpoint_at(5).note == cp5.note  # untouched

        # bad signature
        name, b64 = line.rstrip("\n")[2:].split(" ")
        blob = bytearray(base64.b64decode(b64))
        blob[-1] ^= 1
        with pytest.raises(NoteError):
            log.add_cosignature(3, f"— {name} {base64.b64encode(bytes(blob)).decode()}\n", wv)
        # unknown size, and a cosignature of another checkpoint
        with pytest.raises(NoteError):
            log.add_cosignature(4, line, wv)
        with pytest.raises(NoteError):
            log.add_cosignature(5, line, wv)
        # wrong key: another witness's verifier, and a note (0x01) key
        other = Signer.generate("osiris/appliance/ap1", key_type=0x04)
        with pytest.raises(NoteError):
            log.add_cosignature(3, line, other.verifier())
        with pytest.raises(NoteError):
            log.add_cosignature(3, line, log.verifier)
        for garbage in ("", "— x", "no dash line", "— a !!!\n", line + line):
            with pytest.raises(NoteError):
                log.add_cosignature(3, garbage, wv)

        # newer re-cosignature replaces, older is ignored
        newer = notes.cosign(body3, witness, 1_700_000_100)
        log.add_cosignature(3, newer, wv)
        older = notes.cosign(body3, witness, 1_699_999_000)
        log.add_cosignature(3, older, wv)
        note3 = log.checkpoint_at(3).note
        assert newer in note3 and line not in note3 and older not in note3

        # one row per cosigner: cosigning a larger checkpoint moves the line there (even with an
        # older timestamp: a larger tree is newer news), and a smaller one never moves it back
        on5 = notes.cosign(body5, witness, 1_700_000_050)
        log.add_cosignature(5, on5, wv)
        assert on5 in log.checkpoint_at(5).note
        assert "osiris/appliance/ap1" not in log.checkpoint_at(3).note
        log.add_cosignature(3, notes.cosign(body3, witness, 1_700_000_900), wv)
        assert (
            on5 in log.checkpoint_at(5).note and log.latest_cosigned(["osiris/appliance/ap1"]) == 5
        )

        # no shared cap: every cosigner keeps its line, however many others cosign
        for i in range(30):
            w = Signer.generate(f"osiris/appliance/x{i}", key_type=0x04)
            log.add_cosignature(5, notes.cosign(body5, w, 1_700_000_000 + i), w.verifier())
        note5 = log.checkpoint_at(5).note
        lines5 = [ln for ln in note5.splitlines() if ln.startswith("— osiris/appliance/")]
        assert len(lines5) == 31 and on5.rstrip("\n") in lines5
        # the caller's view: only the names asked for
        mine = log.checkpoint_at(5, cosigners={"osiris/appliance/x3", "osiris/appliance/nobody"})
        assert [
            ln.split(" ")[1] for ln in mine.note.splitlines() if ln.startswith("— osiris/")
        ] == ["osiris/appliance/x3"]
        assert log.checkpoint_at(5, cosigners=set()).note == cp5.note
        assert log.latest_cosigned(["osiris/appliance/x7", "osiris/appliance/ap1"]) == 5
        assert log.latest_cosigned(["osiris/appliance/nobody"]) is None
        assert log.latest_cosigned([]) is None
    finally:
        log.close()


def test_far_future_cosignatures_are_refused_and_not_stored(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        log.append(_entries("f", 2))
        cp = log.wait_checkpoint(2)
        body = notes.open_note(cp.note, [log.verifier]).text
        w = Signer.generate("osiris/appliance/ap-future", key_type=0x04)
        now = 1_800_000_000
        # up to 300 s ahead is clock skew, accepted
        ok = notes.cosign(body, w, now + 300)
        assert log.add_cosignature(2, ok, w.verifier(), now=now) == now + 300
        # 301 s ahead: refused, and it does not replace the stored line
        ahead = notes.cosign(body, w, now + 301)
        with pytest.raises(NoteError, match="ahead of the server"):
            log.add_cosignature(2, ahead, w.verifier(), now=now)
        far = notes.cosign(body, w, 2**62)
        with pytest.raises(NoteError):
            log.add_cosignature(2, far, w.verifier())
        note2 = log.checkpoint_at(2).note
        assert ok in note2 and ahead not in note2 and far not in note2
        with sqlite3.connect(tmp_path / "log.db") as db:
            rows = db.execute("SELECT name, timestamp FROM cosigners").fetchall()
        assert rows == [("osiris/appliance/ap-future", now + 300)]
    finally:
        log.close()


def test_served_note_stays_a_valid_note_with_many_cosigners(tmp_path, signer):
    """Go's sumdb/note (and ours) refuse more than 100 signatures: a note carries the log's
    plus the newest 99 cosignatures, whatever is stored."""
    log = _open(tmp_path, signer)
    try:
        log.append(_entries("m", 1))
        cp = log.wait_checkpoint(1)
        body = notes.open_note(cp.note, [log.verifier]).text
        witnesses = [Signer.generate(f"osiris/appliance/m{i}", key_type=0x04) for i in range(120)]
        for i, w in enumerate(witnesses):
            log.add_cosignature(1, notes.cosign(body, w, 1_700_000_000 + i), w.verifier())
        note = log.checkpoint_at(1).note
        opened = notes.open_note(note, [log.verifier, *(w.verifier() for w in witnesses)])
        assert len(opened.signatures) == notes.MAX_SIGNATURES
        assert "osiris/appliance/m119" in opened.verified  # the newest are kept
        assert "osiris/appliance/m0" not in opened.verified
        # every cosigner is still stored, and a narrower view shows the older ones
        assert log.latest_cosigned(["osiris/appliance/m0"]) == 1
        assert "osiris/appliance/m0 " in log.checkpoint_at(1, ["osiris/appliance/m0"]).note
    finally:
        log.close()


def test_empty_log_publishes_the_size_0_checkpoint(tmp_path, signer):
    log = _open(tmp_path, signer)
    try:
        cp = log.latest_checkpoint()
        assert cp is not None and cp.size == 0 and cp.root == tlog.EMPTY_ROOT
        _check_note(cp, log)
        assert log.checkpoint_sizes() == [0] and log.signatures == 1
        assert log.checkpoint_at(0).note == cp.note
        # the first real checkpoint is not delayed by the signing interval, and is consistent
        log.append(_entries("g", 3))
        cp3 = log.wait_checkpoint(3, timeout=2)
        tlog.verify_consistency(0, 3, cp.root, cp3.root, log.consistency_proof(0, 3))
    finally:
        log.close()
    # reopening signs nothing new (the stored checkpoints are kept and checked)
    log = _open(tmp_path, signer)
    try:
        assert log.checkpoint_sizes() == [0, 3] and log.signatures == 0
    finally:
        log.close()
    # a second process opening the same new file at once reuses the size-0 checkpoint
    other = tmp_path / "other"
    other.mkdir()
    a = TransparencyLog.open(other / "log.db", signer, ORIGIN, interval_s=0, idle_s=0)
    b = TransparencyLog.open(other / "log.db", signer, ORIGIN, interval_s=0, idle_s=0)
    try:
        assert a.checkpoint_sizes() == [0] == b.checkpoint_sizes()
        assert a.latest_checkpoint().note == b.latest_checkpoint().note
    finally:
        a.close()
        b.close()


def test_old_cosignature_table_is_migrated(tmp_path, signer):
    """A log database written before per-cosigner storage (``cosignatures``: newest 20 per
    checkpoint) still opens; each cosigner's newest line moves over, far-future ones do not."""
    log = _open(tmp_path, signer)
    try:
        log.append(_entries("o", 2))
        cp2 = log.wait_checkpoint(2)
        log.append(_entries("o2", 2))
        cp4 = log.wait_checkpoint(4)
    finally:
        log.close()
    body2 = notes.open_note(cp2.note, [signer.verifier()]).text
    body4 = notes.open_note(cp4.note, [signer.verifier()]).text
    a = Signer.generate("osiris/appliance/old-a", key_type=0x04)
    b = Signer.generate("osiris/appliance/old-b", key_type=0x04)
    evil = Signer.generate("osiris/appliance/old-evil", key_type=0x04)
    now = int(time.time())
    rows = [
        (2, a, body2, now - 100),
        (4, a, body4, now - 200),  # a's newest: the larger checkpoint
        (2, b, body2, now - 50),
        (4, evil, body4, now + 10**9),  # an eviction attempt from before: not carried over
    ]
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute("DROP TABLE cosigners")
        db.execute(
            "CREATE TABLE cosignatures (size INTEGER NOT NULL, name TEXT NOT NULL,"
            " key_id BLOB NOT NULL, timestamp INTEGER NOT NULL, line TEXT NOT NULL,"
            " received_at INTEGER NOT NULL, PRIMARY KEY (size, name, key_id))"
        )
        for size, w, body, ts in rows:
            db.execute(
                "INSERT INTO cosignatures VALUES (?, ?, ?, ?, ?, ?)",
                (size, w.name, w.key_id, ts, notes.cosign(body, w, ts), now),
            )
    log = _open(tmp_path, signer)
    try:
        assert log.latest_cosigned([a.name]) == 4
        assert log.latest_cosigned([b.name]) == 2
        assert log.latest_cosigned([evil.name]) is None
        opened = notes.open_note(log.checkpoint_at(4).note, [log.verifier, a.verifier()])
        assert opened.timestamps == {a.name: now - 200}
        assert b.name in log.checkpoint_at(2).note and a.name not in log.checkpoint_at(2).note
    finally:
        log.close()
    with sqlite3.connect(tmp_path / "log.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "cosignatures" not in tables and "cosigners" in tables
