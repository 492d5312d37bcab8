"""LAB ONLY — a sandboxed Linux host for the LIN-* runbooks, reached over a real sshd.

Never used outside lab mode: only ``osiris_lab``, the tests and the demo import it.

The Linux runbooks read every file through ``osiris_path`` (``$OSIRIS_ROOT`` + path), so a
sandbox directory stands in for ``/``: :class:`LinuxSandbox` builds a compliant one
(``etc/ssh/sshd_config``, ``etc/shadow``, ``etc/passwd``, ``etc/login.defs``, audit rules …) and
drifts it on demand (:meth:`LinuxSandbox.drift`). Hosts without systemd get a **labelled
stand-in** ``systemctl`` on the target's PATH (``<root>/bin/systemctl``) that keeps unit state in
``<root>/var/lib/lab-systemd`` — it is not systemd and says so in its first lines.

The catalogue offers no parameter for the root: ``OSIRIS_ROOT`` is an environment variable read
by ``lib/osiris.sh``. Over SSH the agent cannot set it (nor should it), so :class:`LabSshd`
starts a private OpenSSH server on 127.0.0.1 whose ``SetEnv`` gives every session
``OSIRIS_ROOT=<sandbox>`` and a PATH with the stand-in first. The agent's real ``SshTransport``
then talks to it exactly as to a clinic server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

SYSTEMCTL_STANDIN = r"""#!/bin/bash
# LAB STAND-IN for systemctl (Osiris lab, osiris_lab/linux.py) -- NOT systemd.
# Unit state lives in $OSIRIS_ROOT/var/lib/lab-systemd/<unit>.{active,enabled}.
# A file $OSIRIS_ROOT/var/lib/lab-systemd/fail-<verb> makes that verb fail (fault injection).
set -u
dir="${OSIRIS_ROOT:?lab systemctl needs OSIRIS_ROOT}/var/lib/lab-systemd"
mkdir -p "$dir"
quiet=0; now=0; args=()
for a in "$@"; do
  case "$a" in
    --quiet | -q) quiet=1 ;;
    --now) now=1 ;;
    --*) ;;
    *) args+=("$a") ;;
  esac
done
verb=${args[0]:-}
unit=${args[1]:-}
unit=${unit%.service}
echo "$verb $unit" >>"$dir/calls.log"
if [ -e "$dir/fail-$verb" ]; then
  echo "Failed to $verb $unit.service: lab fault injected" >&2
  exit 1
fi
known() { [ -e "$dir/$unit.known" ]; }
case "$verb" in
  is-active)
    if [ -e "$dir/$unit.active" ]; then [ "$quiet" = 1 ] || echo active; exit 0; fi
    [ "$quiet" = 1 ] || echo inactive; exit 3 ;;
  is-enabled)
    if [ -e "$dir/$unit.enabled" ]; then echo enabled; exit 0; fi
    echo disabled; exit 1 ;;
  start | restart)
    known || { echo "Unit $unit.service not found." >&2; exit 5; }
    touch "$dir/$unit.active" ;;
  stop) rm -f "$dir/$unit.active" ;;
  reload)
    [ -e "$dir/$unit.active" ] || { echo "Unit $unit.service not active." >&2; exit 1; } ;;
  enable)
    known || { echo "Unit $unit.service not found." >&2; exit 5; }
    touch "$dir/$unit.enabled"; [ "$now" = 1 ] && touch "$dir/$unit.active" ;;
  disable)
    rm -f "$dir/$unit.enabled"; [ "$now" = 1 ] && rm -f "$dir/$unit.active" ;;
  *) echo "lab systemctl: unsupported verb $verb" >&2; exit 2 ;;
