"""A small SNTP client (RFC 5905 §8, RFC 4330) for clock sanity before signing evidence.

Why the agent asks NTP servers itself instead of trusting the system clock: every evidence
bundle carries ``started_at``/``finished_at`` and a ``clock`` verdict; an auditor must be able
to tell whether those times were true when the bundle was signed. So each cycle the agent
measures its offset against several servers and records the verdict beside the evidence.

What an earlier implementation got wrong, and this module does not (lessons.md D, runbooks §4):

* the offset was ``t3 - t4`` (no receive stamp, no half round-trip correction), so every
  millisecond of network latency showed up as clock error. Here
  ``offset = ((t2 - t1) + (t3 - t4)) / 2`` and ``delay = (t4 - t1) - (t3 - t2)``;
* replies were not checked at all. Here a reply must be a server-mode packet (mode 4) of
  version 3 or 4, from the address we asked, echoing our transmit timestamp as its originate
  timestamp (an off-path spoofer cannot know it), with stratum 1..15 (0 is a kiss-o'-death),
  a leap indicator other than 3 (unsynchronised) and a non-zero transmit timestamp.

Everything reported is an integer number of milliseconds: evidence is canonical JSON, which has
no floats (DESIGN §3.1).
"""

from __future__ import annotations

import os
import socket
import statistics
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

#: Seconds between the NTP era-0 epoch (1900-01-01) and the Unix epoch (1970-01-01).
NTP_UNIX_DELTA = 2_208_988_800
PACKET_LEN = 48
_NS = 1_000_000_000
#: Low bits of our transmit timestamp that we randomise: 2**20 / 2**32 s ≈ 0.24 ms. The real t1
#: is kept locally, so this costs no accuracy and makes the echoed value harder to guess.
_RANDOM_BITS = 20


@dataclass
class NtpSample:
    """One server's answer (or why there was none). ``ok`` is False whenever ``error`` is set."""

    server: str
    offset_ms: int
    delay_ms: int
    stratum: int
    ok: bool
    error: str | None = None


@dataclass
class ClockVerdict:
    """The clock check as recorded beside evidence: median offset over the good samples."""

    ok: bool
    offset_ms: int | None
    max_skew_ms: int
    samples: list[NtpSample] = field(default_factory=list)
    source: str = "sntp:none"
    reason: str = ""

    def to_evidence(self) -> dict:
        """The ``clock`` field of an evidence bundle: integers and strings only."""
        return {"ntp_ok": bool(self.ok), "offset_ms": self.offset_ms, "source": self.source}


class _Bogus(Exception):
    """A datagram that is not an answer to our request; keep waiting for the real one."""


class _Rejected(Exception):
    """An authentic answer (our originate echoed) that says the server's time is unusable."""


def split_server(server: str, port: int = 123) -> tuple[str, int]:
    """``"host"``, ``"host:port"``, ``"[v6]"`` or ``"[v6]:port"`` -> (host, port)."""
    s = server.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        if rest.startswith(":"):
            return host, _port(rest[1:], server)
        if rest:
            raise ValueError(f"bad NTP server {server!r}")
        return host, port
    if s.count(":") == 1:
        host, _, p = s.partition(":")
        return host, _port(p, server)
    if not s:
        raise ValueError("empty NTP server name")
    return s, port


