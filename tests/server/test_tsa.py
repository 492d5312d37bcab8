"""RFC 3161 anchors on a real server over loopback, against real lab TSAs (``openssl ts``).

The server asks its TSA, verifies the reply against the pinned chain, the checkpoint body's
digest and the nonce it sent, and stores only what verified. The attacks: a TSA (or a proxy in
front of it) that answers with another CA's token, a replayed token over another checkpoint, a
replayed token over this checkpoint but to another request (nonce), or garbage; a TSA that is
down. And the cadence: two server processes sharing one database anchor once.
"""

from __future__ import annotations

import base64
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from osiris_core import timestamp as ts
from osiris_lab.tsa import LabTsa
from osiris_server import tsa
from osiris_server.app import init_data
from osiris_server.config import ConfigError, load
from tests.server.conftest import Server, start_server, stop_server
from tests.tsa_fixtures import lab_tsa, other_tsa  # noqa: F401

URL = "/api/v1/log/timestamp"


def _cfg(t: LabTsa, **kw: Any) -> tsa.TsaConfig:
    return tsa.TsaConfig(url=kw.pop("url", t.url), ca_file=kw.pop("ca_file", t.ca_file), **kw)


def _grow(server: Server, n: int = 3) -> int:
    """Evidence from an enrolled appliance, so the log has a checkpoint over it."""
    site = server.site("TSA clinic")
    a = server.enroll(site["id"])
    r = server.client(a.token).post(
        "/api/v1/evidence", json={"envelopes": [a.envelope() for _ in range(n)]}
    )
    assert r.status_code == 200, r.text
    return int(server.admin.get("/api/v1/log/checkpoint").json()["size"])


def _rows(server: Server) -> list[dict[str, Any]]:
    return server.app.db.query("SELECT * FROM tsa_anchors ORDER BY checkpoint_size")


class Canned:
    """A hostile 'TSA' (or a proxy in front of a real one) answering fixed bytes."""

    def __init__(self) -> None:
        self.reply = b""
        canned = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(canned.reply)))
                self.end_headers()
                self.wfile.write(canned.reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tsr"


@pytest.fixture
def canned() -> Iterator[Canned]:
    c = Canned()
    yield c
    c.httpd.shutdown()
    c.httpd.server_close()


def test_anchor_verify_and_fetch(server_factory: Any, lab_tsa: LabTsa) -> None:  # noqa: F811
    server = server_factory(tsa=_cfg(lab_tsa))
    size = _grow(server)
    before = lab_tsa.requests
    r = server.admin.post(URL, json={})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["size"] == size and got["tsa_url"] == lab_tsa.url and got["reason"] == "packet"
    note = server.admin.get("/api/v1/log/checkpoint", params={"size": size}).json()["note"]
    der = base64.b64decode(got["token"])
    info = ts.verify_token(der, note, [lab_tsa.ca_pem])
    assert info["sha256"] == got["sha256"] == ts.body_sha256(note)
    assert info["gen_time"] == got["gen_time"]
    # idempotent: the stored row, no second TSA request
    assert server.admin.post(URL, json={"size": size}).json() == got
    assert lab_tsa.requests == before + 1
    assert server.admin.get(URL, params={"size": size}).json() == got
    # an older stored checkpoint can be anchored too (a packet proves against a cosigned one)
    older = server.admin.post(URL, json={"size": 0}).json()
    assert older["size"] == 0 and len(_rows(server)) == 2
    # roles: an auditor reads, only admin/operator cause a TSA call
    aud = server.admin.post("/api/v1/tokens", json={"role": "auditor", "name": "a"}).json()
    assert server.client(aud["token"]).get(URL, params={"size": size}).status_code == 200
    r = server.client(aud["token"]).post(URL, json={})
    assert r.status_code == 403
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "o"}).json()
    assert server.client(op["token"]).post(URL, json={}).status_code == 200


