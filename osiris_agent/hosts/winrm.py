"""Run PowerShell on Windows hosts over WinRM (pywinrm).

Security defaults (lesson B5: the old agent used HTTP 5985, NTLM and ``ignore``):

* HTTPS on 5986, the certificate trusted per host (``hosts/winrm_trust.py``: a pinned leaf, a
  CA bundle, or trust on first use). Plain HTTP, or validation turned off, is refused unless the
  target is explicitly marked ``lab`` (the lab simulator is the only plain-HTTP peer we have).
* Authentication is ``target.auth``: ``ntlm`` (default), ``kerberos`` (a domain-joined
  appliance with a ticket; pywinrm's kerberos transport), ``basic`` only towards a lab target.
* No proxies from the environment: the agent talks to the host and nothing else.

How a script travels — the long-script path (chosen and documented here): a command line is
limited to about 8 KB and ``-EncodedCommand`` doubles the size (UTF-16LE) then adds a third
(base64), so scripts never go on the command line. The command is always the same short
*bootstrap* (:data:`BOOTSTRAP_PS`, sent ``-EncodedCommand`` exactly as pywinrm's ``run_ps``
does); the script and the caller's stdin follow on the command's stdin (WS-Man ``Send``, in
chunks) as two base64 lines (:func:`encode_payload`). The bootstrap decodes them, pipes the stdin
text to the script block (``$input`` inside the script) and exits with its exit code. Base64
keeps the payload ASCII, so the shell's code page cannot mangle it.

Session reuse: one pywinrm ``Protocol`` (one HTTP keep-alive session) and one remote shell per
target; each run is one Command in that shell. Retries: transport errors only (connection
refused / reset / dropped, HTTP 5xx without a WS-Man fault) with exponential backoff — never a
script's non-zero exit, never a WS-Man fault, never a certificate failure. ``Command`` and
``Send`` are not idempotent, so they are retried only when the server cannot have acted on them
(connection never established, or an HTTP 5xx answer); a connection dropped after they were sent
fails the run instead of risking running the script twice.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from osiris_agent.hosts.base import (
    CANCEL_EXIT_CODE,
    TIMEOUT_EXIT_CODE,
    AuthError,
    HostKeyError,
    Interpreter,
    RunResult,
    Target,
    TransportError,
)

T = TypeVar("T")

BOOTSTRAP_MARKER = "osiris-bootstrap/1"
BOOTSTRAP_PS = (
    f"# {BOOTSTRAP_MARKER}: line 1 of stdin = base64(UTF-8 script), line 2 = base64(UTF-8 stdin)\n"
    "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false\n"
    '$osirisLines = @(($input | Out-String) -split "`r?`n")\n'
    "$osirisText = [Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String($osirisLines[0].Trim()))\n"
    "$osirisStdin = ''\n"
    "if ($osirisLines.Count -gt 1 -and $osirisLines[1].Trim()) {\n"
    "  $osirisStdin = [Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String($osirisLines[1].Trim()))\n"
    "}\n"
    "$global:LASTEXITCODE = 0\n"
    "$osirisBlock = [ScriptBlock]::Create($osirisText)\n"
    "try { $osirisStdin | & $osirisBlock } "
    "catch { [Console]::Error.WriteLine($_.ToString()); exit 1 }\n"
    "exit $LASTEXITCODE\n"
)
POWERSHELL = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass"
SEND_CHUNK = 32 * 1024  # raw bytes per WS-Man Send (base64 keeps it well under MaxEnvelopeSize)
_ENC_RE = re.compile(r"(?i)(?:^|\s)-(?:encodedcommand|enc|ec|e)\s+([A-Za-z0-9+/=]+)")


def encode_ps(script: str) -> str:
    """``-EncodedCommand`` form of a PowerShell script: base64 of UTF-16LE."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def bootstrap_command() -> str:
    return f"{POWERSHELL} -EncodedCommand {encode_ps(BOOTSTRAP_PS)}"


def decode_encoded_command(command_line: str) -> str | None:
    """The script inside a ``powershell … -EncodedCommand B64`` line, or None."""
    m = _ENC_RE.search(command_line)
    if not m:
        return None
    try:
        return base64.b64decode(m.group(1), validate=True).decode("utf-16-le")
    except (ValueError, UnicodeDecodeError):
        return None


def encode_payload(script: str, stdin: str | None) -> bytes:
    """What the bootstrap reads on stdin: two base64 lines (script, stdin)."""
    a = base64.b64encode(script.encode("utf-8"))
    b = base64.b64encode((stdin or "").encode("utf-8"))
    return a + b"\r\n" + b + b"\r\n"


def decode_payload(data: bytes) -> tuple[str, str]:
    """Inverse of :func:`encode_payload` (used by the lab simulator)."""
    lines = data.decode("ascii").splitlines()
    script = base64.b64decode(lines[0].strip(), validate=True).decode("utf-8") if lines else ""
    stdin = ""
    if len(lines) > 1 and lines[1].strip():
        stdin = base64.b64decode(lines[1].strip(), validate=True).decode("utf-8")
    return script, stdin


