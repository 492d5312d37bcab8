"""A real osiris-server on 127.0.0.1 (embedded server, real files) per test.

The server runs in a thread of the test process (so tests can inspect ``app``), but every
request goes over a real loopback socket through the real HTTP server. Its index is the data
dir's SQLite file, or — with ``--db-engine=postgresql`` — a fresh PostgreSQL database of its
own on the session's cluster, copied from a template migrated once per session
(``CREATE DATABASE … TEMPLATE``: a few ms, against ~100 ms to migrate each time).
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.public import PrivateKey

from osiris_core import evidence as ev
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name
from osiris_core.seal import open_sealed, public_b64
from osiris_server.app import App, init_data
from osiris_server.serve import make_server


@dataclass
class Appliance:
    id: str
    site_id: str
    token: str
    signer: Signer
    cosigner: Signer
    chain: ev.Chain
    enroll: dict[str, Any]
    box: PrivateKey | None = None

    def opened(self, resp: dict[str, Any]) -> list[dict[str, Any]]:
        """The check-in answer's targets with their sealed secrets opened by this box key,
        as the agent does (a target never carries a plaintext secret)."""
        out = []
        for t in resp["targets"]:
            t = dict(t)
            assert "password" not in t and "private_key" not in t, "a plaintext secret"
            if "sealed" in t:
                assert self.box is not None
                t.update(open_sealed(self.box, t.pop("sealed")))
            out.append(t)
        return out

    def bundle(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("site_id", self.site_id)
        fields.setdefault("host_id", "dc01")
        fields.setdefault("check", "firewall")
        fields.setdefault("outcome", "compliant")
        b = self.chain.next(**fields)
        self.chain.advance(b)
        return b

    def envelope(self, **fields: Any) -> dict[str, Any]:
        return ev.sign_bundle(self.bundle(**fields), self.signer)


@dataclass
class Server:
    url: str
    app: App
    data: Path
    admin_token: str
    init: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None, api_key: str | None = None) -> httpx.Client:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api_key:
            headers["X-API-Key"] = api_key
        c = httpx.Client(base_url=self.url, headers=headers, timeout=20)
        self.clients.append(c)
        return c

    # ---- the index, whichever engine holds it (tests look at what a thief of it would read)
    def index_tables(self) -> list[str]:
        db = self.app.db
        if db.dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            return [r["name"] for r in db.query(sql)]
        sql = (
            "SELECT table_name AS name FROM information_schema.tables"
            " WHERE table_schema = 'public' ORDER BY table_name"
        )
        return [r["name"] for r in db.query(sql)]

    def index_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every index table (the log is not in it), in a stable order."""
        self.app.heartbeats.flush()
        return {t: self.app.db.query(f"SELECT * FROM {t} ORDER BY 1") for t in self.index_tables()}

    def index_bytes(self) -> bytes:
        """What the index stores: the SQLite file with its WAL, or on PostgreSQL every row."""
        if self.app.db.dialect == "sqlite":
            files = sorted(self.data.glob("osiris.db*"))
            return b"".join(p.read_bytes() for p in files)
        return repr(self.index_rows()).encode()

    def index_sql(self, statement: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
        """One statement in one write transaction of the server's own index (a test's back
        door: another writer, as an operator with database access is)."""
        with self.app.db.write() as w:
            return w.execute(statement, params)

    @property
    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def site(self, name: str = "Clinic", **kw: Any) -> dict[str, Any]:
        r = self.admin.post("/api/v1/sites", json={"name": name, **kw})
        assert r.status_code == 201, r.text
        return r.json()

    def claim_code(self, site_id: str, ttl_s: int = 3600) -> str:
        r = self.admin.post("/api/v1/provisions", json={"site_id": site_id, "ttl_s": ttl_s})
        assert r.status_code == 201, r.text
        return r.json()["code"]

    def enroll(
        self, site_id: str, hostname: str = "appliance-1", code: str | None = None
    ) -> Appliance:
        """Claim with a code (an admin's by default) and a box key, as the agent does."""
        code = code or self.claim_code(site_id)
        box = PrivateKey.generate()
        seed_s, seed_c = os.urandom(32), os.urandom(32)
        sk = Signer("tmp", seed_s)
        ck = Signer("tmp", seed_c, key_type=KEY_TYPE_COSIGNATURE)
        r = self.client().post(
            "/api/v1/provision/claim",
            json={
                "code": code,
                "hostname": hostname,
                "signing_pub": base64.b64encode(sk.public).decode(),
                "cosign_pub": base64.b64encode(ck.public).decode(),
                "agent_version": "0.1.0",
                "box_pub": public_b64(box),
            },
        )
        assert r.status_code == 201, r.text
        out = r.json()
        name = appliance_key_name(out["appliance_id"])
        signer = Signer(name, seed_s)
        cosigner = Signer(name, seed_c, key_type=KEY_TYPE_COSIGNATURE)
        return Appliance(
            id=out["appliance_id"],
            site_id=out["site_id"],
            token=out["token"],
            signer=signer,
            cosigner=cosigner,
            chain=ev.Chain(out["appliance_id"]),
            enroll=out,
            box=box,
        )


def checkin_body(a: Appliance, log_size_seen: int = 0, **extra: Any) -> dict[str, Any]:
    body = {
        "appliance_id": a.id,
        "agent_version": "0.1.0",
        "status": {
            "uptime_s": 10,
            "outbox_depth": 0,
            "chain_head": a.chain.head,
            "seq": a.chain.seq,
            "clock": {"ntp_ok": True, "offset_ms": 3, "source": "pool.ntp.org"},
            "checks": [],
        },
        "log_size_seen": log_size_seen,
    }
    body.update(extra)
    return body


@pytest.fixture(scope="session")
def pg_index_template(pg_cluster: Any) -> str:
    """A database migrated to today's schema, the template every test's index is copied from.
    Made once per cluster (tests/security imports this fixture too: a second instance)."""
    from osiris_server.db import open_database

    if not getattr(pg_cluster, "osiris_index_tpl", None):
        pg_cluster.create_database("osiris_index_tpl")
        open_database(None, pg_cluster.url("osiris_index_tpl")).close()  # migrate, let go
        pg_cluster.osiris_index_tpl = "osiris_index_tpl"
    return "osiris_index_tpl"


@pytest.fixture
def index_urls(db_engine: str, request: pytest.FixtureRequest) -> Any:
    """``fresh()`` → None on SQLite (the data dir's own osiris.db), else the URL of a new
    migrated PostgreSQL database: one per server a test starts."""
    if db_engine == "sqlite":
        return lambda: None
    cluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_index_template")

    def fresh() -> str:
        # a random name: this module is loaded twice (as tests/server's conftest and imported
        # by tests/security's), so a module counter would repeat. FILE_COPY: ~40 ms here,
        # against ~70 ms for the default WAL_LOG copy and ~150 ms to migrate an empty database
        name = f"idx_{secrets.token_hex(6)}"
        cluster.sql(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return str(cluster.url(name))

    return fresh


def start_server(data: Path, **overrides: Any) -> tuple[App, Any, str]:
    overrides.setdefault("request_log", False)
    overrides.setdefault("checkpoint_interval_s", 0.0)
    app = App.open(data, **overrides)
    srv = make_server(app, "127.0.0.1", 0, max_body_bytes=app.max_request_bytes)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return app, srv, f"http://127.0.0.1:{srv.server_address[1]}"


def stop_server(app: App, srv: Any) -> None:
    srv.shutdown()
    srv.drain(2.0)
    srv.server_close()
    app.close()


@pytest.fixture
def server_factory(tmp_path: Path, index_urls: Any) -> Iterator[Any]:
    started: list[tuple[App, Any, Server]] = []

    def make(**overrides: Any) -> Server:
        data = tmp_path / f"data{len(started)}"
        info = init_data(data, "test.osiris/osiris/log", index_urls())
        app, srv, url = start_server(data, **overrides)
        s = Server(url=url, app=app, data=data, admin_token=info["admin_token"], init=info)
        started.append((app, srv, s))
        return s

    yield make
    for app, srv, s in started:
        for c in s.clients:
            c.close()
        stop_server(app, srv)


@pytest.fixture
def server(server_factory: Any) -> Server:
    return server_factory()


def policy_of(a: Appliance, resp: dict[str, Any]) -> dict[str, Any]:
    """The signed policy in a check-in answer, verified as the agent verifies it (the order
    key the appliance pinned at enrolment, this appliance and site); its document."""
    from osiris_core.catalog import load_catalog
    from osiris_core.keys import Verifier
    from osiris_core.policy import verify_policy

    assert "policy" in resp, "the answer carries no policy"
    from osiris_core.release import release_pin

    got = verify_policy(
        resp["policy"], Verifier.from_vkey(a.enroll["order_vkey"]),
        appliance_id=a.id, site_id=a.site_id, catalog=load_catalog(),
        release_verifiers=[Verifier.from_vkey(v) for v in release_pin(a.enroll)],
    )  # fmt: skip
    return got.doc


# the portal fixtures (a real SMTP server, a server with [portal] on): tests/server/test_portal*
from tests.server.portal_fixture import portal, smtp_box  # noqa: E402, F401
