"""HTTP layer: OpenAPI kept true, hostile input never a 500 and never a write, body limits,
keep-alive latency (TCP_NODELAY), slow clients, TLS and mTLS."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_server.api.meta import build_openapi
from osiris_server.app import build_router
from osiris_server.serve import make_server, tls_context
from tests.server.conftest import checkin_body, start_server, stop_server


def test_openapi_describes_every_route(server) -> None:
    doc = server.client().get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    router = build_router()
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    # every API route; the portal's HTML pages (/portal) are for people, not in the API document
    api = [r for r in router.routes if not r.template.startswith("/portal")]
    assert [r for r in router.routes if r not in api], "the portal routes exist"
    routed = {(r.method, r.template) for r in api}
    assert described == routed
    for r in api:
        op = doc["paths"][r.template][r.method.lower()]
        if r.body:
            props = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
            assert set(props) == set(r.body)
        assert {p["name"] for p in op.get("parameters", []) if p["in"] == "query"} == set(r.query)
    # DESIGN §4.1 endpoints are all there
    for path in (
        "/api/v1/checkin",
        "/api/v1/evidence",
        "/api/v1/incidents",
        "/api/v1/provision/claim",
        "/api/v1/provision/{mac}",
        "/api/v1/sites",
        "/api/v1/sites/{site_id}/appliances",
        "/api/v1/sites/{site_id}/credentials",
        "/api/v1/sites/{site_id}/runbooks",
        "/api/v1/appliances/{appliance_id}/orders",
        "/api/v1/partners",
        "/api/v1/provisions",
        "/api/v1/learning/candidates",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/stats",
        "/api/v1/log/checkpoint",
        "/api/v1/log/proof/inclusion",
        "/api/v1/log/proof/consistency",
        "/api/v1/log/keys",
        "/healthz",
    ):
        assert path in doc["paths"], path


def test_openapi_check_can_fail() -> None:
    """The walk above compares against the router; a route added without a doc entry shows."""
    router = build_router()
    doc = build_openapi(router)
    doc["paths"].pop("/api/v1/stats")
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    api = [r for r in router.routes if not r.template.startswith("/portal")]
    assert described != {(r.method, r.template) for r in api}


def _digest(server) -> str:
    h = hashlib.sha256(repr(server.index_rows()).encode())  # either engine
    return h.hexdigest() + f":{server.app.log.size()}"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    """One server with one of everything, shared by the property test."""
    from osiris_server.app import init_data
    from tests.server.conftest import Server

    data = tmp_path_factory.mktemp("fuzz") / "data"
    info = init_data(data, "fuzz.osiris/osiris/log")
    app, srv, url = start_server(data)
    s = Server(url=url, app=app, data=data, admin_token=info["admin_token"], init=info)
    site = s.site()
    a = s.enroll(site["id"])
    s.client(a.token).post("/api/v1/evidence", json={"envelopes": [a.envelope()]})
    ids = {
        "site_id": site["id"],
        "appliance_id": a.id,
        "mac": "aa:bb:cc:dd:ee:ff",
        "cred_id": "cred_0",
        "order_id": "o",
        "incident_id": "inc_0",
        "token_id": "tok_0",
        "partner_id": "ptr_0",
        "provision_id": "prv_0",
        "bundle_hash": "sha256:" + "0" * 64,
    }
    yield s, a, ids
    for c in s.clients:
        c.close()
    stop_server(app, srv)


# the API's routes; the portal answers HTML pages (tests/server/test_portal_fuzz.py fuzzes those)
ROUTES = [(r.method, r.template, r.auth) for r in build_router().routes
          if not r.template.startswith("/portal")]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    body=json_values,
    query=st.dictionaries(
        st.sampled_from(["site", "limit", "size", "hash", "from", "x"]),
        st.text(max_size=8),
        max_size=2,
    ),
    raw=st.booleans(),
)
def test_random_json_never_500_never_writes(fuzz_target, route, body, query, raw) -> None:
    s, a, ids = fuzz_target
    method, template, auth = route
    path = template
    for k, v in ids.items():
        path = path.replace("{" + k + "}", v)
    token = a.token if auth == "appliance" else s.admin_token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    content = json.dumps(body).encode()
    if raw:
        content = content[: max(1, len(content) // 2)]  # truncated: malformed JSON
    before = _digest(s)
    with httpx.Client(base_url=s.url, timeout=20) as c:
        r = c.request(method, path, content=content, params=query, headers=headers)
    assert r.status_code < 500, (method, path, r.text)
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        err = r.json()["error"]
        assert set(err) == {"code", "message"}
        assert _digest(s) == before, (method, path, r.status_code, r.text)


def test_malformed_wrong_types_unknown_fields(server) -> None:
    c = server.admin
    cases = [
        (b"{", "E_PARSE"),
        (b'{"name": "a", "name": "b"}', "E_PARSE"),
        (b'{"name": 5}', "E_SCHEMA"),
        (b'{"name": "x", "bogus": true}', "E_SCHEMA"),
        (b"[]", "E_SCHEMA"),
        (b'{"name": "x", "checkin_interval_s": 1.5}', "E_PARSE"),
        (b"\xff\xfe", "E_PARSE"),
    ]
    for content, code in cases:
        r = c.post("/api/v1/sites", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, content
        assert r.json()["error"]["code"] == code, (content, r.text)
    r = c.post("/api/v1/sites", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert c.get("/api/v1/nope").status_code == 404
    assert c.delete("/api/v1/sites").status_code == 405
    assert c.get("/api/v1/sites", params={"unknown": "1"}).status_code == 400
    assert server.admin.get("/api/v1/sites").json()["sites"] == []


def test_oversized_body_is_413(server_factory) -> None:
    server = server_factory(max_body_bytes=4096)
    r = server.admin.post(
        "/api/v1/sites", content=b"x" * 5000, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert server.admin.get("/api/v1/sites").json()["sites"] == []


def _raw_exchange(port: int, req: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        return s.recv(65536)


def test_embedded_server_limits(tmp_path: Path) -> None:
    from osiris_server.app import App, init_data

    init_data(tmp_path / "d", "t.osiris/osiris/log")
    app = App.open(tmp_path / "d", request_log=False)
    srv = make_server(app, "127.0.0.1", 0, max_body_bytes=1000, read_timeout=0.6, idle_timeout=0.6)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    port = srv.server_address[1]
    try:
        big = b"POST /api/v1/sites HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        assert _raw_exchange(port, big).startswith(b"HTTP/1.1 413")
        chunked = b"POST /api/v1/sites HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert _raw_exchange(port, chunked).startswith(b"HTTP/1.1 411")
        # a slow client (headers never finished) is cut off after the read deadline
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - t0 < 3
        s.close()
        # keep-alive: many requests on one connection, each fast (TCP_NODELAY, one write)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            c.get("/healthz")
            t0 = time.perf_counter()
            for _ in range(50):
                assert c.get("/healthz").status_code == 200
            per = (time.perf_counter() - t0) / 50
        assert per < 0.02, f"{per * 1000:.1f} ms per keep-alive request (Nagle stall?)"
        # a 404 with an unread body leaves the connection usable
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.post("/nope", content=b"x" * 500).status_code == 404
            assert c.get("/healthz").status_code == 200
    finally:
        srv.shutdown()
        srv.drain(2)
        srv.server_close()
        app.close()


# ------------------------------------------------------------------ TLS / mTLS


def _pki(tmp: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)

    def cert(subject_key, cn, issuer_key, issuer_name, ca=False, san=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer_name)
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            import ipaddress

            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]),
                critical=False,
            )
        return b.sign(issuer_key, hashes.SHA256())

    def write(path, obj):
        if hasattr(obj, "private_bytes"):
            data = obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            data = obj.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(data)
        return str(path)

    out = {}
    for ca_name in ("ca", "evil"):
        k = key()
        c = cert(k, f"{ca_name} CA", k, name(f"{ca_name} CA"), ca=True)
        out[ca_name] = (k, c, write(tmp / f"{ca_name}.pem", c))
    sk = key()
    out["server_cert"] = write(
        tmp / "server.pem", cert(sk, "server", out["ca"][0], out["ca"][1].subject, san="127.0.0.1")
    )
    out["server_key"] = write(tmp / "server.key", sk)
    for who in ("ca", "evil"):
        ck = key()
        out[f"client_{who}"] = (
            write(
                tmp / f"client_{who}.pem",
                cert(ck, f"client-{who}", out[who][0], out[who][1].subject),
            ),
            write(tmp / f"client_{who}.key", ck),
        )
    return out


def test_tls_and_mtls(tmp_path: Path) -> None:
    from osiris_server.app import App, init_data

    pki = _pki(tmp_path)
    init_data(tmp_path / "d", "t.osiris/osiris/log")
    app = App.open(tmp_path / "d", request_log=False)
    ctx = tls_context(pki["server_cert"], pki["server_key"], client_ca=pki["ca"][2])
    srv = make_server(app, "127.0.0.1", 0, ssl_context=ctx, read_timeout=2)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    url = f"https://127.0.0.1:{srv.server_address[1]}"
    try:

        def client(cert):
            c = ssl.create_default_context(cafile=pki["ca"][2])
            if cert:
                c.load_cert_chain(*cert)
            return httpx.Client(base_url=url, verify=c, timeout=5)

        with client(pki["client_ca"]) as c:
            assert c.get("/healthz").status_code == 200
            assert c.get("/healthz").status_code == 200  # keep-alive over TLS
        # no certificate: the handshake succeeds (enrolment needs no certificate); the app
        # decides per principal (tests/e2e/test_mtls.py)
        with client(None) as c:
            assert c.get("/healthz").status_code == 200
        # a certificate from another CA: the handshake itself fails
        with (
            client(pki["client_evil"]) as c,
            pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
        ):
            c.get("/healthz")
        # plain HTTP to a TLS port is refused, and the server keeps serving
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            httpx.get(url.replace("https", "http") + "/healthz", timeout=3)
        with client(pki["client_ca"]) as c:
            assert c.get("/healthz").status_code == 200
    finally:
        srv.shutdown()
        srv.drain(2)
        srv.server_close()
        app.close()


def test_checkin_body_fixture_is_valid() -> None:
    """Guard for the fixtures: the check-in body they send passes the shared validator."""
    from osiris_core.evidence import Chain
    from osiris_core.protocol import validate_checkin_request
    from tests.server.conftest import Appliance

    a = Appliance("app_x", "s", "t", None, None, Chain("app_x"), {})  # type: ignore[arg-type]
    validate_checkin_request(checkin_body(a))
