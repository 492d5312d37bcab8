"""The one sequencer on PostgreSQL: what the log's proof needs from the database, tested on a
real (throwaway) PostgreSQL cluster.

* the log's write transactions serialise on ``pg_advisory_xact_lock(LOG_LOCK_KEY)`` — a session
  holding it stops every appender; the index's lock does not;
* a default isolation level under which the re-read of the tree could be stale is refused;
* a session lost while appending fails that append (503, ``E_STORAGE``), leaves nothing half
  written, and the next append reconnects and continues the sequence;
* kill -9 of an appending process loses nothing acknowledged and leaves a store that opens.

The sequencer across processes (on both engines) is in ``test_log_storage.py``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from osiris_core import note as notes
from osiris_core import tlog
from osiris_core.keys import Signer, write_private_key
from osiris_server.db.engine import INDEX_LOCK_KEY
from osiris_server.log import LogError, TransparencyLog
from osiris_server.logstore import LOG_LOCK_KEY, LOG_SCHEMA
from osiris_server.storage import StorageUnavailable

psycopg = pytest.importorskip("psycopg")  # the PostgreSQL extra; the cluster fixture says the rest

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "seq.example.test/osiris/log"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def _open(url: str, signer: Signer, **kw: Any) -> TransparencyLog:
    kw.setdefault("interval_s", 0)
    kw.setdefault("idle_s", 0)
    return TransparencyLog.open(url, signer, ORIGIN, **kw)


def _sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {LOG_SCHEMA}")
        cur = conn.execute(statement.replace("?", "%s"), params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


class _Holder:
    """Another session holding an advisory transaction lock until ``release()``."""

    def __init__(self, url: str, key: int) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _waiting_pids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _append_in_thread(log: TransparencyLog, entries: list[bytes]) -> tuple[threading.Thread, dict]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = log.append(entries)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_a_refusal_names_the_database_without_its_password(pg_url: str, signer: Signer) -> None:
    _open(pg_url, signer).close()
    secret = "Hunter2-log-pw"
    with_pw = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    other = Signer.generate("other/osiris/log")
    with pytest.raises(LogError, match="belongs to origin") as err:
        TransparencyLog.open(with_pw, other, other.name, idle_s=0)
    assert secret not in str(err.value) and "postgres:***@" in str(err.value)
    assert LOG_SCHEMA in str(err.value)


def test_the_log_lock_serialises_appenders_and_the_index_lock_does_not(
    pg_url: str, signer: Signer
) -> None:
    log = _open(pg_url, signer)
    try:
        index_writer = _Holder(pg_url, INDEX_LOCK_KEY)
        try:  # an index write in progress elsewhere never holds up the log
            assert [r.index for r in log.append([b"free"])] == [0]
        finally:
            index_writer.release()
        other = _Holder(pg_url, LOG_LOCK_KEY)  # another host's append, in progress
        t, out = _append_in_thread(log, [b"waits"])
        time.sleep(0.5)
        assert t.is_alive() and not out  # waits for the lock, does not race past it
        assert len(_waiting_pids(pg_url)) == 1
        other.release()
        t.join(10)
        assert [r.index for r in out["result"]] == [1]
    finally:
        log.close()


def test_a_session_lost_mid_append_fails_it_cleanly_and_the_log_reconnects(
    pg_url: str, signer: Signer
) -> None:
    log = _open(pg_url, signer)
    try:
        log.append([b"before"])
        other = _Holder(pg_url, LOG_LOCK_KEY)
        t, out = _append_in_thread(log, [b"lost-1", b"lost-2"])
        deadline = time.monotonic() + 10
        while not _waiting_pids(pg_url) and time.monotonic() < deadline:
            time.sleep(0.02)
        (pid,) = _waiting_pids(pg_url)
        _sql(pg_url, "SELECT pg_terminate_backend(?)", (pid,))  # the connection drops
        t.join(10)
        other.release()
        assert isinstance(out.get("error"), StorageUnavailable), out
        assert out["error"].http_status == 503 and out["error"].code == "E_STORAGE"
        assert log.size() == 1 and log.find(tlog.leaf_hash(b"lost-1")) is None  # not acknowledged
        assert _sql(pg_url, "SELECT COUNT(*) FROM leaves") == [(1,)]  # nothing half-written
        res = log.append([b"lost-1", b"after"])  # the client's retry: a fresh connection
        assert [(r.index, r.new) for r in res] == [(1, True), (2, True)]
        cp = log.wait_checkpoint(3)
        tlog.verify_inclusion(
            tlog.leaf_hash(b"after"), 2, cp.size, log.inclusion_proof(2, cp.size), cp.root
        )
    finally:
        log.close()
    _open(pg_url, signer, full_check=True).close()


def test_postgresql_refuses_an_isolation_level_the_proof_does_not_hold_at(
    pg_url: str, signer: Signer, pg_cluster: Any
) -> None:
    """Under REPEATABLE READ the snapshot would be taken at the lock statement, before the
    wait: an appender would re-read a stale tree. The store refuses to start instead."""
    dbname = pg_url.rsplit("/", 1)[1]
    pg_cluster.sql(f"ALTER DATABASE {dbname} SET default_transaction_isolation = 'repeatable read'")
    with pytest.raises(LogError, match="READ COMMITTED"):
        _open(pg_url, signer)


_KILLED = r"""
import sys
sys.path.insert(0, sys.argv[4])
from osiris_core.keys import load_private_key
from osiris_server.log import TransparencyLog
target, keyfile, trial = sys.argv[1], sys.argv[2], sys.argv[3]
log = TransparencyLog.open(target, load_private_key(keyfile), sys.argv[5], interval_s=0, idle_s=0)
print("READY", flush=True)
i = 0
while True:
    batch = [f"k{trial}-{i + j}".encode() for j in range(1 + i % 4)]
    i += len(batch)
    res = log.append(batch)
    print("".join(f"A {r.index} {r.leaf_hash.hex()}\n" for r in res), end="", flush=True)
    if i % 3 == 0:
        cp = log.wait_checkpoint(max(r.index for r in res) + 1)
        print("C " + cp.note.encode().hex(), flush=True)
