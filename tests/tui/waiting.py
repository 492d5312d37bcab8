"""Waiting for the console without guessing how fast the machine is.

Pilot tests used to `pause()` and `wait_for_complete()` once; on a loaded CI machine that was
not enough: a mutation worker starts a reload only when it finishes (so the reload was not in
the awaited set), and a poll that supersedes an in-flight worker makes `wait_for_complete`
raise `WorkerCancelled`. These helpers wait for *conditions*, with generous deadlines, so a
slow machine only makes a test slower, never red.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from textual.worker import WorkerCancelled

DEADLINE_S = 60.0


async def idle_workers(app, pilot, timeout: float = DEADLINE_S) -> None:  # noqa: ANN001
    """Until no worker of the app is running, including workers started by the ones awaited.

    A worker cancelled because a newer one of its exclusive group replaced it counts as done:
    the console drops its result (`osiris_tui.app.from_worker`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [w for w in app.workers if not w.is_finished]
        if not busy:
            return
        for w in busy:
            with contextlib.suppress(WorkerCancelled):
                await w.wait()
        await pilot.pause()


async def settle(app, pilot, rounds: int = 2) -> None:  # noqa: ANN001
    """Let the console process what was just triggered: messages, workers, their results."""
    for _ in range(rounds):
        await pilot.pause(0.05)
        await quiesce(pilot)


async def until(app, pilot, cond: Callable[[], bool], what: str, timeout: float = DEADLINE_S):  # noqa: ANN001, ANN201
    """Settle until ``cond()`` holds; fail with ``what`` after ``timeout`` seconds.

    For results that arrive asynchronously (a reload after a mutation, the next poll): the
    caller still asserts the exact expected value afterwards."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        await settle(app, pilot, 1)


def _quiet(app, workers: bool = True) -> bool:  # noqa: ANN001
    """Nothing left to do before the screen shows its final state: no worker running, no message
    queued on the app, the screen or any widget, no DataTable layout deferred to idle time, no
    animation in flight. Reads Textual internals (pinned at 8.2.8, see test_snapshots.py)."""
    from textual.widgets import DataTable

    if workers and any(not w.is_finished for w in app.workers):
        return False
    screen = app.screen
    for pump in (app, *app.screen_stack, *screen.walk_children(with_self=False)):
        if not pump._message_queue.empty():
            return False
    for t in screen.query(DataTable):
        if t._require_update_dimensions or t._updated_cells or t._new_rows:
            return False
    if screen._layout_required or screen._recompose_required:
        return False
    return not app.animator._animations and not app.animator._scheduled


async def quiesce(pilot, timeout: float = DEADLINE_S, stable: int = 3) -> None:  # noqa: ANN001
    """Until the app has been quiet for ``stable`` consecutive checks (workers done, queues
    empty, layout done). `pilot.pause()` alone waits for "CPU idle", which a starved process on
    a loaded machine reaches early, before the data it loaded has been laid out: a snapshot
    taken then differs from the reference. Gives up silently at ``timeout``: the caller's
    assertion then reports what is wrong.

    An app that polls faster than its polls complete is never without a running worker; the
    stable checks then look at queues and layout only (the workers were awaited just before)."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    calm = 0
    rounds = 0
    while calm < stable and time.monotonic() < deadline:
        await idle_workers(app, pilot, max(0.0, deadline - time.monotonic()))
        await pilot.pause(0.02)
        rounds += 1
        calm = calm + 1 if _quiet(app, workers=rounds < 20) else 0