def test_bad_input_is_a_clear_error_and_changes_nothing(
    server_factory: Any,
    lab_tsa: LabTsa,  # noqa: F811
) -> None:
    server = server_factory(tsa=_cfg(lab_tsa))
    _grow(server)
    for body, status in (({"size": -1}, 400), ({"size": "x"}, 400), ({"size": 10**6}, 404),
                         ({"other": 1}, 400)):  # fmt: skip
        r = server.admin.post(URL, json=body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()["error"]) == {"code", "message"}
    for q in ({}, {"size": "x"}, {"size": 999}):
        r = server.admin.get(URL, params=q)
        assert r.status_code in (400, 404), (q, r.text)
    assert _rows(server) == []


def test_server_without_tsa_says_so(server: Server) -> None:
    _grow(server)
    r = server.admin.post(URL, json={})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "E_TSA_NOT_CONFIGURED"
    assert server.admin.get(URL, params={"size": 1}).status_code == 404
    assert tsa.tick(server.app) is None


def test_tsa_down_is_503_and_stores_nothing(
    server_factory: Any,
    tmp_path: Path,
    lab_tsa: LabTsa,  # noqa: F811
) -> None:
    server = server_factory(tsa=_cfg(lab_tsa, timeout_s=2))
    _grow(server)
    lab_tsa.down()
    try:
        r = server.admin.post(URL, json={})
    finally:
        lab_tsa.down(False)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "E_TSA_UNAVAILABLE"
    # nothing listening at all
    gone = LabTsa(tmp_path / "gone").start()
    url = gone.url
    gone.stop()
    server.app.cfg.tsa = _cfg(lab_tsa, url=url, timeout_s=2)
    r = server.admin.post(URL, json={})
    assert r.status_code == 503 and r.json()["error"]["code"] == "E_TSA_UNAVAILABLE"
    assert "Traceback" not in r.text
    assert _rows(server) == []
    # a failed cadence tick is logged, stores nothing and raises nothing
    assert tsa.tick(server.app) is None and _rows(server) == []


