"""LAB ONLY — a throwaway MIT Kerberos KDC for one test realm, so a WinRM Kerberos login is
proven against a real KDC (``krb5kdc`` from Debian's krb5-kdc) rather than assumed.

``LabKdc(dir).start()`` creates realm ``OSIRIS.TEST`` in ``dir`` (database, stash, ``kdc.conf``,
``krb5.conf`` with a random loopback port), adds a user principal with a password and a service
principal ``HTTP/<host>`` whose key goes to a keytab (what the lab WS-Man server accepts
Negotiate with), and runs ``krb5kdc -n`` as our child; ``stop()`` ends only that child.
:meth:`env` is what a client process (or this one) sets to use the realm: ``KRB5_CONFIG`` and a
private ``KRB5CCNAME``; :meth:`kinit` gets a ticket with the password on stdin.
(``kadmin.local addprinc -pw`` puts the lab user's password on that one command line: a random
password of a throwaway test realm.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

REALM = "OSIRIS.TEST"


def available() -> bool:
    return all(shutil.which(t) for t in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabKdc:
    def __init__(self, root: Path, *, service_host: str = "localhost") -> None:
        self.root = root
        self.service_host = service_host
        self.port = _free_port()
        self.krb5_conf = root / "krb5.conf"
        self.kdc_conf = root / "kdc.conf"
        self.keytab = root / "http.keytab"
        self.ccache = root / "ccache"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def service(self) -> str:
        return f"HTTP/{self.service_host}@{REALM}"

    def env(self) -> dict[str, str]:
        return {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            "KRB5CCNAME": f"FILE:{self.ccache}",
            "KRB5_KTNAME": f"FILE:{self.keytab}",
        }

    def _run(self, *argv: str, stdin: str | None = None) -> None:
        env = {**os.environ, **self.env()}
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {r.stderr.strip()[-300:]}")

    def start(self, user: str, password: str) -> LabKdc:
        self.root.mkdir(parents=True, exist_ok=True)
        db = self.root / "principal"
        self.kdc_conf.write_text(
            f"[kdcdefaults]\n kdc_ports = {self.port}\n kdc_tcp_ports = {self.port}\n"
            f"[realms]\n {REALM} = {{\n  database_name = {db}\n"
            f"  key_stash_file = {self.root / 'stash'}\n  acl_file = {self.root / 'kadm5.acl'}\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal\n }\n"
        )
        self.krb5_conf.write_text(
            f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n"
            " udp_preference_limit = 1\n"
            f"[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
            f"[domain_realm]\n {self.service_host} = {REALM}\n"
        )
        master = os.urandom(16).hex()
        self._run("kdb5_util", "create", "-s", "-r", REALM, stdin=f"{master}\n{master}\n")
        self._run("kadmin.local", "-r", REALM, "-q", f"addprinc -pw {password} {user}")
        self._run("kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {self.service}")
        self._run("kadmin.local", "-r", REALM, "-q", f"ktadd -k {self.keytab} {self.service}")
        env = {**os.environ, **self.env()}
        log = open(self.root / "kdc.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(["krb5kdc", "-n", "-r", REALM], env=env, stdout=log,
                                     stderr=log)  # fmt: skip
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"krb5kdc did not start: {(self.root / 'kdc.log').read_text()[-300:]}")

    def kinit(self, user: str, password: str) -> None:
        self._run("kinit", user, stdin=password + "\n")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
