"""The log's storage interface on both engines: the same log logic on SQLite (``log.db``) and
on PostgreSQL (schema ``osiris_log``), and the one-sequencer rule across real processes.

Every test runs on both engines (``engine`` is parametrised; the PostgreSQL half uses the
session's throwaway cluster and is skipped only where PostgreSQL is not installed and not
required). The sequencer test starts real subprocesses that open the same log at the same time
(the same ``log.db`` file, or the same PostgreSQL database) and append and sign concurrently.
What only PostgreSQL has (its lock, its isolation, a lost session, kill -9 of a session
mid-append) is in ``test_sequencer_pg.py``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from osiris_core import note as notes
from osiris_core import tlog
from osiris_core.errors import ProofError
from osiris_core.keys import Signer, Verifier, write_private_key
from osiris_server.log import LogError, TransparencyLog
from osiris_server.logstore import LOG_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "store.example.test/osiris/log"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the log lives: a SQLite file path, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "log.db")
    return request.getfixturevalue("pg_url")


def _sql(target: str, statement: str, params: tuple = ()) -> list[tuple]:
    """Reach around the log, as an attacker or a bad restore would (never through the store)."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {LOG_SCHEMA}")
            cur = conn.execute(statement.replace("?", "%s"), params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    db = sqlite3.connect(target)
    try:
        with db:
            return db.execute(statement, params).fetchall()
    finally:
        db.close()


def _open(target: str, signer: Signer, **kw: Any) -> TransparencyLog:
    kw.setdefault("interval_s", 0)
    kw.setdefault("idle_s", 0)
    return TransparencyLog.open(target, signer, ORIGIN, **kw)


def _entries(prefix: str, n: int) -> list[bytes]:
    return [f'{{"bundle":"{prefix}-{i}"}}'.encode() for i in range(n)]


# ------------------------------------------------------------------ the interface, both engines


def test_append_is_idempotent_by_leaf_hash_and_proofs_verify(target: str, signer: Signer) -> None:
    log = _open(target, signer)
    try:
        assert log.checkpoint_sizes() == [0]  # the size-0 checkpoint of a new log
        a, b = b'{"a":1}', b'{"b":2}'
        first = log.append([a, b, a])
        assert [(r.index, r.new) for r in first] == [(0, True), (1, True), (0, False)]
        again = log.append([b, b"", a])
        assert [(r.index, r.new) for r in again] == [(1, False), (2, True), (0, False)]
        assert log.size() == 3 and log.entry(2) == b"" and log.find(tlog.leaf_hash(b)) == 1
        data = [a, b, b""]
        rng = random.Random(3)
        checkpoints = [log.wait_checkpoint(3)]
        while len(data) < 40:
            batch = _entries(f"p{len(data)}", rng.randint(1, 5))
            log.append(batch + batch[:1])  # a repeat inside the batch stays one leaf
            data += batch
            checkpoints.append(log.wait_checkpoint(len(data)))
        hashes = [tlog.leaf_hash(d) for d in data]
        assert log.size() == len(data) == len(set(hashes))
        for size in (1, 2, 7, 16, 17, len(data)):
            root = tlog.root_from_leaf_hashes(hashes[:size])
            assert log.root(size) == root
            for index in range(size):
                tlog.verify_inclusion(
                    hashes[index], index, size, log.inclusion_proof(index, size), root
                )
        for old, new in zip(checkpoints, checkpoints[1:], strict=False):
            tlog.verify_consistency(
                old.size, new.size, old.root, new.root, log.consistency_proof(old.size, new.size)
            )
        cp = checkpoints[-1]
        batch = [0, 11, 12, 39, 11]  # one batched read, the same paths as one by one
        assert log.inclusion_proofs(batch, cp.size) == [
            log.inclusion_proof(i, cp.size) for i in batch
        ]
        assert log.tlog_proofs(batch, cp) == [log.tlog_proof(i, cp) for i in batch]
        with pytest.raises(ProofError):
            log.inclusion_proofs([0, cp.size], cp.size)
        receipt = notes.TlogProof.parse(log.tlog_proof(11, cp))
        body = notes.Checkpoint.parse(notes.open_note(receipt.checkpoint, [log.verifier]).text)
        tlog.verify_inclusion(hashes[11], 11, body.size, receipt.hashes, body.root)
        # cosignatures go through the same store
        witness = Signer.generate("osiris/appliance/ap-store", key_type=0x04)
        text = notes.open_note(cp.note, [log.verifier]).text
        ts = int(time.time())
        assert log.add_cosignature(cp.size, notes.cosign(text, witness, ts), witness.verifier())
        assert log.latest_cosigned([witness.name]) == cp.size
        assert witness.name in log.checkpoint_at(cp.size).note
        log.verify_storage()
    finally:
        log.close()
    with pytest.raises(LogError):
        log.append([b"closed"])


def test_reopen_checks_the_root_and_refuses_an_altered_store(target: str, signer: Signer) -> None:
    log = _open(target, signer)
    log.append(_entries("t", 9))
    cp = log.wait_checkpoint(9)
    log.close()
    log = _open(target, signer)  # the root check passes on the untouched store
    try:
        assert log.size() == 9 and log.latest_checkpoint() == cp
        assert log.signatures == 0  # nothing re-signed at reopen
    finally:
        log.close()
    with pytest.raises(LogError, match="origin"):
        TransparencyLog.open(target, Signer.generate("other/osiris/log"), "other/osiris/log")

    (right,) = _sql(target, "SELECT leaf_hash FROM leaves WHERE idx = 8")
    _sql(target, "UPDATE leaves SET leaf_hash = ? WHERE idx = 8", (tlog.leaf_hash(b"forged"),))
    with pytest.raises(LogError, match="differs"):
        _open(target, signer)
    _sql(target, "UPDATE leaves SET leaf_hash = ? WHERE idx = 8", (bytes(right[0]),))
    (inner,) = _sql(target, "SELECT entry FROM leaves WHERE idx = 4")
    _sql(target, "UPDATE leaves SET entry = ? WHERE idx = 4", (b"forged",))
    _open(target, signer).close()  # hidden under an interior hash: only the full check sees it
    with pytest.raises(LogError, match="entry 4"):
        _open(target, signer, full_check=True)
    _sql(target, "UPDATE leaves SET entry = ? WHERE idx = 4", (bytes(inner[0]),))
    lost = _sql(target, "SELECT idx, leaf_hash, entry FROM leaves WHERE idx >= 7")
    _sql(target, "DELETE FROM leaves WHERE idx >= 7")  # an old backup restored
    with pytest.raises(LogError, match="lost"):
        _open(target, signer)
    for row in lost:
        _sql(target, "INSERT INTO leaves (idx, leaf_hash, entry) VALUES (?, ?, ?)", tuple(row))
    _open(target, signer, full_check=True).close()


# ------------------------------------------------------------------ one sequencer, N processes

_APPENDER = r"""
import base64, json, sys
sys.path.insert(0, sys.argv[4])
from osiris_core.keys import load_private_key
from osiris_server.log import TransparencyLog
target, keyfile, tag = sys.argv[1], sys.argv[2], sys.argv[3]
rounds = int(sys.argv[5])
signer = load_private_key(keyfile)
sys.stdin.readline()  # the start gun: every process opens the (new) log at the same moment
log = TransparencyLog.open(target, signer, signer.name, interval_s=0, idle_s=0)
out = []
for i in range(rounds):
    batch = [f"{tag}-{i}-{j}".encode() for j in range(1 + i % 3)]
    if i % 4 == 3:
        batch.append(f"{tag}-0-0".encode())  # a retry of an old entry: the same index again
    res = log.append(batch)
    cp = log.wait_checkpoint(max(r.index for r in res) + 1)
    for r, e in zip(res, batch):
        out.append({"index": r.index, "leaf": r.leaf_hash.hex(), "entry": e.decode(),
                    "receipt": log.tlog_proof(r.index, cp)})
log.close()
print(json.dumps(out))
"""


def _verify_receipt(receipt: str, leaf: bytes, vkey: Verifier) -> notes.Checkpoint:
    proof = notes.TlogProof.parse(receipt)
    cp = notes.Checkpoint.parse(notes.open_note(proof.checkpoint, [vkey]).text)
    tlog.verify_inclusion(leaf, proof.index, cp.size, proof.hashes, cp.root)
    return cp


def test_processes_share_one_sequencer(target: str, signer: Signer, tmp_path: Path) -> None:
    procs_n, rounds = 3, 40
    keyfile = tmp_path / "log.key"
    write_private_key(keyfile, signer)
    script = tmp_path / "appender.py"
    script.write_text(_APPENDER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), target, str(keyfile), f"p{k}", str(ROOT), str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(procs_n)
    ]
    for p in procs:  # all of them open the new log together, then append together
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results: list[dict[str, Any]] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        results += json.loads(out)
    vkey = signer.verifier()
    by_entry: dict[str, int] = {}
    for r in results:  # every append result's receipt verifies against its checkpoint
        leaf = bytes.fromhex(r["leaf"])
        assert tlog.leaf_hash(r["entry"].encode()) == leaf
        cp = _verify_receipt(r["receipt"], leaf, vkey)
        assert r["index"] < cp.size
        assert by_entry.setdefault(r["entry"], r["index"]) == r["index"]  # a retry: same index
    log = _open(target, signer)
    try:
        n = log.size()
        assert n == len(by_entry)  # every entry of every process exactly once
        assert sorted(by_entry.values()) == list(range(n))  # indices 0..n-1, dense
        ((count, distinct, top),) = _sql(
            target, "SELECT COUNT(*), COUNT(DISTINCT leaf_hash), MAX(idx) FROM leaves"
        )
        assert count == distinct == n and top == n - 1  # no duplicate leaf
        for entry, idx in by_entry.items():
            assert log.entry(idx) == entry.encode()
        log.verify_storage()
        sizes = log.checkpoint_sizes()
        cps = [log.checkpoint_at(s) for s in sizes]
        final = cps[-1]
        assert final.size == n
        for cp in cps:  # signed by the log key, over the stored tree
            body = notes.Checkpoint.parse(notes.open_note(cp.note, [vkey]).text)
            assert (body.size, body.root) == (cp.size, log.root(cp.size))
        # every stored checkpoint is consistent with every later one: each with the next, and
        # (consistency being transitive) so with all later; checked directly against the last
        for a, b in [*zip(cps, cps[1:], strict=False), *((c, final) for c in cps)]:
            tlog.verify_consistency(
                a.size, b.size, a.root, b.root, log.consistency_proof(a.size, b.size)
            )
        processes_signed = len(sizes)
    finally:
        log.close()
    assert processes_signed > rounds  # the processes signed, and no two signatures disagree
    print(f"{procs_n} processes: {n} leaves, {processes_signed} checkpoints, all consistent")
