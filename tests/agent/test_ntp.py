"""The SNTP client against real NTP responders on 127.0.0.1 (real UDP sockets, no mocks).

Each responder is a thread with a UDP socket that answers client packets the way an NTP server
does, with knobs to lie about the time, delay its answer, or break one sanity rule at a time.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osiris_agent import ntp
from osiris_core import canonical

FAST = 0.4  # client timeout for tests that expect no usable answer


@dataclass
class Behaviour:
    offset_s: float = 0.0  # how far the server's clock is from ours
    delay_s: float = 0.0  # symmetric network delay: half before t2, half after t3
    hold_s: float = 0.0  # processing time between t2 and t3
    silent: bool = False
    stratum: int = 2
    li: int = 0
    version: int = 4
    mode: int = 4
    wrong_originate: bool = False
    zero_transmit: bool = False
    short: bool = False
    other_port: bool = False  # answer from a different socket (another source address)
    spoof_first: bool = False  # send a wrong-originate reply at once, then the genuine one


class Responder:
    """A minimal NTP server on 127.0.0.1 that runs in a thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _now(self) -> int:
        return ntp.ns_to_ntp(time.time_ns() + int(self.b.offset_s * 1e9))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(1024)
            except TimeoutError:
                continue
            self.requests.append(data)
            threading.Thread(target=self._answer, args=(data, src), daemon=True).start()

    def _answer(self, data: bytes, src: tuple[str, int]) -> None:
        b = self.b
        if b.silent:
            return
        if b.spoof_first:
            bogus = struct.pack("!BBbbII4sQQQQ", 0x24, 1, 6, -20, 0, 0, b"GPS\0", 0, 1, 2, 3)
            self.sock.sendto(bogus, src)
        time.sleep(b.delay_s / 2)
        t2 = self._now()
        time.sleep(b.hold_s)
        originate = struct.unpack("!Q", data[40:48])[0]
        if b.wrong_originate:
            originate ^= 0x1234_5678
        t3 = 0 if b.zero_transmit else self._now()
        first = (b.li << 6) | (b.version << 3) | b.mode
        refid = b"RATE" if b.stratum == 0 else b"LOCL"
        reply = struct.pack(
            "!BBbbII4sQQQQ", first, b.stratum, 6, -20, 0, 0, refid, t2, originate, t2, t3
        )
        if b.short:
            reply = reply[:40]
        time.sleep(b.delay_s / 2)
        (self.other if b.other_port else self.sock).sendto(reply, src)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        self.other.close()


@pytest.fixture
def responder() -> Iterator:
    made: list[Responder] = []

    def make(**kw) -> Responder:
        r = Responder(Behaviour(**kw))
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# --- single queries -------------------------------------------------------------------------


def test_honest_server_gives_small_offset_and_proper_request(responder) -> None:
    r = responder()
    s = ntp.query(r.server, timeout=2.0)
    assert s.ok, s.error
    assert s.error is None
    assert abs(s.offset_ms) < 50
    assert 0 <= s.delay_ms < 100
    assert s.stratum == 2
    assert isinstance(s.offset_ms, int) and isinstance(s.delay_ms, int)
    req = r.requests[0]
    assert len(req) == 48
    assert req[0] == 0x23  # LI=0, VN=4, Mode=3
    t1 = ntp.ntp_to_ns(struct.unpack("!Q", req[40:48])[0])
    assert abs(t1 - time.time_ns()) < 5 * 10**9  # the transmit stamp is our clock, not zero


def test_lying_server_offset_is_measured(responder) -> None:
    s = ntp.query(responder(offset_s=120).server)
    assert s.ok
    assert abs(s.offset_ms - 120_000) < 50


def test_negative_offset(responder) -> None:
    s = ntp.query(responder(offset_s=-3.5).server)
    assert s.ok
    assert abs(s.offset_ms + 3_500) < 50


def test_round_trip_delay_is_corrected(responder) -> None:
    # 100 ms to the server, 100 ms processing, 100 ms back: t3 - t4 alone would say -100 ms.
    s = ntp.query(responder(delay_s=0.2, hold_s=0.1).server)
    assert s.ok, s.error
    assert abs(s.offset_ms) < 50
    assert 150 <= s.delay_ms <= 400


def test_round_trip_correction_with_a_lying_server(responder) -> None:
    s = ntp.query(responder(offset_s=7, delay_s=0.2).server)
    assert s.ok
    assert abs(s.offset_ms - 7000) < 50


def test_silent_server_times_out(responder) -> None:
    start = time.monotonic()
    s = ntp.query(responder(silent=True).server, timeout=FAST)
    assert not s.ok
    assert s.error == "timeout"
    assert FAST <= time.monotonic() - start < FAST + 1


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [
        ({"wrong_originate": True}, "originate"),
        ({"stratum": 0}, "kiss-o'-death"),
        ({"stratum": 16}, "stratum 16"),
        ({"li": 3}, "leap indicator 3"),
        ({"mode": 3}, "mode 3"),
        ({"version": 2}, "version 2"),
        ({"zero_transmit": True}, "zero timestamp"),
        ({"short": True}, "short reply"),
        ({"other_port": True}, "unexpected address"),
    ],
)
def test_bad_replies_are_rejected(responder, behaviour: dict, why: str) -> None:
    r = responder(**behaviour)
    s = ntp.query(r.server, timeout=FAST)
    assert r.requests, "the responder never saw the request"
    assert not s.ok
    assert why in (s.error or "")
    assert s.offset_ms == 0