def test_unverifiable_replies_are_refused_and_not_stored(
    server_factory: Any,
    lab_tsa: LabTsa,  # noqa: F811
    other_tsa: LabTsa,  # noqa: F811
    canned: Canned,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # 1. the server pins other_tsa's CA, but its URL answers with lab_tsa's tokens
    server = server_factory(tsa=_cfg(lab_tsa, ca_file=other_tsa.ca_file))
    size = _grow(server)
    r = server.admin.post(URL, json={})
    assert r.status_code == 502 and r.json()["error"]["code"] == "E_TSA_BAD_REPLY", r.text
    assert "pinned TSA chain" in r.json()["error"]["message"]
    # 2. a proxy replays a genuine token over ANOTHER checkpoint (size 0)
    server.app.cfg.tsa = _cfg(lab_tsa)
    zero = server.admin.post(URL, json={"size": 0}).json()
    canned.reply = base64.b64decode(zero["token"])
    server.app.cfg.tsa = _cfg(lab_tsa, url=canned.url)
    r = server.admin.post(URL, json={"size": size})
    assert r.status_code == 502 and "another checkpoint" in r.json()["error"]["message"]
    # 3. a proxy replays a genuine token over THIS checkpoint, made for another request
    server.app.cfg.tsa = _cfg(lab_tsa, url=lab_tsa.url + "?other")  # another row key
    fresh = server.admin.post(URL, json={"size": size}).json()
    canned.reply = base64.b64decode(fresh["token"])
    server.app.cfg.tsa = _cfg(lab_tsa, url=canned.url)
    r = server.admin.post(URL, json={"size": size})
    assert r.status_code == 502 and "once" in r.json()["error"]["message"], r.text
    # 4. garbage
    canned.reply = b"\x30\x03\x02\x01\x00 not a reply"
    r = server.admin.post(URL, json={"size": size})
    assert r.status_code == 502 and r.json()["error"]["code"] == "E_TSA_BAD_REPLY"
    stored = {(x["checkpoint_size"], x["tsa_url"]) for x in _rows(server)}
    assert stored == {(0, lab_tsa.url), (size, lab_tsa.url + "?other")}  # none via canned
    assert capfd.readouterr().err.count('"event": "tsa_refused"') == 4


def test_cadence_anchors_once_across_two_servers(
    tmp_path: Path,
    db_url: str | None,
    lab_tsa: LabTsa,  # noqa: F811
) -> None:
    data_a = tmp_path / "a"
    info = init_data(data_a, "test.osiris/osiris/log", db_url)
    data_b = data_a if db_url is None else tmp_path / "b"
    if db_url is not None:
        shutil.copytree(data_a, data_b)
    cfg = _cfg(lab_tsa, cadence_s=3600)
    apps = [start_server(d, watchdog_tick_s=0, tsa=cfg) for d in (data_a, data_b)]
    servers = [Server(url=u, app=app, data=d, admin_token=info["admin_token"], init=info)
               for (app, _s, u), d in zip(apps, (data_a, data_b), strict=True)]  # fmt: skip
    try:
        size = _grow(servers[0])
        for s in servers:
            s.app.log.refresh()
        assert [tsa.due(s.app) for s in servers] == [size, size]
        before = lab_tsa.requests
        results: list[Any] = []
        threads = [threading.Thread(target=lambda s=s: results.append(tsa.tick(s.app)))
                   for s in servers for _ in range(3)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [r for r in results if r is not None]
        assert len(won) == 1 and won[0]["size"] == size and won[0]["reason"] == "cadence"
        assert lab_tsa.requests == before + 1  # one TSA request across both processes
        assert len(_rows(servers[1])) == 1
        # not due again until the cadence has passed, even for a newer checkpoint
        newer = _grow(servers[1])
        for s in servers:
            s.app.log.refresh()
        assert [tsa.due(s.app) for s in servers] == [None, None]
        import time

        later = time.time() + 3601
        assert tsa.due(servers[0].app, later) == newer
        assert tsa.tick(servers[0].app, later)["size"] == newer
        assert tsa.tick(servers[1].app, later) is None
    finally:
        for c in (c for s in servers for c in s.clients):
            c.close()
        for app, srv, _u in apps:
            stop_server(app, srv)


def test_tsa_config_is_checked_at_load(tmp_path: Path, lab_tsa: LabTsa) -> None:  # noqa: F811
    data = tmp_path / "d"
    init_data(data, "test.osiris/osiris/log")
    toml = data / "server.toml"
    base = toml.read_text()
    shutil.copy(lab_tsa.ca_file, data / "tsa-ca.pem")
    toml.write_text(base + f'\n[tsa]\nurl = "{lab_tsa.url}"\nca_file = "tsa-ca.pem"\n')
    cfg = load(data)
    assert cfg.tsa is not None and cfg.tsa.cadence_s == 86400
    assert cfg.tsa.ca_file == data / "tsa-ca.pem"
    bad = [
        'url = "ftp://x"\nca_file = "tsa-ca.pem"',
        f'url = "{lab_tsa.url}"',
        f'url = "{lab_tsa.url}"\nca_file = "missing.pem"',
        f'url = "{lab_tsa.url}"\nca_file = "server.toml"',
        f'url = "{lab_tsa.url}"\nca_file = "tsa-ca.pem"\ncadence_s = -1',
        f'url = "{lab_tsa.url}"\nca_file = "tsa-ca.pem"\nsurprise = 1',
    ]
    for section in bad:
        toml.write_text(base + f"\n[tsa]\n{section}\n")
        with pytest.raises(ConfigError, match=r"\[tsa\]"):
            load(data)


def test_the_watchdog_thread_runs_the_cadence(
    server_factory: Any,
    lab_tsa: LabTsa,  # noqa: F811
) -> None:
    """Wiring, not just the function: a server's own timer thread anchors the newest checkpoint
    with no request, once."""
    import time

    server = server_factory(watchdog_tick_s=0.2, tsa=_cfg(lab_tsa, cadence_s=3600))
    size = _grow(server)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _rows(server):
        time.sleep(0.1)
    rows = _rows(server)
    assert [(r["checkpoint_size"], r["reason"]) for r in rows] == [(size, "cadence")]
    time.sleep(1.0)  # more ticks: still one token
    assert len(_rows(server)) == 1
