"""LAB SIMULATOR — a Windows host speaking WS-Management. Never used outside lab mode.

No WinRM server can run on the appliance or in CI (``reference/limits.md`` §5c), so the demo and
the tests point the *real* pywinrm client at this server: a ``ThreadingHTTPServer`` on
127.0.0.1 with HTTP Basic auth that implements the five WinRS operations pywinrm uses — shell
Create, Command, Send (stdin), Receive, Signal and Delete — with proper ``RelatesTo``,
``ShellId``, ``CommandId``, base64 ``Stream`` elements and ``CommandState/Done`` + ``ExitCode``.

It decodes ``powershell -EncodedCommand`` back to the script text; when that script is the
agent's bootstrap (:mod:`osiris_agent.hosts.winrm`), it decodes the script and stdin from the
command's stdin instead. The script then goes to a pluggable
``handler(script_text, stdin) -> (exit_code, stdout, stderr)``; the default is a
:class:`LabHost`. Faults can be injected on demand (``server.faults``): drop the connection,
answer HTTP 500, or answer slowly. A Receive honours the request's ``OperationTimeout`` with the
WS-Man timeout fault, as a real host does while a command is still running.

Manual use: ``python -m osiris_lab.wsman --port 15985`` (plain HTTP, loopback only).

Why this file is long: a WS-Management server is one protocol (SOAP shell create, command, send,
receive, signal and delete, authentication, faults); the handler's methods are its verbs and
share its envelope helpers. Lab code: never on the appliance.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from osiris_agent.hosts.winrm import BOOTSTRAP_MARKER, decode_encoded_command, decode_payload

Handler = Callable[[str, str], tuple[int, str, str]]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
SHELL_NS = NS["rsp"]
CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
FAULT_TIMEOUT = 2150858793  # what pywinrm turns into WinRMOperationTimeoutError
FAULT_SHELL_NOT_FOUND = 2150858843
STREAM_CHUNK = 32 * 1024
_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")


@dataclass
class LabHost:
    """Minimal Windows host model: a dict of state and a script handler.

    It records every script it is given and answers rc 0 with a JSON echo of the script's hash.
    A later task adds the Windows state model (audit policy, firewall, services …) here.
    """

    state: dict[str, Any] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)

    def handle(self, script: str, stdin: str = "") -> tuple[int, str, str]:
        self.scripts.append(script)
        digest = hashlib.sha256(script.encode("utf-8")).hexdigest()
        return 0, json.dumps({"lab": True, "script_sha256": digest}), ""

    def __call__(self, script: str, stdin: str) -> tuple[int, str, str]:
        return self.handle(script, stdin)


class Faults:
    """Faults to inject into the next requests (optionally only for one WS-Man action)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[str, str | None]] = []  # (kind, action name or None)
        self.delay_s = 0.0
        self.injected: list[tuple[str, str]] = []  # (kind, action) actually applied

    def drop_next(self, n: int = 1, action: str | None = None) -> None:
        """Close the next ``n`` connections without any reply."""
        with self._lock:
            self._queue.extend([("drop", action)] * n)

    def fail_next(self, n: int = 1, action: str | None = None) -> None:
        """Answer the next ``n`` requests with a bare HTTP 500 (no WS-Man fault)."""
        with self._lock:
            self._queue.extend([("fail", action)] * n)

    def slow(self, seconds: float) -> None:
        """Delay every reply by ``seconds`` (0 turns it off)."""
        self.delay_s = seconds

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
        self.delay_s = 0.0

    def take(self, action: str) -> str | None:
        with self._lock:
            for i, (kind, only) in enumerate(self._queue):
                if only is None or only == action:
                    del self._queue[i]
                    self.injected.append((kind, action))
                    return kind
        return None


@dataclass
class _Command:
    command_line: str
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    result: tuple[int, str, str] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    signalled: bool = False
    delivered: bool = False


