"""Polling: one fetch in a thread worker, its result delivered on the UI thread; and the screen
every "a table of one server listing" view is built on.

Why one place: the audit, learning and provisioning screens (and the appliance tabs, the local
console) each fetched in an exclusive thread worker, dropped a superseded result
(``app.from_worker``), turned an exception into the banner's error line, and painted the rest.
Written four times it drifted; here it is once. :class:`Poll` is the mechanism (any screen or
widget can own one); :class:`PollingTableScreen` is the k9s-style screen around it: banner,
title, one :class:`KeyedTable`, a poll every ``app.poll_s`` seconds, ``r`` refreshes, enter
opens the selected record as JSON, esc goes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from ..app import Banner, CommandBar, from_worker
from .footer import OsirisFooter
from .modals import JsonModal
from .table import KeyedTable

T = TypeVar("T")


@dataclass
class Poll(Generic[T]):
    """``run()`` calls ``fetch`` in a thread worker of ``group`` (exclusive: a newer run replaces
    an older one) on ``node``, then ``apply(result)`` on the UI thread, or ``failed(error)`` when
    ``fetch`` raised. A superseded run delivers nothing (see ``app.from_worker``).

    ``failed`` defaults to the console's banner: ``app.api_result(False, error)``.

    In an app with a ``liveness`` record (the fleet console: ``osiris_tui.liveness``) every run
    also reports, from its thread, when it started, that it ended and how — also when it is
    superseded and delivers nothing: a poll that hangs on a frozen server is then seen as
    ``◐ slow`` and ``○ down`` although newer polls keep replacing it."""

    node: DOMNode
    group: str
    fetch: Callable[[], T]
    apply: Callable[[T], None]
    failed: Callable[[Exception], None] | None = None
    name: str = "load"

    def run(self) -> None:
        self.node.run_worker(
            self._once, name=self.name, group=self.group, exclusive=True, thread=True
        )

    def _once(self) -> None:
        app = self.node.app
        live = getattr(app, "liveness", None)
        ticket = None if live is None else live.begin(app.clock())
        try:
            data = self.fetch()
        except Exception as e:  # noqa: BLE001 - shown (banner or error line), never a crash
            if live is not None:
                live.failed(e)
            from_worker(app, self.failed or banner_error(app), e)
            return
        finally:
            if live is not None and ticket is not None:
                live.end(ticket)
        if live is not None:
            live.answered(app.clock())
        from_worker(app, self.apply, data)


def banner_error(app: Any) -> Callable[[Exception], None]:
    """The default failure: the banner says what went wrong (``app.api_result``)."""
    return lambda e: app.api_result(False, e)


class PollingTableScreen(Screen):
    """One server listing as a table. A subclass declares ``TABLE_ID``, ``COLUMNS`` (``(key,
    header)`` pairs), ``POLL_GROUP``, its ``BINDINGS`` (ids are per screen, and the footer shows
    them in the order declared; :func:`back_binding` / :func:`refresh_binding` make the two
    every such screen has) and implements ``fetch`` (runs in the worker: the records), ``key``
    and ``cells`` (record → row key, record → one cell per column). Optional: ``order`` (row
    order for new rows), ``detail`` (what enter shows, as JSON; none by default),
    ``compose_above`` / ``compose_below`` (widgets around the table)."""

    TABLE_ID: ClassVar[str]
    COLUMNS: ClassVar[Sequence[tuple[str, str]]]
    POLL_GROUP: ClassVar[str]
    EMPTY_TEXT: ClassVar[str] = "Nothing here yet."  # shown under an empty answer

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, Any] = {}
        self.poll: Poll[Any] = Poll(self, self.POLL_GROUP, self.fetch, self.apply)

    # ---- what a subclass declares

    def title_text(self) -> Text:
        raise NotImplementedError

    def fetch(self) -> Any:
        """The records (in the worker thread: no widget access here)."""
        raise NotImplementedError

    def key(self, record: Any) -> str:
        raise NotImplementedError

    def cells(self, record: Any) -> list[Text]:
        raise NotImplementedError

    def order(self, keys: list[str]) -> list[str] | None:
        return None

    def detail(self, record: Any) -> tuple[str, Any] | None:
        """(modal title, document) for enter on ``record``; None: enter does nothing."""
        return None

    def compose_above(self) -> Iterator[Widget]:
        yield from ()

    def compose_below(self) -> Iterator[Widget]:
        yield from ()

    # ---- the shared behaviour

    @property
    def client(self) -> Any:
        return self.app.client  # type: ignore[attr-defined]

    @property
    def table(self) -> KeyedTable:
        return self.query_one(f"#{self.TABLE_ID}", KeyedTable)

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(self.title_text(), id="title")
        yield from self.compose_above()
        yield KeyedTable(self.COLUMNS, id=self.TABLE_ID)
        yield Static("", id="listing-empty")
        yield from self.compose_below()
        yield CommandBar(placeholder=":command")
        yield OsirisFooter()

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.table.focus()
        self.load()
        self.set_interval(self.app.poll_s, self.load)  # type: ignore[attr-defined]

    def load(self) -> None:
        self.poll.run()

    def apply(self, records: list[Any]) -> None:
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.records = {self.key(r): r for r in records}
        self.table.sync({k: self.cells(r) for k, r in self.records.items()},
                        self.order(list(self.records)))  # fmt: skip
        # an empty answer says so: a blank table must not read as "still loading"
        empty = self.query_one("#listing-empty", Static)
        empty.update("" if records else Text(f" {self.EMPTY_TEXT}", style="dim"))
        empty.display = not records  # no blank line taken from the table when there are rows

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        record = self.records.get(event.row_key.value or "")
        shown = None if record is None else self.detail(record)
        if shown is not None:
            self.app.push_screen(JsonModal(*shown))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()


def back_binding(prefix: str) -> Binding:
    return Binding("escape", "back", "Back", id=f"{prefix}.back")


def refresh_binding(prefix: str) -> Binding:
    return Binding("r", "refresh", "Refresh", id=f"{prefix}.refresh")
