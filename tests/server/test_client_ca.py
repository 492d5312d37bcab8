"""The client CA on its own (osiris_server/client_ca.py, ``osiris-server client-ca``), over plain
HTTP on both engines: what the claim issues with and without a CA, what it refuses, the CA key's
mode check, and that ``init`` never replaces a CA. The TLS side is tests/e2e/test_mtls.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from osiris_core.errors import KeyPermissionError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer
from osiris_server import client_ca
from tests.server.conftest import Server


def _csr(uri: str | None = None) -> str:
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])
    )
    if uri:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    key = ec.generate_private_key(ec.SECP256R1())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _claim(server: Server, site_id: str, **extra: str):
    sk, ck = Signer("t", os.urandom(32)), Signer("t", os.urandom(32), KEY_TYPE_COSIGNATURE)
    body = {
        "code": server.claim_code(site_id), "hostname": "box", "agent_version": "0.2.0",
        "signing_pub": base64.b64encode(sk.public).decode(),
        "cosign_pub": base64.b64encode(ck.public).decode(), **extra,
    }  # fmt: skip
    return body, server.client().post("/api/v1/provision/claim", json=body)


def _site(server: Server) -> str:
    return server.admin.post("/api/v1/sites", json={"name": "Clinic"}).json()["id"]


def test_without_a_ca_the_claim_issues_nothing_but_still_refuses_a_bad_csr(server) -> None:
    site = _site(server)
    _, r = _claim(server, site, csr=_csr())
    assert r.status_code == 201 and r.json()["client_cert"] is None
    body, r = _claim(server, site, csr="not a csr")
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_CSR"
    # the code was not spent by the bad CSR
    del body["csr"]
    assert server.client().post("/api/v1/provision/claim", json=body).status_code == 201
    # renewal needs a CA
    a = server.enroll(site)
    r = server.client(a.token).post("/api/v1/client-cert", json={"csr": _csr()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_NO_CLIENT_CA"


def _unknown_key_csr() -> str:
    """A CSR whose key algorithm OID (id-ecPublicKey, 1.2.840.10045.2.1) is bent to an unknown one:
    cryptography raises UnsupportedAlgorithm for it, which is not a ValueError."""
    der = x509.load_pem_x509_csr(_csr().encode()).public_bytes(serialization.Encoding.DER)
    oid = bytes.fromhex("06072a8648ce3d0201")
    assert der.count(oid) == 1
    bent = der.replace(oid, oid[:-1] + b"\x09")
    b64 = base64.encodebytes(bent).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{b64}-----END CERTIFICATE REQUEST-----\n"


def test_a_csr_with_an_unknown_key_algorithm_is_a_400_and_spends_nothing(server) -> None:
    client_ca.init(server.app.cfg.keys_dir, server.app.cfg.origin)
    with pytest.raises(client_ca.CsrError):
        client_ca.csr_public_key(_unknown_key_csr())
    body, r = _claim(server, _site(server), csr=_unknown_key_csr())
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_CSR", r.text
    body["csr"] = _csr()
    assert server.client().post("/api/v1/provision/claim", json=body).status_code == 201


def test_with_a_ca_the_claim_issues_bound_certificates(server) -> None:
    client_ca.init(server.app.cfg.keys_dir, server.app.cfg.origin)
    site = _site(server)
    _, r = _claim(server, site, csr=_csr(uri=client_ca.appliance_urn("app_someone_else")))
    assert r.status_code == 201, r.text
    doc = r.json()
    cert = x509.load_pem_x509_certificate(doc["client_cert"].encode())
    assert (
        client_ca.appliance_of(cert.public_bytes(serialization.Encoding.DER)) == doc["appliance_id"]
    )
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # over plain HTTP (no mTLS) a claim without a CSR still works: nothing to present it on
    _, r = _claim(server, site)
    assert r.status_code == 201 and r.json()["client_cert"] is None
    # without mTLS the token alone cannot mint a certificate (renewal over mTLS: e2e)
    a = server.enroll(site)
    r = server.client(a.token).post("/api/v1/client-cert", json={"csr": _csr()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_MTLS_REQUIRED"
    # operators cannot get an appliance certificate
    r = server.admin.post("/api/v1/client-cert", json={"csr": _csr()})
    assert r.status_code == 403


def test_ca_key_mode_is_checked_and_init_never_replaces(server) -> None:
    keys = server.app.cfg.keys_dir
    client_ca.init(keys, "o.example/log")
    cert_before = client_ca.paths(keys)[0].read_bytes()
    cli = [sys.executable, "-m", "osiris_server.cli", "client-ca"]
    p = subprocess.run([*cli, "init", "--data", str(server.data)], capture_output=True, text=True)
    assert p.returncode == 2 and "never replaced" in p.stderr and "Traceback" not in p.stderr
    assert client_ca.paths(keys)[0].read_bytes() == cert_before
    p = subprocess.run([*cli, "show", "--data", str(server.data), "--json"],
                       capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0 and json.loads(p.stdout)["cert"].endswith("client-ca.pem")
    os.chmod(client_ca.paths(keys)[1], 0o640)
    with pytest.raises(KeyPermissionError):
        client_ca.load(keys)
    site = _site(server)
    _, r = _claim(server, site, csr=_csr())
    assert r.status_code == 500  # a server fault, not the client's: logged, nothing claimed
    os.chmod(client_ca.paths(keys)[1], 0o600)


def test_appliance_of_needs_exactly_one_osiris_name() -> None:
    assert client_ca.appliance_of(None) is None
    assert client_ca.appliance_of(b"\x30\x03garbage") is None
