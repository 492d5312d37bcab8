"""PostgreSQL going away under a running server: 503 with the JSON error, nothing half-written,
and the same server serving again once the database is back — no restart.

Each test has a PostgreSQL cluster of its own (not the session's, which other tests share): it
is stopped, started and has its backends terminated here. The server is the real one over
loopback; the faults are real (``pg_ctl stop -m immediate``, ``pg_terminate_backend``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from osiris_server.app import init_data
from tests.server.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.usefixtures("_pg_available")


@pytest.fixture
def _pg_available(request: pytest.FixtureRequest) -> None:
    from osiris_lab.pgcluster import PgCluster

    if not PgCluster.available():
        request.getfixturevalue("pg_cluster")  # skips, or fails where PostgreSQL is required


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[Any]:
    from osiris_lab.pgcluster import PgCluster

    cluster = PgCluster.start(tmp_path / "pg")
    try:
        yield cluster
    finally:
        cluster.stop()


def _pg_ctl(cluster: Any, *args: str) -> None:
    cluster._run("pg_ctl", "-D", str(cluster.datadir), *args)


def _halt(cluster: Any) -> None:
    """PostgreSQL goes away under the server: its connections are cut. (``fast``, not
    ``immediate``: the test cluster runs with synchronous_commit=off, and a crash would lose
    the commits the test then looks for — production durability is PostgreSQL's own.)"""
    _pg_ctl(cluster, "-m", "fast", "-w", "stop")


def _resume(cluster: Any) -> None:
    opts = (
        f"-p {cluster.port} -k {cluster.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    _pg_ctl(cluster, "-o", opts, "-l", str(cluster.datadir / "log"), "-w", "start")


@pytest.fixture
def pg_server(own_pg: Any, tmp_path: Path) -> Iterator[Server]:
    url = own_pg.create_database("faults")
    data = tmp_path / "data"
    info = init_data(data, "faults.osiris/osiris/log", url)
    app, srv, base = start_server(data)
    s = Server(url=base, app=app, data=data, admin_token=info["admin_token"], init=info)
    try:
        yield s
    finally:
        for c in s.clients:
            c.close()
        stop_server(app, srv)


def _is_storage_503(r: httpx.Response) -> bool:
    if r.status_code != 503:
        return False
    body = r.json()
    assert body["error"]["code"] == "E_STORAGE", r.text
    assert "Traceback" not in r.text and "psycopg" not in r.text, r.text
    assert r.headers.get("Retry-After") == "1"
    return True


def test_a_stopped_database_answers_503_and_the_same_server_recovers(
    own_pg: Any, pg_server: Server
) -> None:
    admin = pg_server.admin
    assert admin.post("/api/v1/sites", json={"name": "Before", "id": "before"}).status_code == 201
    _halt(own_pg)
    try:
        r = admin.post("/api/v1/sites", json={"name": "During", "id": "during"})
        assert _is_storage_503(r), (r.status_code, r.text)
        r = admin.get("/api/v1/sites")  # reads too: the auth lookup needs the database
        assert _is_storage_503(r), (r.status_code, r.text)
        assert pg_server.client().get("/healthz").status_code in (200, 503)  # never a 500
    finally:
        _resume(own_pg)
    deadline = time.monotonic() + 30
    while True:  # the pool opens fresh connections on demand: no restart of the server
        r = admin.get("/api/v1/sites")
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        assert _is_storage_503(r)
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["sites"]] == ["before"]  # the failed POST wrote nothing
    assert admin.post("/api/v1/sites", json={"name": "After", "id": "after"}).status_code == 201


def _terminate_backends(cluster: Any, db: str) -> None:
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
        )


def test_a_connection_killed_between_requests_is_replaced(own_pg: Any, pg_server: Server) -> None:
    admin = pg_server.admin
    assert admin.post("/api/v1/sites", json={"name": "One", "id": "one"}).status_code == 201
    _terminate_backends(own_pg, "faults")  # every pooled connection is now dead
    r = admin.post("/api/v1/sites", json={"name": "Two", "id": "two"})
    assert r.status_code == 201 or _is_storage_503(r), r.text  # the pool checks on checkout
    if r.status_code != 201:
        assert admin.post("/api/v1/sites", json={"name": "Two", "id": "two"}).status_code == 201
    ids = [s["id"] for s in admin.get("/api/v1/sites").json()["sites"]]
    assert sorted(ids) == ["one", "two"]


def test_connections_killed_inside_long_writes_leave_no_partial_batch(
    own_pg: Any, pg_server: Server
) -> None:
    """Batches of 100 incidents (one write transaction of ~300 statements each), and while each
    is in flight another session terminates the server's backends once, after a delay that
    walks across the batch's duration: every batch is all there (201) or not there at all
    (503), never a part, and the server keeps serving."""
    site = pg_server.site()
    a = pg_server.enroll(site["id"])
    c = pg_server.client(a.token)

    def batch(host: str) -> list[dict[str, Any]]:
        return [
            {"kind": f"k{i}", "severity": "info", "host_id": host, "summary": "x"}
            for i in range(100)
        ]

    t0 = time.monotonic()
    assert c.post("/api/v1/incidents", json={"incidents": batch("warm")}).status_code == 201
    took = time.monotonic() - t0  # how long one batch's write takes here
    outcomes: dict[str, int] = {"warm": 201}
    for n in range(40):
        host = f"h{n}"
        delay = took * ((n % 8) / 8)  # early, middle and late in the transaction
        killer = threading.Timer(delay, _terminate_backends, args=(own_pg, "faults"))
        killer.start()
        r = c.post("/api/v1/incidents", json={"incidents": batch(host)})
        killer.join(10)
        assert r.status_code == 201 or _is_storage_503(r), (r.status_code, r.text)
        outcomes[host] = r.status_code
        if n >= 8 and {201, 503} <= set(outcomes.values()):
            break
    assert 503 in outcomes.values(), "no write was ever cut: the fault never happened"
    r = pg_server.admin.get("/api/v1/incidents", params={"site": site["id"]})
    if r.status_code != 200:  # the first request after a kill may still meet a dead connection
        assert _is_storage_503(r)
        r = pg_server.admin.get("/api/v1/incidents", params={"site": site["id"]})
    assert r.status_code == 200, r.text
    rows = pg_server.app.db.query("SELECT host_id, COUNT(*) AS n FROM incidents GROUP BY host_id")
    counts = {row["host_id"]: row["n"] for row in rows}
    for host, status in outcomes.items():
        assert counts.get(host, 0) == (100 if status == 201 else 0), (
            host,
            status,
            counts.get(host),
        )