def test_kiss_of_death_is_reported_at_once(responder) -> None:
    # An authentic "go away" is final: no need to wait for the timeout.
    start = time.monotonic()
    s = ntp.query(responder(stratum=0).server, timeout=3.0)
    assert not s.ok and "RATE" in (s.error or "")
    assert time.monotonic() - start < 1.0


def test_spoofed_reply_does_not_hide_the_genuine_one(responder) -> None:
    # A bogus answer (wrong originate, absurd times) arrives first; the genuine one still counts.
    s = ntp.query(responder(spoof_first=True, delay_s=0.1).server, timeout=2.0)
    assert s.ok, s.error
    assert abs(s.offset_ms) < 50


def test_unresolvable_and_malformed_servers() -> None:
    assert not ntp.query("no-such-host.invalid", timeout=FAST).ok
    bad = ntp.query("127.0.0.1:notaport", timeout=FAST)
    assert not bad.ok and "cannot resolve" in (bad.error or "")


def test_split_server() -> None:
    assert ntp.split_server("time.example") == ("time.example", 123)
    assert ntp.split_server("time.example:1123") == ("time.example", 1123)
    assert ntp.split_server("[::1]:99") == ("::1", 99)
    assert ntp.split_server("[::1]") == ("::1", 123)
    assert ntp.split_server("::1") == ("::1", 123)
    for bad in ("", "h:0", "h:70000", "[::1]x"):
        with pytest.raises(ValueError):
            ntp.split_server(bad)


# --- the verdict ------------------------------------------------------------------------------


def test_verdict_honest_server_ok(responder) -> None:
    v = ntp.check_clock([responder().server], max_skew_ms=5000)
    assert v.ok
    assert v.offset_ms is not None and abs(v.offset_ms) < 50
    assert v.source.startswith("sntp:127.0.0.1:")
    ev = v.to_evidence()
    assert set(ev) == {"ntp_ok", "offset_ms", "source"}
    assert ev["ntp_ok"] is True
    canonical.dumps(ev)  # integers and strings only


def test_verdict_only_liar_is_not_ok(responder) -> None:
    v = ntp.check_clock([responder(offset_s=120).server], max_skew_ms=5000)
    assert not v.ok
    assert v.offset_ms is not None and abs(v.offset_ms - 120_000) < 50
    assert "exceeds" in v.reason
    assert v.to_evidence()["ntp_ok"] is False


def test_verdict_median_outvotes_one_liar(responder) -> None:
    servers = [responder().server, responder(offset_s=120).server, responder().server]
    v = ntp.check_clock(servers, max_skew_ms=5000, min_good=2)
    assert v.ok, v.reason
    assert abs(v.offset_ms or 0) < 50
    assert len(v.samples) == 3 and all(s.ok for s in v.samples)


def test_verdict_silent_server_others_still_used(responder) -> None:
    servers = [responder().server, responder(silent=True).server, responder().server]
    start = time.monotonic()
    v = ntp.check_clock(servers, timeout=FAST, min_good=2)
    assert time.monotonic() - start < FAST + 1  # concurrent, not one timeout per server
    assert v.ok, v.reason
    assert "only 2 of 3" in v.reason
    assert [s.ok for s in v.samples] == [True, False, True]
    assert v.source.count("127.0.0.1") == 2


def test_verdict_too_few_answers(responder) -> None:
    servers = [responder().server, responder(silent=True).server, responder(stratum=0).server]
    v = ntp.check_clock(servers, timeout=FAST, min_good=2)
    assert not v.ok
    assert "only 1 of 3" in v.reason and "need 2" in v.reason


def test_verdict_no_answers(responder) -> None:
    v = ntp.check_clock([responder(silent=True).server], timeout=FAST)
    assert not v.ok and v.offset_ms is None
    assert v.source == "sntp:none"
    assert "0 of 1" in v.reason and "timeout" in v.reason
    assert v.to_evidence() == {"ntp_ok": False, "offset_ms": None, "source": "sntp:none"}


def test_verdict_no_servers() -> None:
    v = ntp.check_clock([])
    assert not v.ok and "no NTP servers" in v.reason


def test_verdict_skew_limit_is_respected(responder) -> None:
    server = responder(offset_s=2).server
    assert not ntp.check_clock([server], max_skew_ms=1000).ok
    assert ntp.check_clock([server], max_skew_ms=3000).ok


# --- pure arithmetic ----------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=2**32 * 10**9 // 2))
def test_ntp_timestamp_round_trip(ns: int) -> None:
    assert abs(ntp.ntp_to_ns(ntp.ns_to_ntp(ns)) - ns) <= 1


@settings(max_examples=200)
@given(
    st.integers(min_value=10**18, max_value=2 * 10**18),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=0, max_value=10**10),
    st.integers(min_value=0, max_value=10**10),
    st.integers(min_value=0, max_value=10**10),
)
def test_on_wire_equations(t1: int, true_offset: int, leg: int, hold: int, back: int) -> None:
    # Symmetric legs: the offset is recovered exactly and the delay is the two legs.
    t2 = t1 + leg + true_offset
    t3 = t2 + hold
    t4 = t3 - true_offset + leg
    offset, delay = ntp.offset_delay_ns(t1, t2, t3, t4)
    assert offset == true_offset
    assert delay == 2 * leg
    # Asymmetry of `back` shifts the estimate by at most half of it.
    off2, _ = ntp.offset_delay_ns(t1, t2, t3, t4 + back)
    assert abs(off2 - true_offset) <= back // 2 + 1