"""


def test_kill_9_mid_append_on_postgresql_loses_nothing_acknowledged(
    pg_url: str, signer: Signer, tmp_path: Path
) -> None:
    keyfile = tmp_path / "log.key"
    write_private_key(keyfile, signer)
    script = tmp_path / "killed.py"
    script.write_text(_KILLED)
    rng = random.Random(14)
    acked: dict[int, bytes] = {}
    signed: list[str] = []
    for trial in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(script), pg_url, str(keyfile), str(trial), str(ROOT), ORIGIN],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == "READY\n", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate(timeout=20)
        assert proc.returncode == -signal.SIGKILL
        for line in out.split("\n")[:-1]:  # what follows the last newline may be torn
            kind, _, rest = line.partition(" ")
            if kind == "A" and len(rest.split(" ")) == 2:
                idx, leaf = rest.split(" ")
                assert acked.setdefault(int(idx), bytes.fromhex(leaf)) == bytes.fromhex(leaf)
            elif kind == "C":
                try:
                    signed.append(bytes.fromhex(rest).decode())
                except ValueError:
                    continue
        # the store still opens (the root check passes) and holds everything acknowledged
        log = _open(pg_url, signer)
        try:
            for idx, leaf in acked.items():
                assert log.find(leaf) == idx
            latest = log.wait_checkpoint(log.size())
            for text in signed:
                cp = notes.Checkpoint.parse(notes.open_note(text, [log.verifier]).text)
                proof = log.consistency_proof(cp.size, latest.size)
                tlog.verify_consistency(cp.size, latest.size, cp.root, latest.root, proof)
            ((count, top),) = _sql(pg_url, "SELECT COUNT(*), MAX(idx) FROM leaves")
            assert top is None or count == top + 1  # no gap left by the killed transaction
        finally:
            log.close()
    log = _open(pg_url, signer, full_check=True)
    log.close()
    assert len(acked) > 6 and signed  # the appender made real progress before each kill
