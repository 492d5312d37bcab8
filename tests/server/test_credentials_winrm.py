"""A WinRM credential's listener trust (ca_bundle | cert_thumbprint) and auth: parsed and bounded
at the API (garbage → 400 E_SCHEMA, nothing stored), delivered at check-in, and — being where the
password is sent — changed only with the secret given again. Real server over loopback."""

from __future__ import annotations

from tests.agent.winrm_certs import make
from tests.server.conftest import checkin_body

PW = "Winrm-Pw-31"


def _create(server, site_id: str, **kw):
    body = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5",
            "username": "CLINIC\\osiris", "password": PW, **kw}  # fmt: skip
    return server.admin.post(f"/api/v1/sites/{site_id}/credentials", json=body)


def test_trust_fields_are_checked_and_nothing_half_written(server) -> None:
    site = server.site()
    ca = make("Clinic Root", ca=True)
    key_pem = (
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
        "-----END PRIVATE KEY-----\n"
    )
    bad = [
        {"ca_bundle": "hello"},
        {"ca_bundle": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {"ca_bundle": ca.pem + key_pem},  # a private key pasted by mistake
        {"ca_bundle": ca.pem * 17},
        {"cert_thumbprint": "ab" * 20},  # SHA-1, as certlm shows it
        {"cert_thumbprint": "zz" * 32},
        {"ca_bundle": ca.pem, "cert_thumbprint": "ab" * 32},
        {"auth": "basic"},  # not a lab host
        {"auth": "credssp"},
    ]
    for extra in bad:
        r = _create(server, site["id"], **extra)
        assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", (extra, r.text)
        assert "MIGHAgEA" not in r.text  # never echoes what was pasted
    assert "SHA256" in _create(server, site["id"], cert_thumbprint="ab" * 20).text
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json={
        "host_id": "web1", "kind": "ssh_key", "address": "10.0.0.6", "username": "root",
        "private_key": "k", "cert_thumbprint": "ab" * 32,
    })  # fmt: skip
    assert r.status_code == 400
    assert server.admin.get(f"/api/v1/sites/{site['id']}/credentials").json()["credentials"] == []


def test_trust_is_delivered_and_changing_it_needs_the_secret_again(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    leaf = make("dc01")
    pin = ":".join(leaf.sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    r = _create(server, site["id"], cert_thumbprint=pin, auth="kerberos")
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["cert_thumbprint"] == leaf.sha256 and cred["auth"] == "kerberos"  # normalised
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    (t,) = a.opened(resp)
    assert (t["cert_thumbprint"], t["ca_bundle"], t["auth"]) == (leaf.sha256, "", "kerberos")
    # a new trust anchor is a new destination for the password: without it, an operator could
    # pin a listener of their own and collect the password at the next check-in
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    url = f"/api/v1/sites/{site['id']}/credentials/{cred['id']}"
    ca = make("Their CA", ca=True)
    for change in ({"cert_thumbprint": "cd" * 32}, {"ca_bundle": ca.pem, "cert_thumbprint": ""}):
        r = server.client(op["token"]).patch(url, json=change)
        assert r.status_code == 409 and r.json()["error"]["code"] == "E_SECRET_REQUIRED", r.text
    r = server.client(op["token"]).patch(url, json={"ca_bundle": ca.pem, "cert_thumbprint": "",
                                                    "password": "New-" + PW})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["ca_bundle"].startswith("-----BEGIN CERTIFICATE-----")
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    (t,) = a.opened(resp)
    assert t["ca_bundle"] == r.json()["ca_bundle"] and t["cert_thumbprint"] == ""
