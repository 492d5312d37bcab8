"""`osiris demo`: the whole system on this machine, on 127.0.0.1, in one command.

A DEMO, clearly labelled: the clinic hosts are LAB SIMULATORS (this package, ``osiris_lab``),
the time source is a lab SNTP responder, and nothing in a production code path depends on this
module: ``osiris demo`` (``osiris_tui/cli/demo.py``) imports it lazily, inside the command, and
that is the one production import of ``osiris_lab`` that ``tests/test_layering.py`` allows.

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

Beside this module: ``demo_state`` (DATA/demo.json and ``DemoError``), ``demo_children`` (one
child process), ``demo_summary`` (the headless summary, read-only) and ``demo_console`` (the
interactive console with its chaos key).

Why this file is long: what is left is one job, the orchestration. ``Demo`` brings the parts up
in a fixed order (server, seed, farm, credentials, enrolment, agents), each step reading what the
previous one recorded in the one ``DemoState``, and tears them down in reverse whatever failed;
split by step, every piece would pass the same state around and the order — the thing a reader
needs to see — would be spread over files.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from osiris_tui.client import Client, ClientError

from .demo_children import Child, free_port, port_free, python_cmd
from .demo_console import run_console
from .demo_state import MARKER, DemoError, DemoState, Options, write_secret
from .demo_summary import all_evidence, build_summary, render_summary

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
WATCHDOG_TICK_S = 5  # the demo server's watchdog looks every 5 s (production: 30 s)
ALERT_TO = "noc@lakeside-msp.example"
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


def say(msg: str, *, end: str = "\n") -> None:
    """Progress on stderr (stdout carries only the summary)."""
    sys.stderr.write(msg + end)
    sys.stderr.flush()


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
            self.say_watchdog()
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
                python_cmd("osiris_server.cli", "init", "--data", str(sdir), "--json"),
            )
            try:
                self.state.admin_token = json.loads(out)["admin_token"]
            except (ValueError, KeyError):
                raise DemoError("osiris-server init printed no admin token") from None
            say("ok")
            self.configure_alerts(sdir / "server.toml")
        port = self.opts.port
        if port and not port_free(port):
            raise DemoError(f"port 127.0.0.1:{port} is taken; choose another --port or omit it")
        port = port or free_port()
        say("starting server… ", end="")
        child = self.spawn(
            "server",
            python_cmd(
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

    def configure_alerts(self, toml_path: Path) -> None:
        """Lab settings in server.toml: a short watchdog tick and, with --smtp, the SMTP sink
        alerts go to (plain SMTP on loopback; a real deployment uses STARTTLS)."""
        lines = toml_path.read_text(encoding="utf-8").splitlines()
        at = next((i for i, ln in enumerate(lines) if ln.startswith("[")), len(lines))
        lines.insert(at, f"watchdog_tick_s = {WATCHDOG_TICK_S}  # osiris demo (LAB)")
        if self.opts.smtp:
            host, _, port = self.opts.smtp.rpartition(":")
            lines += ["", "[smtp]  # osiris demo (LAB): a local sink", f'host = "{host}"',
                      f"port = {int(port)}", "starttls = false", f'recipients = ["{ALERT_TO}"]',
                      'sender = "osiris-demo@localhost"', "timeout = 5"]  # fmt: skip
        toml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def say_watchdog(self) -> None:
        """Where a silent appliance's alert goes (issue 16: stop an agent and watch it arrive)."""
        after = 3 * CHECKIN_S
        if self.opts.smtp:
            say(f"watchdog: an agent silent for {after} s raises appliance_silent (critical), "
                f"mailed to {ALERT_TO} via SMTP {self.opts.smtp}")  # fmt: skip
        else:
            say(f"watchdog: an agent silent for {after} s raises appliance_silent (critical); "
                "no SMTP sink (--smtp HOST:PORT mails it)")  # fmt: skip

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
        write_secret(spec_file, json.dumps(spec, indent=2))
        self.spawn("farm", python_cmd("osiris_lab.farm", "--spec", str(spec_file)))
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
                python_cmd("osiris_agent.cli", "enroll", "--server", self.state.server_url,
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
        write_secret(path, dump_toml(doc))
        return path

    def start_agents(self) -> None:
        for sid in self.state.sites:
            cfg = self.write_agent_config(sid)
            say(f"starting agent {sid}… ", end="")
            # The real agent: `osiris-agent run`, scanning every SCAN_S s (agent.scan_interval_s).
            cmd = python_cmd("osiris_agent.cli", "run", "--config", str(cfg))
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
                rows = all_evidence(c, site)
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
                    python_cmd("osiris_agent.cli", "outbox", "flush", "--state", sd),
                )
            st = json.loads(
                self.run_tool(
                    f"osiris-agent status ({sid})",
                    python_cmd("osiris_agent.cli", "status", "--state", sd, "--json"),
                )
            )
            agents[sid] = {"seq": st["chain_head"]["seq"], "queued": st["queue_depth"]}
            # what the clinic hands its auditor: the appliance's own attestation
            att = self.data / "attestations" / f"{sid}.json"
            att.parent.mkdir(parents=True, exist_ok=True)
            self.run_tool(
                f"osiris-agent attest ({sid})",
                python_cmd("osiris_agent.cli", "attest", "--state", sd, "--out", str(att)),
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
