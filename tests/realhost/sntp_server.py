"""A minimal NTP server (RFC 5905 server mode) on the test's own veth address, for chrony.

Why: the real Debian host has no route to a public time source, and LIN-TIME-001 must be proven
against a chronyd that really synchronises. This answers each client request (mode 3) with a
server reply (mode 4, stratum 2) stamped from this machine's clock — the clock the container
shares with us, so the offset chronyd measures is the real one between two reads of one kernel
clock (≈ 0). What it is not: a time source a clinic would use (no upstream, no authentication).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

NTP_EPOCH = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def _ts(t: float) -> bytes:
    secs = int(t) + NTP_EPOCH
    return struct.pack("!II", secs & 0xFFFFFFFF, int((t % 1) * 2**32) & 0xFFFFFFFF)


class SntpServer:
    """``SntpServer(address).start()`` serves until ``stop()``; ``requests`` counts answers;
    ``offset`` (seconds) makes it a source that far off our clock."""

    def __init__(self, address: str, port: int = 123) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.settimeout(0.2)
        self.requests = 0
        self.offset = 0.0  # seconds added to every timestamp: a source that is this far off
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> SntpServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            received = time.time() + self.offset
            if len(data) < 48 or data[0] & 0x7 != 3:  # only client requests
                continue
            version = (data[0] >> 3) & 0x7
            head = struct.pack("!BBbb", (version << 3) | 4, 2, 6, -20)  # LI 0, mode 4, stratum 2
            head += struct.pack("!II", 1 << 8, 1 << 8)  # root delay, dispersion: ~4 ms
            head += b"LAB\x00"  # reference id
            sent = time.time() + self.offset
            reply = head + _ts(received - 8) + data[40:48] + _ts(received) + _ts(sent)
            self.sock.sendto(reply, peer)
            self.requests += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