def _port(text: str, server: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in NTP server {server!r}")
    return int(text)


def ntp_to_ns(ts: int) -> int:
    """A 64-bit NTP timestamp (era 0) -> Unix time in integer nanoseconds."""
    secs, frac = ts >> 32, ts & 0xFFFFFFFF
    return (secs - NTP_UNIX_DELTA) * _NS + (frac * _NS >> 32)


def ns_to_ntp(ns: int) -> int:
    """Unix time in nanoseconds -> a 64-bit NTP timestamp (era 0)."""
    secs, rem = divmod(ns, _NS)
    return ((secs + NTP_UNIX_DELTA) << 32) | ((rem << 32) // _NS)


def offset_delay_ns(t1: int, t2: int, t3: int, t4: int) -> tuple[int, int]:
    """RFC 5905 on-wire equations: the clock offset and the round-trip delay, in ns.

    t1 = our send, t2 = server receive, t3 = server transmit, t4 = our receive. Averaging the
    two legs cancels the network latency when it is symmetric, which ``t3 - t4`` alone does not.
    """
    offset = ((t2 - t1) + (t3 - t4)) // 2
    delay = (t4 - t1) - (t3 - t2)
    return offset, delay


def _ms(ns: int) -> int:
    """Round half away from zero so that +0.5 ms and -0.5 ms are symmetric."""
    q, r = divmod(abs(ns), 1_000_000)
    v = q + (1 if r >= 500_000 else 0)
    return v if ns >= 0 else -v


def _request(transmit: int) -> bytes:
    # LI=0, VN=4, Mode=3 (client) -> 0b00_100_011 = 0x23. Everything else zero but transmit.
    return struct.pack("!B47x", 0x23)[:40] + struct.pack("!Q", transmit)


def _parse_reply(data: bytes, sent: int) -> tuple[int, int, int]:
    """Check a reply; returns (stratum, t2, t3) as (int, ns, ns) or raises _Bogus/_Rejected."""
    if len(data) < PACKET_LEN:
        raise _Bogus(f"short reply ({len(data)} bytes)")
    first, stratum = data[0], data[1]
    li, vn, mode = first >> 6, (first >> 3) & 7, first & 7
    if mode != 4:
        raise _Bogus(f"reply mode {mode}, expected 4 (server)")
    if vn not in (3, 4):
        raise _Bogus(f"reply version {vn}, expected 3 or 4")
    originate, receive, transmit = struct.unpack("!QQQ", data[24:48])
    if originate != sent:
        raise _Bogus("originate timestamp does not match our request (spoofed or stale reply)")
    # From here on the packet answers *our* request: its complaints are final.
    if stratum == 0:
        code = data[12:16].decode("ascii", "replace").strip("\x00")
        raise _Rejected(f"kiss-o'-death from server (code {code!r})")
    if stratum > 15:
        raise _Rejected(f"server unsynchronised (stratum {stratum})")
    if li == 3:
        raise _Rejected("server unsynchronised (leap indicator 3)")
    if transmit == 0 or receive == 0:
        raise _Rejected("server sent a zero timestamp")
    return stratum, ntp_to_ns(receive), ntp_to_ns(transmit)


def query(server: str, port: int = 123, timeout: float = 2.0) -> NtpSample:
    """Ask one server once. Never raises: failures come back as a sample with ``ok=False``.

    Datagrams that do not answer our request (wrong source, wrong mode or version, wrong
    originate timestamp) are ignored and we keep listening until ``timeout``, so a spoofer
    cannot make us drop the genuine answer; if none arrives, the error names what was ignored.
    """
    try:
        host, port = split_server(server, port)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
    except (OSError, ValueError, UnicodeError) as e:
        return NtpSample(server, 0, 0, 0, False, f"cannot resolve: {e}")
    family, _type, proto, _canon, addr = infos[0]
    ignored: str | None = None
    try:
        with socket.socket(family, socket.SOCK_DGRAM, proto) as sock:
            t1 = time.time_ns()
            sent = (ns_to_ntp(t1) & ~((1 << _RANDOM_BITS) - 1)) | (
                int.from_bytes(os.urandom(4), "big") & ((1 << _RANDOM_BITS) - 1)
            )
            deadline = time.monotonic() + timeout
            sock.sendto(_request(sent), addr)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    why = "timeout" + (f" (ignored: {ignored})" if ignored else "")
                    return NtpSample(server, 0, 0, 0, False, why)
                sock.settimeout(left)
                try:
                    data, src = sock.recvfrom(1024)
                except TimeoutError:
                    continue
                t4 = time.time_ns()
                if src[:2] != addr[:2]:
                    ignored = f"reply from unexpected address {src[0]}:{src[1]}"
                    continue
                try:
                    stratum, t2, t3 = _parse_reply(data, sent)
                except _Bogus as e:
                    ignored = str(e)
                    continue
                except _Rejected as e:
                    return NtpSample(server, 0, 0, data[1], False, str(e))
                offset, delay = offset_delay_ns(t1, t2, t3, t4)
                return NtpSample(server, _ms(offset), max(0, _ms(delay)), stratum, True, None)
    except OSError as e:
        return NtpSample(server, 0, 0, 0, False, f"network error: {e}")


def check_clock(
    servers: list[str], max_skew_ms: int = 5000, timeout: float = 2.0, min_good: int = 1
) -> ClockVerdict:
    """Query every server concurrently and judge the local clock.

    The verdict uses the *median* offset of the good samples, so one lying or broken server
    among three cannot move it; it is ok iff at least ``min_good`` servers answered and
    ``|median| <= max_skew_ms``.
    """
    if not servers:
        return ClockVerdict(False, None, max_skew_ms, [], "sntp:none", "no NTP servers configured")
    with ThreadPoolExecutor(max_workers=min(len(servers), 16)) as pool:
        samples = list(pool.map(lambda s: query(s, timeout=timeout), servers))
    good = [s for s in samples if s.ok]
    source = "sntp:" + (",".join(s.server for s in good) or "none")
    answered = f"{len(good)} of {len(servers)} NTP servers answered"
    if not good:
        errors = "; ".join(f"{s.server}: {s.error}" for s in samples)
        return ClockVerdict(False, None, max_skew_ms, samples, source, f"{answered} ({errors})")
    median = round(statistics.median(s.offset_ms for s in good))
    if len(good) < min_good:
        reason = f"only {answered}, need {min_good}; median offset {median:+d} ms not trusted"
        return ClockVerdict(False, median, max_skew_ms, samples, source, reason)
    few = "" if len(good) == len(servers) else f"only {answered}; "
    if abs(median) > max_skew_ms:
        reason = f"{few}median offset {median:+d} ms exceeds the ±{max_skew_ms} ms limit"
        return ClockVerdict(False, median, max_skew_ms, samples, source, reason)
    reason = f"{few}median offset {median:+d} ms within ±{max_skew_ms} ms ({answered})"
    return ClockVerdict(True, median, max_skew_ms, samples, source, reason)