esac
exit 0
"""

SSHD_CONFIG = """\
# compliant baseline (lab sandbox)
Include /etc/ssh/sshd_config.d/*.conf
PermitRootLogin no
PasswordAuthentication no
MaxAuthTries 3
X11Forwarding no
"""

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
frontdesk:x:1000:1000:Front Desk:/home/frontdesk:/bin/bash
"""

UNITS = ("ssh", "auditd", "rsyslog", "ufw", "apparmor", "clamav-daemon", "telnet.socket")
ACTIVE = ("ssh", "auditd", "rsyslog", "ufw", "apparmor", "clamav-daemon")

DRIFTS = (
    "root_login",
    "password_auth",
    "max_auth_tries",
    "root_login_dropin",
    "shadow_perms",
    "sshd_config_perms",
    "world_writable",
    "uid0",
    "pass_max_days",
    "audit_rules_gone",
    "telnet_on",
    "service_stopped:<unit>",
    "fail_verb:<verb>",
)


class LinuxSandbox:
    """A compliant Linux filesystem under ``root`` plus the systemctl stand-in."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def build(self) -> LinuxSandbox:
        """(Re)create a compliant sandbox; existing content is removed first."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)
        files: dict[str, tuple[str, int]] = {
            "etc/ssh/sshd_config": (SSHD_CONFIG, 0o600),
            "etc/passwd": (PASSWD, 0o644),
            "etc/group": ("root:x:0:\nfrontdesk:x:1000:\n", 0o644),
            "etc/shadow": ("root:*:19800:0:99999:7:::\nfrontdesk:!:19800:0:90:7:::\n", 0o640),
            "etc/gshadow": ("root:*::\n", 0o640),
            "etc/login.defs": ("UMASK 022\nPASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\n", 0o644),
            "etc/hosts": ("127.0.0.1 localhost\n", 0o644),
            "etc/audit/rules.d/identity.rules": (
                "".join(
                    f"-w {f} -p wa -k identity\n"
                    for f in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")
                ),
                0o640,
            ),
            "etc/audit/rules.d/authlog.rules": ("-w /var/log/auth.log -p wa -k authlog\n", 0o640),
            "sys/module/apparmor/parameters/enabled": ("Y\n", 0o644),
            "var/log/auth.log": ("", 0o640),
            "bin/systemctl": (SYSTEMCTL_STANDIN, 0o755),
        }
        for rel, (text, mode) in files.items():
            f = self.p(rel)
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
            f.chmod(mode)
        self.p("etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
        units = self.p("var/lib/lab-systemd")
        units.mkdir(parents=True, exist_ok=True)
        for u in UNITS:
            (units / f"{u}.known").touch()
        for u in ACTIVE:
            (units / f"{u}.active").touch()
            (units / f"{u}.enabled").touch()
        return self

    def env(self) -> dict[str, str]:
        """Environment a local run needs to see this sandbox (``OSIRIS_ROOT`` + PATH)."""
        return {"OSIRIS_ROOT": str(self.root), "PATH": f"{self.root / 'bin'}:/usr/bin:/bin"}

    def unit_active(self, unit: str) -> bool:
        return self.p(f"var/lib/lab-systemd/{unit}.active").exists()

    def systemctl_calls(self) -> list[str]:
        log = self.p("var/lib/lab-systemd/calls.log")
        return log.read_text().splitlines() if log.exists() else []

    def mode(self, rel: str) -> int:
        return self.p(rel).stat().st_mode & 0o7777

    def drift(self, name: str) -> None:
        """Make one runbook drift; names in :data:`DRIFTS`."""
        cfg = self.p("etc/ssh/sshd_config")
        if name == "root_login":
            cfg.write_text(cfg.read_text().replace("PermitRootLogin no", "PermitRootLogin yes"))
        elif name == "root_login_dropin":
            d = self.p("etc/ssh/sshd_config.d/50-cloud.conf")
            d.write_text("PermitRootLogin yes\n")
        elif name == "password_auth":
            cfg.write_text(
                cfg.read_text().replace("PasswordAuthentication no", "PasswordAuthentication yes")
            )
        elif name == "max_auth_tries":
            cfg.write_text(cfg.read_text().replace("MaxAuthTries 3", "MaxAuthTries 10"))
        elif name == "shadow_perms":
            self.p("etc/shadow").chmod(0o644)
        elif name == "sshd_config_perms":
            cfg.chmod(0o644)
        elif name == "world_writable":
            self.p("etc/hosts").chmod(0o666)
        elif name == "uid0":
            with self.p("etc/passwd").open("a") as fh:
                fh.write("toor:x:0:0::/root:/bin/bash\n")
        elif name == "pass_max_days":
            f = self.p("etc/login.defs")
            f.write_text(f.read_text().replace("PASS_MAX_DAYS 90", "PASS_MAX_DAYS 99999"))
        elif name == "audit_rules_gone":
            for f in self.p("etc/audit/rules.d").glob("*.rules"):
                f.unlink()
        elif name == "telnet_on":
            self.p("var/lib/lab-systemd/telnet.socket.active").touch()
        elif name.startswith("service_stopped:"):
            self.p(f"var/lib/lab-systemd/{name.split(':', 1)[1]}.active").unlink(missing_ok=True)
        elif name.startswith("fail_verb:"):
            self.p(f"var/lib/lab-systemd/fail-{name.split(':', 1)[1]}").touch()
        else:
            raise KeyError(f"unknown sandbox drift {name!r}; known: {', '.join(DRIFTS)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabSshd:
    """A private OpenSSH server on 127.0.0.1 whose sessions see the sandbox (lab/tests only)."""

    SSHD = "/usr/sbin/sshd"

    def __init__(self, workdir: str | os.PathLike[str], sandbox: LinuxSandbox) -> None:
        self.dir = Path(workdir)
        self.sandbox = sandbox
        self.port = 0
        self.host_fingerprint = ""
        self.client_key = ""
        self.user = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @classmethod
    def available(cls) -> bool:
        return os.path.exists(cls.SSHD) and shutil.which("ssh-keygen") is not None

    def _keygen(self, name: str) -> None:
        """A fresh key pair at ``name`` (0600, as ssh-keygen writes it), replacing an old one.

        Why fresh on every start: a kept data dir (``osiris demo --keep``) already holds last
        run's keys, and ``ssh-keygen -f`` on an existing file asks "Overwrite (y/n)?", which
        with no terminal is a failure. Regenerating costs milliseconds, and the demo re-sends
        the credential (new port, new pinned host key) on every start anyway.
        """
        key = self.dir / name
        for old in (key, key.with_name(name + ".pub")):
            old.unlink(missing_ok=True)
        r = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "osiris-lab", "-f", str(key)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"ssh-keygen failed for {key}: {r.stderr.strip() or r.returncode}")

    def start(self) -> LabSshd:
        import getpass

        self.dir.mkdir(parents=True, exist_ok=True)
        self._keygen("host_key")
        self._keygen("client_key")
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        self.port = _free_port()
        env = self.sandbox.env()
        cfg = self.dir / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host_key'}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f'SetEnv OSIRIS_ROOT={env["OSIRIS_ROOT"]} "PATH={env["PATH"]}"\n'
        )
        os.makedirs("/run/sshd", exist_ok=True)
        check = subprocess.run([self.SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects the lab config: {check.stderr.strip()}")
        self._log = open(self.dir / "sshd.log", "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [self.SSHD, "-D", "-e", "-f", str(cfg)], stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("lab sshd did not start") from None
                time.sleep(0.01)
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(self.dir / "host_key.pub"), "-E", "sha256"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        self.host_fingerprint = out.split()[1]
        self.client_key = (self.dir / "client_key").read_text()
        self.user = getpass.getuser()
        return self

    def target(self, host_id: str = "lin-1") -> Any:
        from osiris_agent.hosts.base import Target

        return Target(
            host_id=host_id,
            kind="ssh",
            address="127.0.0.1",
            port=self.port,
            username=self.user,
            private_key=self.client_key,
            host_key_fingerprints=(self.host_fingerprint,),
        )

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LabSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
