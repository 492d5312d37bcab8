"""Honest liveness (issue 13 item 2): the header says `● API ok` only for a fresh answer.

Against real peers, never a mocked client: the session's server (tests/tui/conftest.py) for a
refused token and a fast answer; a server of this module's own, frozen with SIGSTOP (the kernel
still completes TCP handshakes for a stopped process, so requests are accepted and never
answered); and a raw socket that accepts connections and never says a word. Timeouts are made
short through the same options a user has (`timeout=` / `--timeout`), so the tests stay fast.
The header's rules themselves are checked headless with a fake clock first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.liveness import Liveness
from osiris_tui.transport import AuthRefused, NoAnswer, Unreachable
from tests.tui.conftest import LiveServer, start
from tests.tui.waiting import settle

OSIRIS = str(Path(sys.executable).parent / "osiris")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---------------------------------------------------------------- peers


class Silent:
    """A TCP listener on loopback that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def freezable(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen, LiveServer]]:
    """A server of our own: freezing the session's server would stall every other test."""
    proc, srv = start(tmp_path_factory.mktemp("freezable"))
    try:
        yield proc, srv
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def banner(app: OsirisApp) -> str:
    return str(app.screen.query_one("#banner").render())


def pulse(app: OsirisApp) -> str:
    return str(app.screen.query_one("#pulse").render())


async def wait_for(pilot, cond: Callable[[], bool], what: str, timeout: float) -> float:  # noqa: ANN001
    """Seconds until ``cond()`` held. Only pauses: `settle` would wait for the workers, which
    here hang on purpose."""
    t0 = time.monotonic()
    while not cond():
        waited = time.monotonic() - t0
        assert waited < timeout, f"no {what} after {timeout:g}s: {banner(pilot.app)!r}"
        await pilot.pause(0.1)
    return time.monotonic() - t0


# ---------------------------------------------------------------- the rules, headless


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_header_states_follow_the_record_not_the_last_delivery() -> None:
    c = Clock()
    live = Liveness(5.0, slow_s=2.0)
    assert live.health(c()).text == "… connecting" and live.data_age(c()) == "no data yet"
    first = live.begin(c())
    c.t += 2.5
    assert live.health(c()).text == "◐ slow: waiting 2s"
    live.end(first)
    live.answered(c())
    live.painted(c())
    assert live.health(c()).text == "● API ok" and live.data_age(c()) == "data 0s old"
    # a poll hangs; newer polls supersede it (their data would be dropped), the header still
    # counts from the oldest outstanding request
    hung = live.begin(c())
    c.t += 1
    newer = live.begin(c())
    c.t += 1.5
    assert live.health(c()).text == "◐ slow: waiting 2s"
    live.failed(NoAnswer("http://x", 10, "connected, no answer"))
    live.end(hung)
    assert live.health(c()).text == "○ down: no answer in 10s" and live.health(c()).bad
    assert live.ok is False
    c.t += 30
    assert live.health(c()).text.startswith("○ down")  # down stays down while waiting
    assert live.data_age(c()) == "data 32s old"  # data age always
    live.end(newer)
    live.answered(c())
    assert live.health(c()).text == "● API ok" and live.ok is True
    c.t += 10.5  # nothing answered for more than two poll intervals: not "ok" any more
    assert live.health(c()).text == "◐ slow: last answer 10s ago"
    assert not live.health(c()).bad


def test_reasons_say_what_to_do() -> None:
    live = Liveness(5.0, token_fix="the token from OSIRIS_TOKEN; fix it")
    live.failed(AuthRefused("token refused", "E_AUTH", 401))
    assert live.health(0).text == "✗ token refused (401): the token from OSIRIS_TOKEN; fix it"
    live.failed(AuthRefused("role", "E_FORBIDDEN", 403))
    assert live.health(0).text.startswith("✗ not allowed (403): this token's role may not")
    assert live.health(0).headline == "✗ not allowed (403)"
    live.failed(Unreachable("http://x: unreachable (refused)", reason="unreachable (refused)"))
    assert live.health(0).text == "○ down: unreachable (refused)"


@pytest.mark.anyio
async def test_a_refused_connection_is_down_and_short_enough_for_80_columns() -> None:
    from tests.tui.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"  # bound and closed again: connection refused
    app = OsirisApp(url, "osk_x", poll_s=3600, timeout=3.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "○ down" in banner(app), "○ down", 10)
        assert banner(app) == f" {url} ○ down: unreachable (Connection refused)  no data yet"
        assert len(banner(app)) <= 80


# ---------------------------------------------------------------- the transport's budget


def test_a_silent_server_costs_the_budget_and_says_so(silent: Silent) -> None:
    slow = threading.Event()
    with Client(silent.url, "osk_x", timeout=1.5, on_slow=slow.set, slow_after=0.5) as c:
        t0 = time.monotonic()
        with pytest.raises(NoAnswer) as e:
            c.sites()  # a GET: retried, but only within the budget
        took = time.monotonic() - t0
    assert 1.4 < took < 3.0, took
    assert slow.is_set()
    assert str(e.value).startswith(f"server did not answer within 1.5s ({silent.url}: ")
    assert "--timeout or OSIRIS_TIMEOUT" in str(e.value)


