"""mTLS end to end: the real ``osiris-server serve --tls-cert … --client-ca
DATA/keys/client-ca.pem`` (a subprocess, real TLS on loopback) and a real agent that enrols
(CSR → certificate at the claim), checks in and flushes evidence presenting its certificate.

Attacks, each against the running server: an appliance token without a certificate, with another
appliance's certificate, or with a certificate from another CA; a CSR asking for another
appliance's name; malformed, oversized, RSA and missing CSRs (refused, the claim code not spent);
a client key readable by others (the agent refuses to start, exit 2)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from osiris_agent import client_cert
from osiris_agent.client import AuthRefused, ServerClient
from osiris_agent.config import load_config
from osiris_agent.cycle import Agent
from osiris_agent.enroll import enroll
from osiris_core.errors import KeyPermissionError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer
from osiris_server.client_ca import appliance_urn
from tests.agent.fixtures_agent import good_clock
from tests.e2e.conftest import ROOT, free_port, seed_site

pytestmark = pytest.mark.timeout(240)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _pem(obj: Any) -> bytes:
    if hasattr(obj, "private_bytes"):
        return obj.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return obj.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(key, cn, issuer_key, issuer, *, ca=False, ip=None, uri=None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip or uri:
        names = [x509.IPAddress(ipaddress.ip_address(ip))] if ip else []
        names += [x509.UniformResourceIdentifier(uri)] if uri else []
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class MtlsCentral:
    """A real osiris-server over TLS with its own client CA (``client-ca init``)."""

    data: Path
    port: int
    admin: str
    server_ca: str  # what the agent trusts for the server's certificate
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def client_ca(self) -> Path:
        return self.data / "keys" / "client-ca.pem"

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "osiris_server.cli", "serve", "--data", str(self.data),
             "--listen", f"127.0.0.1:{self.port}", "--tls-cert", str(self.data / "tls.pem"),
             "--tls-key", str(self.data / "tls.key"), "--client-ca", str(self.client_ca)],
            env=_env(), stdout=out, stderr=out,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", verify=self.tls(), timeout=1)
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None, self.log_path.read_text()[-800:]
                time.sleep(0.05)
        raise AssertionError("osiris-server did not start over TLS")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)):
        # operators present no certificate: mTLS binds appliances (docs/server.md)
        r = httpx.request(
            method, self.url + "/api/v1" + path, json=body, verify=self.tls(),
            headers={"Authorization": f"Bearer {self.admin}"}, timeout=10,
        )  # fmt: skip
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def tls(self, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.server_ca)
        if cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx

    def evidence(self, site_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/evidence?site={site_id}&limit=1000")["evidence"]

    def raw(self, method: str, path: str, *, token: str | None = None,
            cert: tuple[str, str] | None = None, **kw: Any) -> httpx.Response:  # fmt: skip
        ctx = self.tls(cert)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=self.url, verify=ctx, timeout=10) as c:
            return c.request(method, "/api/v1" + path, headers=headers, **kw)


@pytest.fixture()
def central(tmp_path: Path) -> Iterator[MtlsCentral]:
    data = tmp_path / "srv"
    cli = [sys.executable, "-m", "osiris_server.cli"]
    init = subprocess.run([*cli, "init", "--data", str(data), "--json"],
                          env=_env(), capture_output=True, text=True)  # fmt: skip
    assert init.returncode == 0, init.stderr[-500:]
    made = subprocess.run([*cli, "client-ca", "init", "--data", str(data), "--json"],
                          env=_env(), capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["cert"] == str(data / "keys" / "client-ca.pem")
    assert (data / "keys" / "client-ca.key").stat().st_mode & 0o777 == 0o600
    # the server's own TLS certificate, from a CA the agent is given as server.ca_file
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_key, "server CA", ca_key, _name("server CA"), ca=True)
    (tmp_path / "server-ca.pem").write_bytes(_pem(ca))
    tls_key = ec.generate_private_key(ec.SECP256R1())
    (data / "tls.pem").write_bytes(_pem(_cert(tls_key, "srv", ca_key, ca.subject, ip="127.0.0.1")))
    (data / "tls.key").write_bytes(_pem(tls_key))
    c = MtlsCentral(data, free_port(), json.loads(init.stdout)["admin_token"],
                    str(tmp_path / "server-ca.pem"), tmp_path / "srv.log")  # fmt: skip
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _enrol(c: MtlsCentral, site_id: str, state: Path) -> Agent:
    code = c.api("POST", "/provisions", {"site_id": site_id})["code"]
    r = enroll(c.url, code, state, lab=True, ca_file=c.server_ca)
    return Agent(load_config(r.config_path), measure_clock=good_clock, scan_interval_s=0,
                 scan_self=False)  # fmt: skip


def _issued(state: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((state / "client.pem").read_bytes())


def _uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _pair(state: Path) -> tuple[str, str]:
    return str(state / "client.pem"), str(state / "client.key")


def _token(state: Path) -> str:
    return (state / "token").read_text().strip()


def _csr(key: Any, cn: str = "x", uri: str | None = None) -> str:
    b = x509.CertificateSigningRequestBuilder().subject_name(_name(cn))
    if uri:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    algo = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(key, algo).public_bytes(serialization.Encoding.PEM).decode()


def _claim_body(code: str, csr: str | None) -> dict[str, Any]:
    sk, ck = Signer("t", os.urandom(32)), Signer("t", os.urandom(32), KEY_TYPE_COSIGNATURE)
    body = {
        "code": code, "hostname": "box", "agent_version": "0.2.0",
        "signing_pub": base64.b64encode(sk.public).decode(),
        "cosign_pub": base64.b64encode(ck.public).decode(),
    }  # fmt: skip
    if csr is not None:
        body["csr"] = csr
    return body


def test_agent_enrols_checks_in_and_flushes_over_mtls(central: MtlsCentral, tmp_path) -> None:
    site = seed_site(central)  # type: ignore[arg-type] - the same API surface as Central
    state = tmp_path / "state"
    agent = _enrol(central, site.id, state)
    try:
        cert = _issued(state)
        assert _uris(cert) == [appliance_urn(agent.appliance_id)]
        assert (state / "client.key").stat().st_mode & 0o777 == 0o600
        issuer = x509.load_pem_x509_certificate(central.client_ca.read_bytes())
        cert.verify_directly_issued_by(issuer)
        report = agent.cycle()
        assert report.reachable, report.errors
        assert report.acked >= 1 and not report.errors, report
        got = central.evidence(site.id)
        assert {e["appliance_id"] for e in got} == {agent.appliance_id}
        # a second cycle over the same keep-alive: still accepted
        assert agent.cycle().reachable
    finally:
        agent.close()


def test_appliance_token_needs_its_own_certificate(central: MtlsCentral, tmp_path) -> None:
    site = seed_site(central)  # type: ignore[arg-type]
    a_state, b_state = tmp_path / "a", tmp_path / "b"
    a, b = _enrol(central, site.id, a_state), _enrol(central, site.id, b_state)
    a.close()
    b.close()
    body = {"agent_version": "0.2.0"}
    # no certificate at all: the token alone is refused, and says why
    r = central.raw("POST", "/checkin", token=_token(a_state), json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "E_CLIENT_CERT"
    assert "no client certificate" in r.json()["error"]["message"]
    # A's valid certificate with B's token: refused
    r = central.raw("POST", "/checkin", token=_token(b_state), cert=_pair(a_state), json=body)
    assert r.status_code == 403 and "another appliance" in r.json()["error"]["message"]
    # the agent's own client without its certificate: AuthRefused naming the certificate
    bare = ServerClient(central.url, _token(a_state), central.server_ca)
    with pytest.raises(AuthRefused, match="client certificate"):
        bare.post("/client-cert", {"csr": client_cert.csr_for(a_state)})
    bare.close()
    # a certificate from another CA carrying A's exact name: the handshake itself fails
    evil_key = ec.generate_private_key(ec.SECP256R1())
    evil_ca = _cert(evil_key, "Osiris client CA", evil_key, _name("Osiris client CA"), ca=True)
    k = ec.generate_private_key(ec.SECP256R1())
    forged = _cert(k, a.appliance_id, evil_key, evil_ca.subject, uri=appliance_urn(a.appliance_id))
    (tmp_path / "forged.pem").write_bytes(_pem(forged) + _pem(evil_ca))
    (tmp_path / "forged.key").write_bytes(_pem(k))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        forged_pair = (str(tmp_path / "forged.pem"), str(tmp_path / "forged.key"))
        central.raw("POST", "/checkin", token=_token(a_state), cert=forged_pair, json=body)
    # operators need no certificate (central.api presents none)
    assert central.api("GET", f"/sites/{site.id}")["id"] == site.id


def test_csr_cannot_name_another_appliance_and_bad_csrs_spend_nothing(
    central: MtlsCentral, tmp_path
) -> None:
    site = seed_site(central)  # type: ignore[arg-type]
    victim = _enrol(central, site.id, tmp_path / "victim")
    victim.close()
    code = central.api("POST", "/provisions", {"site_id": site.id})["code"]
    bad = {
        "garbage": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "rsa": _csr(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "p384": _csr(ec.generate_private_key(ec.SECP384R1())),
    }
    good = _csr(ec.generate_private_key(ec.SECP256R1()))
    der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature: the self-signature no longer verifies
    bad["bad-signature"] = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(bytes(der)).decode()
        + "-----END CERTIFICATE REQUEST-----\n"
    )
    for what, csr in bad.items():
        r = central.raw("POST", "/provision/claim", json=_claim_body(code, csr))
        assert r.status_code == 400 and r.json()["error"]["code"] == "E_CSR", (what, r.text)
    r = central.raw("POST", "/provision/claim", json=_claim_body(code, "A" * 5000))
    assert r.status_code == 400, r.text
    # under mTLS with an issuing CA a claim without a CSR is refused (it could never check in)
    r = central.raw("POST", "/provision/claim", json=_claim_body(code, None))
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_CSR_REQUIRED"
    # none of that spent the code: a CSR that asks for the victim's name still claims, but the
    # certificate names the new appliance only
    key = ed25519.Ed25519PrivateKey.generate()
    ask = _csr(key, cn=victim.appliance_id, uri=appliance_urn(victim.appliance_id))
    r = central.raw("POST", "/provision/claim", json=_claim_body(code, ask))
    assert r.status_code == 201, r.text
    doc = r.json()
    cert = x509.load_pem_x509_certificate(doc["client_cert"].encode())
    assert _uris(cert) == [appliance_urn(doc["appliance_id"])]
    assert victim.appliance_id not in cert.subject.rfc4514_string()
    audit = central.api("GET", f"/audit?site={site.id}&limit=200")
    enrol = [a for a in audit["audit"] if a["action"] == "appliance.enroll"
             and a["target"] == doc["appliance_id"]]  # fmt: skip
    assert len(enrol) == 1 and len(enrol[0]["detail"]["client_cert_sha256"]) == 64


def test_renewal_and_a_loose_client_key(central: MtlsCentral, tmp_path) -> None:
    site = seed_site(central)  # type: ignore[arg-type]
    state = tmp_path / "state"
    agent = _enrol(central, site.id, state)
    before = (state / "client.pem").read_bytes()
    try:
        # not due: nothing is asked; 10 days before expiry: renewed over the mTLS connection
        assert not client_cert.renew_if_due(agent.cfg, agent.client)
        expires = _issued(state).not_valid_after_utc
        later = expires - dt.timedelta(days=10)
        assert client_cert.renew_if_due(agent.cfg, agent.client, now=later)
        after = (state / "client.pem").read_bytes()
        assert after != before and _uris(_issued(state)) == [appliance_urn(agent.appliance_id)]
        audit = central.api("GET", f"/audit?site={site.id}&limit=200")["audit"]
        assert [a["target"] for a in audit if a["action"] == "appliance.client_cert"] == [
            agent.appliance_id
        ]
        agent.client.use_client_cert(client_cert.paths(agent.cfg))
        assert agent.cycle().reachable
    finally:
        agent.close()
    # a client key other users could read: the agent refuses to start (exit 2, clear message)
    os.chmod(state / "client.key", 0o644)
    with pytest.raises(KeyPermissionError, match="chmod 600"):
        Agent(load_config(state / "agent.toml"), measure_clock=good_clock)
    cfg = str(state / "agent.toml")
    p = subprocess.run([sys.executable, "-m", "osiris_agent.cli", "once", "--config", cfg],
                       env=_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2, (p.returncode, p.stderr[-500:])
    assert "client certificate key" in p.stderr and "Traceback" not in p.stderr


def test_provisioning_file_with_server_ca_enrols_over_https_and_mtls(
    central: MtlsCentral, tmp_path
) -> None:
    """First boot from a stick that carries the server's CA (no ``server.ca_file``): the agent
    trusts only that CA for the server, enrols over https, gets its certificate and checks in."""
    from osiris_agent import provision_file
    from osiris_agent.firstboot import CA_NAME, FirstBoot

    site = seed_site(central)  # type: ignore[arg-type]
    code = central.api("POST", "/provisions", {"site_id": site.id})["code"]
    usb, state = tmp_path / "usb", tmp_path / "state"
    usb.mkdir()
    boot = tmp_path / "boot.toml"
    boot.write_text(
        f'[server]\nurl = "{central.url}"\n[agent]\nstate_dir = "{state}"\nlab = true\n'
        f'[enrolment]\nprovision_dirs = ["{usb}"]\n'
    )
    ca_pem = Path(central.server_ca).read_text()
    prov = usb / provision_file.FILE_NAME
    # first a stick whose CA is not the server's: TLS fails, nothing is claimed or stored
    other = ec.generate_private_key(ec.SECP256R1())
    wrong = _pem(_cert(other, "other CA", other, _name("other CA"), ca=True)).decode()
    prov.write_text(f'server_url = "{central.url}"\nclaim_code = "{code}"\n'
                    f"server_ca = '''{wrong}'''\n")  # fmt: skip
    fb = FirstBoot(load_config(boot))
    assert not fb.attempt() and not (state / "pins.json").exists()
    assert fb.pending is not None  # unreachable: the code is kept in memory for a retry
    fb.pending = None
    prov.write_text(f'server_url = "{central.url}"\nclaim_code = "{code}"\n'
                    f"server_ca = '''{ca_pem}'''\n")  # fmt: skip
    assert FirstBoot(load_config(boot)).attempt()
    assert not prov.exists() and (state / "client.pem").exists()
    cfg = load_config(state / "agent.toml")
    assert cfg.server.ca_file == str(state / CA_NAME)
    agent = Agent(cfg, measure_clock=good_clock, scan_interval_s=0, scan_self=False)
    try:
        report = agent.cycle()
        assert report.reachable and report.acked >= 1, report
    finally:
        agent.close()
