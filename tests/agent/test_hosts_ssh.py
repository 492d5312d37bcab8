"""SSH transport against a real OpenSSH server on 127.0.0.1 (fixture in conftest.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from osiris_agent.hosts.base import AuthError, HostKeyError, Target, open_transport
from osiris_agent.hosts.ssh import SshTransport


def _target(sshd, **kw) -> Target:
    base = dict(
        host_id="linux-1",
        kind="ssh",
        address="127.0.0.1",
        port=sshd.port,
        username=sshd.user,
        private_key=sshd.client_key,
        host_key_fingerprints=(sshd.host_fingerprint,),
    )
    base.update(kw)
    return Target(**base)


@pytest.fixture()
def ssh(sshd):
    tr = open_transport(_target(sshd))
    yield tr
    tr.close()


def test_key_auth_with_pinned_host_key_runs_script(ssh) -> None:
    res = ssh.run_script("id -un; echo err >&2; exit 3", interpreter="bash")
    assert res.exit_code == 3
    assert res.stdout.strip() == ssh.target.username
    assert res.stderr.strip() == "err"
    assert res.duration_ms > 0 and not res.timed_out


def test_connection_is_reused(ssh) -> None:
    ssh.run_script("true", interpreter="bash")
    first = ssh._client.get_transport()
    ssh.run_script("true", interpreter="bash")
    assert ssh._client.get_transport() is first


def test_script_text_runs_verbatim(ssh) -> None:
    script = """printf '%s\\n' "it's" '$(id)' "a;b" '`x`' "$HOME/x" 'ünï'\n"""
    res = ssh.run_script(script, interpreter="bash")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:4] == ["it's", "$(id)", "a;b", "`x`"]
    assert lines[4].endswith("/x") and lines[5] == "ünï"


def test_stdin_passthrough(ssh) -> None:
    data = "line one\n$(rm -rf /) 'quoted'\n" + "z" * 100_000
    res = ssh.run_script("cat; echo; echo done", interpreter="bash", stdin=data)
    assert res.exit_code == 0
    assert res.stdout == data + "\ndone\n"


def test_staged_files_are_removed(ssh) -> None:
    res = ssh.run_script('echo "$0"', interpreter="bash")
    path = res.stdout.strip()
    assert path.startswith("/") and not Path(path).exists()


def test_wrong_pin_refuses_before_auth(sshd) -> None:
    wrong = "SHA256:" + "A" * 43
    tr = SshTransport(_target(sshd, host_key_fingerprints=(wrong,)))
    with pytest.raises(HostKeyError) as exc:
        tr.run_script("true", interpreter="bash")
    assert exc.value.code == "E_HOST_KEY"
    assert sshd.host_fingerprint in str(exc.value)


def test_no_pin_and_no_tofu_refuses(sshd) -> None:
    tr = SshTransport(_target(sshd, host_key_fingerprints=()))
    with pytest.raises(HostKeyError):
        tr.run_script("true", interpreter="bash")


def test_tofu_reports_the_real_fingerprint_then_pins_it(sshd) -> None:
    seen: list[tuple[str, str]] = []
    tr = SshTransport(
        _target(sshd, host_key_fingerprints=(), tofu=True),
        on_tofu=lambda host, fp: seen.append((host, fp)),
    )
    assert tr.run_script("echo ok", interpreter="bash").stdout == "ok\n"
    assert seen == [("linux-1", sshd.host_fingerprint)]  # (target host_id, real fingerprint)
    assert tr.pins == {sshd.host_fingerprint}
    tr.close()
    tr.run_script("true", interpreter="bash")  # reconnect: now pinned, callback not fired again
    assert len(seen) == 1
    tr.close()


def test_tofu_is_ignored_when_pins_exist(sshd) -> None:
    seen: list[tuple[str, str]] = []
    tr = SshTransport(
        _target(sshd, host_key_fingerprints=("SHA256:" + "B" * 43,), tofu=True),
        on_tofu=lambda h, f: seen.append((h, f)),
    )
    with pytest.raises(HostKeyError):
        tr.run_script("true", interpreter="bash")
    assert seen == []


def test_bad_key_is_auth_error(sshd, tmp_path) -> None:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")])
    tr = SshTransport(_target(sshd, private_key=(tmp_path / "k").read_text()))
    with pytest.raises(AuthError) as exc:
        tr.run_script("true", interpreter="bash")
    assert exc.value.code == "E_AUTH"


def test_timeout_stops_and_reports(ssh) -> None:
    t0 = time.monotonic()
    # 3 s leaves room for the script upload on a loaded CI box; the sleep outlasts it by far.
    res = ssh.run_script("echo started; sleep 30", interpreter="bash", timeout=3.0)
    assert res.timed_out and res.exit_code == 124
    assert res.stdout == "started\n"
    assert time.monotonic() - t0 < 10
    assert ssh.run_script("echo alive", interpreter="bash").stdout == "alive\n"


def test_cancel_event_stops_run(ssh) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    res = ssh.run_script("sleep 30", interpreter="bash", timeout=20, cancel=cancel)
    assert res.cancelled and not res.timed_out
    assert res.duration_ms < 5000


def test_remote_backstop_kills_the_script_after_timeout(ssh, tmp_path) -> None:
    marker = tmp_path / "still-running"
    marker.write_text("")
    script = f"sleep 30; rm -f {marker}"
    # 3 s, as above: the script must have been uploaded and started before the timeout hits
    res = ssh.run_script(f"echo $$ > {tmp_path}/pid; {script}", interpreter="bash", timeout=3.0)
    assert res.timed_out
    deadline = time.monotonic() + 30
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int((tmp_path / "pid").read_text())
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
    assert marker.exists()  # killed, not completed


def test_credentials_not_in_repr(sshd) -> None:
    t = _target(sshd, password="hunter2-pass")
    assert "hunter2" not in repr(t) and "OPENSSH" not in repr(t)
    assert "hunter2" not in str(SshTransport(t).target)


# -- sudo with a real password-protected account --------------------------------------------
def _sudo_target(sshd, sudo_user, password: str | None = None) -> Target:
    return _target(
        sshd,
        username=sudo_user.name,
        password=password or sudo_user.password,
        private_key=None,
        sudo=True,
    )


def test_password_auth_and_sudo_runs_as_root(sshd, sudo_user) -> None:
    tr = SshTransport(_sudo_target(sshd, sudo_user))
    res = tr.run_script('id -u; echo "$SUDO_USER"; cat', interpreter="bash", stdin="payload\n")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines() == ["0", sudo_user.name, "payload"]  # password not in stdin
    for cmd in tr.commands_sent:
        assert sudo_user.password not in cmd
    tr.close()


def test_sudo_password_never_in_any_process_argv(sshd, sudo_user) -> None:
    tr = SshTransport(_sudo_target(sshd, sudo_user))
    script = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done"
    res = tr.run_script(script, interpreter="bash")
    assert res.exit_code == 0
    assert "sudo -S" in res.stdout  # we did see the sudo process itself ...
    assert sudo_user.password not in res.stdout  # ... and the password is nowhere in argv
    tr.close()


def test_wrong_sudo_password_fails_without_running(sshd, sudo_user, tmp_path) -> None:
    # password auth to SSH uses the right password; sudo gets a wrong one via a second target
    tr = SshTransport(_sudo_target(sshd, sudo_user))
    tr.target = _sudo_target(sshd, sudo_user, password="not-the-password")
    tr._client = SshTransport(_sudo_target(sshd, sudo_user))._connect()
    marker = tmp_path / "ran"
    # A sudo that refuses is the credential's failure, not the script's: E_AUTH, at once (sudo
    # meets EOF after the one password line; no hang), and nothing ran. (Before issue 15 this
    # came back as the script's exit code 1 — a "script error" on a host we could not enter.)
    started = time.monotonic()
    with pytest.raises(AuthError, match="sudo on linux-1 refused") as err:
        tr.run_script(f"touch {marker}", interpreter="bash", stdin="should-not-be-a-password\n")
    assert time.monotonic() - started < 30 and err.value.code == "E_AUTH"
    assert "not-the-password" not in str(err.value) and not marker.exists()
    tr.close()
    # control: the same script with the right password does create the marker
    good = SshTransport(_sudo_target(sshd, sudo_user))
    assert good.run_script(f"touch {marker}", interpreter="bash").exit_code == 0
    assert marker.exists()
    good.close()


def test_one_exec_round_trip_per_script(ssh) -> None:
    """Script and stdin travel on one channel's stdin: one exec per run, and neither the script
    text nor the data is on the command line."""
    before = len(ssh.commands_sent)
    script = "echo SCRIPT-MARKER-7f1; cat"
    res = ssh.run_script(script, interpreter="bash", stdin="DATA-MARKER-93a\n")
    assert res.exit_code == 0 and res.stdout == "SCRIPT-MARKER-7f1\nDATA-MARKER-93a\n"
    sent = ssh.commands_sent[before:]
    assert len(sent) == 1
    assert "SCRIPT-MARKER" not in sent[0] and "DATA-MARKER" not in sent[0]
    # empty script input and a script that reads nothing: still exact
    assert ssh.run_script("cat", interpreter="bash").stdout == ""
    assert len(ssh.commands_sent) == before + 2


def test_many_runs_on_one_connection(ssh) -> None:
    """More runs than sshd's MaxSessions (10) on one connection: channels are closed each
    time, so run 11+ still gets a session."""
    first = None
    for i in range(25):
        res = ssh.run_script(f"echo {i}", interpreter="bash")
        assert res.exit_code == 0 and res.stdout == f"{i}\n", res.stderr
        first = first or ssh._client.get_transport()
        assert ssh._client.get_transport() is first


def test_become_password_is_what_sudo_reads(sshd, sudo_user, tmp_path) -> None:
    """A delivered become password wins over the login password: a wrong one is refused even
    though the login password would have been right, and the right one runs as root."""
    marker = tmp_path / "ran"
    bad = SshTransport(_sudo_target(sshd, sudo_user))
    bad.target = Target(**{**_sudo_kw(sshd, sudo_user), "become_password": "wrong-become"})
    with pytest.raises(AuthError):
        bad.run_script(f"touch {marker}", interpreter="bash")
    bad.close()
    assert not marker.exists()
    t = Target(**{**_sudo_kw(sshd, sudo_user), "password": sudo_user.password,
                  "become_password": sudo_user.password})  # fmt: skip
    assert sudo_user.password not in repr(t)
    good = SshTransport(t)
    script = "id -u; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done"
    res = good.run_script(script, interpreter="bash")
    assert res.exit_code == 0 and res.stdout.splitlines()[0] == "0"
    assert sudo_user.password not in res.stdout
    good.close()


def _sudo_kw(sshd, sudo_user) -> dict:
    t = _sudo_target(sshd, sudo_user)
    return {f: getattr(t, f) for f in t.__dataclass_fields__}


def test_login_context_reaches_the_script_through_sudo(sshd, sudo_user) -> None:
    """OSIRIS_CTX_* name the login from the Target, survive sudo's env_reset, and carry the
    host sshd's own $SSH_CONNECTION; a runbook parameter cannot set them."""
    tr = SshTransport(_sudo_target(sshd, sudo_user))
    res = tr.run_script("env | grep '^OSIRIS_CTX_' | sort; echo \"sudo=$SUDO_USER\"",
                        interpreter="bash")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert f"OSIRIS_CTX_LOGIN_USER={sudo_user.name}" in lines
    assert "OSIRIS_CTX_LOGIN_AUTH=password" in lines and "OSIRIS_CTX_SUDO=1" in lines
    conn = [x for x in lines if x.startswith("OSIRIS_CTX_SSH_CONNECTION=")]
    assert conn and conn[0].split("=", 1)[1].split()[2:] == ["127.0.0.1", str(sshd.port)]
    assert f"sudo={sudo_user.name}" in lines
    tr.close()


