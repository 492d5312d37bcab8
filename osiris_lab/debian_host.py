"""A real Debian 12 host with systemd as PID 1, reachable over SSH, for the Linux runbook tests.

Why: the Linux runbooks' production branches (real ``systemctl``, ``sshd -t``, ``ufw``,
``augenrules``) never run against the sandbox root; here they run on a real Debian bookworm
booted by ``systemd-nspawn`` (recipe: ``reference/limits.md`` §8). Two pieces:

* :class:`DebianRoot` — the root filesystem, debootstrapped ONCE into a cache directory named
  after the package list (built in a temp dir and renamed into place, under a lock file, so two
  sessions never build at once and nobody ever sees half a root);
* :class:`DebianHost` — one booted copy per test (or module): the cached root copied
  (``cp -a --reflink=auto``), fresh SSH host keys, an authorized key for root and for a sudo user,
  booted with ``--keep-unit --register=no --network-veth`` (this machine has no systemd or
  system D-Bus of its own), a private /30 on the veth pair, ready when sshd's banner answers and
  ``systemctl is-system-running`` is ``running`` or ``degraded``.

:meth:`DebianHost.exec` is the TEST's own view of the host (nsenter into the container's init),
never through the agent. :meth:`DebianHost.stop` kills only the nspawn process it started.
What is not namespaced (the kernel audit subsystem, the clock) cannot be tested here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITE = "bookworm"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "ufw", "auditd", "chrony", "sudo",
    "iproute2", "procps",
    # LIN-AV-001 (K3): the ClamAV daemon and its updater, as a clinic's Debian host has them
    "clamav", "clamav-daemon", "clamav-freshclam",
    # K2: the production branches of LIN-SVC-003 (rsyslog), LIN-MAC-001 (apparmor.service) and
    # LIN-PATCH-001 (unattended-upgrade), as Debian ships them
    "rsyslog", "apparmor", "unattended-upgrades",
)  # fmt: skip
DEFAULT_CACHE = Path("/var/cache/osiris-lab")
NSPAWN_RUN = Path("/run/systemd/nspawn")
SUDO_USER = "osiris"
_NET_LOCK = Path("/run/osiris-lab-net.lock")


class HostUnavailable(RuntimeError):
    """The real host cannot be built or booted here; ``step`` says which step failed."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"real Debian host unavailable at step {step!r}: {detail}")
        self.step = step
        self.detail = detail


def _run(step: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostUnavailable(step, f"{argv[0]}: {exc}") from exc
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        raise HostUnavailable(step, f"{' '.join(argv[:3])} exited {r.returncode}: {tail}")
    return r


def _need_tools(step: str, *tools: str) -> None:
    if os.geteuid() != 0:
        raise HostUnavailable(step, "must run as root (debootstrap, nspawn and ip need it)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise HostUnavailable(
            step, f"missing {', '.join(missing)}: apt-get install -y debootstrap systemd-container"
        )


@dataclass
class DebianRoot:
    """A cached, never-booted bookworm root filesystem (copied per host, never used itself)."""

    path: Path

    @staticmethod
    def key() -> str:
        return hashlib.sha256(f"{SUITE} {','.join(PACKAGES)}".encode()).hexdigest()[:12]

    @classmethod
    def ensure(cls, cache_dir: str | os.PathLike[str] | None = None) -> DebianRoot:
        """The cached root, debootstrapped first if it is not there yet (≈ 1 min, once)."""
        cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
        final = cache / f"{SUITE}-{cls.key()}"
        if cls._complete(final):
            return cls(final)
        _need_tools("debootstrap", "debootstrap")
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second session waits for the first's build
            if cls._complete(final):
                return cls(final)
            tmp = cache / f".build-{final.name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                _run(
                    "debootstrap",
                    ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                     SUITE, str(tmp)],
                    timeout=1800,
                )  # fmt: skip
                (tmp / ".osiris-root-complete").write_text(cls.key() + "\n")
                os.rename(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(final)

    @staticmethod
    def _complete(p: Path) -> bool:
        return (p / "usr/sbin/sshd").exists() and (p / "lib/systemd/systemd").exists()


def _ensure_nspawn_tmpfs() -> None:
    """nspawn wants /run/systemd/nspawn writable; on this machine /run/systemd is not ours."""
    NSPAWN_RUN.mkdir(parents=True, exist_ok=True)
    mounts = Path("/proc/mounts").read_text().split("\n")
    if not any(f" {NSPAWN_RUN} " in m for m in mounts):
        _run("mount /run/systemd/nspawn", ["mount", "-t", "tmpfs", "tmpfs", str(NSPAWN_RUN)])


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids]


