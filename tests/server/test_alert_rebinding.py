"""An alert POST goes to exactly the address that was checked (DNS rebinding, issue 16).

Real receivers on loopback (plain HTTP and TLS with a self-signed certificate for a name),
real httpx; the one stand-in is the resolver, which ``alert_targets.resolve`` takes as a
parameter (the system's ``getaddrinfo`` by default) so a test can answer like a hostile DNS
server: something acceptable to the check, then an inward address to whoever asks next.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from osiris_server import alert_presets
from osiris_server.alert_targets import TargetRefused, check_url
from osiris_server.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertError, verify_webhook

INC = {"id": "inc-1", "site_id": "clinic", "appliance_id": "app-1", "host_id": "dc01",
       "kind": "heal_failed", "severity": "critical", "summary": "backup failed",
       "first_seen": "2026-12-02T10:00:00Z"}  # fmt: skip
PUBLIC = "93.184.216.34"


class Receiver(HTTPServer):
    """Counts every TCP connection it accepts and records every request (path, headers, body)."""

    def __init__(self, host: str, port: int, status: int = 200, location: str = "") -> None:
        self.accepted = 0
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.sni: list[str | None] = []
        self.status, self.location = status, location
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    def get_request(self):  # type: ignore[override]
        conn = super().get_request()
        self.accepted += 1
        return conn

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append((self.path, dict(self.headers.items()), body))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(r: Receiver) -> Receiver:
    threading.Thread(target=r.serve_forever, daemon=True).start()
    return r


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for r in started:
        r.shutdown()
        r.server_close()


def _start(receivers: list[Receiver], host: str = "127.0.0.1", port: int = 0, **kw) -> Receiver:
    r = _serve(Receiver(host, port, **kw))
    receivers.append(r)
    return r


def _twin_ports(receivers: list[Receiver]) -> tuple[Receiver, Receiver]:
    """A receiver on 127.0.0.2 and an attacker's on 127.0.0.1, the same port (the URL's)."""
    for _ in range(20):
        good = _start(receivers, "127.0.0.2")
        try:
            return good, _start(receivers, "127.0.0.1", good.port)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
    raise AssertionError("no port free on both loopback addresses")


class Rebinder:
    """Answers ``first`` once, then ``then`` to every later question; counts the questions."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.first, self.then, self.asked = first, then, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.first if self.asked == 1 else self.then


def _route(preset: str = "slack") -> dict:
    return {"name": "chat", "preset": preset, "target": ""}


def test_the_post_goes_to_the_checked_address_not_to_a_second_answer(receivers) -> None:
    good, attacker = _twin_ports(receivers)
    dns = Rebinder(["127.0.0.2"], ["127.0.0.1"])
    url = f"http://alerts.test:{good.port}/services/T0/B0/tok"
    alert_presets.send(_route(), {"url": url}, INC, "trigger", 0, None, True, resolver=dns)
    assert dns.asked == 1  # resolved once per send: nothing re-resolves at connect time
    assert attacker.accepted == 0 and attacker.posts == []
    ((path, headers, body),) = good.posts
    assert path == "/services/T0/B0/tok" and headers["Host"] == f"alerts.test:{good.port}"
    assert json.loads(body)["text"].startswith("[osiris] CRITICAL heal_failed")


def test_a_rebinding_answer_is_refused_and_nothing_reaches_loopback(receivers) -> None:
    inward = _start(receivers)
    url = f"https://alerts.test:{inward.port}/hook"
    dns = Rebinder([PUBLIC], ["127.0.0.1"])
    assert check_url(url, False, resolver=dns) == url  # saved: the name looked public then
    for preset in ("slack", "generic"):
        with pytest.raises(AlertError, match="private, loopback or link-local") as exc:
            alert_presets.send(_route(preset), {"url": url, "secret": "s" * 32}, INC,
                               "trigger", 0, None, False, resolver=dns)  # fmt: skip
        assert "alerts.test" not in str(exc.value) and "/hook" not in str(exc.value)
    # every address is checked: one inward answer among public ones refuses the lot
    for answer in (["127.0.0.1", PUBLIC], [PUBLIC, "169.254.169.254"], [PUBLIC, "::1"]):
        with pytest.raises(TargetRefused):
            check_url(url, False, resolver=lambda h, p, a=answer: a)
    with pytest.raises(TargetRefused, match="does not resolve"):
        check_url(url, False, resolver=lambda h, p: [])
    assert inward.accepted == 0 and inward.posts == []


