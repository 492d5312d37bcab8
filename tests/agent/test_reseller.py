"""Reseller mode with real receivers on loopback: UDP syslog, TCP syslog, signed webhook."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from osiris_agent.reseller import ResellerSink
from osiris_core.evidence import new_bundle, sign_bundle
from osiris_core.keys import Signer, Verifier

SYSLOG_RE = re.compile(r"<(\d+)>1 \S+Z \S+ osiris-agent \S+ evidence \[osiris@32473 (.*?)\] (.*)")


def _envelope(signer: Signer, outcome: str = "alert") -> dict:
    b = new_bundle(seq=1, prev_hash="sha256:" + "0" * 64, site_id="s1", appliance_id="a1",
                   host_id="dc01", check="timesync", outcome=outcome,
                   deployment_mode="reseller", reseller_id="rs-1")  # fmt: skip
    return sign_bundle(b, signer)


def test_syslog_udp_and_tcp_and_signed_webhook() -> None:
    signer = Signer.generate("osiris/appliance/a1")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    got: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a):  # noqa: ANN002
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.handle_request, daemon=True).start()
    try:
        env = _envelope(signer)
        ResellerSink(signer, f"udp://127.0.0.1:{udp.getsockname()[1]}").emit(env)
        data, _ = udp.recvfrom(4096)
        m = SYSLOG_RE.fullmatch(data.decode())
        assert m, data
        assert int(m.group(1)) == 16 * 8 + 4  # local0.warning for an alert
        assert 'check="timesync"' in m.group(2) and 'outcome="alert"' in m.group(2)

        sink = ResellerSink(signer, f"tcp://127.0.0.1:{tcp.getsockname()[1]}",
                            f"http://127.0.0.1:{hook.server_address[1]}/hook")  # fmt: skip
        t = threading.Thread(target=sink.emit, args=(env,))
        t.start()
        conn, _ = tcp.accept()
        conn.settimeout(5)
        buf = b""
        while b" " not in buf or len(buf.split(b" ", 1)[1]) < int(buf.split(b" ", 1)[0]):
            chunk = conn.recv(4096)
            if not chunk:
                break
            buf += chunk
        conn.close()
        t.join(10)
        n, msg = buf.split(b" ", 1)
        assert int(n) == len(msg) and SYSLOG_RE.fullmatch(msg.decode())  # RFC 6587 framing
        headers, body = got[0]
        sig = base64.b64decode(headers["X-Osiris-Signature"].removeprefix("ed25519="))
        assert Verifier.from_vkey(signer.vkey).verify(body, sig)
        assert not Verifier.from_vkey(signer.vkey).verify(body + b" ", sig)
        ev = json.loads(body)
        assert ev["outcome"] == "alert" and ev["reseller_id"] == "rs-1"
        assert sink.errors == 0
    finally:
        udp.close()
        tcp.close()
        hook.server_close()


def test_dead_receiver_never_raises() -> None:
    signer = Signer.generate("osiris/appliance/a1")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    sink = ResellerSink(signer, f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{port}/x")
    sink.emit(_envelope(signer, "compliant"))
    assert sink.errors == 2
