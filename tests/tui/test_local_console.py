"""`osiris tui --local` reads like the appliance (issue 13 item 6), against a REAL agent state dir:
the agent enrolled with the real osiris-server and checks a lab Windows host over WS-Man; then
the server dies, and the agent goes on checking, healing and signing.

The console must show evidence newest first (also the bundles signed after it opened, which used
to land below seq 1), "server last reached" from the agent's own record of its last successful
check-in (which used to move on with every failed attempt), and that time's age growing against
"now" while the server stays dead.
"""

from __future__ import annotations

import time

import pytest

from osiris_tui.app import LocalApp
from osiris_tui.local import epoch_of, read_state
from osiris_tui.widgets.table import KeyedTable
from tests.e2e.conftest import add_winrm, central, enroll_agent, seed_site, win  # noqa: F401
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _summary(app: LocalApp) -> str:
    return str(app.screen.query_one("#summary").render())


def _seqs(app: LocalApp) -> list[int]:
    t = app.screen.query_one("#local-evidence", KeyedTable)
    return [int(str(r.key.value)) for r in t.ordered_rows]


async def test_local_console_with_a_dead_server(central, win, tmp_path) -> None:  # noqa: F811
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    state = tmp_path / "state"
    agent = enroll_agent(central, site, state)
    now = [time.time()]
    app = LocalApp(str(state), clock=lambda: now[0], poll_s=0.2)
    try:
        report = agent.cycle()
        assert report.reachable and not report.errors, report.errors
        first = read_state(state)
        reached = epoch_of(first.last_checkin)
        assert reached is not None and first.server_reachable is True
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await until(app, pilot, lambda: bool(_seqs(app)), "the first evidence rows")
            before = _seqs(app)
            assert before == sorted(before, reverse=True)
            assert "server ● reachable" in _summary(app)
            assert f"server last reached {_clock(reached)}" in _summary(app)

            central.stop()  # the server is dead from here on
            host.inject("firewall_off")  # new drift: the agent heals and signs, offline
            report = agent.cycle()
            assert not report.reachable
            later = read_state(state)
            assert epoch_of(later.last_attempt) > reached  # the attempt moved on ...
            assert later.last_checkin == first.last_checkin  # ... the last success did not
            assert later.chain_seq > max(before)

            now[0] += 600  # ten minutes of a dead server on the console's clock
            await until(app, pilot, lambda: max(_seqs(app)) == later.chain_seq, "new evidence")
            seqs = _seqs(app)
            assert seqs == sorted(seqs, reverse=True), seqs  # newest first, new rows on top
            assert seqs[0] == later.chain_seq and seqs[-1] == min(before)
            await until(app, pilot, lambda: "○ unreachable" in _summary(app), "the dead server")
            text = _summary(app)
            assert f"server last reached {_clock(reached)}" in text, text
            assert f"now {_clock(now[0])}" in text, text
            age_min = int((now[0] - reached) // 60)
            assert f"({age_min}m ago)" in text, text
            now[0] += 3600  # and the age keeps growing while it stays dead
            await until(app, pilot, lambda: "(1h ago)" in _summary(app), "the age to grow")
            assert f"server last reached {_clock(reached)}" in _summary(app)
    finally:
        agent.close()


def test_reader_keeps_last_success_apart_from_the_latest_attempt(tmp_path) -> None:
    """The agent's three records (osiris_agent/checkin.py ``_note_checkin``), read headless."""
    from osiris_agent.state import StateDB

    (tmp_path / "pins.json").write_text('{"appliance_id": "app_1", "site_id": "s"}')
    db = StateDB.open_dir(tmp_path)
    with db.tx():
        db.set("last_checkin_ok_at", "2026-12-01T10:00:00.000Z")
        db.set_json("last_checkin", {"at": "2026-12-01T11:00:00.000Z", "ok": False})
        db.set_json("last_contact", {"at": "2026-12-01T11:00:00.000Z", "reachable": False,
                                     "error": "connection refused"})  # fmt: skip
    db.close()
    st = read_state(tmp_path)
    assert st.last_checkin == "2026-12-01T10:00:00.000Z"
    assert st.last_attempt == "2026-12-01T11:00:00.000Z"
    assert st.server_reachable is False and st.last_error == "connection refused"
    assert epoch_of("not a time") is None and epoch_of(None) is None
