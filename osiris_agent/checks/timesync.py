"""``timesync`` on the appliance itself: is the clock within ``ntp.max_skew_ms`` of NTP?

HIPAA §164.312(b) audit controls rely on timestamps that correlate across systems. The appliance
measures its clock once per cycle (``ntp.check_clock``, SNTP with the RFC 5905 offset formula);
this check judges that verdict, so the evidence and the bundles' ``clock`` fields agree.
"""

from __future__ import annotations

from typing import ClassVar

from .base import Check, CheckResult, HostHandle


class TimesyncCheck(Check):
    id: ClassVar[str] = "timesync"
    kinds: ClassVar[tuple[str, ...]] = ("local",)

    def run(self, host: HostHandle) -> CheckResult:
        v = host.clock
        if v is None:
            return CheckResult("error", {"measured": False}, {"ntp_ok": True}, "clock not measured")
        good = sum(1 for s in v.samples if s.ok)
        observed = {
            "ntp_ok": bool(v.ok),
            "offset_ms": v.offset_ms,
            "servers_answered": good,
            "servers_asked": len(v.samples),
            "source": v.source,
        }
        expected = {"ntp_ok": True, "max_abs_offset_ms": v.max_skew_ms}
        if v.ok:
            return CheckResult("compliant", observed, expected, v.reason)
        if v.offset_ms is not None and abs(v.offset_ms) > v.max_skew_ms:
            return CheckResult("drift", observed, expected, v.reason)
        # Too few servers answered: we cannot tell whether the clock is right — an error, never
        # a pass (lessons A8).
        return CheckResult("error", observed, expected, v.reason)
