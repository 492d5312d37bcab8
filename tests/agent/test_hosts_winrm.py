"""WinRM transport: the real pywinrm client against the WS-Man lab server on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from osiris_agent.hosts.base import AuthError, Target, TransportError, open_transport
from osiris_agent.hosts.winrm import WinrmTransport, decode_payload, encode_payload
from osiris_lab.wsman import LabHost, WsmanLabServer

PASSWORD = "lab-secret"


def _target(port: int, **kw) -> Target:
    base = dict(
        host_id="win-1",
        kind="winrm",
        address="127.0.0.1",
        port=port,
        username="Administrator",
        password=PASSWORD,
        lab=True,
        use_tls=False,
        auth="basic",
    )
    base.update(kw)
    return Target(**base)


def _transport(server: WsmanLabServer, **kw) -> WinrmTransport:
    return WinrmTransport(_target(server.port, **kw), backoff_s=0.01)


def test_open_transport_builds_winrm(wsman_lab) -> None:
    tr = open_transport(_target(wsman_lab.port))
    assert isinstance(tr, WinrmTransport)
    assert tr.endpoint == f"http://127.0.0.1:{wsman_lab.port}/wsman"


def test_script_round_trip_exact_text_including_long_script(wsman_lab) -> None:
    tr = _transport(wsman_lab)
    long_script = (
        "$ErrorActionPreference = 'Stop'\n"
        "# quotes ' \" `$(x) ; & | < > ünïcödé\n"
        + "".join(f"Set-Variable -Name v{i} -Value '{i:05d}'\n" for i in range(600))
    )
    assert len(long_script) > 8 * 1024 * 2  # well past the ~8k command-line limit
    res = tr.run_script(long_script, interpreter="powershell", stdin="input ✓\n")
    assert res.exit_code == 0
    assert wsman_lab.calls[-1] == (long_script, "input ✓\n")
    assert wsman_lab.host.scripts[-1] == long_script
    import hashlib
    import json

    echoed = json.loads(res.stdout)
    assert echoed == {
        "lab": True,
        "script_sha256": hashlib.sha256(long_script.encode()).hexdigest(),
    }
    # the command line itself stays short: the script travelled on stdin
    assert "Send" in wsman_lab.actions
    tr.close()


def test_exit_code_and_stderr_propagate(wsman_lab) -> None:
    wsman_lab.handler = lambda script, stdin: (7, "partial out\n", "Access denied ✗\n")
    tr = _transport(wsman_lab)
    res = tr.run_script("Stop-Service Spooler", interpreter="powershell")
    assert (res.exit_code, res.stdout, res.stderr) == (7, "partial out\n", "Access denied ✗\n")
    assert tr.retry_count == 0  # a failing script is never retried
    assert wsman_lab.actions.count("Command") == 1


def test_large_output_in_several_streams(wsman_lab) -> None:
    big = "x" * 200_000 + "\nend\n"
    wsman_lab.handler = lambda script, stdin: (0, big, "")
    res = _transport(wsman_lab).run_script("Get-Big", interpreter="powershell")
    assert res.stdout == big


def test_clixml_stderr_is_made_readable(wsman_lab) -> None:
    clixml = (
        "#< CLIXML\r\n"
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">Cannot find service_x000D__x000A_</S>'
        '<S S="Error">Spooler_x000D__x000A_</S></Objs>'
    )
    wsman_lab.handler = lambda script, stdin: (1, "", clixml)
    res = _transport(wsman_lab).run_script("x", interpreter="powershell")
    assert res.stderr == "Cannot find service\nSpooler"


def test_session_and_shell_are_reused(wsman_lab) -> None:
    tr = _transport(wsman_lab)
    for _ in range(3):
        assert tr.run_script("Get-Date", interpreter="powershell").exit_code == 0
    assert wsman_lab.actions.count("Create") == 1
    assert wsman_lab.actions.count("Command") == 3
    tr.close()
    assert wsman_lab.actions[-1] == "Delete"
    assert wsman_lab.shells == {}


def test_shell_lost_on_server_is_recreated(wsman_lab) -> None:
    tr = _transport(wsman_lab)
    tr.run_script("a", interpreter="powershell")
    wsman_lab.shells.clear()  # the host dropped the idle shell
    assert tr.run_script("b", interpreter="powershell").exit_code == 0
    assert wsman_lab.actions.count("Create") == 2


def test_dropped_connections_are_retried(wsman_lab) -> None:
    wsman_lab.faults.drop_next(2, action="Create")
    tr = _transport(wsman_lab)
    assert tr.run_script("x", interpreter="powershell").exit_code == 0
    assert tr.retry_count == 2
    assert wsman_lab.faults.injected == [("drop", "Create"), ("drop", "Create")]


def test_http_500_is_retried(wsman_lab) -> None:
    wsman_lab.faults.fail_next(2)
    tr = _transport(wsman_lab)
    assert tr.run_script("x", interpreter="powershell").exit_code == 0
    assert tr.retry_count == 2


def test_receive_drop_is_retried(wsman_lab) -> None:
    wsman_lab.faults.drop_next(1, action="Receive")
    tr = _transport(wsman_lab)
    assert tr.run_script("x", interpreter="powershell").exit_code == 0
    assert tr.retry_count == 1


def test_persistent_drops_end_in_transport_error(wsman_lab) -> None:
    wsman_lab.faults.drop_next(50)
    tr = _transport(wsman_lab)
    with pytest.raises(TransportError) as exc:
        tr.run_script("x", interpreter="powershell")
    assert exc.value.code == "E_TRANSPORT"
    assert "after 4 attempts" in str(exc.value)
    assert wsman_lab.actions == ["Create"] * 4  # 1 try + 3 retries
    assert wsman_lab.calls == []


def test_persistent_500_ends_in_transport_error(wsman_lab) -> None:
    wsman_lab.faults.fail_next(50)
    tr = _transport(wsman_lab)
    with pytest.raises(TransportError):
        tr.run_script("x", interpreter="powershell")
    assert len(wsman_lab.actions) == 4


def test_drop_after_command_sent_is_not_retried(wsman_lab) -> None:
    """The server may have started the script: never risk running it twice."""
    wsman_lab.faults.drop_next(1, action="Command")
    tr = _transport(wsman_lab)
    with pytest.raises(TransportError):
        tr.run_script("x", interpreter="powershell")
    assert wsman_lab.actions.count("Command") == 1
    assert tr.retry_count == 0


def test_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tr = WinrmTransport(_target(port), backoff_s=0.01, retries=2)
    with pytest.raises(TransportError) as exc:
        tr.run_script("x", interpreter="powershell")
    assert "after 3 attempts" in str(exc.value)
    assert tr.retry_count == 2


def test_slow_host_still_answers(wsman_lab) -> None:
    wsman_lab.faults.slow(0.05)
    assert _transport(wsman_lab).run_script("x", interpreter="powershell").exit_code == 0


def test_wrong_password_is_auth_error_and_not_retried(wsman_lab) -> None:
    tr = WinrmTransport(_target(wsman_lab.port, password="wrong-pass-123"), backoff_s=0.01)
    with pytest.raises(AuthError) as exc:
        tr.run_script("x", interpreter="powershell")
    assert exc.value.code == "E_AUTH"
    assert "wrong-pass-123" not in str(exc.value)
    assert tr.retry_count == 0


def test_timeout_signals_the_command(wsman_lab) -> None:
    release = threading.Event()
    wsman_lab.handler = lambda script, stdin: (release.wait(10), (0, "late", ""))[1]
    tr = _transport(wsman_lab)
    t0 = time.monotonic()
    res = tr.run_script("Start-Sleep 60", interpreter="powershell", timeout=1.5)
    release.set()
    assert res.timed_out and res.exit_code == 124
    assert time.monotonic() - t0 < 5
    assert wsman_lab.actions.count("Signal") == 1
    assert wsman_lab.actions.count("Receive") >= 1


def test_cancel_event(wsman_lab) -> None:
    release = threading.Event()
    wsman_lab.handler = lambda script, stdin: (release.wait(10), (0, "", ""))[1]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    tr = WinrmTransport(_target(wsman_lab.port), poll_s=1)  # cancel is seen within one poll
    res = tr.run_script("x", interpreter="powershell", timeout=30, cancel=cancel)
    release.set()
    assert res.cancelled and res.duration_ms < 3000
    assert wsman_lab.actions.count("Signal") == 1


def test_non_lab_plain_http_is_refused(wsman_lab) -> None:
    with pytest.raises(TransportError) as exc:
        WinrmTransport(_target(wsman_lab.port, lab=False))
    assert "plain HTTP" in str(exc.value)
    with pytest.raises(TransportError):
        open_transport(_target(wsman_lab.port, lab=False))
    assert wsman_lab.actions == []  # refused before any byte was sent


def test_non_lab_without_validation_is_refused() -> None:
    with pytest.raises(TransportError):
        WinrmTransport(_target(5986, lab=False, use_tls=True, verify_tls=False))


def test_default_endpoint_is_https_5986() -> None:
    t = Target(host_id="w", kind="winrm", address="dc01.clinic.lan", username="u", password="p")
    assert WinrmTransport(t).endpoint == "https://dc01.clinic.lan:5986/wsman"


def test_bash_is_refused_on_windows(wsman_lab) -> None:
    with pytest.raises(TransportError):
        _transport(wsman_lab).run_script("ls", interpreter="bash")


def test_credentials_never_in_repr() -> None:
    t = _target(1, password="S3cr3t-Pa55")
    text = repr(t) + str(t)
    assert "S3cr3t-Pa55" not in text
    assert "password=***" in text
    t2 = Target(host_id="h", kind="ssh", address="a", private_key="-----BEGIN KEY-----\nabc")
    assert "BEGIN" not in repr(t2)


def test_payload_framing_round_trip() -> None:
    for script, stdin in [("", None), ("a\r\nb", "x\ny"), ("ü" * 5000, "")]:
        assert decode_payload(encode_payload(script, stdin)) == (script, stdin or "")


def test_pywinrm_run_ps_and_run_cmd_against_lab(wsman_lab) -> None:
    """The lab speaks to pywinrm's own high-level API too (used by the demo)."""
    import winrm

    s = winrm.Session(
        wsman_lab.url,
        auth=("Administrator", PASSWORD),
        transport="basic",
        proxy=None,
        ca_trust_path=None,
    )
    r = s.run_ps("Get-Service | Where-Object Status -eq 'Running'")
    assert r.status_code == 0
    assert wsman_lab.calls[-1] == ("Get-Service | Where-Object Status -eq 'Running'", "")
    r = s.run_cmd("auditpol", ["/get", "/category:*"])
    assert wsman_lab.calls[-1][0] == "auditpol /get /category:*"


