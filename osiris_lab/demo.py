"""`osiris demo`: the whole system on this machine, on 127.0.0.1, in one command.

A DEMO, clearly labelled: the clinic hosts are LAB SIMULATORS (this package, ``osiris_lab``),
the time source is a lab SNTP responder, and nothing in a production code path depends on this
module: ``osiris demo`` (``osiris_tui/cli.py``) imports it lazily, inside the command, and that is
the one production import of ``osiris_lab`` that ``tests/test_layering.py`` allows.

What runs (each a child process in its own process group, started through the parts' own
command lines — this module talks to the server only over HTTP and imports neither the server
nor the agent):

* ``osiris-server`` with a fresh data dir under ``DATA/server``;
* the lab farm (``python -m osiris_lab.farm``): two simulated Windows hosts per clinic
  (``dc01``, a domain controller, and ``fs01``, a file server), a Linux sandbox behind a real
  local sshd where the machine has one, two lab time sources and a chaos control endpoint;
* one ``osiris-agent run`` per clinic, enrolled with a real claim code, in lab mode.

Then either the console (`osiris tui`, in-process, with a chaos key) or, ``--headless``, a run
of N seconds with drift injected on a schedule, ending with a summary built from the server's
API and an offline verification of the pulled evidence. Whatever happens — quit, Ctrl-C,
SIGTERM, a child dying — every child is stopped and the data dir is named.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from osiris_core.errors import OsirisError
from osiris_tui.client import Client, ClientError

MARKER = "demo.json"
FARM_READY = "farm.json"
PARTNER_NAME = "Lakeside MSP (demo partner)"
CLINICS = (
    ("northside", "Northside Family Clinic"),
    ("riverside", "Riverside Pediatrics"),
    ("hilltop", "Hilltop Dental"),
)
LAB_HOSTS = (("dc01", "dc"), ("fs01", "fs"))
LAB_USER = "Administrator"
CHECKIN_S = 10  # the server's minimum site interval
SCAN_S = 10  # how often the demo's agents re-run each drift check
# Drift the headless run injects, in turn (site index, host, fault): each is something L1 heals.
CHAOS_PLAN = (
    (0, "dc01", "firewall_off"),
    (1, "fs01", "defender_off"),
    (2, "dc01", "spooler_on_dc"),
    (0, "fs01", "audit_policy_gone"),
    (1, "dc01", "service_stopped:DNS"),
    (2, "fs01", "firewall_off"),
)
CONSOLE_FAULTS = (
    "firewall_off",
    "defender_off",
    "spooler_on_dc",
    "audit_policy_gone",
    "service_stopped:DNS",
    "service_stopped:EventLog",
)
OUTCOMES = ("healed", "deferred", "escalated", "failed", "reverted")


class DemoError(OsirisError):
    """Something the operator must fix (a port taken, a child that died); one clear line."""

    code = "E_DEMO"


def say(msg: str, *, end: str = "\n") -> None:
    """Progress on stderr (stdout carries only the summary)."""
    sys.stderr.write(msg + end)
    sys.stderr.flush()


# ---------------------------------------------------------------- child processes


@dataclass
class Child:
    """One process the demo started, in its own process group, logging to a file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 12) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in lines[-n:]) or "    (log is empty)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole group (graceful), then SIGKILL what is left."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # The group may hold grandchildren (the lab sshd): make sure none survive.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _python_cmd(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_secret(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string with only ASCII escapes is a valid TOML string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dump_toml(doc: dict[str, dict[str, Any]]) -> str:
    out = ["# osiris-agent configuration written by `osiris demo` (LAB: short intervals)."]
    for section, body in doc.items():
        out += ["", f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- state of one demo


@dataclass
class DemoState:
    """What the demo records in DATA/demo.json (0600): enough to find and stop everything."""

    data: Path
    server_url: str = ""
    admin_token: str = ""
    control_url: str = ""
    control_token: str = ""
    partner_id: str = ""
    sites: list[str] = field(default_factory=list)
    appliances: dict[str, str] = field(default_factory=dict)  # site -> appliance id
    passwords: dict[str, str] = field(default_factory=dict)  # "site/host" -> lab password
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Path) -> DemoState:
        raw = json.loads((data / MARKER).read_text())
        return cls(data=data, **{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def save(self) -> None:
        body = {k: v for k, v in self.__dict__.items() if k != "data"}
        _write_secret(self.data / MARKER, json.dumps(body, indent=2, sort_keys=True) + "\n")


@dataclass
class Options:
    data: Path
    keep: bool = False
    headless: bool = False
    seconds: int = 60
    port: int = 0
    linux: bool = True  # a Linux lab host over a real local sshd, where the machine allows
    chaos: bool = True
    as_json: bool = False


# ---------------------------------------------------------------- the orchestration


class Demo:
    """Start, run and stop the demo. Always call :meth:`stop` (``with Demo(...)`` does)."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.data = opts.data.absolute()
        self.children: list[Child] = []
        self.state = DemoState(self.data)
        self.farm: dict[str, Any] = {}
        self.stopping = threading.Event()
        self.injected: list[dict[str, Any]] = []
        self.crashed: list[str] = []

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- data dir --------------------------------------------------------------------------
    def prepare_data(self) -> bool:
        """Fresh data (or reuse with --keep); True when reusing an enrolled demo."""
        d = self.data
        marker = d / MARKER
        if d.exists() and any(d.iterdir()) and not marker.exists():
            raise DemoError(
                f"{d} exists and is not a demo data dir (no {MARKER}); "
                "choose another --data or remove it"
            )
        if marker.exists():
            try:
                old = DemoState.load(d)
            except (OSError, ValueError, TypeError) as e:
                raise DemoError(f"{marker} is unreadable ({e}); remove {d}") from None
            _kill_leftovers(old, d)
            if self.opts.keep and old.appliances and (d / "server" / "osiris.db").exists():
                self.state = old
                self.state.data = d
                return True
            shutil.rmtree(d)
        for sub in ("", "logs", "agents", "farm", "exports"):
            (d / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state.save()
        return False

    # -- spawning --------------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Child:
        log = self.data / "logs" / f"{name}.log"
        fh = open(log, "ab")  # noqa: SIM115 - the child owns it; closed below
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
                cwd=self.data,
            )
        finally:
            fh.close()
        child = Child(name, proc, log)
        self.children.append(child)
        self.state.pids[name] = proc.pid
        self.state.save()
        return child

    def check_children(self) -> None:
        for c in self.children:
            if not c.alive() and c.name not in self.crashed:
                self.crashed.append(c.name)
                raise DemoError(
                    f"{c.name} exited with code {c.proc.returncode}; last lines of {c.log}:\n"
                    + c.tail()
                )

    def run_tool(self, name: str, cmd: list[str], timeout: float = 60) -> str:
        """A short-lived command (init, enroll, status); its output is logged; errors explain."""
        try:
            r = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, cwd=self.data,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise DemoError(f"{name} did not finish within {timeout:.0f} s") from None
        with open(self.data / "logs" / "tools.log", "a") as f:
            f.write(f"$ {name}\n{r.stderr}")
        if r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
            raise DemoError(f"{name} failed (exit {r.returncode}): {msg}")
        return r.stdout

    def wait_for(self, what: str, ok: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            self.check_children()
            if self.stopping.is_set():
                raise DemoError("interrupted")
            if time.monotonic() > deadline:
                raise DemoError(f"{what} did not become ready within {timeout:.0f} s")
            time.sleep(0.1)

    # -- start -----------------------------------------------------------------------------
    def start(self) -> None:
        reuse = self.prepare_data()
        say(f"osiris demo — LAB DEMO on 127.0.0.1, data in {self.data}")
        self.start_server(reuse)
        client = self.client()
        try:
            if not reuse:
                self.seed(client)
            self.start_farm(client, reuse)
            if not reuse:
                self.enroll_all(client)
            self.start_agents()
            self.wait_online(client)
        finally:
            client.close()

    def client(self) -> Client:
        return Client(self.state.server_url, self.state.admin_token, timeout=10.0, retries=2)

    def start_server(self, reuse: bool) -> None:
        sdir = self.data / "server"
        if not reuse:
            say("initialising server data… ", end="")
            out = self.run_tool(
                "osiris-server init",
                _python_cmd("osiris_server.cli", "init", "--data", str(sdir), "--json"),
            )
            try:
                self.state.admin_token = json.loads(out)["admin_token"]
            except (ValueError, KeyError):
                raise DemoError("osiris-server init printed no admin token") from None
            say("ok")
        port = self.opts.port
        if port and not _port_free(port):
            raise DemoError(f"port 127.0.0.1:{port} is taken; choose another --port or omit it")
        port = port or _free_port()
        say("starting server… ", end="")
        child = self.spawn(
            "server",
            _python_cmd(
                "osiris_server.cli", "serve", "--data", str(sdir), "--listen", f"127.0.0.1:{port}"
            ),
        )
        self.state.server_url = f"http://127.0.0.1:{port}"
        self.state.save()

        def healthy() -> bool:
            try:
                return httpx.get(self.state.server_url + "/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            self.wait_for("the server", healthy)
        except DemoError:
            if not child.alive():
                raise
            raise DemoError(f"the server did not answer; last lines:\n{child.tail()}") from None
        say(f"ok (127.0.0.1:{port})")

    def seed(self, c: Client) -> None:
        say("seeding one partner, three clinics… ", end="")
        p = c.create_partner(PARTNER_NAME, "noc@lakeside-msp.example")
        self.state.partner_id = p.get("id") or p.get("partner", {}).get("id", "")
        window = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
                  "duration_min": 1440, "timezone": "UTC"}  # fmt: skip
        for sid, name in CLINICS:
            body: dict[str, Any] = {"id": sid, "name": name, "window": window,
                                    "checkin_interval_s": CHECKIN_S}  # fmt: skip
            if self.state.partner_id:
                body["partner_id"] = self.state.partner_id
            c.post("/sites", body)
            self.state.sites.append(sid)
        self.state.save()
        say("ok")

    def start_farm(self, c: Client, reuse: bool) -> None:
        say("starting lab hosts (simulators)… ", end="")
        ready = self.data / "farm" / FARM_READY
        ready.unlink(missing_ok=True)
        if not self.state.control_token:
            self.state.control_token = secrets.token_urlsafe(24)
        hosts = []
        for sid in self.state.sites:
            for host, role in LAB_HOSTS:
                key = f"{sid}/{host}"
                pw = self.state.passwords.setdefault(key, secrets.token_urlsafe(18))
                hosts.append({"site": sid, "host": host, "role": role,
                              "username": LAB_USER, "password": pw})  # fmt: skip
        spec = {
            "hosts": hosts,
            "linux": [{"site": self.state.sites[0], "host": "lin01"}] if self.opts.linux else [],
            "ntp_servers": 2,
            "workdir": str(self.data / "farm"),
            "ready_file": str(ready),
            "control_token": self.state.control_token,
        }
        spec_file = self.data / "farm" / "spec.json"
        _write_secret(spec_file, json.dumps(spec, indent=2))
        self.spawn("farm", _python_cmd("osiris_lab.farm", "--spec", str(spec_file)))
        self.wait_for("the lab farm", ready.exists)
        self.farm = json.loads(ready.read_text())
        self.state.control_url = self.farm["control_url"]
        self.state.save()
        n = len(self.farm["hosts"]) + len(self.farm["linux"])
        say(f"ok ({n} lab hosts, control {self.state.control_url})")
        if self.opts.linux and self.farm.get("linux_skipped"):
            say(f"  Linux host skipped: {self.farm['linux_skipped']}")
        self.sync_credentials(c)

    def _cred_fields(self, h: dict[str, Any]) -> dict[str, Any]:
        if h["kind"] == "winrm":
            return {"host_id": h["host"], "kind": "winrm", "address": "127.0.0.1",
                    "port": h["port"], "lab": True, "use_tls": False, "verify_tls": False,
                    "username": h["username"],
                    "password": self.state.passwords[f"{h['site']}/{h['host']}"]}  # fmt: skip
        key = Path(h["private_key_file"]).read_text()
        return {"host_id": h["host"], "kind": "ssh_key", "address": "127.0.0.1",
                "port": h["port"], "lab": True, "username": h["username"], "private_key": key,
                "host_key_fingerprints": [h["fingerprint"]]}  # fmt: skip

    def sync_credentials(self, c: Client) -> None:
        """One lab credential per farm host (ports change each start: update, never duplicate)."""
        for h in self.farm["hosts"] + self.farm["linux"]:
            fields = self._cred_fields(h)
            existing = {x.host_id: x for x in c.credentials(h["site"])}
            cur = existing.get(h["host"])
            if cur is None:
                c.add_credential(h["site"], fields)
            else:
                body = {k: v for k, v in fields.items() if k not in ("host_id", "kind")}
                c.update_credential(h["site"], cur.id, body)

    def enroll_all(self, c: Client) -> None:
        for sid in self.state.sites:
            say(f"enrolling the {sid} appliance… ", end="")
            code = c.create_provision(sid, 3600)["code"]
            state_dir = self.data / "agents" / sid
            self.run_tool(
                f"osiris-agent enroll ({sid})",
                _python_cmd("osiris_agent.cli", "enroll", "--server", self.state.server_url,
                            "--claim-code", code, "--state", str(state_dir),
                            "--hostname", f"appliance-{sid}", "--lab"),
            )  # fmt: skip
            pins = json.loads((state_dir / "pins.json").read_text())
            self.state.appliances[sid] = pins["appliance_id"]
            self.state.save()
            say(f"ok ({pins['appliance_id']})")

    def write_agent_config(self, sid: str) -> Path:
        """Lab settings on top of what enroll wrote: short intervals, the lab time sources."""
        path = self.data / "agents" / sid / "agent.toml"
        doc = tomllib.loads(path.read_text())
        agent = doc.setdefault("agent", {})
        agent.update(checkin_interval_s=CHECKIN_S, jitter_pct=10, lab=True,
                     scan_interval_s=SCAN_S)  # fmt: skip
        doc.setdefault("server", {})["url"] = self.state.server_url
        doc["ntp"] = {"servers": list(self.farm["ntp"]), "min_good": len(self.farm["ntp"]),
                      "timeout_ms": 1000, "max_skew_ms": 5000}  # fmt: skip
        _write_secret(path, dump_toml(doc))
        return path

    def start_agents(self) -> None:
        for sid in self.state.sites:
            cfg = self.write_agent_config(sid)
            say(f"starting agent {sid}… ", end="")
            # The real agent: `osiris-agent run`, scanning every SCAN_S s (agent.scan_interval_s).
            cmd = _python_cmd("osiris_agent.cli", "run", "--config", str(cfg))
            self.spawn(f"agent-{sid}", cmd)
            say("ok")

    def wait_online(self, c: Client, timeout: float = 60.0) -> None:
        say("waiting for the appliances to check in… ", end="")
        want = set(self.state.appliances.values())

        def all_seen() -> bool:
            try:
                seen = {a.id for a in c.appliances() if a.last_seen_at}
            except ClientError:
                return False
            return want <= seen

        self.wait_for("the appliances' first check-in", all_seen, timeout)
        say(f"ok ({len(want)} online)")

    # -- chaos -----------------------------------------------------------------------------
    def chaos(self, host: str, fault: str, site: str | None = None) -> dict[str, Any]:
        out = farm_chaos(self.state.control_url, self.state.control_token, host, fault, site)
        self.injected.append({**out, "at": time.time()})
        return out

    # -- stop ------------------------------------------------------------------------------
    def stop_agents(self) -> None:
        for c in self.children:
            if c.name.startswith("agent-"):
                c.stop()

    def stop(self) -> None:
        # Agents first (they flush on the way out), then the farm, then the server.
        order = {"agent": 0, "farm": 1, "server": 2}
        for c in sorted(self.children, key=lambda c: order.get(c.name.split("-")[0], 1)):
            c.stop()
        if self.children:
            self.state.pids = {}
            with contextlib.suppress(OSError):
                self.state.save()

    # -- headless --------------------------------------------------------------------------
    def run_headless(self, seconds: int) -> dict[str, Any]:
        """Run ``seconds`` with chaos on a schedule, then stop the agents and summarise."""
        plan = list(CHAOS_PLAN) if self.opts.chaos else []
        sites = self.state.sites
        # Inject in the first ~half of the run so every drift has cycles left to heal.
        span = max(1.0, seconds * 0.5)
        step = span / max(1, len(plan))
        t0 = time.monotonic()
        due = [(t0 + 3 + i * step, p) for i, p in enumerate(plan)]
        say(f"running headless for {seconds} s with {len(plan)} chaos injections…")
        from osiris_core import canonical

        # The packet the run ends with covers the run's first ~60 %: what follows gives every
        # appliance its end boundary (a bundle after the period), cosigned by the appliance.
        self.period_start = canonical.utc_now()
        packet_end_at = t0 + max(1.0, seconds * 0.6)
        self.period_end = ""
        while time.monotonic() < t0 + seconds:
            if not self.period_end and time.monotonic() >= packet_end_at:
                self.period_end = canonical.utc_now()
            if self.stopping.is_set():
                raise DemoError("interrupted")
            self.check_children()
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, (si, host, fault) = due.pop(0)
                out = self.chaos(host, fault, sites[si % len(sites)])
                now_drifting = ", ".join(out["drifting"]) or "nothing detectable"
                say(f"  chaos: {fault} on {out['site']}/{out['host']} (drifting: {now_drifting})")
            time.sleep(0.2)
        if not self.period_end:
            self.period_end = canonical.utc_now()
        self.wait_packet_ready(self.state.sites[0], self.period_end)
        return self.summarise()

    def wait_packet_ready(self, site: str, end: str, timeout: float = 60.0) -> None:
        """Keep the agents running until each appliance of ``site`` has a bundle after ``end``
        inside a checkpoint it cosigned: the packet's end boundary (the witness cosigns at its
        next check-in, so this is at most a couple of cycles)."""
        c = self.client()
        try:

            def ready() -> bool:
                try:
                    cp = c.get("/log/checkpoint", cosigned_by_site=site)
                except ClientError:
                    return False
                rows = _all_evidence(c, site)
                apps = {a.id for a in c.appliances(site)}
                closed = {
                    r["appliance_id"]
                    for r in rows
                    if r["finished_at"] >= end and int(r["index"]) < int(cp["size"])
                }
                return bool(apps) and apps <= closed

            say("waiting for the clinic's witness to cosign past the packet period… ", end="")
            self.wait_for("a cosigned end boundary for the packet", ready, timeout)
            say("ok")
        finally:
            c.close()

    def summarise(self) -> dict[str, Any]:
        say("stopping agents and draining their outboxes… ", end="")
        self.stop_agents()
        agents: dict[str, dict[str, Any]] = {}
        for sid in self.state.sites:
            sd = str(self.data / "agents" / sid)
            with contextlib.suppress(DemoError):
                self.run_tool(
                    f"osiris-agent outbox flush ({sid})",
                    _python_cmd("osiris_agent.cli", "outbox", "flush", "--state", sd),
                )
            st = json.loads(
                self.run_tool(
                    f"osiris-agent status ({sid})",
                    _python_cmd("osiris_agent.cli", "status", "--state", sd, "--json"),
                )
            )
            agents[sid] = {"seq": st["chain_head"]["seq"], "queued": st["queue_depth"]}
            # what the clinic hands its auditor: the appliance's own attestation
            att = self.data / "attestations" / f"{sid}.json"
            att.parent.mkdir(parents=True, exist_ok=True)
            self.run_tool(
                f"osiris-agent attest ({sid})",
                _python_cmd("osiris_agent.cli", "attest", "--state", sd, "--out", str(att)),
            )
        say("ok")
        hosts = farm_hosts(self.state.control_url, self.state.control_token)
        c = self.client()
        try:
            period = (getattr(self, "period_start", ""), getattr(self, "period_end", ""))
            summary = build_summary(
                c, self.state, agents, hosts, self.injected, self.data, period=period
            )
        finally:
            c.close()
        summary["children_crashed"] = list(self.crashed)
        summary["ok"] = summary["ok"] and not self.crashed
        return summary


def _kill_leftovers(old: DemoState, data: Path) -> None:
    """A previous demo that was killed hard may have left children: stop them (ours only)."""
    for name, pid in (old.pids or {}).items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(data) not in cmdline:
            continue  # the pid was reused by something else
        say(f"stopping {name} (pid {pid}) left over from an earlier run")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the farm's control endpoint


def _farm(method: str, url: str, token: str, body: Any = None) -> Any:
    try:
        r = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
    except httpx.HTTPError as e:
        raise DemoError(f"the lab farm is not answering at {url} ({type(e).__name__}); "
                        "is the demo running?") from None  # fmt: skip
    try:
        data = r.json()
    except ValueError:
        raise DemoError(f"the lab farm answered {r.status_code} without JSON") from None
    if r.status_code >= 400:
        raise DemoError((data.get("error") or {}).get("message") or f"HTTP {r.status_code}")
    return data


def farm_chaos(
    control_url: str, token: str, host: str, fault: str, site: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"host": host, "fault": fault}
    if site:
        body["site"] = site
    return _farm("POST", control_url + "/chaos", token, body)


def farm_hosts(control_url: str, token: str) -> list[dict[str, Any]]:
    return _farm("GET", control_url + "/hosts", token)["hosts"]


def running_state(data: str | os.PathLike[str]) -> DemoState:
    """The state of a running demo (for `osiris demo chaos` from another terminal)."""
    data = Path(data)
    marker = data.absolute() / MARKER
    try:
        st = DemoState.load(data.absolute())
    except FileNotFoundError:
        raise DemoError(
            f"no demo data in {data} (no {MARKER}); start `osiris demo` first"
        ) from None
    except (OSError, ValueError, TypeError) as e:
        raise DemoError(f"{marker} is unreadable: {e}") from None
    if not st.control_url or "farm" not in st.pids:
        raise DemoError(f"the demo in {data} is not running")
    return st


# ---------------------------------------------------------------- the summary


def _all_evidence(c: Client, site: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for app in [a.id for a in c.appliances(site)]:
        after = 0
        while True:
            page = c.evidence(site, app, after_seq=after, limit=1000).get("evidence", [])
            rows += page
            if len(page) < 1000:
                break
            after = page[-1]["seq"]
    return rows


def _wait_checkpoint_covers(c: Client, index: int, timeout: float = 15.0) -> None:
    """The published checkpoint may trail the last batch briefly: wait until it covers
    ``index``, so the pulled export holds every bundle (else the counts could never match)."""
    deadline = time.monotonic() + timeout
    while int(c.get("/log/checkpoint")["size"]) <= index and time.monotonic() < deadline:
        time.sleep(0.2)


def escalations(rows: list[dict[str, Any]]) -> list[str]:
    """Why each escalation happened (host, runbook, the bundle's own words), for the summary."""
    out = []
    for r in rows:
        b = (r.get("envelope") or {}).get("bundle") or {}
        if r.get("outcome") == "escalated":
            why = " ".join(str(b.get("action_taken") or "").split())[:110]
            out.append(f"{b.get('site_id')}/{r.get('host_id')} {b.get('runbook_id') or '-'}: {why}")
    return out


def count_outcomes(rows: list[dict[str, Any]], appliance_ids: set[str]) -> dict[str, int]:
    """The summary's counts from evidence rows (shared with the tests' independent check)."""
    out = {"bundles": len(rows), "drifts_found": 0, "self_checks": 0}
    out.update(dict.fromkeys(OUTCOMES, 0))
    for r in rows:
        env = r.get("envelope") or {}
        b = env.get("bundle") or {}
        outcome = r.get("outcome") or b.get("outcome")
        tier = b.get("tier")
        check = r.get("check") or b.get("check")
        if outcome in OUTCOMES:
            out[outcome] += 1
        if tier == "monitor" and outcome == "alert" and check != "evidence_pipeline":
            out["drifts_found"] += 1
        if tier == "monitor" and r.get("host_id") in appliance_ids:
            out["self_checks"] += 1
    return out


def build_summary(
    c: Client,
    st: DemoState,
    agents: dict[str, dict[str, Any]],
    hosts: list[dict[str, Any]],
    injected: list[dict[str, Any]],
    data: Path,
    period: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """Numbers from the server's API, the agents' own status and an offline verification
    against the clinics' own attestations; ends with one site's packet verified the same way."""
    from osiris_core.trust import TrustFileError, TrustRoots, load_trust_file
    from osiris_core.verify import verify_export
    from osiris_tui.pull import pull_export

    trust = TrustRoots()
    for sid in st.sites:
        att = data / "attestations" / f"{sid}.json"
        try:
            trust.merge(load_trust_file(att))
        except TrustFileError as e:
            raise DemoError(f"attestation of {sid}: {e}") from None

    apps = [a for a in c.appliances() if a.site_id in st.sites]
    ids = {a.id for a in apps}
    rows: list[dict[str, Any]] = []
    per_app: dict[str, int] = {}
    for sid in st.sites:
        site_rows = _all_evidence(c, sid)
        rows += site_rows
        for r in site_rows:
            per_app[r["appliance_id"]] = per_app.get(r["appliance_id"], 0) + 1
    counts = count_outcomes(rows, ids)
    _wait_checkpoint_covers(c, max((int(r["index"]) for r in rows), default=-1))
    lost = 0
    queued = 0
    for sid, a in agents.items():
        app_id = st.appliances.get(sid, "")
        lost += max(0, int(a["seq"]) - per_app.get(app_id, 0))
        queued += int(a["queued"])
    verified = 0
    pulled = 0
    findings: list[str] = []
    verify_ok = True
    for sid in st.sites:
        out = data / "exports" / sid
        # latest: the agents are stopped, so the newest bundles will never be cosigned; take
        # them all (the verifier warns W_NO_COSIG for that tail, it does not fail).
        pulled += pull_export(c, sid, out, overwrite=True, latest=True)
        report = verify_export(out, trust=trust)
        verified += report.passed.get("E_INCLUSION", 0)
        unpinned = [f.line() for f in report.warnings if f.code == "W_UNPINNED"]
        verify_ok = verify_ok and report.ok() and not unpinned
        findings += ([f.line() for f in report.failures] + unpinned)[:10]
    packet = _demo_packet(c, st.sites[0], data, period, trust) if period[1] else None
    detects = sum(int(h["phases_run"].get("detect", 0)) for h in hosts)
    summary = {
        "demo": "LAB DEMO: every clinic host is a simulator",
        "data_dir": str(data),
        "server": st.server_url,
        "sites": len(st.sites),
        "appliances": len(apps),
        "lab_hosts": len(hosts),
        "chaos_injected": len(injected),
        "checks_run": detects + counts["self_checks"],
        "lab_detects": detects,
        "self_checks": counts["self_checks"],
        "drifts_found": counts["drifts_found"],
        "healed": counts["healed"],
        "deferred": counts["deferred"],
        "escalated": counts["escalated"],
        "failed": counts["failed"] + counts["reverted"],
        "bundles": counts["bundles"],
        "bundles_pulled": pulled,
        "receipts_verified": verified,
        "verify_ok": verify_ok,
        "verify_failures": findings,
        "packet": packet,
        "lost": lost,
        "queued": queued,
        "escalations": escalations(rows),
        "still_drifting": {
            f"{h['site']}/{h['host']}": h["drifting"] for h in hosts if h["drifting"]
        },  # fmt: skip
    }
    summary["ok"] = bool(
        verify_ok
        and (packet is None or packet["ok"])
        and lost == 0
        and queued == 0
        and pulled == counts["bundles"]
        and verified == counts["bundles"]
        and len(apps) == len(st.sites)
    )
    return summary


def _demo_packet(
    c: Client, site: str, data: Path, period: tuple[str, str], trust: Any
) -> dict[str, Any]:
    """Build one site's packet for the run's period and verify it, strictly, against the
    site's attestation — what an auditor does with what the clinic gave them."""
    from osiris_core.packet import build_packet, verify_packet
    from osiris_tui.pull import pull_export

    out = data / "packets" / f"{site}.zip"
    export = data / "packets" / f"{site}-export"
    pull_export(c, site, export, period=period, overwrite=True)
    manifest = build_packet(export, out, site_id=site, period=period)
    report = verify_packet(out, trust=trust)
    return {
        "site": site,
        "path": str(out),
        "period": list(period),
        "bundles": manifest["bundles"],
        "appliances": len(manifest["appliances"]),
        "ok": report.ok(strict=True),
        "findings": [f.line() for f in report.findings if f.level != "PASS"][:10],
        "trusted": sorted({k["source"] for k in report.keys_used}),
    }


def render_summary(s: dict[str, Any]) -> str:
    lines = [
        "osiris demo summary (LAB DEMO: the clinic hosts are simulators)",
        f"  appliances         {s['appliances']} (sites {s['sites']}, lab hosts {s['lab_hosts']})",
        f"  chaos injected     {s['chaos_injected']}",
        f"  checks run         {s['checks_run']} ({s['lab_detects']} on lab hosts, "
        f"{s['self_checks']} appliance self-checks)",
        f"  drifts found       {s['drifts_found']}",
        f"  healed             {s['healed']}",
        f"  deferred           {s['deferred']}",
        f"  escalated          {s['escalated']}",
        f"  failed             {s['failed']}",
        f"  bundles            {s['bundles']} on the server, {s['bundles_pulled']} pulled",
        f"  receipts verified  {s['receipts_verified']} (offline: "
        f"{'PASS' if s['verify_ok'] else 'FAIL'})",
        f"  lost               {s['lost']} (still queued {s['queued']})",
    ]
    pk = s.get("packet")
    if pk:
        lines.append(
            f"  packet             {pk['site']}: {pk['bundles']} bundles of "
            f"{pk['appliances']} appliance(s) verified against the clinic's attestation: "
            f"{'PASS' if pk['ok'] else 'FAIL'} ({pk['path']})"
        )
        for f in pk.get("findings", []):
            lines.append(f"  packet: {f}")
    for name, rbs in sorted(s.get("still_drifting", {}).items()):
        lines.append(f"  still drifting     {name}: {', '.join(rbs)}")
    for e in s.get("escalations", [])[:12]:
        lines.append(f"  escalated: {e}")
    for f in s.get("verify_failures", []):
        lines.append(f"  verify: {f}")
    if s.get("children_crashed"):
        lines.append(f"  crashed            {', '.join(s['children_crashed'])}")
    lines.append(f"  result             {'OK' if s['ok'] else 'NOT OK'}")
    return "\n".join(lines)


# ---------------------------------------------------------------- entry points


@contextlib.contextmanager
def _signals(demo: Demo) -> Iterator[None]:
    """SIGTERM/SIGINT stop the demo cleanly (the finally in `run` stops every child)."""

    def handler(signum: int, _frame: Any) -> None:
        demo.stopping.set()
        app = getattr(demo, "app", None)
        if app is not None:
            with contextlib.suppress(Exception):
                app.exit()
            return
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(opts: Options) -> int:
    """`osiris demo`: returns the exit code (0 ok; 1 a headless run that did not verify)."""
    if not opts.headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DemoError("no terminal for the console: use `osiris demo --headless`")
    demo = Demo(opts)
    code = 1
    try:
        with _signals(demo):
            try:
                demo.start()
                if opts.headless:
                    summary = demo.run_headless(opts.seconds)
                    if opts.as_json:
                        sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
                    else:
                        sys.stdout.write(render_summary(summary) + "\n")
                    sys.stdout.flush()
                    code = 0 if summary["ok"] else 1
                else:
                    run_console(demo)
                    code = 0
            except KeyboardInterrupt:
                say("\ninterrupted")
                code = 130
            except DemoError:
                if demo.stopping.is_set():
                    say("\ninterrupted")
                    code = 130
                else:
                    raise
            finally:
                say("stopping every demo process… ", end="")
                demo.stop()
                say("done")
    finally:
        say(f"demo data lives in {demo.data} (`osiris demo --keep` reuses it)")
    return code


LINUX_CONSOLE_FAULTS = ("root_login", "password_auth", "shadow_perms", "audit_rules_gone")


def chaos_choices(hosts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(site, host, fault) offered by the console's chaos key; the spooler fault on DCs only."""
    out = []
    for h in hosts:
        if h["kind"] == "ssh":
            faults: tuple[str, ...] = LINUX_CONSOLE_FAULTS
        else:
            faults = tuple(f for f in CONSOLE_FAULTS if h.get("role") == "dc" or "dc" not in f)
            if h.get("role") != "dc":
                faults = tuple(f for f in faults if f != "service_stopped:DNS")
        out += [(h["site"], h["host"], f) for f in faults]
    return out


def run_console(demo: Demo) -> None:
    """The operator console on the fleet view, plus a LAB chaos key (x, or `:chaos`)."""
    from textual.binding import Binding
    from textual.containers import Vertical
    from textual.screen import ModalScreen
    from textual.widgets import Label, OptionList
    from textual.widgets.option_list import Option

    from osiris_tui.app import OsirisApp

    choices = chaos_choices(demo.farm["hosts"] + demo.farm["linux"])

    class ChaosScreen(ModalScreen[tuple[str, str, str] | None]):
        BINDINGS = [Binding("escape", "close", "Close", id="chaos.close")]
        DEFAULT_CSS = "ChaosScreen { align: center middle; } #chaos { width: 70; height: 24; }"

        def compose(self) -> Any:
            with Vertical(id="chaos"):
                yield Label("LAB CHAOS: drift a simulated host, then watch L1 heal it (esc)")
                yield OptionList(
                    *[Option(f"{si}/{h:<6} {f}", id=str(i)) for i, (si, h, f) in enumerate(choices)]
                )

        def on_mount(self) -> None:
            options = self.query_one(OptionList)
            options.highlighted = 0
            options.focus()

        def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
            self.dismiss(choices[int(event.option.id or 0)])

        def action_close(self) -> None:
            self.dismiss(None)

    class DemoApp(OsirisApp):
        TITLE = "Osiris — LAB DEMO (simulated clinic hosts)"
        BINDINGS = [Binding("x", "chaos", "Chaos (lab)", id="demo.chaos")]

        def on_mount(self) -> None:
            super().on_mount()
            self._reported: set[str] = set()
            self.set_interval(2.0, self._watch_children)
            self.notify("LAB DEMO: press x to inject drift into a simulated host", timeout=8)

        def _watch_children(self) -> None:
            for c in demo.children:
                if not c.alive() and c.name not in self._reported:
                    self._reported.add(c.name)
                    self.notify(f"{c.name} exited ({c.proc.returncode}); see {c.log}",
                                severity="error", timeout=30, markup=False)  # fmt: skip

        def run_command(self, word: str) -> None:
            if word == "chaos":
                self.action_chaos()
            else:
                super().run_command(word)

        def action_chaos(self) -> None:
            if self.mutation_allowed():
                self.push_screen(ChaosScreen(), self._chosen)

        def _chosen(self, choice: tuple[str, str, str] | None) -> None:
            if choice is not None:
                self.run_worker(lambda: self._inject(*choice), thread=True, group="chaos")

        def _inject(self, site: str, host: str, fault: str) -> None:
            what = f"chaos {fault} on {site}/{host}"
            try:
                out = demo.chaos(host, fault, site)
            except DemoError as e:
                self.call_from_thread(self.record, what, str(e), False)
                return
            drifting = ", ".join(out["drifting"]) or "nothing detectable"
            self.call_from_thread(self.record, what, f"drifting: {drifting}", True)
            self.call_from_thread(self.notify, f"{what}: {drifting}", markup=False)

    st = demo.state
    app = DemoApp(st.server_url, st.admin_token)
    demo.app = app  # type: ignore[attr-defined]
    app.run()
