"""WinRM over Kerberos against a REAL MIT KDC (issue 15 item 4): a throwaway realm
(osiris_lab/kdc.py runs Debian's krb5kdc), a ticket from kinit, pywinrm's kerberos transport
(pykerberos) to the lab WS-Man listener over HTTPS, which accepts Negotiate with the service
keytab and answers the mutual-authentication token. Without a ticket: E_AUTH, nothing run.

Needs krb5-kdc/krb5-user and pykerberos (``.ci/run`` installs them); skipped when absent unless
``OSIRIS_REQUIRE_KERBEROS=1``, which makes a missing piece a failure."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from osiris_agent.hosts.base import AuthError, Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core.catalog import load_catalog, render
from osiris_lab import kdc as lab_kdc
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer
from tests.agent.winrm_certs import make

USER = f"administrator@{lab_kdc.REALM}"
PW = "Kerberos-Lab-Pw-" + os.urandom(4).hex()
CAT = load_catalog()
DETECT = render(CAT.runbook("RB-WIN-FIREWALL-001"), "detect")


def _have_kerberos() -> str | None:
    try:
        import winrm.transport
    except ImportError:  # pragma: no cover
        return "pywinrm missing"
    if not winrm.transport.HAVE_KERBEROS:
        return "pykerberos is not installed"
    if not lab_kdc.available():
        return "MIT krb5kdc/kinit are not installed"
    return None


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab_kdc.LabKdc]:
    why = _have_kerberos()
    if why:
        if os.environ.get("OSIRIS_REQUIRE_KERBEROS") == "1":
            pytest.fail(f"OSIRIS_REQUIRE_KERBEROS=1 but {why}")
        pytest.skip(why)
    kdc = lab_kdc.LabKdc(tmp_path_factory.mktemp("kdc")).start(USER, PW)
    saved = {k: os.environ.get(k) for k in kdc.env()}
    os.environ.update(kdc.env())
    try:
        yield kdc
    finally:
        kdc.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def listener(realm, tmp_path: Path) -> Iterator[tuple[WsmanLabServer, str]]:
    leaf = make("localhost")
    srv = WsmanLabServer(handler=WindowsLabHost(CAT), password="unused-basic-pw",
                         ssl_context=leaf.server_context(tmp_path))  # fmt: skip
    srv.kerberos_service = f"HTTP@{realm.service_host}"
    srv.kerberos_user = USER
    srv.start()
    try:
        yield srv, leaf.sha256
    finally:
        srv.stop()


def _target(port: int, pin: str) -> Target:
    return Target(host_id="dc01", kind="winrm", address="localhost", port=port, username=USER,
                  use_tls=True, verify_tls=True, cert_thumbprint=pin,
                  auth="kerberos")  # fmt: skip


def test_a_kerberos_login_runs_the_script(realm, listener) -> None:
    srv, pin = listener
    realm.kinit(USER, PW)
    t = WinrmTransport(_target(srv.port, pin))
    try:
        res = t.run_script(DETECT, timeout=20)
    finally:
        t.close()
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["status"] == "compliant"
    assert srv.kerberos_logins and set(srv.kerberos_logins) == {USER}
    assert PW not in str(srv.calls)


def test_no_ticket_is_a_clear_auth_error(realm, listener) -> None:
    srv, pin = listener
    realm.ccache.unlink(missing_ok=True)  # kdestroy
    t = WinrmTransport(_target(srv.port, pin))
    with pytest.raises(AuthError) as e:
        t.run_script(DETECT, timeout=20)
    assert e.value.code == "E_AUTH"
    assert srv.calls == [] and srv.kerberos_logins == []
