"""A superseded poll never paints its older data over fresher data (osiris_tui.app.from_worker).

Textual's exclusive workers cancel the older worker's task but cannot stop its thread; before
`from_worker`, a slow poll that finished last overwrote what a newer poll had shown (an order
shown "pending" again after "done"). Here the older worker is held until the newer one has
applied its result, the worst order, deterministically.
"""

from __future__ import annotations

import threading
import time

import pytest
from textual import work
from textual.app import App

from osiris_tui.app import from_worker
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class PollApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        self.release_old = threading.Event()
        self.old_started = threading.Event()
        self.old_done = threading.Event()

    @work(thread=True, exclusive=True, group="poll")
    def poll(self, value: str, hold: bool) -> None:
        if hold:  # the slow, older fetch
            self.old_started.set()
            assert self.release_old.wait(30)
        from_worker(self, self.shown.append, value)  # returns once the UI thread ran it
        if hold:
            self.old_done.set()


async def test_older_poll_finishing_last_is_dropped() -> None:
    app = PollApp()
    async with app.run_test() as pilot:
        app.poll("old", True)
        deadline = time.monotonic() + 60  # (not `until`: that waits for the held worker)
        while not app.old_started.is_set():
            assert time.monotonic() < deadline, "the older poll's thread never started"
            await pilot.pause(0.01)
        app.poll("new", False)  # supersedes the held one
        await until(app, pilot, lambda: app.shown == ["new"], "the newer poll's result")
        app.release_old.set()
        await until(app, pilot, app.old_done.is_set, "the older thread to finish")
        await settle(app, pilot, 1)
        assert app.shown == ["new"]


async def test_a_current_poll_is_delivered() -> None:
    app = PollApp()
    async with app.run_test() as pilot:
        app.poll("only", False)
        await until(app, pilot, lambda: app.shown == ["only"], "the poll's result")
        assert app.shown == ["only"]
