"""Fleet events as the console shows them: one line each, counters per appliance, what is hot.

Why headless: the fleet ticker, the row counters, the default sort and the `L` log all read one
``EventFeed``, and a bench or a test can drive it without Textual (no Textual import here).

Records come from ``GET /events`` (osiris_server/api/events.py): ids, outcome words and times
only. Each kind has a glyph + word, never colour alone (docs/console.md): ``▲ drift``,
``! error``, ``✓ L1 healed``, ``✕ L1 heal failed``, ``⇡ escalated``, ``◷ deferred``,
``✓ order done`` / ``✕ order failed``, ``✕ refused``, ``⚠ incident``, ``○ offline``.

What counts: the first page a console fetches is history (the newest events before it started):
it fills the ticker and the log, not the counters. Every event that arrives after it is *live*:
it bumps its appliance's counters (since the console started) and, if it is a problem — drift,
error, a failed heal, an escalation, an incident, offline — makes the row *hot* until a heal or a
good order result for the same host and check (offline: the appliance's next live event) clears it.
Hot rows sort first (newest problem first) in the fleet's default sort.
"""

from __future__ import annotations

import calendar
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from .transport import NotFound

PROBLEMS = frozenset({"drift", "error", "heal_failed", "escalated", "incident", "offline"})
GOOD = frozenset({"compliant", "healed"})
KEEP = 5000  # events kept for the log; the oldest drop off
RECENT_S = 300  # the ticker's "in the last 5 min"
PAGE = 500  # events per request once live
PAGES = 4  # requests per poll at most; the rest waits for the next poll (the cursor keeps it)


@dataclass(frozen=True)
class Event:
    id: str = ""
    kind: str = ""
    at: str = ""
    site_id: str = ""
    appliance_id: str | None = None
    host_id: str | None = None
    check: str | None = None
    outcome: str | None = None
    tier: str | None = None
    runbook_id: str | None = None
    order_id: str | None = None
    incident_id: str | None = None
    severity: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        names = {f.name for f in fields(cls)}
        return cls(**{k: data[k] for k in names if data.get(k) is not None})

    @cached_property
    def epoch(self) -> float:
        """Seconds since the epoch of ``at`` (``YYYY-MM-DDTHH:MM:SS.mmmZ``; 0 when unreadable:
        sorts as oldest). Parsed by slicing, once: thousands of events per poll."""
        a = self.at
        try:
            t = (int(a[0:4]), int(a[5:7]), int(a[8:10]), int(a[11:13]), int(a[14:16]))
            return calendar.timegm((*t, int(a[17:19]), 0, 0, 0)) + int(a[20:23]) / 1000
        except ValueError:
            return 0.0

    @property
    def good(self) -> bool:
        """A heal, or an order whose result is good: it clears its host and check."""
        return self.kind == "healed" or (self.kind == "order_done" and self.outcome in GOOD)

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def label(e: Event) -> tuple[str, str]:
    """(glyph + word, Rich style) for one event."""
    tier = e.tier if e.tier in ("L1", "L2", "L3") else ""
    if e.kind == "drift":
        return "▲ drift", "yellow"
    if e.kind == "error":
        return "! error", "bold red"
    if e.kind == "healed":
        return (f"✓ {tier} healed" if tier else "✓ healed"), "green"
    if e.kind == "heal_failed":
        return (f"✕ {tier} heal failed" if tier else "✕ heal failed"), "bold red"
    if e.kind == "escalated":
        return (f"⇡ escalated {tier}" if tier else "⇡ escalated"), "magenta"
    if e.kind == "deferred":
        return "◷ deferred", "cyan"
    if e.kind == "order_done":
        if e.outcome in GOOD:
            return "✓ order done", "green"
        return f"✕ order {e.outcome or 'failed'}", "bold red"
    if e.kind == "refused":
        return "✕ refused", "red"
    if e.kind == "incident":
        return f"⚠ incident {e.severity or ''}".rstrip(), "bold red"
    if e.kind == "offline":
        return "○ offline", "red"
    return f"· {e.kind}", ""


def what(e: Event) -> str:
    """The event's subject: check and host (or runbook / order), no free text."""
    parts = [p for p in (e.check, e.host_id) if p]
    if e.kind == "offline":
        parts = []
    elif e.kind in ("healed", "heal_failed") and e.runbook_id:
        parts.append(e.runbook_id)
    elif e.kind == "order_done" and e.order_id:
        parts.append(e.order_id)
    return " ".join(parts)


def line(e: Event, appliance_name: str = "") -> str:
    """``▲ drift firewall dc01 · rv-app-01``: one line, glyph + word first."""
    text = f"{label(e)[0]} {what(e)}".rstrip()
    where = appliance_name or e.appliance_id or e.site_id
    return f"{text} · {where}" if where else text


