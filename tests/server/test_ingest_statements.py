"""Round trips to the index per request: a 100-bundle ingest batch and an unchanged check-in.

On PostgreSQL every statement is a client/server round trip, so what an ingest batch or a
check-in costs grows with the number of statements it sends, not the rows it touches. These
tests count the statements the server sends to its index (``app.db``) — every read on the
engine, every statement of a write transaction, and each write transaction itself (its
BEGIN/lock/COMMIT) — while real requests run over loopback, on the ``--db-engine`` in use, and
fail if a batch goes back to one lookup per bundle. (The transparency log is a store of its
own, not counted here.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.server.conftest import checkin_body

INGEST_BOUND = 12  # statements per 100-bundle batch (7 today), write transactions included
CHECKIN_BOUND = 4  # an unchanged check-in (1 today; room for a heartbeat flush landing in it)


class Counter:
    """Counts what ``engine`` is asked to do, from this moment until ``stop()``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.n = 0
        self.sql: list[str] = []
        self._lock = threading.Lock()
        self._inside = threading.local()
        self._saved = {name: getattr(engine, name) for name in ("query", "one", "scalar", "write")}
        for name in ("query", "one", "scalar"):
            setattr(engine, name, self._reader(self._saved[name]))
        engine.write = self._write

    def _count(self, what: str) -> None:
        with self._lock:
            self.n += 1
            self.sql.append(what)

    def _reader(self, fn: Any) -> Any:
        def call(sql: str, params: Any = ()) -> Any:
            if getattr(self._inside, "on", False):  # one() through query(): one statement
                return fn(sql, params)
            self._count(sql)
            self._inside.on = True
            try:
                return fn(sql, params)
            finally:
                self._inside.on = False

        return call

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._saved["write"]() as tx:
            self._count("<write transaction>")
            yield _CountingTx(tx, self)

    def stop(self) -> None:
        for name in self._saved:
            delattr(self.engine, name)  # the class's methods again

    def reset(self) -> None:
        with self._lock:
            self.n, self.sql = 0, []


class _CountingTx:
    def __init__(self, tx: Any, counter: Counter) -> None:
        self._tx, self._c = tx, counter

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._tx, name)
        if name not in ("execute", "executemany", "query", "one", "scalar", "insert"):
            return fn

        def call(*args: Any, **kw: Any) -> Any:
            self._c._count(str(args[0]) if name != "insert" else f"INSERT {args[0]}")
            return fn(*args, **kw)

        return call


def _post(client: Any, envs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = client.post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_a_100_bundle_batch_is_a_few_statements_whatever_it_holds(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    assert [x["status"] for x in _post(c, [a.envelope()])] == ["accepted"]  # warm caches
    counter = Counter(server.app.db)
    try:
        batch = [a.envelope() for _ in range(100)]
        counter.reset()
        assert {x["status"] for x in _post(c, batch)} == {"accepted"}
        fresh = counter.n
        # the same batch again: every one a duplicate, nothing written
        counter.reset()
        assert {x["status"] for x in _post(c, batch)} == {"duplicate"}
        dup = counter.n
        # half resent, half new, with a gap in the middle (a chain_gap incident)
        more = [a.envelope() for _ in range(100)]
        mixed = batch[50:] + more[:40] + more[60:]
        counter.reset()
        statuses = [x["status"] for x in _post(c, mixed)]
        assert statuses == ["duplicate"] * 50 + ["accepted"] * 80
        gap = counter.n
    finally:
        counter.stop()
    print(f"\nindex statements per 100-bundle batch: new {fresh}, resent {dup}, mixed+gap {gap}")
    assert fresh <= INGEST_BOUND, fresh
    assert dup <= INGEST_BOUND, dup
    assert gap <= INGEST_BOUND + 8, gap  # + the incident, its alert, the gap lookup


def test_an_unchanged_checkin_is_a_few_statements(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    r = c.post("/api/v1/checkin", json=checkin_body(a, holds={}))
    assert r.status_code == 200, r.text
    first = r.json()
    holds = {"targets": first["targets_hash"]}
    version = first["policy"]["policy"]["version"]
    body = checkin_body(a, holds=holds, policy_version=version)
    r = c.post("/api/v1/checkin", json=body)  # the cache warm, the rules hash known
    assert r.status_code == 200, r.text
    counter = Counter(server.app.db)
    try:
        counter.reset()
        r = c.post("/api/v1/checkin", json=body)
        n = counter.n
        sql = list(counter.sql)
    finally:
        counter.stop()
    assert r.status_code == 200, r.text
    assert "policy" not in r.json() and "targets" not in r.json()
    print(f"\nindex statements per unchanged check-in: {n}")
    assert n <= CHECKIN_BOUND, sql


def test_a_full_batch_spans_lookup_chunks_and_decides_as_one_lookup_each(server) -> None:
    """500 envelopes (MAX_BATCH): 300 already indexed, then one that takes a seq already
    held by another bundle, then 199 new — more seqs than one IN list holds. Every answer is
    what one lookup per envelope gave, and the index holds each seq once."""
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    first = [a.envelope() for _ in range(300)]
    assert {x["status"] for x in _post(c, first)} == {"accepted"}
    fork = ev_fork(a, first[-1])  # seq 300 again, another bundle
    rest = [a.envelope() for _ in range(199)]
    counter = Counter(server.app.db)
    try:
        results = _post(c, first + [fork] + rest)
        n = counter.n
    finally:
        counter.stop()
    statuses = [x["status"] for x in results]
    assert statuses == ["duplicate"] * 300 + ["rejected"] + ["accepted"] * 199
    assert results[300]["error"]["code"] == "E_CHAIN"
    assert [x["index"] for x in results[:300]] == list(range(300))
    rows = server.app.db.query(
        "SELECT seq FROM evidence WHERE appliance_id = ? ORDER BY seq", [a.id]
    )
    assert [r["seq"] for r in rows] == list(range(1, 500))
    assert n <= INGEST_BOUND + 4, n  # a few IN lists more, not 500 lookups


def ev_fork(a: Any, env: dict[str, Any]) -> dict[str, Any]:
    """Another signed bundle at ``env``'s seq and prev_hash (an appliance forking its chain)."""
    from osiris_core import evidence as ev

    bundle = dict(env["bundle"], outcome="failed")
    return ev.sign_bundle(bundle, a.signer)