def clean_clixml(raw: bytes) -> str:
    """PowerShell writes errors to stderr as CLIXML; keep the human text."""
    text = raw.decode("utf-8", errors="replace")
    if not text.startswith("#< CLIXML"):
        return text
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text.split("\n", 1)[1] if "\n" in text else "")
    except ET.ParseError:
        return text
    parts = [
        (el.text or "").replace("_x000D__x000A_", "\n")
        for el in root.iter()
        if el.tag.endswith("}S") or el.tag == "S"
        if el.get("S") == "Error"
    ]
    return "".join(parts).strip() if parts else text


def endpoint_for(target: Target) -> str:
    """``https://host:5986/wsman`` — or plain HTTP, for lab targets only."""
    if not target.use_tls and not target.lab:
        raise TransportError(
            f"refusing plain HTTP WinRM to {target.host_id}: only targets marked lab may skip TLS"
        )
    if not target.verify_tls and not target.lab:
        raise TransportError(
            f"refusing WinRM to {target.host_id} without certificate validation; "
            "pin the host's certificate or CA with ca_file instead"
        )
    scheme = "https" if target.use_tls else "http"
    port = target.port or (5986 if target.use_tls else 5985)
    host = f"[{target.address}]" if ":" in target.address else target.address
    return f"{scheme}://{host}:{port}/wsman"


