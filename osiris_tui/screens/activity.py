"""Activity log (`L`): every change this console sent and every fleet event it has seen.

Why one log: at 2 a.m. "what happened" and "what did I do" are one question — the order you
queued and the `✓ order done` that came back belong side by side. Newest first; `/` filters
(same grammar as the fleet: text, !inverse, field=value with fields at, kind, what, subject,
result); it follows the fleet's feed live while open.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from ..events import Event, EventFeed, label, what
from ..fmt import cell, matches, parse_filter
from ..widgets.footer import OsirisFooter, essential_bindings
from ..widgets.table import KeyedTable

MAX_ROWS = 1000  # newest first; older ones stay in the feed, reachable with the filter


class ActivityScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="activity.close"),
        Binding("L", "dismiss(None)", "Close", show=False, id="activity.close_l"),
        Binding("slash", "filter", "Filter", id="activity.filter"),
        *essential_bindings(),  # a modal screen: the app's ?, : and q do not reach it
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._shown: tuple[int, int, str] = (-1, -1, "")

    def compose(self) -> ComposeResult:
        yield Label(Text(" Activity", style="bold"), id="activity-title")
        yield Input(placeholder="filter: text, !inverse, kind=event, what=drift", id="filter")
        yield KeyedTable(
            [("at", "AT"), ("ok", "WHAT"), ("what", "SUBJECT"), ("result", "RESULT")],
            id="activity",
        )
        yield OsirisFooter()

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.render_rows()
        self.query_one(KeyedTable).focus()
        self.set_interval(1.0, self.render_rows)  # the feed grows while the fleet polls

    def feed(self) -> EventFeed | None:
        """The fleet's feed (the fleet is the base screen of the remote console)."""
        for s in self.app.screen_stack:
            f = getattr(s, "feed", None)
            if isinstance(f, EventFeed):
                return f
        return None

    def rows(self) -> list[tuple[float, str, list[Text], dict[str, str]]]:
        """(time, key, cells, filter fields) for every change and event, newest first."""
        out: list[tuple[float, str, list[Text], dict[str, str]]] = []
        for i, a in enumerate(self.app.activity):  # type: ignore[attr-defined]
            cells = [
                cell(time.strftime("%H:%M:%S", time.gmtime(a.at))),
                cell("✓ ok" if a.ok else "✕ failed", "green" if a.ok else "bold red"),
                cell(a.what),
                cell(a.result),
            ]
            out.append((a.at, f"change:{i}", cells, _fields("change", cells)))
        feed = self.feed()
        if feed is not None:
            names = _names(self.app.screen_stack)
            for e in feed.events:
                cells = _event_cells(e, names)
                out.append((e.epoch, f"event:{e.id}", cells, _fields("event", cells)))
        out.sort(key=lambda r: r[0], reverse=True)
        return out

    def render_rows(self) -> None:
        feed = self.feed()
        n_events = len(feed.events) if feed is not None else 0
        n_changes = len(self.app.activity)  # type: ignore[attr-defined]
        newest = feed.newest().id if feed is not None and feed.newest() else ""
        state = (n_changes, n_events, newest + "\0" + self.filter_text)
        if state == self._shown:
            return
        self._shown = state
        terms, inverse = parse_filter(self.filter_text)
        picked = [r for r in self.rows() if matches(r[3], terms, inverse)][:MAX_ROWS]
        table = self.query_one(KeyedTable)
        cur = table.cursor_key()
        table.reset()  # newest first: new rows go on top, so rebuild in order
        table.sync({k: cells for _t, k, cells, _f in picked}, [k for _t, k, _c, _f in picked])
        if cur:
            table.select_key(cur)
        shown = f"{len(picked)} shown, " if self.filter_text else ""
        self.query_one("#activity-title", Label).update(
            Text.assemble(
                (" Activity", "bold"),
                (f"  {n_changes} changes this session, {n_events} events  ", ""),
                (f"({shown}newest first; / filter, esc close)", "dim"),
            )
        )

    def action_filter(self) -> None:
        f = self.query_one("#filter", Input)
        f.display = True
        f.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self.render_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self.query_one(KeyedTable).focus()

    def action_close(self) -> None:
        """esc clears an open filter first, then closes."""
        f = self.query_one("#filter", Input)
        if f.display or f.value:
            f.value = ""
            f.display = False
            self.filter_text = ""
            self.render_rows()
            self.query_one(KeyedTable).focus()
        else:
            self.dismiss(None)


def _names(stack: list[Any]) -> dict[str, str]:
    for s in stack:
        data = getattr(s, "data", None)
        apps = getattr(data, "appliances", None)
        if isinstance(apps, list):
            return {a.id: a.hostname for a in apps}
    return {}


def _event_cells(e: Event, names: dict[str, str]) -> list[Text]:
    word, style = label(e)
    where = names.get(e.appliance_id or "", e.appliance_id or "")
    return [
        cell(time.strftime("%H:%M:%S", time.gmtime(e.epoch))),
        cell(word, style),
        cell(f"{what(e)} · {where}" if where else what(e)),
        cell(e.site_id, "dim"),
    ]


def _fields(kind: str, cells: list[Text]) -> dict[str, str]:
    at, ok, subject, result = (c.plain.lower() for c in cells)
    return {"kind": kind, "at": at, "what": ok, "subject": subject, "result": result}