def _ns_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except OSError:
        return None
    return None


def _used_subnets() -> set[str]:
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    used = set()
    for word in out.split():
        if word.startswith("10.213."):
            a, b, c, d = word.split("/")[0].split(".")
            used.add(f"{a}.{b}.{c}.{int(d) & ~3}")
    return used


@dataclass
class DebianHost:
    """One booted Debian container; ``address:port`` is its sshd on a private /30."""

    name: str
    root: Path
    address: str
    host_side: str
    port: int = 22
    init_pid: int = 0
    host_fingerprint: str = ""
    client_key: str = ""
    sudo_password: str = field(default="", repr=False)
    boot_seconds: float = 0.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: Any = field(default=None, repr=False)

    @classmethod
    def boot(
        cls, base: DebianRoot, work_dir: str | os.PathLike[str], name: str, timeout: float = 90
    ) -> DebianHost:
        """Copy the cached root, give it keys, boot it, address it; ready or HostUnavailable."""
        _need_tools("boot", "systemd-nspawn", "nsenter", "ip", "ssh-keygen")
        if len(name) > 11:
            raise HostUnavailable("boot", f"machine name {name!r} longer than 11 (veth names)")
        t0 = time.monotonic()
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        root = work / f"{name}-root"
        _run("copy root", ["cp", "-a", "--reflink=auto", str(base.path), str(root)])
        host = cls(name=name, root=root, address="", host_side="")
        try:
            host._provision(work)
            _ensure_nspawn_tmpfs()
            host._start(work)
            host._network()
            host._wait_ready(t0 + timeout)
        except BaseException:
            host.stop()
            raise
        host.boot_seconds = time.monotonic() - t0
        return host

    # -- boot steps ------------------------------------------------------------------------
    def _provision(self, work: Path) -> None:
        r = self.root
        for old in (r / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        _run("host keys", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
                           "-f", str(r / "etc/ssh/ssh_host_ed25519_key")])  # fmt: skip
        out = _run("host keys", ["ssh-keygen", "-lf", str(r / "etc/ssh/ssh_host_ed25519_key.pub"),
                                 "-E", "sha256"]).stdout  # fmt: skip
        self.host_fingerprint = out.split()[1]
        key = work / f"{self.name}-client"
        for old in (key, key.with_suffix(".pub")):
            old.unlink(missing_ok=True)
        _run("client key", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        self.client_key = key.read_text()
        pub = key.with_name(key.name + ".pub").read_text()
        self.sudo_password = os.urandom(12).hex()
        (r / "etc/hostname").write_text(self.name + "\n")
        _run("sudo user", ["chroot", str(r), "useradd", "-m", "-s", "/bin/bash", SUDO_USER])
        subprocess.run(
            ["chroot", str(r), "chpasswd"], input=f"{SUDO_USER}:{self.sudo_password}\n",
            text=True, check=True, capture_output=True,
        )  # fmt: skip
        (r / "etc/sudoers.d/osiris").write_text(f"{SUDO_USER} ALL=(ALL:ALL) ALL\n")
        (r / "etc/sudoers.d/osiris").chmod(0o440)
        for home, uid in ((r / "root", 0), (r / "home" / SUDO_USER, None)):
            ssh = home / ".ssh"
            ssh.mkdir(mode=0o700, exist_ok=True)
            (ssh / "authorized_keys").write_text(pub)
            (ssh / "authorized_keys").chmod(0o600)
            if uid is None:
                st = (r / "home" / SUDO_USER).stat()
                for p in (ssh, ssh / "authorized_keys"):
                    os.chown(p, st.st_uid, st.st_gid)

    def _start(self, work: Path) -> None:
        self._log = open(work / f"{self.name}-nspawn.log", "wb")  # noqa: SIM115 - closed in stop
        self._proc = subprocess.Popen(
            ["systemd-nspawn", "-D", str(self.root), "-b", "--keep-unit", "--register=no",
             "--network-veth", "--console=passive", "-M", self.name],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise HostUnavailable("nspawn", f"exited {self._proc.returncode}: {self._tail()}")
            init = self._find_init(self._proc.pid)
            if init and Path(f"/sys/class/net/ve-{self.name}").exists():
                self.init_pid = init
                return
            time.sleep(0.1)
        raise HostUnavailable("nspawn", f"no container init within 30 s: {self._tail()}")

    def _tail(self) -> str:
        try:
            return " | ".join(self.root.parent.joinpath(f"{self.name}-nspawn.log")
                              .read_text(errors="replace").splitlines()[-5:])  # fmt: skip
        except OSError:
            return ""

    @staticmethod
    def _find_init(pid: int) -> int | None:
        todo = _children(pid)
        while todo:
            p = todo.pop(0)
            if _ns_pid(p) == 1 and p != pid:
                return p
            todo.extend(_children(p))
        return None

    def _network(self) -> None:
        veth = f"ve-{self.name}"
        _NET_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(_NET_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions never pick the same /30
            used = _used_subnets()
            net = next(
                f"10.213.{i // 64}.{(i % 64) * 4}"
                for i in range(4, 64 * 256)
                if f"10.213.{i // 64}.{(i % 64) * 4}" not in used
            )
            a, b, c, d = net.split(".")
            self.host_side = f"{a}.{b}.{c}.{int(d) + 1}"
            self.address = f"{a}.{b}.{c}.{int(d) + 2}"
            _run("network", ["ip", "addr", "add", f"{self.host_side}/30", "dev", veth])
        _run("network", ["ip", "link", "set", veth, "up"])
        ns = ["nsenter", "-t", str(self.init_pid), "-n"]
        _run("network", [*ns, "ip", "addr", "add", f"{self.address}/30", "dev", "host0"])
        _run("network", [*ns, "ip", "link", "set", "host0", "up"])

    def _wait_ready(self, deadline: float) -> None:
        banner = ""
        state = ""
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise HostUnavailable("boot", f"nspawn exited {self._proc.returncode}")
            if not banner.startswith("SSH-2.0-"):
                banner = self.banner()
            if banner.startswith("SSH-2.0-"):
                state = self.exec("systemctl is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.2)
        raise HostUnavailable("boot", f"not ready: banner={banner!r} system={state!r}")

    # -- the test's own view ---------------------------------------------------------------
    def banner(self, timeout: float = 1.0, port: int | None = None) -> str:
        """sshd's identification line, or '' (how a network peer sees the host)."""
        try:
            with socket.create_connection((self.address, port or self.port), timeout=timeout) as s:
                return s.recv(256).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def wait_banner(self, port: int | None = None, timeout: float = 10.0) -> str:
        """The banner once a listener answers on ``port`` (sshd daemonises BEFORE it listens, and
        a reload's re-exec leaves a moment with nothing listening), or '' after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.banner(port=port)
            if b or time.monotonic() > deadline:
                return b
            time.sleep(0.1)

    def exec(self, cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c cmd`` inside the container (all its namespaces), not through the agent."""
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "/bin/sh", "-c", cmd],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )  # fmt: skip

    def target(self, host_id: str = "deb-1", *, sudo_user: bool = False) -> Any:
        """The agent's SSH target for this host: root by key, or (``sudo_user``) the sudo user
        by key with its sudo password as the become password — the credential a clinic gives
        when root may not log in (what LIN-SSH-001 heals to)."""
        from osiris_agent.hosts.base import Target

        return Target(
            host_id=host_id, kind="ssh", address=self.address, port=self.port,
            username=SUDO_USER if sudo_user else "root", private_key=self.client_key,
            become_password=self.sudo_password if sudo_user else None,
            host_key_fingerprints=(self.host_fingerprint,), sudo=sudo_user,
        )  # fmt: skip

    def stop(self) -> None:
        """Kill the nspawn process this object started (never by name); remove the copy."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)  # nspawn: orderly poweroff of the guest
                try:
                    self._proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        veth = f"ve-{self.name}"
        if Path(f"/sys/class/net/{veth}").exists():
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
