"""LAB ONLY — a real RFC 3161 time-stamp authority built from ``openssl ts``, on loopback.

Tests and ``osiris demo`` need a TSA whose replies are what a public one sends (DER
TimeStampResp, ESS signing-certificate attribute, a cert with a *critical* timeStamping EKU),
without the network. ``LabTsa(dir).start()`` makes a throwaway CA and a TSA certificate it
signs (with ``openssl req``/``x509``), writes a ``tsa.cnf`` and serves POST
``application/timestamp-query`` → ``application/timestamp-reply`` by running
``openssl ts -reply`` for each query (the signing itself is openssl's, not ours). A second
``LabTsa`` in another folder has another CA: the wrong-TSA case. ``ca_pem`` is what an auditor
pins (``--tsa-ca``) and what the server's ``[tsa] ca_file`` names. ``stop()`` ends only our
HTTP thread; ``down()`` keeps the port but answers 503, as a TSA outage would.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_QUERY = 64 * 1024
TSA_CNF = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1.1
other_policies = 1.3.6.1.4.1.55555.1.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
TSA_EXT = """\
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def available() -> bool:
    return shutil.which("openssl") is not None


def _run(args: list[str], cwd: Path, data: bytes | None = None) -> bytes:
    p = subprocess.run(args, cwd=cwd, input=data, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])}: {p.stderr.decode(errors='replace')[-400:]}")
    return p.stdout


def make_tsa_pki(root: Path, name: str = "Osiris Lab TSA", eku: bool = True) -> None:
    """CA + TSA key/cert in ``root`` (ca.key, ca.crt, tsa.key, tsa.crt, serial, tsa.cnf).
    ``eku=False`` gives a TSA cert without the timeStamping EKU (a cert that must be refused)."""
    root.mkdir(parents=True, exist_ok=True)
    o = "openssl"
    _run([o, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", f"/CN={name} CA",
          "-addext", "basicConstraints=critical,CA:true",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], root)  # fmt: skip
    _run([o, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name}"], root)  # fmt: skip
    ext = TSA_EXT if eku else TSA_EXT.replace("extendedKeyUsage = critical, timeStamping\n", "")
    (root / "tsa.ext").write_text(ext)
    _run([o, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
          "-CAcreateserial", "-days", "3650", "-extfile", "tsa.ext",
          "-out", "tsa.crt"], root)  # fmt: skip
    (root / "serial").write_text("01\n")
    (root / "tsa.cnf").write_text(TSA_CNF.format(dir=root))


class LabTsa:
    """One lab TSA: its PKI in ``root`` and an HTTP endpoint on 127.0.0.1 (``url``)."""

    def __init__(self, root: Path, name: str = "Osiris Lab TSA", *, eku: bool = True) -> None:
        self.root = Path(root).resolve()  # tsa.cnf names it; openssl runs inside it
        self.name = name
        self.eku = eku
        self._httpd: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()  # openssl ts -reply rewrites the serial file
        self.is_down = False
        self.requests = 0

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/tsr"

    def start(self) -> LabTsa:
        if not (self.root / "tsa.cnf").exists():
            make_tsa_pki(self.root, self.name, self.eku)
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:  # quiet: tests read their own output
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                n = int(self.headers.get("Content-Length") or 0)
                ctype = self.headers.get("Content-Type", "")
                if tsa.is_down:
                    return self._send(503, b"lab TSA is down", "text/plain")
                if ctype != "application/timestamp-query" or not 0 < n <= MAX_QUERY:
                    return self._send(400, b"want application/timestamp-query", "text/plain")
                try:
                    reply = tsa.reply(self.rfile.read(n))
                except RuntimeError as e:
                    return self._send(500, str(e).encode(), "text/plain")
                self._send(200, reply, "application/timestamp-reply")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def reply(self, query: bytes) -> bytes:
        """``openssl ts -reply`` over one DER TimeStampReq (the query file is our temp file)."""
        with self._lock:
            self.requests += 1
            q = self.root / "query.tsq"
            q.write_bytes(query)
            return _run(
                ["openssl", "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "query.tsq",
                 "-out", "-"], self.root)  # fmt: skip

    def down(self, is_down: bool = True) -> None:
        """Answer 503 to every query (an outage) until ``down(False)``."""
        self.is_down = is_down

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LabTsa:
        return self.start()

    def __exit__(self, *_a: object) -> None:
        self.stop()