def test_login_context_for_a_key_login(ssh) -> None:
    res = ssh.run_script("env | grep '^OSIRIS_CTX_' | sort", interpreter="bash")
    lines = res.stdout.splitlines()
    assert "OSIRIS_CTX_LOGIN_AUTH=publickey" in lines and "OSIRIS_CTX_SUDO=0" in lines
    assert f"OSIRIS_CTX_LOGIN_USER={ssh.target.username}" in lines


def _forward_after(delay: float, to_port: int) -> tuple[int, threading.Thread]:
    """A port that REFUSES connections for ``delay`` s (as sshd does while it re-execs on a
    reload), then listens and pipes each connection to the real sshd."""
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on it now: a connect is refused

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        time.sleep(delay)
        ls = socket.create_server(("127.0.0.1", port))
        ls.settimeout(10)
        try:
            c, _ = ls.accept()
        except OSError:
            return
        finally:
            ls.close()
        up = socket.create_connection(("127.0.0.1", to_port))
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        pipe(up, c)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return port, t


def test_a_refusal_while_sshd_reloads_is_retried_then_connects(sshd) -> None:
    port, _ = _forward_after(0.6, sshd.port)
    tr = SshTransport(_target(sshd, port=port))
    try:
        assert tr.run_script("echo up").stdout.strip() == "up"
    finally:
        tr.close()


def test_a_host_that_keeps_refusing_is_a_transport_error_in_bounded_time(sshd) -> None:
    from osiris_agent.hosts.base import TransportError
    from osiris_agent.hosts.ssh import REFUSED_RETRY_S

    port, _ = _forward_after(60, sshd.port)  # opens long after the agent gives up
    started = time.monotonic()
    with pytest.raises(TransportError, match="cannot connect to linux-1 over SSH"):
        SshTransport(_target(sshd, port=port)).run_script("true")
    took = time.monotonic() - started
    assert sum(REFUSED_RETRY_S) <= took < sum(REFUSED_RETRY_S) + 5
