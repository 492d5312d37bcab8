"""What the console's header may say about the server: ``● API ok`` only for a fresh answer.

Why a headless tracker apart from the banner widget: the header used to show the outcome of the
last poll that was *delivered*, and a poll superseded by a newer one delivers nothing, so with a
server that accepts connections but never answers (a frozen process: the kernel still completes
the TCP handshake) every poll was superseded before it could fail and the header said
``● API ok`` for as long as the polls kept coming. Here every poll reports when it starts and
how it ended, from its worker thread, whether or not its data is still wanted; the header is a
pure function of that record and the clock (tests/tui/test_liveness.py drives it with a fake
clock and with a real frozen server).

The states, in order of precedence (glyph + word, never colour alone):

- ``✗ token refused (401): <how to fix>`` — the last answer was 401/403 (or 429 after failed
  attempts): the server is up, our credential is not accepted;
- ``○ down: <reason>`` — the last request failed (no answer within the timeout, connection
  refused, 5xx, an answer that is not JSON);
- ``! error: <message>`` — the server answered but refused what a view asked (404, 400) or the
  view failed on the answer;
- ``◐ slow: waiting Ns`` — a request has been outstanding longer than ``slow_s``;
- ``… connecting`` — nothing answered yet;
- ``◐ slow: last answer Ns ago`` — answers stopped arriving (older than two poll intervals);
- ``● API ok``.

``data Ns old`` (or ``no data yet``) is always shown beside it. No Textual import here.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from .transport import AuthRefused, ClientError, NoAnswer, Unreachable

SLOW_S = 2.0  # a request outstanding longer: ``◐ slow``
CONSOLE_TIMEOUT = 10.0  # the console's budget per request: ``○ down: no answer in 10s`` after it


@dataclass(frozen=True)
class Health:
    """One header state: ``glyph word``, the Rich style it is drawn in (``bad``: the banner gets
    its ``down`` class) and, for a refused token, how to fix it (``detail``): the banner shows
    the detail after the data age, so that at 80 columns a long fix never hides the age."""

    headline: str
    style: str
    bad: bool = False
    detail: str = ""

    @property
    def text(self) -> str:
        """The state in one line (the fleet's pulse line before any data)."""
        return f"{self.headline}: {self.detail}" if self.detail else self.headline


def reason_of(error: Exception, token_fix: str) -> tuple[str, str, str]:
    """(the header's words for ``error``, how to fix it or "", its kind: ``auth`` — our
    credential is refused, ``down`` — no usable answer, ``error`` — the server answered,
    refusing this request)."""
    status = error.status if isinstance(error, ClientError) else None
    if isinstance(error, AuthRefused) and status == 403:
        return "not allowed (403)", "this token's role may not read this; use one that may", "auth"
    if isinstance(error, AuthRefused) or status == 429:  # 429: after failed attempts
        return f"token refused ({status})", token_fix, "auth"
    if isinstance(error, NoAnswer):
        return f"no answer in {error.waited:g}s", "", "down"
    if isinstance(error, Unreachable):
        return error.reason, "", "down"
    if isinstance(error, ClientError):
        return str(error), "", "error"
    return f"{type(error).__name__}: {error}", "", "error"


class Liveness:
    """The record behind the header. Thread-safe: poll workers call ``begin``/``end``/``failed``
    from their threads, the banner reads ``health`` on the UI thread."""

    def __init__(self, poll_s: float, *, slow_s: float = SLOW_S, token_fix: str = "") -> None:
        self.poll_s = poll_s
        self.slow_s = slow_s
        self.token_fix = token_fix or "check --token, OSIRIS_TOKEN or the profile"
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._inflight: dict[int, float] = {}
        self.last_ok: float | None = None  # the last answer (delivered or not)
        self.last_data: float | None = None  # the last answer a view painted
        self.reason: str | None = None
        self.detail = ""
        self.kind = ""  # of the last failure: reason_of
        self._latest_ok: bool | None = None  # the outcome reported last, whatever its clock

    # ---- what the poll workers report

    def begin(self, now: float) -> int:
        with self._lock:
            ticket = next(self._ids)
            self._inflight[ticket] = now
            return ticket

    def end(self, ticket: int) -> None:
        with self._lock:
            self._inflight.pop(ticket, None)

    def answered(self, now: float) -> None:
        """The server answered (the data may be dropped as superseded: still a live server)."""
        with self._lock:
            self.last_ok = now
            self._latest_ok = True

    def painted(self, now: float) -> None:
        """A view applied fresh data: the data age restarts."""
        with self._lock:
            self.last_ok = now
            self.last_data = now
            self._latest_ok = True

    def failed(self, error: Exception) -> None:
        reason, detail, kind = reason_of(error, self.token_fix)
        with self._lock:
            self.reason = reason
            self.detail = detail
            self.kind = kind
            self._latest_ok = False

    # ---- what the header shows

    @property
    def ok(self) -> bool | None:
        """None before any outcome; else whether the outcome reported last was an answer."""
        return self._latest_ok

    def waiting(self, now: float) -> float:
        """How long the oldest outstanding request has been waiting (0: none)."""
        with self._lock:
            oldest = min(self._inflight.values(), default=None)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def health(self, now: float) -> Health:
        ok = self.ok
        if ok is False:
            glyph = {"auth": "✗ ", "down": "○ down: "}.get(self.kind, "! error: ")
            return Health(f"{glyph}{self.reason}", "bold red", True, self.detail)
        waited = self.waiting(now)
        if waited >= self.slow_s:
            return Health(f"◐ slow: waiting {int(waited)}s", "bold yellow")
        if ok is None:
            return Health("… connecting", "dim")
        assert self.last_ok is not None
        quiet = now - self.last_ok
        if quiet > 2 * self.poll_s:
            return Health(f"◐ slow: last answer {int(quiet)}s ago", "bold yellow")
        return Health("● API ok", "green")

    def data_age(self, now: float) -> str:
        if self.last_data is None:
            return "no data yet"
        return f"data {max(0, int(now - self.last_data))}s old"
