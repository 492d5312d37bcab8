"""Agent-provided facts: what a catalogue check with ``fact = "…"`` is judged from.

Why: most checks are judged by a runbook's detect script on the host. A few are about the
appliance itself and are judged from something the agent already measures every cycle — the
clock (``ntp.check_clock``, SNTP with the RFC 5905 offset formula), which also fills every
bundle's ``clock`` field. Running a script to measure it again would judge a different
measurement than the one the evidence carries. So the catalogue names the fact
(``osiris_core/catalog/checks.toml``, ``fact = "appliance.clock"``) and the scanner judges it
with the function here, like a detect script's verdict: ``compliant``, ``drift`` or ``error``
(could not tell — never reported as a pass, lessons A8).

A judge is the fact's "detect script": it only turns the measurement into status, observed and
expected; the scanner signs the evidence and the agent stores the last result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from osiris_core.catalog.model import STATUSES


@dataclass(frozen=True)
class FactVerdict:
    """What a judge saw: ``observed``/``expected`` become the bundle's ``pre_state``;
    ``detail`` is a short human sentence (the bundle's ``action_taken``)."""

    status: str
    observed: dict[str, Any]
    expected: dict[str, Any]
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"fact status must be one of {STATUSES}, got {self.status!r}")


def judge_clock(v: Any) -> FactVerdict:
    """``timesync`` on the appliance: is this cycle's clock within ``ntp.max_skew_ms`` of NTP?

    HIPAA §164.312(b) audit controls rely on timestamps that correlate across systems."""
    if v is None:
        return FactVerdict("error", {"measured": False}, {"ntp_ok": True}, "clock not measured")
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
        return FactVerdict("compliant", observed, expected, v.reason)
    if v.offset_ms is not None and abs(v.offset_ms) > v.max_skew_ms:
        return FactVerdict("drift", observed, expected, v.reason)
    # Too few servers answered: we cannot tell whether the clock is right — an error, never
    # a pass (lessons A8).
    return FactVerdict("error", observed, expected, v.reason)


# One judge per fact the catalogue may name (``osiris_core.catalog.model.FACTS``; a test checks
# the two lists are the same).
JUDGES: dict[str, Callable[[Any], FactVerdict]] = {"appliance.clock": judge_clock}
