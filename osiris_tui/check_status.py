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


_BUCKETS = ("compliant", "drift", "error", "stale", "other")
_BUCKET = {name: i for i, name in enumerate(_BUCKETS)}


@dataclass(frozen=True, slots=True)
class Tally:
    """An appliance's checks counted by status word, plus what is needed to judge staleness
    later: ``(checked epoch, interval, bucket)`` of each non-error check that can go stale.

    Why: the fleet scores 10,000 appliances on every paint; counting the check-in's raw dicts
    once per poll, and only re-judging age per paint, keeps the honest score off the budget
    (bench/console.py) without building a CheckStatus per check."""

    counts: tuple[int, int, int, int, int]
    ageing: tuple[tuple[float, int, int], ...] = ()


def _tally(rows: Iterable[tuple[str, str | None, int | None]]) -> Tally:
    counts = [0, 0, 0, 0, 0]
    ageing: list[tuple[float, int, int]] = []
    for status, checked_at, interval in rows:
        b = _BUCKET.get(status, 4)
        counts[b] += 1
        if b != 2 and checked_at and interval:
            at = epoch_of(checked_at)
            if at is not None:
                ageing.append((at, interval, b))
    return Tally((counts[0], counts[1], counts[2], counts[3], counts[4]), tuple(ageing))


def tally_raw(checks: Iterable[object]) -> Tally:
    """The tally of a check-in's ``status.checks`` as sent (dicts; anything else is skipped).

    One tight pass (no object per check): it runs for every appliance on every poll."""
    counts = [0, 0, 0, 0, 0]
    ageing: list[tuple[float, int, int]] | None = None
    get = _BUCKET.get
    for c in checks:
        if type(c) is not dict:
            continue
        st = c.get("status")
        b = get(st, 4) if type(st) is str else 4  # remote data: never trust its type
        counts[b] += 1
        if b == 2:
            continue
        interval = c.get("interval_s")
        checked_at = c.get("checked_at")
        if checked_at and type(interval) is int and interval > 0:
            at = epoch_of(str(checked_at))
            if at is not None:
                if ageing is None:
                    ageing = []
                ageing.append((at, interval, b))
    return Tally((counts[0], counts[1], counts[2], counts[3], counts[4]), tuple(ageing or ()))


def score_tally(t: Tally, now: float | None = None) -> Score:
    """The score rule (``SCORE_RULE``), once: every check counts, only a fresh compliant one
    for; an error stays an error however old; an unknown status word (a newer agent's)
    counts against too."""
    counts = list(t.counts)
    if t.ageing:
        at_now = now if now is not None else time.time()
        for at, interval, b in t.ageing:
            if at_now - at > STALE_INTERVALS * interval:
                counts[b] -= 1
                counts[3] += 1
    return Score(*counts)


def score(checks: Iterable[CheckStatus], now: float | None = None) -> Score:
    """``score_tally`` of parsed checks (the Drift tab's and the CLI's)."""
    return score_tally(_tally((c.status, c.checked_at, c.interval_s) for c in checks), now)


def sum_scores(scores: Iterable[Score]) -> Score:
    c = d = e = st = o = 0
    for s in scores:
        c += s.compliant
        d += s.drift
        e += s.error
        st += s.stale
        o += s.other
    return Score(c, d, e, st, o)