def test_redirects_are_not_followed(receivers) -> None:
    elsewhere = _start(receivers)
    bouncer = _start(receivers, status=302, location=f"http://127.0.0.1:{elsewhere.port}/x")
    url = f"http://127.0.0.1:{bouncer.port}/hook"
    with pytest.raises(AlertError, match="slack webhook answered HTTP 302"):
        alert_presets.send(_route(), {"url": url}, INC, "trigger", 0, None, True)
    assert len(bouncer.posts) == 1 and elsewhere.accepted == 0


def test_generic_is_still_signed_over_the_pinned_connection(receivers) -> None:
    rx = _start(receivers)
    url = f"http://hooks.test:{rx.port}/psa"
    secret = "k" * 32
    alert_presets.send(_route("generic"), {"url": url, "secret": secret}, INC, "escalate", 2,
                       None, True, resolver=lambda h, p: ["127.0.0.1"])  # fmt: skip
    ((_, headers, body),) = rx.posts
    assert headers["Host"] == f"hooks.test:{rx.port}"
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_webhook(secret.encode(), ts, sig, body, now=int(ts))
    assert json.loads(body)["escalation"] == 2


# ---------------------------------------------------------------- TLS: SNI and verification


def _cert_for(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def _tls(receivers: list[Receiver], cert: Path, key: Path) -> Receiver:
    r = Receiver("127.0.0.1", 0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda sock, name, _ctx: r.sni.append(name)  # type: ignore[assignment]
    r.socket = ctx.wrap_socket(r.socket, server_side=True)
    receivers.append(_serve(r))
    return r


def test_tls_uses_the_name_for_sni_and_the_certificate(receivers, tmp_path, monkeypatch) -> None:
    cert, key = _cert_for(tmp_path, "alerts.test")
    rx = _tls(receivers, cert, key)
    url = f"https://alerts.test:{rx.port}/hook"
    # not trusted yet: verification is on (a self-signed certificate fails)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(AlertError, match="teams webhook failed: ConnectError"):
        alert_presets.send(_route("teams"), {"url": url}, INC, "trigger", 0, None, True,
                           resolver=lambda h, p: ["127.0.0.1"])  # fmt: skip
    assert rx.posts == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the admin's extra CA
    alert_presets.send(_route("teams"), {"url": url}, INC, "trigger", 0, None, True,
                       resolver=lambda h, p: ["127.0.0.1"])  # fmt: skip
    # the certificate names only alerts.test, never 127.0.0.1: it verified against the name
    assert "alerts.test" in rx.sni
    ((_, headers, body),) = rx.posts
    assert headers["Host"] == f"alerts.test:{rx.port}"
    assert json.loads(body)["@type"] == "MessageCard"


def test_tls_refuses_a_certificate_for_another_name(receivers, tmp_path, monkeypatch) -> None:
    cert, key = _cert_for(tmp_path, "other.test")
    rx = _tls(receivers, cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted, but for the wrong name
    url = f"https://alerts.test:{rx.port}/hook"
    with pytest.raises(AlertError, match="slack webhook failed: ConnectError"):
        alert_presets.send(_route(), {"url": url}, INC, "trigger", 0, None, True,
                           resolver=lambda h, p: ["127.0.0.1"])  # fmt: skip
    assert rx.posts == [] and rx.sni == ["alerts.test"]


def test_an_ip_literal_url_sends_no_sni_and_an_ipv6_one_connects(receivers) -> None:
    try:
        six = Receiver("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    receivers.append(_serve(six))
    url = f"http://[::1]:{six.port}/hook"
    alert_presets.send(_route(), {"url": url}, INC, "trigger", 0, None, True)
    ((_, headers, _body),) = six.posts
    assert headers["Host"] == f"[::1]:{six.port}"
