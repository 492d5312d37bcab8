"""The one interface every host transport speaks, and the errors it raises.

Check-in delivers a :class:`Target` per managed host (credentials included, kept in memory
only). :func:`open_transport` turns it into a :class:`Transport` that runs a catalogue script
and returns a :class:`RunResult`. The heavy client libraries (paramiko, pywinrm) are imported
only when a transport of that kind is opened, so an idle agent stays inside its RSS budget.

Timeouts and cancellation are *results*, not exceptions: a script that runs out of time comes
back with ``timed_out=True`` (exit code 124, as coreutils ``timeout`` reports it) and whatever
output it produced, because a partial output is still evidence. :class:`ScriptTimeout` exists
for callers that prefer to raise (:meth:`RunResult.raise_for_timeout`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from osiris_core.errors import OsirisError

TIMEOUT_EXIT_CODE = 124
CANCEL_EXIT_CODE = 130

Kind = Literal["local", "ssh", "winrm"]
Interpreter = Literal["bash", "powershell"]


class TransportError(OsirisError):
    """The host could not be reached or the transport failed (not the script)."""

    code = "E_TRANSPORT"


class HostKeyError(TransportError):
    """An SSH host key that is unknown or does not match the pinned fingerprint."""

    code = "E_HOST_KEY"


class AuthError(TransportError):
    """The host refused the credentials delivered at check-in."""

    code = "E_AUTH"


class ScriptTimeout(OsirisError):
    """A script ran longer than its timeout and was stopped."""

    code = "E_TIMEOUT"


@dataclass(frozen=True, repr=False)
class Target:
    """One managed host as check-in delivers it.

    ``password``, ``private_key`` and ``become_password`` are secrets: they never appear in
    ``repr``/``str`` so a log line or a traceback cannot leak them. ``sudo`` runs every script
    through ``sudo -S``; the password sudo reads is ``become_password`` if one was delivered,
    else the login ``password`` (an ``ssh_password`` login whose sudo asks for the same one).
    """

    host_id: str
    kind: Kind
    address: str
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, compare=False)
    private_key: str | None = field(default=None, compare=False)  # PEM / OpenSSH text
    host_key_fingerprints: tuple[str, ...] = ()  # "SHA256:<b64>" pins, as OpenSSH prints
    tofu: bool = False
    lab: bool = False
    use_tls: bool = True
    verify_tls: bool = True
    ca_file: str | None = None
    ca_bundle: str | None = None  # winrm: PEM CAs for the listener (hosts/winrm_trust.py)
    cert_thumbprint: str | None = None  # winrm: SHA-256 hex pin of the listener's leaf
    auth: str = "ntlm"
    sudo: bool = False
    become_password: str | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        shown = (
            f"host_id={self.host_id!r}, kind={self.kind!r}, address={self.address!r}, "
            f"port={self.port!r}, username={self.username!r}, "
            f"password={'***' if self.password else None}, "
            f"private_key={'***' if self.private_key else None}, "
            f"host_key_fingerprints={self.host_key_fingerprints!r}, tofu={self.tofu!r}, "
            f"lab={self.lab!r}, use_tls={self.use_tls!r}, verify_tls={self.verify_tls!r}, "
            f"ca_file={self.ca_file!r}, ca_bundle={'PEM' if self.ca_bundle else None}, "
            f"cert_thumbprint={self.cert_thumbprint!r}, "
            f"auth={self.auth!r}, sudo={self.sudo!r}, "
            f"become_password={'***' if self.become_password else None}"
        )
        return f"Target({shown})"

    __str__ = __repr__


@dataclass
class RunResult:
    """What one script run produced."""

    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled

    def raise_for_timeout(self) -> RunResult:
        """Raise :class:`ScriptTimeout` if the run timed out; return self otherwise."""
        if self.timed_out:
            raise ScriptTimeout(f"script timed out after {self.duration_ms} ms")
        return self


class Transport(Protocol):
    def run_script(
        self,
        script: str,
        *,
        interpreter: Interpreter,
        stdin: str | None = None,
        timeout: float = 60.0,
        cancel: threading.Event | None = None,
    ) -> RunResult: ...

    def close(self) -> None: ...


def open_transport(
    target: Target, *, on_tofu: Callable[[str, str], None] | None = None
) -> Transport:
    """Build the transport for ``target``; imports its client library only now."""
    if target.kind == "local":
        from osiris_agent.hosts.local import LocalTransport

        return LocalTransport(target)
    if target.kind == "ssh":
        from osiris_agent.hosts.ssh import SshTransport

        return SshTransport(target, on_tofu=on_tofu)
    if target.kind == "winrm":
        from osiris_agent.hosts.winrm import WinrmTransport

        return WinrmTransport(target, on_tofu=on_tofu)
    raise TransportError(f"unknown transport kind {target.kind!r} for host {target.host_id}")
