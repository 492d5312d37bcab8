"""LAB SIMULATOR ONLY — RB-WIN-TIME-001 (clock offset from the configured source) on the
Windows lab host.

A mixin of :class:`osiris_lab.windows.WindowsLabHost`. The state is what the real scripts read:
W32Time's registry parameters (``Type``, ``NtpServer``), the domain's PDC emulator (for
``NT5DS``), whether the source answers SNTP, and the host's offset from it. Remediate models
``w32tm /resync /force`` as Windows behaves: it fails when W32Time is stopped or no time data
comes back, and a clock further off than ``MaxPos/NegPhaseCorrection`` is *not* corrected (W32Time
logs it and leaves the clock), so verify stays in drift and the rules escalate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def default_clock() -> dict[str, Any]:
    """The lab's DC (the PDC emulator) syncs from the clinic's NTP server, 12 ms off."""
    return {
        "type": "NTP",
        "ntp_server": "time.clinic.example,0x9",
        "pdc": "DC01.clinic.example",
        "reachable": True,
        "offset_ms": 12,
        "max_phase_correction_s": 172800,  # W32Time's default on domain members: 48 h
    }


def _clock(s: dict[str, Any]) -> dict[str, Any]:
    return s.setdefault("clock", default_clock())


def _with_clock(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda s: _clock(s).update(values)


TIME_FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "clock_skewed": _with_clock(offset_ms=-90_000),  # 90 s behind: resync fixes it
    "clock_far_off": _with_clock(offset_ms=3 * 86_400_000),  # 3 days: beyond W32Time's limit
    "ntp_unreachable": _with_clock(reachable=False),
    "ntp_unset": _with_clock(type="NoSync", ntp_server=""),
}


class WindowsTimeLab:
    """RB-WIN-TIME-001's behaviour over ``self.state['clock']`` (created on first use)."""

    state: dict[str, Any]

    def _time_source(self) -> str:
        c = _clock(self.state)
        if c["type"] == "NT5DS":
            return c["pdc"]
        if c["type"] in ("NTP", "AllSync"):
            first = c["ntp_server"].strip().split()
            return first[0].split(",")[0] if first else ""
        return ""

    def _time_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        c = _clock(self.state)
        src = self._time_source()
        reachable = src != "" and bool(c["reachable"])
        offset = c["offset_ms"] if reachable else None
        ok = reachable and offset is not None and abs(offset) <= p["max_offset_ms"]
        return (
            "compliant" if ok else "drift",
            {"source": src, "source_type": c["type"], "reachable": reachable, "offset_ms": offset},
            {"reachable": True, "max_offset_ms": p["max_offset_ms"]},
        )

    def _time_001_fix(self, p: dict[str, Any]) -> str:
        from osiris_lab.windows import LabFault

        c = _clock(self.state)
        if self.state["services"]["W32Time"]["status"] != "Running":
            raise LabFault("W32Time is not running (RB-WIN-SVC-004 starts it)")
        if self._time_source() == "" or not c["reachable"]:
            raise LabFault("w32tm /resync failed (exit -2147023838)")  # no time data available
        if abs(c["offset_ms"]) <= c["max_phase_correction_s"] * 1000:
            c["offset_ms"] = 3
        return "W32Time resynchronised from its configured source"