def ticker(feed: EventFeed, names: Mapping[str, str], now: float) -> list[tuple[str, str]]:
    """The fleet's event line as (text, style) segments: the newest event, glyph + word
    first, where, how long ago, and how many events came in the last 5 minutes. The caller
    makes the Rich ``Text``, cut to its width; texts from the server are made ``safe`` there."""
    e = feed.newest()
    if not feed.supported:
        return [(" events: this server has no event feed (GET /events)", "dim")]
    if e is None:
        return [(" events: none yet" if feed.started else " events: loading…", "dim")]
    word, style = label(e)
    where = names.get(e.appliance_id or "", e.appliance_id or e.site_id)
    n = feed.recent(now)
    return [
        (" ", ""),
        (word, style),
        (f" {what(e)}".rstrip(), ""),
        (f" · {where}", "bold"),
        (f"  {age_text(now - e.epoch)} ago", "dim"),
        (f"  {n} event{'' if n == 1 else 's'} in 5 min  L log", "dim"),
    ]


def age_text(seconds: float) -> str:
    """5s, 3m, 2h, 4d (as fmt.age, which this module does not import: fmt pulls in Rich)."""
    s = max(0, int(seconds))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s // n}{unit}"
    return f"{s}s"


def cut(text: str, width: int) -> str:
    """One line in ``width`` columns, cut with ``…``."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


@dataclass
class EventPage:
    """What one poll fetched: events oldest first and the cursor after them."""

    events: list[Event]
    cursor: str | None
    supported: bool = True


def fetch_events(client: Any, cursor: str | None, supported: bool = True) -> EventPage:
    """One poll's events (runs in a worker thread): the history page on the first call, then up
    to ``PAGES`` pages after ``cursor``. A server without ``/events`` answers 404: not offered."""
    if not supported:
        return EventPage([], cursor, False)
    out: list[Event] = []
    for _ in range(1 if cursor is None else PAGES):
        try:
            events, cursor, more = client.events(
                since=cursor, limit=200 if cursor is None else PAGE
            )
        except NotFound:
            return EventPage([], cursor, False)
        out += events
        if not more:
            break
    return EventPage(out, cursor)


class EventFeed:
    """Events this console has seen, newest last, plus per-appliance counters and hot rows."""

    def __init__(self, keep: int = KEEP) -> None:
        self.events: deque[Event] = deque(maxlen=keep)
        self.cursor: str | None = None
        self.supported = True  # False when the server has no /events (an older server)
        self.started = False  # the first (history) page has been taken
        self.counts: dict[str, Counter[str]] = {}  # appliance id -> kind -> n (live only)
        self.hot: dict[str, float] = {}  # appliance id -> epoch of its newest open problem
        self.changed: set[str] = set()  # appliances with a live event in the last page
        self._open: dict[str, dict[tuple[str | None, str | None], float]] = {}
        self._ids: set[str] = set()

    def take(self, events: Iterable[Event], cursor: str | None) -> list[Event]:
        """Add one fetched page (or several, in order); the new events (repeats dropped)."""
        live = self.started
        new: list[Event] = []
        for e in events:
            if e.id in self._ids:
                continue
            if len(self._ids) >= 4 * (self.events.maxlen or KEEP):
                self._ids = {x.id for x in self.events}
            self._ids.add(e.id)
            self.events.append(e)
            new.append(e)
            if live and e.appliance_id:
                self._count(e)
        if cursor is not None:
            self.cursor = cursor
        self.started = True
        self.changed = {e.appliance_id for e in new if live and e.appliance_id}
        return new

    def take_page(self, page: EventPage) -> list[Event]:
        if not page.supported:
            self.supported = False
            self.changed = set()
            return []
        return self.take(page.events, page.cursor)

    def _count(self, e: Event) -> None:
        a = e.appliance_id or ""
        self.counts.setdefault(a, Counter())[e.kind] += 1
        opened = self._open.setdefault(a, {})
        if e.kind == "offline":
            opened[(None, "offline")] = e.epoch
        else:
            opened.pop((None, "offline"), None)  # it answered again
            if e.kind in PROBLEMS:
                opened[(e.host_id, e.check)] = e.epoch
            elif e.good:
                opened.pop((e.host_id, e.check), None)
        if opened:
            self.hot[a] = max(opened.values())
        else:
            self.hot.pop(a, None)

    def newest(self) -> Event | None:
        return self.events[-1] if self.events else None

    def recent(self, now: float, window_s: float = RECENT_S) -> int:
        """Events in the last ``window_s`` seconds (by the server's times)."""
        n = 0
        for e in reversed(self.events):
            if e.epoch < now - window_s:
                break
            n += 1
        return n

    def counter(self, appliance_id: str) -> str:
        """The row's NEW cell: ``•`` if it changed in the last poll, then live counts —
        ``▲`` drift, ``!`` error, ``✓`` healed, ``⇡`` escalated, ``○`` offline (zeros left out)."""
        c = self.counts.get(appliance_id)
        flash = "•" if appliance_id in self.changed else ""
        if not c:
            return flash
        parts = [
            f"▲{c['drift']}" if c["drift"] else "",
            f"!{c['error'] + c['heal_failed']}" if c["error"] + c["heal_failed"] else "",
            f"✓{c['healed']}" if c["healed"] else "",
            f"⇡{c['escalated']}" if c["escalated"] else "",
            f"○{c['offline']}" if c["offline"] else "",
        ]
        return (flash + " ".join(p for p in parts if p)).strip()

    def sort_key(self, appliance_id: str) -> tuple[int, float]:
        """Hot rows first, the newest problem first; every other row ties (its sort decides)."""
        t = self.hot.get(appliance_id)
        return (0, -t) if t is not None else (1, 0.0)
