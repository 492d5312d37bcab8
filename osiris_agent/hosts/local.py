"""Run scripts on the appliance itself.

The script is written to a private (0600) temporary file and run as ``bash FILE`` (or
``pwsh -File FILE``) with an argument list — never a shell string, never split by hand, never
interpolated into a command line (lesson A2). The caller's ``stdin`` text goes to the process's
stdin, separate from the script. Each run gets its own process group so a timeout or a cancel
kills the whole tree, not just the interpreter.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from osiris_agent.hosts.base import (
    CANCEL_EXIT_CODE,
    TIMEOUT_EXIT_CODE,
    Interpreter,
    RunResult,
    Target,
    TransportError,
)

_POLL_S = 0.05


def _argv(interpreter: Interpreter, path: str) -> list[str]:
    if interpreter == "bash":
        bash = shutil.which("bash")
        if bash is None:
            raise TransportError("bash is not installed on this host")
        return [bash, "--", path]
    if interpreter == "powershell":
        pwsh = shutil.which("pwsh")
        if pwsh is None:
            raise TransportError("pwsh is not installed on this host")
        return [pwsh, "-NoLogo", "-NoProfile", "-NonInteractive", "-File", path]
    raise TransportError(f"unknown interpreter {interpreter!r}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalTransport:
    """Transport for the appliance itself (``kind="local"``)."""

    def __init__(self, target: Target | None = None) -> None:
        self.target = target

    def run_script(
        self,
        script: str,
        *,
        interpreter: Interpreter,
        stdin: str | None = None,
        timeout: float = 60.0,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        suffix = ".ps1" if interpreter == "powershell" else ".sh"
        fd, path = tempfile.mkstemp(prefix="osiris-", suffix=suffix)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(script.encode("utf-8"))
            return self._run(_argv(interpreter, path), stdin, timeout, cancel)
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _run(
        self,
        argv: list[str],
        stdin: str | None,
        timeout: float,
        cancel: threading.Event | None,
    ) -> RunResult:
        start = time.monotonic()
        deadline = start + timeout
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: kill the whole tree
                close_fds=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]}: {exc.strerror}") from exc
        data: bytes | None = (stdin or "").encode("utf-8")
        timed_out = cancelled = False
        out = err = b""
        while True:
            try:
                out, err = proc.communicate(input=data, timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                data = None  # input is handed over on the first call only
            if cancel is not None and cancel.is_set():
                cancelled = True
            elif time.monotonic() >= deadline:
                timed_out = True
            if timed_out or cancelled:
                _kill_group(proc)
                try:
                    out, err = proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:  # a child escaped the group and holds a pipe
                    proc.kill()
                    proc.wait()
                    out, err = b"", b""
                break
        duration_ms = int((time.monotonic() - start) * 1000)
        if timed_out:
            code = TIMEOUT_EXIT_CODE
        elif cancelled:
            code = CANCEL_EXIT_CODE
        else:
            code = proc.returncode
            if code < 0:  # killed by a signal: report it as a shell would
                code = 128 - code
        return RunResult(
            exit_code=code,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            duration_ms=duration_ms,
            timed_out=timed_out,
            cancelled=cancelled,
        )

    def close(self) -> None:
        """Nothing to release: each run is its own process."""