def test_close_cuts_a_request_blocked_on_a_silent_server(silent: Silent) -> None:
    """`q` must end the process at once, not after the budget: the console's worker threads
    (blocked in recv) would keep it alive. Closing the client wakes them (osiris_tui.abortable)."""
    c = Client(silent.url, "osk_x", timeout=30.0, retries=0)
    outcome: list[BaseException] = []

    def blocked() -> None:
        try:
            c.sites()
        except Exception as e:  # noqa: BLE001 - the test reads it
            outcome.append(e)

    worker = threading.Thread(target=blocked)
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive()  # really waiting on the silent server
    t0 = time.monotonic()
    c.close()
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - t0 < 2
    assert len(outcome) == 1 and isinstance(outcome[0], Unreachable)


def test_no_waiting_signal_for_a_prompt_answer(live) -> None:
    slow = threading.Event()
    with Client(live.url, live.token, on_slow=slow.set, slow_after=1.0) as c:
        c.sites()
    time.sleep(1.2)
    assert not slow.is_set()


# ---------------------------------------------------------------- the console


@pytest.mark.anyio
async def test_console_on_a_silent_server_goes_slow_then_down(silent: Silent) -> None:
    app = OsirisApp(silent.url, "osk_x", timeout=3.0, slow_s=1.0, poll_s=3600)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "◐ slow: waiting" in banner(app), "◐ slow", 6)
        assert "no data yet" in banner(app)
        took = await wait_for(pilot, lambda: "○ down" in banner(app), "○ down", 8)
        assert "○ down: no answer in 3s" in banner(app)
        assert app.screen.query_one("#banner").has_class("down")
        assert took < 6
        assert pulse(app) == "○ down: no answer in 3s — no fleet data yet"
        assert "connecting" not in banner(app)


@pytest.mark.anyio
async def test_frozen_server_turns_the_header_slow_then_down_and_back(freezable) -> None:
    proc, srv = freezable
    app = OsirisApp(srv.url, srv.token, timeout=3.0, slow_s=1.0, poll_s=1.0)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "● API ok" in banner(app), "● API ok", 30)
        assert "data 0s old" in banner(app) or "data 1s old" in banner(app)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            to_slow = await wait_for(pilot, lambda: "◐ slow" in banner(app), "◐ slow", 8)
            to_down = await wait_for(pilot, lambda: "○ down" in banner(app), "○ down", 10)
            # the old console kept "● API ok" for 45 s and more; now it is down in about one
            # poll interval plus the timeout
            assert to_slow + to_down < 8, (to_slow, to_down)
            assert "○ down: no answer in 3s" in banner(app)
            assert "● API ok" not in banner(app)
            assert "s old" in banner(app)  # the data the console still shows, and its age
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        await wait_for(pilot, lambda: "● API ok" in banner(app), "● API ok again", 15)
        assert not app.screen.query_one("#banner").has_class("down")


@pytest.mark.anyio
async def test_wrong_token_says_so_and_how_to_fix_it(live) -> None:
    app = OsirisApp(live.url, "osk_wrong_liveness_console", poll_s=3600,
                    token_fix="the token from --token; pass a valid one")  # fmt: skip
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        await wait_for(pilot, lambda: "✗ token refused" in banner(app), "the token line", 10)
        # the state and the data age first, then how to fix it (cut last at 80 columns)
        want = " ✗ token refused (401)  no data yet  the token from --token; pass a valid one"
        assert banner(app) == f" {live.url}{want}"
        assert "unreachable" not in banner(app) and "osk_wrong_liveness_console" not in banner(app)
        assert pulse(app) == (  # not "loading fleet…" forever
            "✗ token refused (401): the token from --token; pass a valid one — no fleet data yet"
        )
        assert app.screen.query_one("#banner").has_class("down")


# ---------------------------------------------------------------- the CLI


def bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env["OSIRIS_PROFILE_FILE"] = "/nonexistent"
    return env


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_says_it_waits_then_gives_up_with_exit_3(silent: Silent, how: str) -> None:
    env = bare_env()
    argv = [OSIRIS, "--server", silent.url, "--token", "osk_x"]
    if how == "flag":
        argv += ["--timeout", "2.5"]
    else:
        env["OSIRIS_TIMEOUT"] = "2.5"
    t0 = time.monotonic()
    proc = subprocess.Popen([*argv, "site", "list", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    first = proc.stderr.readline()
    said_at = time.monotonic() - t0
    rest = proc.stderr.read()
    rc = proc.wait(30)
    took = time.monotonic() - t0
    assert first == f"osiris: waiting for the server at {silent.url}…\n"
    assert said_at >= 1.0  # after a second of silence, not at once
    assert rc == 3 and proc.stdout.read() == ""
    assert rest.startswith(f"osiris: error: server did not answer within 2.5s ({silent.url}")
    assert rest.count("\n") == 1
    assert 2.5 <= took < 2.5 + 8, took  # the budget, plus the interpreter's start


def test_cli_prompt_answer_prints_no_waiting_line(live) -> None:
    env = {**bare_env(), "OSIRIS_SERVER": live.url, "OSIRIS_TOKEN": live.token}
    r = subprocess.run([OSIRIS, "site", "list", "--json"], capture_output=True, text=True,
                       env=env, timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stderr == ""


def test_cli_refused_token_names_where_it_came_from(live) -> None:
    env = {**bare_env(), "OSIRIS_SERVER": live.url, "OSIRIS_TOKEN": "osk_wrong_liveness_cli"}
    r = subprocess.run([OSIRIS, "site", "list"], capture_output=True, text=True, env=env,
                       timeout=60)  # fmt: skip
    assert r.returncode == 4
    assert r.stderr.startswith("osiris: error: token refused (401 E_AUTH: ")
    assert "the token from OSIRIS_TOKEN; pass a valid one with --token, OSIRIS_TOKEN" in r.stderr
    assert "osk_wrong_liveness_cli" not in r.stderr