class WsmanLabServer(ThreadingHTTPServer):
    """The lab WS-Man endpoint. ``url`` is what pywinrm connects to."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int = 0,
        *,
        username: str = "Administrator",
        password: str = "lab-secret",
        handler: Handler | None = None,
        ssl_context: Any = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _RequestHandler)
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.username = username
        self.password = password
        self.host = LabHost()
        self.handler: Handler = handler or self.host
        self.faults = Faults()
        self.shells: dict[str, dict[str, _Command]] = {}
        self.actions: list[str] = []  # every WS-Man action received, in order
        self.calls: list[tuple[str, str]] = []  # (script, stdin) given to the handler
        # per HTTP request received: did it carry an Authorization header? (a client that
        # refuses the certificate must send none: tests of per-host WinRM trust read it)
        self.authorization_seen: list[bool] = []
        # Kerberos (Negotiate) acceptance, when a test sets it: the service principal the
        # keytab in $KRB5_KTNAME holds (e.g. "HTTP@localhost") and the client principal it must
        # be (osiris_lab/kdc.py runs the KDC); None: Basic only
        self.kerberos_service: str | None = None
        self.kerberos_user: str | None = None
        self.kerberos_logins: list[str] = []  # client principals accepted, in order
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/wsman"

    def start(self) -> WsmanLabServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="wsman-lab", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WsmanLabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the simulated host -----------------------------------------------------------------
    def run_command(self, cmd: _Command) -> None:
        """Decode what was sent and hand the script text to the handler (in a worker)."""
        script = decode_encoded_command(cmd.command_line)
        stdin = bytes(cmd.stdin)
        if script is not None and BOOTSTRAP_MARKER in script:
            try:
                script, stdin_text = decode_payload(stdin)
            except (ValueError, UnicodeDecodeError):
                cmd.result = (1, "", "lab: malformed bootstrap payload on stdin")
                cmd.done.set()
                return
        else:
            stdin_text = stdin.decode("utf-8", errors="replace")
            if script is None:  # a plain cmd.exe command line (pywinrm run_cmd)
                script = cmd.command_line
        with self.lock:
            self.calls.append((script, stdin_text))
        try:
            cmd.result = self.handler(script, stdin_text)
        except Exception as exc:  # noqa: BLE001 - a broken handler is a failed script
            cmd.result = (1, "", f"lab handler error: {type(exc).__name__}: {exc}")
        cmd.done.set()


def _text(root: ET.Element, path: str) -> str:
    el = root.find(path, NS)
    return (el.text or "").strip() if el is not None else ""


class _RequestHandler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK holds the
    # second for ~40 ms on every keep-alive reply (limits.md §3), and a scan crawls.
    disable_nagle_algorithm = True
    server: WsmanLabServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: tests and the demo do not want access logs

    # -- HTTP ---------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        with self.server.lock:
            self.server.authorization_seen.append("Authorization" in self.headers)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self._authorised():
            self._reply(401, b"", extra={"WWW-Authenticate": 'Basic realm="osiris-lab"'})
            return
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            self._reply(400, b"not XML")
            return
        action_uri = _text(root, "s:Header/a:Action")
        action = action_uri.rsplit("/", 1)[-1]
        with self.server.lock:
            self.server.actions.append(action)
        fault = self.server.faults.take(action)
        if self.server.faults.delay_s:
            time.sleep(self.server.faults.delay_s)
        if fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "fail":
            self._reply(500, b"lab: injected failure")
            return
        status, xml = self._dispatch(action, action_uri, root)
        self._reply(status, xml.encode("utf-8"), ctype="application/soap+xml;charset=UTF-8")

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        self._auth_reply: dict[str, str] = {}
        if header.startswith("Negotiate ") and self.server.kerberos_service:
            return self._negotiate(header[len("Negotiate ") :].strip())
        if not header.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.server.username and pw == self.server.password

    def _negotiate(self, token: str) -> bool:
        """One GSS accept with the keytab (pykerberos): the client must be the expected user;
        the answer carries the mutual-authentication token, as IIS/HTTP.sys sends it."""
        import kerberos  # pykerberos: lab and tests only

        try:
            _rc, ctx = kerberos.authGSSServerInit(self.server.kerberos_service)
            try:
                kerberos.authGSSServerStep(ctx, token)
                user = kerberos.authGSSServerUserName(ctx)
                answer = kerberos.authGSSServerResponse(ctx)
            finally:
                kerberos.authGSSServerClean(ctx)
        except kerberos.GSSError:
            return False
        if user != self.server.kerberos_user:
            return False
        with self.server.lock:
            self.server.kerberos_logins.append(user)
        if answer:
            self._auth_reply = {"WWW-Authenticate": f"Negotiate {answer}"}
        return True

    def _reply(
        self,
        status: int,
        data: bytes,
        *,
        ctype: str = "text/plain",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if status == 401 and self.server.kerberos_service:
            self.send_header("WWW-Authenticate", "Negotiate")
        for k, v in {**getattr(self, "_auth_reply", {}), **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    # -- WS-Man -------------------------------------------------------------------------------
    def _envelope(self, action_uri: str, relates_to: str, body: str) -> str:
        return (
            f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" '
            f'xmlns:rsp="{NS["rsp"]}" xmlns:x="{NS["x"]}">'
            f"<s:Header><a:Action>{escape(action_uri)}Response</a:Action>"
            f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
            "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
            f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
            f"<s:Body>{body}</s:Body></s:Envelope>"
        )

    def _fault(self, relates_to: str, code: int, subcode: str, reason: str) -> tuple[int, str]:
        body = (
            "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode>"
            f"<s:Value>w:{subcode}</s:Value></s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
            '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/'
            f'wsmanfault" Code="{code}" Machine="osiris-lab"><f:Message>{escape(reason)}'
            "</f:Message></f:WSManFault></s:Detail></s:Fault>"
        )
        fault_action = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
        xml = self._envelope(fault_action, relates_to, body).replace("faultResponse", "fault")
        return 500, xml

    def _dispatch(self, action: str, action_uri: str, root: ET.Element) -> tuple[int, str]:
        srv = self.server
        msg_id = _text(root, "s:Header/a:MessageID")
        shell_id = ""
        for sel in root.iterfind("s:Header/w:SelectorSet/w:Selector", NS):
            if sel.get("Name") == "ShellId":
                shell_id = (sel.text or "").strip()

        def ok(body: str) -> tuple[int, str]:
            return 200, self._envelope(action_uri, msg_id, body)

        if action == "Create":
            new_id = str(uuid.uuid4()).upper()
            with srv.lock:
                srv.shells[new_id] = {}
            return ok(
                "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
                f"<a:ReferenceParameters><w:ResourceURI>{CMD_URI}</w:ResourceURI>"
                f'<w:SelectorSet><w:Selector Name="ShellId">{new_id}</w:Selector>'
                "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
                f"<rsp:Shell><rsp:ShellId>{new_id}</rsp:ShellId>"
                "<rsp:InputStreams>stdin</rsp:InputStreams>"
                "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
            )
        with srv.lock:
            commands = srv.shells.get(shell_id)
        if commands is None:
            return self._fault(
                msg_id,
                FAULT_SHELL_NOT_FOUND,
                "InvalidSelectors",
                f"The shell {shell_id or '(none)'} was not found on the lab host.",
            )
        body = root.find("s:Body", NS)
        assert body is not None
        if action == "Delete":
            with srv.lock:
                srv.shells.pop(shell_id, None)
            return ok("")
        if action == "Command":
            line = _text(body, "rsp:CommandLine/rsp:Command")
            args = _text(body, "rsp:CommandLine/rsp:Arguments")
            command_id = str(uuid.uuid4()).upper()
            with srv.lock:
                commands[command_id] = _Command(f"{line} {args}".strip())
            return ok(
                f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
                "</rsp:CommandResponse>"
            )
        if action == "Send":
            stream = body.find("rsp:Send/rsp:Stream", NS)
            cmd = commands.get(stream.get("CommandId", "")) if stream is not None else None
            if stream is None or cmd is None:
                return self._fault(msg_id, 2150858843, "InvalidSelectors", "unknown command")
            cmd.stdin += base64.b64decode((stream.text or "").strip() or b"")
            cmd.stdin_closed = stream.get("End", "false").lower() == "true"
            return ok("<rsp:SendResponse/>")
        if action == "Signal":
            signal = body.find("rsp:Signal", NS)
            cmd = commands.get(signal.get("CommandId", "")) if signal is not None else None
            if cmd is not None:
                cmd.signalled = True
            return ok("<rsp:SignalResponse/>")
        if action == "Receive":
            return self._receive(root, body, commands, msg_id, ok)
        return self._fault(msg_id, 2150858770, "ActionNotSupported", f"unsupported {action}")

    def _receive(
        self,
        root: ET.Element,
        body: ET.Element,
        commands: dict[str, _Command],
        msg_id: str,
        ok: Callable[[str], tuple[int, str]],
    ) -> tuple[int, str]:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
        command_id = desired.get("CommandId", "") if desired is not None else ""
        cmd = commands.get(command_id)
        if cmd is None:
            return self._fault(msg_id, 2150858843, "InvalidSelectors", "unknown command")
        if not cmd.started:
            cmd.started = True
            threading.Thread(target=self.server.run_command, args=(cmd,), daemon=True).start()
        m = _DURATION.match(_text(root, "s:Header/w:OperationTimeout"))
        wait_s = float(m.group(1)) if m else 20.0
        if not cmd.done.wait(wait_s):
            return self._fault(
                msg_id,
                FAULT_TIMEOUT,
                "TimedOut",
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
            )
        assert cmd.result is not None
        rc, out, err = cmd.result
        cid = escape(command_id, {'"': "&quot;"})
        parts: list[str] = []
        if not cmd.delivered:
            for name, text in (("stdout", out), ("stderr", err)):
                data = text.encode("utf-8")
                for i in range(0, len(data), STREAM_CHUNK):
                    b64 = base64.b64encode(data[i : i + STREAM_CHUNK]).decode("ascii")
                    parts.append(f'<rsp:Stream Name="{name}" CommandId="{cid}">{b64}</rsp:Stream>')
                parts.append(
                    f'<rsp:Stream Name="{name}" CommandId="{cid}" End="true"></rsp:Stream>'
                )
            cmd.delivered = True
        parts.append(
            f'<rsp:CommandState CommandId="{cid}" State="{DONE}">'
            f"<rsp:ExitCode>{int(rc)}</rsp:ExitCode></rsp:CommandState>"
        )
        return ok(f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m osiris_lab.wsman",
        description="LAB SIMULATOR: a WS-Management endpoint on 127.0.0.1 (never for production).",
    )
    parser.add_argument("--port", type=int, default=15985)
    parser.add_argument("--username", default="Administrator")
    parser.add_argument("--password", default="lab-secret")
    args = parser.parse_args(argv)
    server = WsmanLabServer(args.port, username=args.username, password=args.password)
    print(f"LAB SIMULATOR listening on {server.url} (basic auth user {args.username})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