class WinrmTransport:
    """Transport for ``kind="winrm"`` targets."""

    def __init__(
        self,
        target: Target,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        read_timeout_s: int = 30,
        operation_timeout_s: int = 20,
        poll_s: int = 2,
        on_tofu: Callable[[str, str], None] | None = None,
    ) -> None:
        self.target = target
        self.endpoint = endpoint_for(target)  # refuses insecure settings before anything else
        if target.auth not in ("ntlm", "kerberos") and not (target.auth == "basic" and target.lab):
            raise TransportError(f"refusing WinRM auth {target.auth!r} to {target.host_id}: "
                                 "ntlm or kerberos (basic only towards a lab target)")  # fmt: skip
        self.on_tofu = on_tofu
        self.retries = retries
        self.backoff_s = backoff_s
        self.read_timeout_s = read_timeout_s
        self.operation_timeout_s = operation_timeout_s
        self.poll_s = poll_s
        self.retry_count = 0  # transport-level retries so far (for evidence and tests)
        self._protocol: Any = None
        self._shell_id: str | None = None
        self._lock = threading.Lock()

    # -- pywinrm plumbing -------------------------------------------------------------------
    def _get_protocol(self) -> Any:
        if self._protocol is None:
            from winrm.protocol import Protocol

            t = self.target
            from osiris_agent.hosts.winrm_trust import bind, require_kerberos

            if t.auth == "kerberos":
                require_kerberos(t.host_id)
            validate = t.verify_tls or not t.lab
            trust = self._trust() if t.use_tls and validate else None
            proto = Protocol(
                self.endpoint,
                transport=t.auth,  # type: ignore[arg-type]
                username=t.username,
                password=t.password,
                server_cert_validation="validate" if validate else "ignore",
                ca_trust_path=None,  # never the environment; the trust adapter decides
                read_timeout_sec=self.read_timeout_s,
                operation_timeout_sec=self.operation_timeout_s,
                proxy=None,
            )
            if trust is not None:
                bind(proto, trust)
            self._protocol = proto
        return self._protocol

    def _trust(self) -> Any:
        """The listener's trust (pin, CA bundle or TOFU probe), before any credential moves."""
        from osiris_agent.hosts.winrm_trust import trust_for

        t = self.target
        return trust_for(
            address=t.address, port=t.port or 5986, host_id=t.host_id,
            cert_thumbprint=t.cert_thumbprint, ca_bundle=t.ca_bundle, ca_file=t.ca_file,
            on_tofu=self.on_tofu,
        )  # fmt: skip

    def _classify(self, exc: BaseException, at_most_once: bool) -> tuple[Exception, bool]:
        """Map a pywinrm/requests failure to (our error, retry?)."""
        import requests
        import urllib3.exceptions
        from winrm.exceptions import (
            InvalidCredentialsError,
            WinRMError,
            WinRMTransportError,
            WSManFaultError,
        )

        host = self.target.host_id
        if "Fingerprints did not match" in str(exc):
            return HostKeyError(
                f"the WinRM certificate of {host} does not match its pinned thumbprint; "
                "refusing to connect (no credential was sent)"
            ), False
        if type(exc).__name__ in ("KerberosExchangeError", "SpnegoError", "GSSError"):
            return AuthError(f"Kerberos authentication to {host} failed: {exc}"), False
        if isinstance(exc, InvalidCredentialsError):
            return AuthError(f"WinRM credentials for {host} were refused"), False
        if isinstance(exc, WSManFaultError):
            return TransportError(f"WS-Management fault from {host}: {exc.reason}"), False
        if isinstance(exc, WinRMTransportError):
            return TransportError(f"HTTP {exc.code} from {host}"), exc.code >= 500
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(f"TLS certificate validation failed for {host}"), False
        if isinstance(exc, requests.exceptions.ConnectionError):
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or isinstance(
                reason,
                urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError,
            )
            msg = f"connection to {host} failed ({type(reason or exc).__name__})"
            return TransportError(msg), never_sent or not at_most_once
        if isinstance(exc, requests.exceptions.Timeout):
            return TransportError(f"no answer from {host} in time"), not at_most_once
        if isinstance(exc, WinRMError):
            return TransportError(f"WinRM error with {host}: {exc}"), False
        return TransportError(f"unexpected WinRM reply from {host} ({type(exc).__name__})"), False

    def _call(self, fn: Callable[..., T], *args: Any, at_most_once: bool = False, **kw: Any) -> T:
        from winrm.exceptions import WinRMOperationTimeoutError

        attempt = 0
        while True:
            try:
                return fn(*args, **kw)
            except WinRMOperationTimeoutError:
                raise  # a Receive that saw no output yet: the caller polls again
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                err, retry = self._classify(exc, at_most_once)
                if not retry or attempt >= self.retries:
                    if retry:
                        err = TransportError(f"{err} (after {attempt + 1} attempts)")
                    raise err from exc
            time.sleep(self.backoff_s * (2**attempt))
            attempt += 1
            self.retry_count += 1

    def _ensure_shell(self) -> str:
        if self._shell_id is None:
            proto = self._get_protocol()
            self._shell_id = self._call(proto.open_shell, codepage=65001, noprofile=True)
        return self._shell_id

    def _start(self, payload: bytes) -> tuple[str, str]:
        """Create (or reuse) the shell, start the bootstrap, stream the payload; -> ids."""
        proto = self._get_protocol()
        reused = self._shell_id is not None
        shell = self._ensure_shell()
        try:
            cmd = self._call(
                proto.run_command,
                shell,
                bootstrap_command(),
                console_mode_stdin=False,
                at_most_once=True,
            )
        except TransportError:
            if not reused:
                raise
            self._shell_id = None  # the server may have dropped an idle shell: one fresh try
            shell = self._ensure_shell()
            cmd = self._call(
                proto.run_command,
                shell,
                bootstrap_command(),
                console_mode_stdin=False,
                at_most_once=True,
            )
        chunks = [payload[i : i + SEND_CHUNK] for i in range(0, len(payload), SEND_CHUNK)]
        for i, chunk in enumerate(chunks):
            self._call(
                proto.send_command_input,
                shell,
                cmd,
                chunk,
                end=i == len(chunks) - 1,
                at_most_once=True,
            )
        return shell, cmd

    # -- public -----------------------------------------------------------------------------
    def run_script(
        self,
        script: str,
        *,
        interpreter: Interpreter = "powershell",
        stdin: str | None = None,
        timeout: float = 60.0,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        if interpreter != "powershell":
            raise TransportError(f"WinRM targets run PowerShell only, not {interpreter!r}")
        from winrm.exceptions import WinRMOperationTimeoutError

        start = time.monotonic()
        deadline = start + timeout
        with self._lock:
            proto = self._get_protocol()
            shell, cmd = self._start(encode_payload(script, stdin))
            out, err = bytearray(), bytearray()
            rc, stopped = -1, ""
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        stopped = "cancel"
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        stopped = "timeout"
                        break
                    # a Receive blocks server-side until output or OperationTimeout: keep the
                    # wait short so deadlines and cancels are honoured to within a poll
                    proto.operation_timeout_sec = max(1, min(self.poll_s, int(remaining) or 1))
                    try:
                        o, e, code, done = self._call(proto.get_command_output_raw, shell, cmd)
                    except WinRMOperationTimeoutError:
                        continue
                    out += o
                    err += e
                    if done:
                        rc = code
                        break
            finally:
                proto.operation_timeout_sec = self.operation_timeout_s
                self._signal(shell, cmd)
        duration_ms = int((time.monotonic() - start) * 1000)
        if stopped == "timeout":
            rc = TIMEOUT_EXIT_CODE
        elif stopped == "cancel":
            rc = CANCEL_EXIT_CODE
        return RunResult(
            exit_code=rc,
            stdout=bytes(out).decode("utf-8", errors="replace"),
            stderr=clean_clixml(bytes(err)),
            duration_ms=duration_ms,
            timed_out=stopped == "timeout",
            cancelled=stopped == "cancel",
        )

    def _signal(self, shell: str, cmd: str) -> None:
        """Terminate/clean up the command; a failure here never fails a finished run."""
        try:
            self._call(self._get_protocol().cleanup_command, shell, cmd)
        except (TransportError, AssertionError, StopIteration):
            self._shell_id = None

    def close(self) -> None:
        proto, shell = self._protocol, self._shell_id
        self._shell_id = None
        if proto is None:
            return
        try:
            if shell is not None:
                proto.close_shell(shell, close_session=True)
            else:
                proto.transport.close_session()
        except Exception:  # noqa: BLE001 - closing is best effort; the host may be gone
            pass
        self._protocol = None
