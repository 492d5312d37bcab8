"""One check's last result and the one score rule: what "compliant" may mean in the console.

Why its own module: the fleet row, the site row, the pulse line and the CLI must count alike —
a check that could not run (``error``) or whose result went stale is never a pass (issue 13) —
so the rule is written once here and ``records.Appliance.score`` applies it. No Textual import.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

# A result not refreshed for this many of its own check intervals is stale: the agent stopped
# measuring it (the appliance is down, the check no longer runs), so it is not known to be good.
STALE_INTERVALS = 3
# The one score rule (fleet row, site row, pulse line, CLI): compliant checks over every check
# with any state — a check in error (could not run) or stale counts against, never as a pass.
SCORE_RULE = "errors and stale count against"


def epoch_of(stamp: str | None) -> float | None:
    """RFC 3339 (``…Z``) → epoch seconds; None for a missing or unreadable stamp."""
    if not stamp:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class CheckStatus:
    """One (host, check) of an appliance's last check-in. ``reason`` (why an error could not
    run), ``checked_at`` and ``interval_s`` come from agents since issue 13; an older agent's
    check has none of them and is never judged stale by age."""

    host_id: str
    check: str
    status: str
    since: str
    reason: str | None = None
    checked_at: str | None = None
    interval_s: int | None = None
    # checked_at parsed once, on first use: a 10,000-appliance fleet scores every check on
    # every paint (False: not parsed yet)
    _checked_epoch: float | None | bool = field(
        default=False, init=False, repr=False, compare=False
    )

    def is_stale(self, now: float | None = None) -> bool:
        """Last run more than ``STALE_INTERVALS`` of its interval ago."""
        if not self.interval_s or not self.checked_at:
            return False
        at = self._checked_epoch
        if at is False:
            at = self._checked_epoch = epoch_of(self.checked_at)
        if at is None:
            return False
        return (now if now is not None else time.time()) - float(at) > (
            STALE_INTERVALS * self.interval_s
        )

    def state(self, now: float | None = None) -> str:
        """compliant / drift / error / stale: an error stays an error however old."""
        if self.status != "error" and self.is_stale(now):
            return "stale"
        return self.status


@dataclass(frozen=True)
class Score:
    """Counts of one appliance's (or a sum of appliances') checks by state, and the score."""

    compliant: int = 0
    drift: int = 0
    error: int = 0
    stale: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.compliant + self.drift + self.error + self.stale + self.other

    @property
    def percent(self) -> str:
        """``80%``, or ``-`` when there is no check at all (nothing known, nothing claimed)."""
        return f"{100 * self.compliant // self.total}%" if self.total else "-"

    def __add__(self, other: Score) -> Score:
        return Score(
            self.compliant + other.compliant, self.drift + other.drift,
            self.error + other.error, self.stale + other.stale, self.other + other.other,
        )  # fmt: skip


def score(checks: Iterable[CheckStatus], now: float | None = None) -> Score:
    """The score rule (``SCORE_RULE``), once: every check counts, only a fresh compliant one
    for; an unknown status word (a newer agent's) counts against too."""
    counts = {"compliant": 0, "drift": 0, "error": 0, "stale": 0, "other": 0}
    for c in checks:
        st = c.status
        if st != "error" and c.checked_at is not None and c.is_stale(now):
            st = "stale"
        counts[st if st in counts else "other"] += 1
    return Score(**counts)


def sum_scores(scores: Iterable[Score]) -> Score:
    total = Score()
    for s in scores:
        total = total + s
    return total
