"""Local transport: real bash processes, real pipes, real process groups."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from osiris_agent.hosts.base import RunResult, ScriptTimeout, Target, TransportError, open_transport
from osiris_agent.hosts.local import LocalTransport


@pytest.fixture()
def local() -> LocalTransport:
    tr = open_transport(Target(host_id="appliance", kind="local", address="localhost"))
    assert isinstance(tr, LocalTransport)
    return tr


@pytest.mark.parametrize("code", [0, 1, 2, 42, 255])
def test_exit_codes(local, code: int) -> None:
    res = local.run_script(f"exit {code}", interpreter="bash")
    assert res.exit_code == code
    assert res.ok is (code == 0)


def test_stdout_stderr_separate(local) -> None:
    res = local.run_script("echo out; echo err >&2; echo out2", interpreter="bash")
    assert res.stdout == "out\nout2\n"
    assert res.stderr == "err\n"
    assert res.duration_ms >= 0 and not res.timed_out


def test_stdin_is_passed_separately_from_the_script(local) -> None:
    data = "first line\n$(touch /tmp/pwned) ; rm -rf x\n" + "y" * 200_000
    res = local.run_script("cat; echo END", interpreter="bash", stdin=data)
    assert res.exit_code == 0
    assert res.stdout == data + "END\n"


def test_no_stdin_means_eof(local) -> None:
    res = local.run_script("cat; echo done", interpreter="bash")
    assert res.stdout == "done\n"


def test_script_runs_verbatim(local, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    script = (
        f"""printf '%s\\n' "it's" 'a;b' '$(touch {canary})' "`echo sub`" 'ünï'\n"""
        f"""x='$(touch {canary})'; printf '%s\\n' "$x"\n"""
    )
    res = local.run_script(script, interpreter="bash")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines() == [
        "it's",
        "a;b",
        f"$(touch {canary})",
        "sub",
        "ünï",
        f"$(touch {canary})",
    ]
    assert not canary.exists()


def test_script_file_is_private_and_removed(local) -> None:
    res = local.run_script('stat -c %a "$0"; echo "$0"', interpreter="bash")
    mode, path = res.stdout.split()
    assert mode == "600"
    assert not Path(path).exists()


def test_timeout_kills_the_whole_process_group(local, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    res = local.run_script(
        f"sleep 60 & echo $! > {pidfile}; echo started; wait", interpreter="bash", timeout=0.5
    )
    assert time.monotonic() - t0 < 5
    assert res.timed_out and res.exit_code == 124
    assert res.stdout == "started\n"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child), "the background child survived the timeout"
    with pytest.raises(ScriptTimeout):
        res.raise_for_timeout()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


def test_cancel_event(local) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    res = local.run_script("sleep 30", interpreter="bash", timeout=20, cancel=cancel)
    assert res.cancelled and not res.timed_out
    assert time.monotonic() - t0 < 5


def test_raise_for_timeout_passes_normal_runs() -> None:
    r = RunResult(exit_code=0, stdout="", stderr="", duration_ms=1)
    assert r.raise_for_timeout() is r


def test_killed_by_signal_reports_128_plus(local) -> None:
    res = local.run_script("kill -TERM $$", interpreter="bash")
    assert res.exit_code == 128 + 15


@pytest.mark.skipif(shutil.which("pwsh") is not None, reason="pwsh installed here")
def test_powershell_without_pwsh_is_a_transport_error(local) -> None:
    with pytest.raises(TransportError) as exc:
        local.run_script("Write-Output 1", interpreter="powershell")
    assert exc.value.code == "E_TRANSPORT"


def test_environment_is_inherited_not_interpolated(local, monkeypatch) -> None:
    monkeypatch.setenv("OSIRIS_TEST_VALUE", "$(echo injected)")
    res = local.run_script('printf "%s" "$OSIRIS_TEST_VALUE"', interpreter="bash")
    assert res.stdout == "$(echo injected)"
    assert os.environ["OSIRIS_TEST_VALUE"] == "$(echo injected)"
