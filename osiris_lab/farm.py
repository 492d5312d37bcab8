"""LAB ONLY — a process hosting the demo's simulated clinic hosts and a chaos control endpoint.

Never used outside lab mode: nothing in the agent's, the server's or the console's production
paths imports this module; ``osiris demo`` starts it as a child process
(``python -m osiris_lab.farm --spec FILE``) and the tests do the same.

Why one process: the demo needs several simulated Windows hosts per clinic (each a
:class:`~osiris_lab.wsman.WsmanLabServer` whose handler is a
:class:`~osiris_lab.windows.WindowsLabHost`), optionally a Linux sandbox behind a real
local sshd (:class:`~osiris_lab.linux.LabSshd`), and a time source the agents can check
their clocks against without contacting the internet. Keeping them in one process lets a small
control endpoint reach every host's state to inject drift on demand.

Everything listens on 127.0.0.1 only. Lab tooling may listen; the appliance agent never does.

The spec (JSON)::

    {"hosts": [{"site": "northside", "host": "dc01", "role": "dc",
                "username": "Administrator", "password": "…"}, …],
     "linux": [{"site": "northside", "host": "lin01"}],      # skipped when sshd is missing
     "ntp_servers": 2,                                        # lab SNTP responders
     "workdir": "/abs/dir", "ready_file": "/abs/farm.json", "control_token": "…"}

The ready file (written atomically, mode 0600, once everything listens)::

    {"pid", "control_url", "hosts": [{"site", "host", "kind": "winrm", "role", "port",
     "username"}], "linux": [{"site", "host", "kind": "ssh", "port", "username",
     "fingerprint", "private_key_file"}], "linux_skipped": "<why>"|null, "ntp": ["127.0.0.1:P"]}

Control endpoint (``Authorization: Bearer <control_token>``):

* ``POST /chaos {"site"?, "host", "fault"}`` — inject a fault (:data:`windows.FAULTS` names,
  ``service_stopped:<name>``; on Linux hosts :data:`linux.DRIFTS` names). ``site`` may be left
  out when the host name is unique. 200 ``{"site", "host", "fault", "drifting": [...]}``.
* ``GET /hosts`` — per host: the faults injected so far, the runbooks currently drifting (the
  host's own model, evaluated without a round trip), and how many phases it has run.
* ``GET /faults`` — the fault names per platform.

Why this file is long: the farm is one lab process: its hosts, time sources and chaos control
endpoint share one lifecycle and one ready file. It is just over the limit. Lab code: never on the
appliance.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from osiris_core.catalog import Catalog, load_catalog
from osiris_core.files import write_private

from .linux import DRIFTS as LINUX_FAULTS
from .windows import FAULTS, WindowsLabHost, default_state
from .wsman import WsmanLabServer

MAX_BODY = 16 * 1024
NTP_UNIX_DELTA = 2_208_988_800


class SpecError(Exception):
    """The spec file is unusable; the message says why (printed, never a stack trace)."""


def member_server_state(hostname: str) -> dict[str, Any]:
    """A healthy member (file/print) server: no DNS/DHCP roles, the print spooler running."""
    s = default_state()
    s["hostname"] = hostname.upper()
    s["domain_role"] = 3
    for role in ("DNS", "DHCPServer"):
        s["services"][role] = {"status": "Stopped", "start_type": "Disabled", "installed": False}
    s["services"]["Spooler"] = {"status": "Running", "start_type": "Automatic", "installed": True}
    return s


@dataclass
class FarmHost:
    site: str
    host: str
    kind: str  # "winrm" | "ssh"
    role: str
    port: int = 0
    username: str = ""
    injected: list[str] = field(default_factory=list)
    windows: WindowsLabHost | None = None
    server: WsmanLabServer | None = None
    sandbox: Any = None  # LinuxSandbox
    sshd: Any = None  # LabSshd

    def inject(self, fault: str) -> None:
        if self.windows is not None:
            self.windows.inject(fault)
        else:
            self.sandbox.drift(fault)
        self.injected.append(fault)

    def drifting(self, catalog: Catalog) -> list[str]:
        """Runbooks whose detect says drift right now, from the host model itself."""
        if self.windows is None:
            return []
        out = []
        for rb in sorted(catalog.runbooks.values(), key=lambda r: r.id):
            if rb.platform != "windows" or "detect" not in rb.phases:
                continue
            try:
                params = rb.validate_params({})
                with self.windows._lock:
                    rc, text = self.windows._run(rb.id, "detect", params, rb.script("detect"))
                if rc == 0 and json.loads(text).get("status") == "drift":
                    out.append(rb.id)
            except Exception:  # noqa: BLE001 - a summary must not break the control endpoint
                continue
        return out

    def phases_run(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.windows is not None:
            for _rid, phase in self.windows.phases_run():
                counts[phase] = counts.get(phase, 0) + 1
        return counts

    def summary(self, catalog: Catalog) -> dict[str, Any]:
        return {
            "site": self.site,
            "host": self.host,
            "kind": self.kind,
            "role": self.role,
            "port": self.port,
            "injected": list(self.injected),
            "drifting": self.drifting(catalog),
            "phases_run": self.phases_run(),
        }


class LabTimeSource:
    """A LAB SNTP responder on 127.0.0.1 answering with this machine's own clock.

    The agents must check their clock before signing, and the demo may not contact anything
    but 127.0.0.1, so the lab offers its own (honestly labelled, stratum 2, refid ``LAB``).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-sntp", daemon=True)

    @staticmethod
    def _now() -> int:
        ns = time.time_ns()
        secs, rem = divmod(ns, 1_000_000_000)
        return ((secs + NTP_UNIX_DELTA) << 32) | ((rem << 32) // 1_000_000_000)

    def start(self) -> LabTimeSource:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(512)
            except (TimeoutError, OSError):
                continue
            t2 = self._now()
            if len(data) < 48 or data[0] & 7 != 3:
                continue
            originate = struct.unpack("!Q", data[40:48])[0]
            reply = struct.pack(
                "!BBbbII4sQQQQ", 0x24, 2, 6, -20, 0, 0, b"LAB\0", t2, originate, t2, self._now()
            )
            try:
                self.sock.sendto(reply, src)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class Farm:
    """Every lab host of one demo, plus the time sources and the control endpoint."""

    def __init__(self, spec: dict[str, Any], catalog: Catalog | None = None) -> None:
        self.spec = spec
        self.catalog = catalog or load_catalog()
        self.hosts: list[FarmHost] = []
        self.ntp: list[LabTimeSource] = []
        self.control: ThreadingHTTPServer | None = None
        self.linux_skipped: str | None = None
        self.token = str(spec.get("control_token") or "")
        self.lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Farm:
        for h in self.spec.get("hosts", []):
            self._start_windows(h)
        linux = self.spec.get("linux") or []
        if linux:
            self._start_linux(linux)
        for _ in range(int(self.spec.get("ntp_servers", 2))):
            self.ntp.append(LabTimeSource().start())
        self.control = ThreadingHTTPServer(("127.0.0.1", 0), _ControlHandler)
        self.control.daemon_threads = True
        self.control.farm = self  # type: ignore[attr-defined]
        threading.Thread(
            target=self.control.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()
        return self

    def _start_windows(self, h: dict[str, Any]) -> None:
        role = h.get("role", "dc")
        state = default_state() if role == "dc" else member_server_state(h["host"])
        if role == "dc":
            state["hostname"] = h["host"].upper()
        win = WindowsLabHost(self.catalog, state)
        srv = WsmanLabServer(
            int(h.get("port", 0)), username=h["username"], password=h["password"], handler=win
        ).start()
        self.hosts.append(
            FarmHost(h["site"], h["host"], "winrm", role, srv.port, h["username"], [], win, srv)
        )

    def _start_linux(self, entries: list[dict[str, Any]]) -> None:
        from .linux import LabSshd, LinuxSandbox

        if not LabSshd.available():
            self.linux_skipped = "no /usr/sbin/sshd or ssh-keygen on this machine"
            return
        work = Path(self.spec["workdir"])
        for e in entries:
            base = work / f"linux-{e['site']}-{e['host']}"
            try:
                sandbox = LinuxSandbox(base / "root").build()
                sshd = LabSshd(base / "sshd", sandbox).start()
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                # a lab host that cannot start is skipped and said so, never a farm traceback
                self.linux_skipped = f"lab sshd did not start: {exc}"
                return
            self.hosts.append(
                FarmHost(
                    e["site"], e["host"], "ssh", "linux", sshd.port, sshd.user,
                    sandbox=sandbox, sshd=sshd,
                )
            )  # fmt: skip

    def stop(self) -> None:
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        for h in self.hosts:
            if h.server is not None:
                h.server.stop()
            if h.sshd is not None:
                h.sshd.stop()
        for t in self.ntp:
            t.stop()

    def ready(self) -> dict[str, Any]:
        assert self.control is not None
        win, lin = [], []
        for h in self.hosts:
            if h.kind == "winrm":
                win.append(
                    {"site": h.site, "host": h.host, "kind": "winrm", "role": h.role,
                     "port": h.port, "username": h.username}
                )  # fmt: skip
            else:
                lin.append(
                    {"site": h.site, "host": h.host, "kind": "ssh", "port": h.port,
                     "username": h.username, "fingerprint": h.sshd.host_fingerprint,
                     "private_key_file": str(h.sshd.dir / "client_key")}
                )  # fmt: skip
        return {
            "pid": os.getpid(),
            "control_url": f"http://127.0.0.1:{self.control.server_address[1]}",
            "hosts": win,
            "linux": lin,
            "linux_skipped": self.linux_skipped,
            "ntp": [f"127.0.0.1:{t.port}" for t in self.ntp],
        }

    # -- control -----------------------------------------------------------------------------
    def find(self, host: str, site: str | None) -> FarmHost:
        found = [h for h in self.hosts if h.host == host and (site is None or h.site == site)]
        if not found:
            names = ", ".join(sorted({f"{h.site}/{h.host}" for h in self.hosts}))
            raise LookupError(f"no lab host {host!r}" + (f" at {site}" if site else "")
                              + f"; known: {names}")  # fmt: skip
        if len(found) > 1:
            sites = ", ".join(h.site for h in found)
            raise LookupError(f"host {host!r} exists at several sites ({sites}); name the site")
        return found[0]

    def chaos(self, host: str, fault: str, site: str | None = None) -> dict[str, Any]:
        with self.lock:
            h = self.find(host, site)
            h.inject(fault)
        drifting = h.drifting(self.catalog)
        return {"site": h.site, "host": h.host, "fault": fault, "drifting": drifting}

    def faults(self) -> dict[str, list[str]]:
        return {
            "windows": sorted(FAULTS) + ["service_stopped:<name>"],
            "linux": list(LINUX_FAULTS),
        }


class _ControlHandler(BaseHTTPRequestHandler):
    server_version = "osiris-lab-farm"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    @property
    def farm(self) -> Farm:
        return self.server.farm  # type: ignore[attr-defined]

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message}})

    def _authorised(self) -> bool:
        want = f"Bearer {self.farm.token}".encode()
        got = self.headers.get("Authorization", "").encode()
        if self.farm.token and hmac.compare_digest(want, got):
            return True
        self._error(401, "missing or wrong control token")
        return False

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._authorised():
            return
        if self.path == "/hosts":
            self._send(200, {"hosts": [h.summary(self.farm.catalog) for h in self.farm.hosts]})
        elif self.path == "/faults":
            self._send(200, self.farm.faults())
        else:
            self._error(404, f"no such endpoint {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if not self._authorised():
            return
        if self.path != "/chaos":
            self._error(404, f"no such endpoint {self.path}")
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if not 0 < n <= MAX_BODY:
            self._error(400, "body missing or too large")
            return
        try:
            body = json.loads(self.rfile.read(n))
            host, fault, site = body["host"], body["fault"], body.get("site")
            if not isinstance(host, str) or not isinstance(fault, str):
                raise TypeError
            if site is not None and not isinstance(site, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._error(400, 'expected {"host": str, "fault": str, "site"?: str}')
            return
        try:
            self._send(200, self.farm.chaos(host, fault, site))
        except KeyError as e:  # an unknown fault (KeyError is a LookupError: test it first)
            self._error(400, str(e).strip("'\""))
        except LookupError as e:  # an unknown or ambiguous host
            self._error(404, str(e).strip("'\""))


def _write_ready(path: Path, data: dict[str, Any]) -> None:
    write_private(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def load_spec(path: str) -> dict[str, Any]:
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot read spec {path}: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("hosts", []), list):
        raise SpecError(f"{path}: expected an object with a list of hosts")
    for key in ("ready_file", "workdir"):
        if not isinstance(spec.get(key), str):
            raise SpecError(f"{path}: {key} missing")
    for h in spec.get("hosts", []):
        for key in ("site", "host", "username", "password"):
            if not isinstance(h.get(key), str):
                raise SpecError(f"{path}: a host lacks {key}")
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m osiris_lab.farm",
        description="LAB SIMULATOR farm for `osiris demo` (127.0.0.1 only; never production).",
    )
    parser.add_argument("--spec", required=True, help="JSON spec file (see the module docs).")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except SpecError as e:
        print(f"lab farm: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    farm = Farm(spec)
    try:
        farm.start()
    except OSError as e:
        print(f"lab farm: cannot listen: {e}", file=sys.stderr)
        farm.stop()
        return 1
    try:
        ready = farm.ready()
        _write_ready(Path(spec["ready_file"]), ready)
        names = ", ".join(f"{h.site}/{h.host}:{h.port}" for h in farm.hosts)
        print(f"LAB SIMULATOR farm ready: {names}; control {ready['control_url']}", flush=True)
        if farm.linux_skipped:
            print(f"lab farm: Linux host skipped: {farm.linux_skipped}", flush=True)
        stop.wait()
    finally:
        farm.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
