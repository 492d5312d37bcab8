"""Run scripts on Linux hosts over SSH (paramiko).

Host keys are pinned, never silently accepted (lesson B5: ``known_hosts=None``): the server's
key must match one of the ``SHA256:<base64>`` fingerprints delivered with the target, or —
only when the target says ``tofu`` and carries no pins — it is accepted once, reported through
``on_tofu(host_id, fingerprint)`` so the agent records it as evidence, and pinned for the rest of
this transport's life. Anything else raises :class:`HostKeyError` before a credential is sent.

How a script runs — ONE exec round trip per script, any POSIX host with ``head -c`` and
``mktemp -d``, no SFTP subsystem needed. The command line carries only byte counts and a random
tag; the channel's stdin carries ``script bytes + stdin bytes [+ sudo password line]``:

1. stage: ``umask 077; d=$(mktemp -d …/osiris.<tag>.XXXXXX)``, then ``head -c N > "$d/s"`` and
   ``head -c M > "$d/i"``; both sizes are checked, so a ``head`` that read past its count (and
   would have swallowed the next part) fails loudly as a staging error instead of running
   something truncated;
2. run: ``[sudo -S -p '' --] sh -c 'exec [timeout …] bash -- "$1" < "$2"' osiris "$d/s" "$d/i"``,
   then the directory is removed and the script's exit code returned.

Three execs per script (upload, upload, run) cost ~0.3 s on loopback, one costs ~0.1 s: a Linux
host with 17 runbooks is scanned three times faster.

The sudo password (the target's ``become_password``, else its login password) is written to the
channel's stdin after the two staged parts (sudo ``-S`` reads it from there), never on a command
line (lesson B5). A sudo that refuses (wrong password, no sudoers entry) ends before the script
starts: the sudo'd shell's first act is to create ``$d/ok``, and a run without it raises
:class:`AuthError` (``E_AUTH``) instead of passing sudo's exit code off as the script's.

Because the script's own stdin is redirected from the data file, the password can never reach
the script, and a wrong password meets EOF instead of the script's input. The remote ``timeout``
is a backstop that kills the script shortly after the local deadline closes the channel; a
stopped run's directory is removed by a second exec that finds it by its random tag.

The login context: every script runs under ``env OSIRIS_CTX_LOGIN_USER=<user>
OSIRIS_CTX_LOGIN_AUTH=publickey|password OSIRIS_CTX_SUDO=0|1 OSIRIS_CTX_SSH_CONNECTION=
"$SSH_CONNECTION"`` (placed after ``sudo``, whose env_reset would drop it otherwise). These come
from the Target — not from a runbook parameter, which the site's policy sets — so no policy can
make a script believe the agent logs in some other way; the SSH hardening and firewall runbooks
read them (``lib/osiris_login.sh``) to refuse a change that cuts off the agent's own login,
and cross-check them against ``$SUDO_USER``/``id -un`` on the host. They name no
secret. ``$SSH_CONNECTION`` is the host sshd's own account of this session (source and port).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
import secrets
import select
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

import paramiko

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

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_POLL_S = 0.05
# Pauses before re-trying a REFUSED connection (~3 s in all): covers sshd's re-exec on reload.
REFUSED_RETRY_S = (0.25, 0.75, 2.0)
_KILL_GRACE_S = 2
# Exit code and last stderr line of a run whose staging failed (not the script's own failure).
_STAGE_RC = 86
_STAGE_MARK = "osiris: staging the script failed"
_SUDO_RC = 87
_SUDO_MARK = "osiris: sudo refused"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:<unpadded base64>`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _normalise_pin(pin: str) -> str:
    pin = pin.strip()
    if not pin.startswith("SHA256:"):
        raise HostKeyError(f"host key pin {pin!r} is not an OpenSSH SHA256 fingerprint")
    return pin.rstrip("=")


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """Parse a PEM / OpenSSH private key held in memory (never written to disk)."""
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise AuthError("the private key delivered for this target cannot be parsed")


class _PinnedPolicy(paramiko.MissingHostKeyPolicy):
    """Called for every connection (we load no known_hosts): accept pins or a recorded TOFU."""

    def __init__(self, owner: SshTransport) -> None:
        self.owner = owner

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        fp = fingerprint(key)
        pins = self.owner.pins
        if pins:
            if fp in pins:
                return
            raise HostKeyError(
                f"host key of {hostname} ({key.get_name()} {fp}) does not match the pinned "
                "fingerprint(s); refusing to connect"
            )
        if self.owner.target.tofu:
            self.owner.pins = {fp}  # pinned from now on, for this transport's life
            if self.owner.on_tofu is not None:
                self.owner.on_tofu(self.owner.target.host_id, fp)
            return
        raise HostKeyError(
            f"host key of {hostname} ({key.get_name()} {fp}) is unknown: no fingerprint was "
            "delivered for this target and trust-on-first-use is off"
        )


class SshTransport:
    """Transport for ``kind="ssh"`` targets; one connection per target, reused across runs."""

    def __init__(
        self,
        target: Target,
        *,
        on_tofu: Callable[[str, str], None] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.on_tofu = on_tofu
        self.connect_timeout = connect_timeout
        self.pins = {_normalise_pin(p) for p in target.host_key_fingerprints}
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self.commands_sent: list[str] = []  # every exec'd command line, for audit and tests

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> paramiko.SSHClient:
        t = self.target
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_PinnedPolicy(self))
        pkey = load_private_key(t.private_key) if t.private_key else None
        if pkey is None and not t.password:
            raise AuthError(f"no SSH credentials were delivered for host {t.host_id}")
        for wait in (*REFUSED_RETRY_S, None):
            try:
                return self._connect_once(client, pkey)
            except paramiko.ssh_exception.NoValidConnectionsError as exc:
                # Refused: sshd re-execs on every reload (ours included) and is not listening
                # for a moment; a host whose sshd is really down is still refused after this.
                client.close()
                if wait is None:
                    raise TransportError(f"cannot connect to {t.host_id} over SSH: {exc}") from exc
                time.sleep(wait)
                client = paramiko.SSHClient()
                client.set_missing_host_key_policy(_PinnedPolicy(self))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _connect_once(self, client: paramiko.SSHClient, pkey: Any) -> paramiko.SSHClient:
        t = self.target
        try:
            client.connect(
                t.address,
                port=t.port or 22,
                username=t.username,
                password=t.password,
                pkey=pkey,
                look_for_keys=False,
                allow_agent=False,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            raise AuthError(f"SSH authentication to {t.host_id} was refused") from exc
        except paramiko.ssh_exception.NoValidConnectionsError:
            raise  # _connect retries a refusal, then translates it
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise TransportError(f"cannot connect to {t.host_id} over SSH: {exc}") from exc
        return client

    def _get_client(self) -> paramiko.SSHClient:
        client = self._client
        transport = client.get_transport() if client is not None else None
        if client is None or transport is None or not transport.is_active():
            if client is not None:
                client.close()
            self._client = client = self._connect()
        return client

    # -- one exec ---------------------------------------------------------------------------
    def _exec(
        self,
        command: str,
        stdin_bytes: bytes,
        deadline: float,
        cancel: threading.Event | None,
    ) -> tuple[int, bytes, bytes, str | None]:
        """Run one remote command; returns (rc, out, err, None|"timeout"|"cancel")."""
        transport = self._get_client().get_transport()
        assert transport is not None
        self.commands_sent.append(command)
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise TransportError(f"SSH channel to {self.target.host_id} failed: {exc}") from exc

        def feed() -> None:
            try:
                if stdin_bytes:
                    chan.sendall(stdin_bytes)
                chan.shutdown_write()
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the remote side exited early; its exit code tells the story

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out, err = bytearray(), bytearray()
        stopped: str | None = None
        try:
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready():
                    if not chan.recv_stderr_ready() and (chan.eof_received or chan.closed):
                        break
                if cancel is not None and cancel.is_set():
                    stopped = "cancel"
                    break
                if time.monotonic() >= deadline:
                    stopped = "timeout"
                    break
                select.select([chan], [], [], _POLL_S)
            rc = -1 if stopped else chan.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"SSH channel to {self.target.host_id} broke: {exc}") from exc
        finally:
            chan.close()
            writer.join(timeout=1)
        return rc, bytes(out), bytes(err), stopped

    # -- public -----------------------------------------------------------------------------
    def run_script(
        self,
        script: str,
        *,
        interpreter: Interpreter = "bash",
        stdin: str | None = None,
        timeout: float = 60.0,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        start = time.monotonic()
        deadline = start + timeout
        if interpreter == "bash":
            interp, suffix = "bash --", ""
        elif interpreter == "powershell":
            interp, suffix = "pwsh -NoLogo -NoProfile -NonInteractive -File", ".ps1"
        else:
            raise TransportError(f"unknown interpreter {interpreter!r}")
        body, data = script.encode("utf-8"), (stdin or "").encode("utf-8")
        tag = secrets.token_hex(8)
        limit = max(1, math.ceil(timeout)) + _KILL_GRACE_S
        inner = (
            "if command -v timeout >/dev/null 2>&1; then "
            f'exec timeout -k 5 {limit} {interp} "$1" < "$2"; '
            f'else exec {interp} "$1" < "$2"; fi'
        )
        ctx = self._context_env()
        run = f'{ctx} sh -c {shlex.quote(inner)} osiris "$d/s{suffix}" "$d/i"'
        feed = body + data
        after = ""
        if self.target.sudo:
            inner = ': > "$3" && ' + inner
            run = f"sudo -S -p '' -- {ctx} sh -c {shlex.quote(inner)} osiris"
            run += f' "$d/s{suffix}" "$d/i" "$d/ok"'
            # -S reads the password from what is left of stdin once both parts are staged
            become = self.target.become_password or self.target.password or ""
            feed += (become + "\n").encode("utf-8")
            after = f'[ -e "$d/ok" ] || {{ echo {shlex.quote(_SUDO_MARK)} >&2; rc={_SUDO_RC}; }}; '
        fail = f'{{ rm -rf -- "$d"; echo {shlex.quote(_STAGE_MARK)} >&2; exit {_STAGE_RC}; }}'
        command = (
            f'umask 077; d=$(mktemp -d "${{TMPDIR:-/tmp}}/osiris.{tag}.XXXXXX") || {fail}; '
            f'head -c {len(body)} > "$d/s{suffix}" && head -c {len(data)} > "$d/i" '
            f'&& [ $(($(wc -c < "$d/s{suffix}"))) -eq {len(body)} ] '
            f'&& [ $(($(wc -c < "$d/i"))) -eq {len(data)} ] || {fail}; '
            f'{run}; rc=$?; {after}rm -rf -- "$d"; exit $rc'
        )
        with self._lock:
            rc, out, err, stopped = self._exec(command, feed, deadline, cancel)
            if stopped:
                self._cleanup(tag)
            elif rc == _STAGE_RC and err.decode("utf-8", "replace").strip().endswith(_STAGE_MARK):
                raise TransportError(
                    f"cannot stage the script on {self.target.host_id}: "
                    f"{err.decode('utf-8', 'replace').strip()[:200]}"
                )
            elif (
                self.target.sudo
                and rc == _SUDO_RC
                and err.decode("utf-8", "replace").strip().endswith(_SUDO_MARK)
            ):
                said = err.decode("utf-8", "replace").strip()[: -len(_SUDO_MARK)].strip()
                raise AuthError(
                    f"sudo on {self.target.host_id} refused {self.target.username!r} (wrong "
                    f"become password, or no sudo rights): {said[-200:] or 'no reason given'}"
                )
        duration_ms = int((time.monotonic() - start) * 1000)
        if stopped == "timeout":
            rc = TIMEOUT_EXIT_CODE
        elif stopped == "cancel":
            rc = CANCEL_EXIT_CODE
        return RunResult(
            exit_code=rc,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            duration_ms=duration_ms,
            timed_out=stopped == "timeout",
            cancelled=stopped == "cancel",
        )

    def _context_env(self) -> str:
        """``env NAME=value …`` naming the login this transport uses (see the module doc)."""
        t = self.target
        auth = "publickey" if t.private_key else "password"
        pairs = [
            f"OSIRIS_CTX_LOGIN_USER={shlex.quote(t.username or '')}",
            f"OSIRIS_CTX_LOGIN_AUTH={auth}",
            f"OSIRIS_CTX_SUDO={1 if t.sudo else 0}",
            '"OSIRIS_CTX_SSH_CONNECTION=${SSH_CONNECTION:-}"',
        ]
        return "env " + " ".join(pairs)

    def _cleanup(self, tag: str) -> None:
        """Best effort: remove a stopped run's staging directory (the backstop kills the
        script); the random tag names only this run's directory."""
        try:
            self._exec(
                f'rm -rf -- "${{TMPDIR:-/tmp}}"/osiris.{tag}.*', b"", time.monotonic() + 5, None
            )
        except TransportError:
            pass

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
