"""Per-host WinRM trust against a REAL TLS WS-Man endpoint (the lab server over HTTPS, certs made
with ``cryptography``): a pinned thumbprint, a CA bundle, trust on first use — and, when the
certificate is not the trusted one, the refusal comes before any credential is sent (the lab
server records whether each HTTP request carried an Authorization header; a refused pin sends
no request at all). Kerberos is selected when asked for and, with no Kerberos client library on
this machine, is a clear E_AUTH — no real KDC runs here (see the report of issue 15)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from osiris_agent.hosts.base import AuthError, HostKeyError, Target, TransportError
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core.catalog import load_catalog, render
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.agent.winrm_certs import Cert, make

PW = "Pw-winrm-trust-7d1e"
CAT = load_catalog()
DETECT = render(CAT.runbook("RB-WIN-FIREWALL-001"), "detect")


@pytest.fixture(scope="module")
def certs() -> dict[str, Cert]:
    ca = make("Clinic Test Root CA", ca=True)
    other_ca = make("Someone Else's CA", ca=True)
    return {
        "ca": ca,
        "other_ca": other_ca,
        "leaf": make("dc01.clinic.example", ca),
        "other_leaf": make("dc01.clinic.example", other_ca),
        "self_signed": make("dc01-selfsigned"),
    }


def _serve(cert: Cert, tmp: Path, port: int = 0) -> WsmanLabServer:
    return WsmanLabServer(
        port, handler=WindowsLabHost(CAT), password=PW, ssl_context=cert.server_context(tmp)
    ).start()


@pytest.fixture()
def listener(certs, tmp_path) -> Iterator[WsmanLabServer]:
    srv = _serve(certs["leaf"], tmp_path)
    yield srv
    srv.stop()


def _target(port: int, **kw) -> Target:
    kw.setdefault("auth", "basic")
    kw.setdefault("lab", True)  # the lab listener speaks Basic only; TLS is judged regardless
    return Target(host_id="dc01", kind="winrm", address="127.0.0.1", port=port,
                  username="Administrator", password=PW, use_tls=True, verify_tls=True,
                  **kw)  # fmt: skip


def _detect(t: WinrmTransport) -> dict:
    res = t.run_script(DETECT, timeout=20)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_the_right_pin_works(listener, certs) -> None:
    pin = ":".join(certs["leaf"].sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    t = WinrmTransport(_target(listener.port, cert_thumbprint=pin))
    try:
        assert _detect(t)["status"] == "compliant"
    finally:
        t.close()
    assert listener.authorization_seen and all(listener.authorization_seen)


def test_a_wrong_pin_is_refused_before_any_credential_is_sent(listener, certs) -> None:
    t = WinrmTransport(_target(listener.port, cert_thumbprint=certs["other_leaf"].sha256))
    with pytest.raises(HostKeyError) as e:
        t.run_script(DETECT, timeout=20)
    assert e.value.code == "E_HOST_KEY" and "no credential was sent" in str(e.value)
    assert listener.authorization_seen == []  # not one HTTP request reached the listener
    assert listener.calls == []


def test_a_ca_bundle_right_and_wrong(listener, certs) -> None:
    good = WinrmTransport(_target(listener.port, ca_bundle=certs["ca"].pem))
    try:
        assert _detect(good)["status"] == "compliant"
    finally:
        good.close()
    seen = len(listener.authorization_seen)
    bad = WinrmTransport(_target(listener.port, ca_bundle=certs["other_ca"].pem))
    with pytest.raises(TransportError) as e:
        bad.run_script(DETECT, timeout=20)
    assert "TLS certificate validation failed" in str(e.value)
    assert len(listener.authorization_seen) == seen  # nothing more reached the listener
    # a CA bundle is the only trust: the system store is not consulted besides it, and a
    # garbage bundle is an error, not "no bundle"
    with pytest.raises(TransportError, match="cannot be loaded"):
        WinrmTransport(_target(listener.port, ca_bundle="not a certificate")).run_script(
            DETECT, timeout=20
        )


def test_a_self_signed_listener_trusted_by_its_own_certificate(certs, tmp_path) -> None:
    srv = _serve(certs["self_signed"], tmp_path)
    try:
        t = WinrmTransport(_target(srv.port, ca_bundle=certs["self_signed"].pem))
        try:
            assert _detect(t)["status"] == "compliant"
        finally:
            t.close()
        pinned = WinrmTransport(_target(srv.port, cert_thumbprint=certs["self_signed"].sha256))
        try:
            assert _detect(pinned)["status"] == "compliant"
        finally:
            pinned.close()
    finally:
        srv.stop()


def test_tofu_records_the_thumbprint_then_a_swapped_certificate_is_refused(certs, tmp_path) -> None:
    srv = _serve(certs["leaf"], tmp_path)
    seen: list[tuple[str, str]] = []
    t = WinrmTransport(_target(srv.port), on_tofu=lambda h, fp: seen.append((h, fp)))
    try:
        assert _detect(t)["status"] == "compliant"
    finally:
        t.close()
        port = srv.port
        srv.stop()
    assert seen == [("dc01", certs["leaf"].sha256)]
    # the same host now presents another certificate (a man in the middle, or a re-issued one
    # nobody confirmed): the agent holds the pin it took (transports.py, checkin.py) -> refused
    swapped = _serve(certs["other_leaf"], tmp_path, port)
    try:
        again = WinrmTransport(_target(port, cert_thumbprint=seen[0][1]))
        with pytest.raises(HostKeyError):
            again.run_script(DETECT, timeout=20)
        assert swapped.authorization_seen == []
    finally:
        swapped.stop()


def test_kerberos_is_selected_and_without_a_client_library_is_a_clear_auth_error(
    listener, certs, monkeypatch
) -> None:
    """An appliance without pykerberos (a real Kerberos login against a real KDC is
    tests/agent/test_winrm_kerberos.py)."""
    import winrm.transport

    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", False)  # pywinrm's own import probe
    t = WinrmTransport(
        _target(listener.port, auth="kerberos", lab=False, cert_thumbprint=certs["leaf"].sha256)
    )
    with pytest.raises(AuthError) as e:
        t.run_script(DETECT, timeout=20)
    assert e.value.code == "E_AUTH" and "pykerberos" in str(e.value) and "kinit" in str(e.value)
    assert listener.authorization_seen == []


def test_basic_auth_and_unknown_auth_are_refused_for_a_real_host(listener) -> None:
    with pytest.raises(TransportError, match="basic only towards a lab target"):
        WinrmTransport(_target(listener.port, auth="basic", lab=False))
    with pytest.raises(TransportError, match="refusing WinRM auth 'credssp'"):
        WinrmTransport(_target(listener.port, auth="credssp"))
