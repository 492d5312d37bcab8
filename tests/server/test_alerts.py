"""Alerts against a real aiosmtpd server and a real HTTP receiver, both on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from osiris_core import canonical
from osiris_core.errors import OsirisError
from osiris_server.alerts import (
    AlertError,
    SmtpConfig,
    send_email,
    send_webhook,
    sign_webhook,
    verify_webhook,
)

PASSWORD = "s3cr3t-relay-pa55"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _auth(logins: list[tuple[str, str]]):
    def authenticator(server, session, envelope, mechanism, auth_data):
        user = auth_data.login.decode()
        pw = auth_data.password.decode()
        logins.append((user, pw))
        ok = user == "alerts" and pw == PASSWORD
        return AuthResult(success=ok, handled=False)

    return authenticator


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osiris-test-smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "smtp-cert.pem"
    key_path = tmp_path / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def smtp_plain():
    handler = _Collector()
    port = _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield handler, port
    finally:
        ctl.stop()


@pytest.fixture
def smtp_tls(tmp_path):
    cert_path, key_path = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    handler = _Collector()
    logins: list[tuple[str, str]] = []
    port = _free_port()
    ctl = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=_auth(logins),
        auth_require_tls=True,
    )
    ctl.start()
    try:
        yield handler, port, cert_path, logins
    finally:
        ctl.stop()


# ------------------------------------------------------------------------ e-mail


def test_email_plain_delivery(smtp_plain):
    handler, port = smtp_plain
    cfg = SmtpConfig(
        host="127.0.0.1", port=port, starttls=False, recipients=["a@clinic.test", "b@msp.test"]
    )
    send_email(cfg, "CRITICAL: log_inconsistent at site s1", "Appliance ap1 saw a fork.\n")
    assert len(handler.messages) == 1
    mail_from, rcpts, content = handler.messages[0]
    assert mail_from == "osiris@localhost"
    assert rcpts == ["a@clinic.test", "b@msp.test"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "CRITICAL: log_inconsistent at site s1"
    assert "Appliance ap1 saw a fork." in msg.get_payload(decode=True).decode()


def test_email_starttls_with_login_and_cafile(smtp_tls):
    handler, port, cert_path, logins = smtp_tls
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=port,
        starttls=True,
        username="alerts",
        password=PASSWORD,
        recipients=["oncall@msp.test"],
        cafile=str(cert_path),
    )
    body = f"Heal failed on dc01; relay password would be {PASSWORD} if we leaked it.\n"
    send_email(cfg, f"subject with {PASSWORD}", body)
    assert logins == [("alerts", PASSWORD)]  # the password reached the server only via AUTH
    assert len(handler.messages) == 1
    content = handler.messages[0][2]
    assert PASSWORD.encode() not in content
    assert b"[REDACTED]" in content
    assert PASSWORD not in repr(cfg)


def test_email_starttls_untrusted_cert_fails(smtp_tls):
    handler, port, _cert, _logins = smtp_tls
    cfg = SmtpConfig(
        host="127.0.0.1", port=port, username="alerts", password=PASSWORD, recipients=["x@y.test"]
    )
    with pytest.raises(AlertError) as exc:
        send_email(cfg, "s", "b")  # system CA store does not know our self-signed cert
    assert PASSWORD not in str(exc.value)
    assert handler.messages == []


def test_email_bad_login_fails_without_leaking(smtp_tls):
    handler, port, cert_path, logins = smtp_tls
    wrong = "wrong-" + PASSWORD
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=port,
        username="alerts",
        password=wrong,
        recipients=["x@y.test"],
        cafile=str(cert_path),
    )
    with pytest.raises(AlertError) as exc:
        send_email(cfg, "s", "b")
    assert exc.value.code == "E_ALERT" and isinstance(exc.value, OsirisError)
    assert wrong not in str(exc.value)
    assert logins and all(entry == ("alerts", wrong) for entry in logins)
    assert handler.messages == []


def test_email_server_down():
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=_free_port(),
        starttls=False,
        recipients=["x@y.test"],
        password=PASSWORD,
        timeout=2.0,
    )
    with pytest.raises(AlertError) as exc:
        send_email(cfg, "s", "b")
    assert PASSWORD not in str(exc.value)


def test_email_requires_recipients(smtp_plain):
    _handler, port = smtp_plain
    with pytest.raises(AlertError):
        send_email(SmtpConfig(host="127.0.0.1", port=port, starttls=False), "s", "b")


# ------------------------------------------------------------------------ webhooks

SECRET = b"whsec-0123456789"


def test_sign_webhook_is_hmac_sha256():
    body = b'{"a":1}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook(SECRET, 1700000000, body) == "sha256=" + expected


def test_verify_webhook_rules():
    body = b'{"incident":"x"}'
    ts = 1_700_000_000
    sig = sign_webhook(SECRET, ts, body)
    assert verify_webhook(SECRET, str(ts), sig, body, now=ts)
    assert verify_webhook(SECRET, str(ts), sig, body, now=ts + 300)
    assert verify_webhook(SECRET, str(ts), sig, body, now=ts - 300)
    assert not verify_webhook(SECRET, str(ts), sig, body, now=ts + 301)
    assert not verify_webhook(SECRET, str(ts), sig, body, now=ts - 301)
    assert not verify_webhook(SECRET, str(ts), sig, body + b" ", now=ts)
    assert not verify_webhook(b"other", str(ts), sig, body, now=ts)
    assert not verify_webhook(SECRET, str(ts + 1), sig, body, now=ts)  # timestamp is in the MAC
    for bad_ts in ("", "-1", "1e9", " 1700000000", "abc", "٣", "9" * 40):
        assert not verify_webhook(SECRET, bad_ts, sig, body, now=ts)
    for bad_sig in ("", "sha256=", sig.upper(), sig[:-1], "sha1=" + sig[7:], "é" * 71):
        assert not verify_webhook(SECRET, str(ts), bad_sig, body, now=ts)


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    received: list[dict]

    def do_POST(self):  # noqa: N802 - http.server hook name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify_webhook(
            self.server.secret,
            self.headers.get("X-Osiris-Timestamp", ""),
            self.headers.get("X-Osiris-Signature", ""),
            body,
            now=int(time.time()),
        )
        self.server.received.append(
            {"ok": ok, "body": body, "ctype": self.headers.get("Content-Type")}
        )
        status = self.server.status if ok else 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.secret = SECRET
    srv.status = 200
    srv.received = []
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}/hook"
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_delivered_and_verified(receiver):
    srv, url = receiver
    payload = {"kind": "incident", "severity": "critical", "site_id": "s1", "n": 3}
    assert send_webhook(url, SECRET, payload) == 200
    assert len(srv.received) == 1
    got = srv.received[0]
    assert got["ok"] is True
    assert got["body"] == canonical.dumps(payload)
    assert json.loads(got["body"]) == payload
    assert got["ctype"] == "application/json"


def test_webhook_wrong_secret_rejected_by_receiver(receiver):
    srv, url = receiver
    with pytest.raises(AlertError) as exc:
        send_webhook(url, b"not-the-secret", {"a": 1})
    assert "401" in str(exc.value)
    assert srv.received[0]["ok"] is False


def test_webhook_500_raises(receiver):
    srv, url = receiver
    srv.status = 500
    with pytest.raises(AlertError) as exc:
        send_webhook(url, SECRET, {"a": 1})
    assert exc.value.code == "E_ALERT"
    assert "500" in str(exc.value)
    assert srv.received[0]["ok"] is True


def test_webhook_server_down():
    url = f"http://user:pw@127.0.0.1:{_free_port()}/hook?token=tok123"
    with pytest.raises(AlertError) as exc:
        send_webhook(url, SECRET, {"a": 1}, timeout=2.0)
    assert "tok123" not in str(exc.value) and "pw@" not in str(exc.value)


def test_webhook_rejects_non_canonical_payload(receiver):
    srv, url = receiver
    with pytest.raises(AlertError):
        send_webhook(url, SECRET, {"x": 1.5})
    assert srv.received == []
