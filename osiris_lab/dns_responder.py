"""A real UDP DNS responder on loopback for tests: answers, NXDOMAIN, SERVFAIL or silence.

Why: the egress refresh must be proven against a real resolver on the wire (and a second,
unconfigured one must prove it is never asked), not against a patched dnspython.
"""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsResponder:
    """``records``: name -> list of addresses, or one of "NXDOMAIN", "SERVFAIL", "SILENT".
    ``queries`` lists every (name, type) asked, so a test can prove who was asked what."""

    def __init__(self, records: dict[str, list[str] | str] | None = None) -> None:
        self.records: dict[str, list[str] | str] = dict(records or {})
        self.queries: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DnsResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - garbage on the wire: ignore it
                continue
            reply = self._answer(q)
            if reply is not None:
                self.sock.sendto(reply.to_wire(max_size=65535), peer)

    def _answer(self, q: dns.message.Message) -> dns.message.Message | None:
        question = q.question[0]
        name = question.name.to_text(omit_final_dot=True)
        rtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rtype))
        rec = self.records.get(name, "NXDOMAIN")
        r = dns.message.make_response(q)
        if rec == "SILENT":
            return None
        if rec == "NXDOMAIN":
            r.set_rcode(dns.rcode.NXDOMAIN)
            return r
        if rec == "SERVFAIL":
            r.set_rcode(dns.rcode.SERVFAIL)
            return r
        want = [a for a in rec if (":" in a) == (rtype == "AAAA")]
        if want and rtype in ("A", "AAAA"):
            r.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rtype, want))
        return r