def test_default_handler_is_a_lab_host(wsman_lab) -> None:
    assert isinstance(wsman_lab.handler, LabHost)


# -- TLS: the lab can speak HTTPS, so certificate validation is tested for real ---------------
def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osiris-lab")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture()
def tls_lab(tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with WsmanLabServer(ssl_context=ctx) as server:
        yield server, cert


def test_https_with_pinned_ca_file_works(tls_lab) -> None:
    # lab=True only because the lab listener speaks Basic, which issue 15 allows towards lab
    # targets only; the certificate is judged all the same (verify_tls stays on)
    server, cert = tls_lab
    t = _target(server.port, use_tls=True, verify_tls=True, ca_file=str(cert))
    res = WinrmTransport(t, backoff_s=0.01).run_script("Get-Date", interpreter="powershell")
    assert res.exit_code == 0
    assert server.calls[-1][0] == "Get-Date"


def test_https_with_unknown_certificate_is_refused_and_not_retried(tls_lab, tmp_path) -> None:
    # issue 15 item 4 (deliberate change): with no CA and no pin the agent now trusts on first
    # use (tests/agent/test_winrm_trust.py); a certificate its CA bundle does not sign is refused
    server, _ = tls_lab
    (tmp_path / "other").mkdir()
    other, _key = _self_signed(tmp_path / "other")
    t = _target(server.port, use_tls=True, verify_tls=True, ca_bundle=other.read_text())
    tr = WinrmTransport(t, backoff_s=0.01)
    with pytest.raises(TransportError) as exc:
        tr.run_script("Get-Date", interpreter="powershell")
    assert "certificate" in str(exc.value)
    assert tr.retry_count == 0
    assert server.calls == []
