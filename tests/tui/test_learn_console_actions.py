"""Issue 16: approve and reject learning candidates from the console's Learning view, against a
real server. The candidates are seeded the way the other Learning tests seed them
(``tests.tui.test_cli.seed_pattern``: the rows the server's learner writes on ingest); the
server's state is checked through its API afterwards, never through the console's own view."""

from __future__ import annotations

import pytest

from osiris_tui.app import OsirisApp
from osiris_tui.screens.learn import LearnScreen
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import ConfirmModal
from tests.tui.test_cli import seed_pattern
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _server(live, cid: str) -> dict:
    with live.admin() as h:
        r = h.get(f"/api/v1/learning/candidates/{cid}")
    assert r.status_code == 200, r.text
    return r.json()


def _audit(live, action: str) -> list[dict]:
    with live.admin() as h:
        r = h.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return r.json()["audit"]


async def _open(app, pilot, cid: str) -> LearnScreen:
    await settle(app, pilot)
    await pilot.press("colon", *"learn", "enter")
    await settle(app, pilot)
    scr = app.screen
    assert isinstance(scr, LearnScreen)
    await until(app, pilot, lambda: cid in scr.records, f"{cid} in the Learning view")
    keys = [r.key.value for r in scr.table.ordered_rows]
    scr.table.move_cursor(row=keys.index(cid))
    await settle(app, pilot, 1)
    return scr


async def test_admin_approves_a_candidate_named_in_the_confirm(live) -> None:
    cid = "L1-LRN-A11A11A11A11"
    seed_pattern(live.data / "osiris.db", cid, "weird", 6, 0)
    assert _server(live, cid)["approvable"] is True
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, cid)
        assert scr.check_action("approve", ()) is True
        await pilot.press("a")
        await settle(app, pilot, 1)
        form = app.screen
        assert isinstance(form, FormScreen)
        # sites and a percentage together: the form says so, nothing is sent
        form.query_one("#f-canary_sites").value = "riverside"
        form.query_one("#f-canary_percent").value = "20"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert app.screen is form and "not both" in form.error
        form.query_one("#f-canary_percent").value = ""
        form.query_one("#f-soak_s").value = "120"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        lines = dict(confirm.lines)
        assert cid in lines["pattern"] and "6/6" in lines["pattern"]
        assert lines["runbook"] == "RB-WIN-FIREWALL-001" and lines["params"] == "{}"
        assert lines["canary"] == "sites riverside" and lines["soak"] == "120 s"
        assert "signed into the canary sites' rule sets, then the fleet after the soak" in (
            confirm.impact
        )
        await pilot.press("y")
        await until(app, pilot, lambda: _server(live, cid)["status"] == "canary",
                    "the candidate approved on the server")  # fmt: skip
        got = _server(live, cid)
        assert (got["canary_sites"], got["soak_s"]) == (["riverside"], 120)
        (entry,) = [a for a in _audit(live, "learning.approve") if cid in str(a)]
        assert entry["detail"]["canary_sites"] == ["riverside"]
        # repainted: the row is a canary now, and approve is no longer offered on it
        await until(app, pilot, lambda: scr.records[cid].status == "canary", "repaint")
        await settle(app, pilot, 1)
        assert scr.check_action("approve", ()) is None


async def test_reject_needs_a_reason_then_rejects(live) -> None:
    cid = "L1-LRN-B22B22B22B22"
    seed_pattern(live.data / "osiris.db", cid, "weird", 4, 1)
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, cid)
        await pilot.press("x")
        await settle(app, pilot, 1)
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-reason").value = "   "
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert app.screen is form and "a reason is required" in form.error
        assert _server(live, cid)["status"] == "candidate"  # nothing sent
        form.query_one("#f-reason").value = "not for every clinic"
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert ("reason", "not for every clinic") in confirm.lines
        await pilot.press("y")
        await until(app, pilot, lambda: _server(live, cid)["status"] == "rejected",
                    "the pattern rejected on the server")  # fmt: skip
        assert _server(live, cid)["reason"] == "not for every clinic"
        assert [a for a in _audit(live, "learning.reject") if cid in str(a)]


async def test_an_operators_approve_is_the_apis_403_and_nothing_changes(live) -> None:
    cid = "L1-LRN-C33C33C33C33"
    seed_pattern(live.data / "osiris.db", cid, "weird", 5, 0)
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": "operator", "name": "learn operator"})
    operator = r.json()["token"]
    before = _server(live, cid)
    app = OsirisApp(live.url, operator)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, cid)
        await pilot.press("a")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, FormScreen)
        await pilot.press("ctrl+s")
        await settle(app, pilot, 1)
        assert isinstance(app.screen, ConfirmModal)
        assert dict(app.screen.lines)["canary"] == "10 % of all sites (the server's default)"
        await pilot.press("y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen)
                    and "403" in app.screen.error, "the API's 403 in the form")  # fmt: skip
        said = app.screen.error
    assert _server(live, cid) == before
    assert not [a for a in _audit(live, "learning.approve") if cid in str(a)]
    # word for word: what the API answered is what the form shows
    with httpx_client(live, operator) as h:
        r = h.post(f"/api/v1/learning/candidates/{cid}/approve", json={})
    assert r.status_code == 403 and r.json()["error"]["message"] in said, (r.text, said)


def httpx_client(live, token: str):  # noqa: ANN201
    import httpx

    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"})


async def test_read_only_and_unapprovable_rows_offer_no_decision(live) -> None:
    cid = "L1-LRN-D44D44D44D44"
    seed_pattern(live.data / "osiris.db", cid, "weird", 5, 0)
    done = "L1-LRN-E55E55E55E55"
    seed_pattern(live.data / "osiris.db", done, "weird", 5, 0, status="rejected")
    before = _server(live, cid)
    app = OsirisApp(live.url, live.token, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _open(app, pilot, cid)
        assert scr.check_action("approve", ()) is None
        await pilot.press("a")
        await pilot.press("x")
        await settle(app, pilot, 1)
        assert app.screen is scr  # no form
    assert _server(live, cid) == before
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        # a rejected pattern: neither decision is open (shown dimmed, the key does nothing)
        await pilot.press("colon", *"learn", "enter")
        await settle(app, pilot)
        scr = app.screen
        await until(app, pilot, lambda: done in scr.records, "the rejected row")
        scr.table.move_cursor(row=[r.key.value for r in scr.table.ordered_rows].index(done))
        await settle(app, pilot, 1)
        assert scr.check_action("approve", ()) is None and scr.check_action("reject", ()) is None
        await pilot.press("a")
        await settle(app, pilot, 1)
        assert app.screen is scr


async def test_a_pattern_the_server_refuses_is_not_offered_for_approval(live) -> None:
    """A pattern that can never be approved (here: its runbook cannot remediate its check; the
    API would answer 409 E_REFUSED) is not approvable in the console, and enter shows why."""
    cid = "L1-LRN-F66F66F66F66"
    seed_pattern(live.data / "osiris.db", cid, "weird", 5, 0, check="linux_firewall")
    refusal = _server(live, cid)["refusal"]
    assert refusal and "cannot remediate" in refusal
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _open(app, pilot, cid)
        assert scr.check_action("approve", ()) is None
        assert scr.check_action("reject", ()) is True  # it can still be rejected
        await pilot.press("a")
        await settle(app, pilot, 1)
        assert app.screen is scr
        title, doc = scr.detail(scr.records[cid])
        assert doc["refusal"] == refusal and doc["approvable"] is False
    assert _server(live, cid)["status"] == "candidate"
