"""Console parity with the CLI (issue 13 item 8), end to end against the real server.

Each action: the form checks input with the CLI's rules (a refusal stays in the form and sends
nothing), the confirm dialog names the target and the impact, yes changes the server's state,
and `--read-only` blocks it. Runbook parameters, incident acknowledge/assign/resolve, claim-code
withdraw, site add/edit, and the credential form's every field.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from textual.widgets import Select

from osiris_tui.app import OsirisApp
from osiris_tui.client import Client
from osiris_tui.screens.appliance import ApplianceScreen
from osiris_tui.screens.provision import ProvisionScreen
from osiris_tui.widgets.forms import FormScreen
from osiris_tui.widgets.modals import ConfirmModal
from osiris_tui.widgets.table import KeyedTable
from tests.tui.conftest import LiveServer, start
from tests.tui.seed import check
from tests.tui.waiting import settle, until

pytestmark = pytest.mark.anyio

SITE = "parity"
HOST = "par-app-01"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own: these tests add sites, appliances and credentials, which
    the shared server's tests (which count its fleet) must not see."""
    proc, srv = start(tmp_path_factory.mktemp("parity-server"))
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def parity(live: LiveServer):  # noqa: ANN201
    """The site these tests change, one appliance that has checked in."""
    live.site("Parity Clinic", SITE)
    a = live.enroll(SITE, HOST)
    a.checkin([check("pc01", "firewall", "drift")])
    return a


def table(app, sel: str) -> KeyedTable:  # noqa: ANN001
    return app.screen.query_one(sel, KeyedTable)


def cells(t: KeyedTable, col: str) -> list[str]:
    return [t.get_cell(r.key, col).plain for r in t.ordered_rows]


def dialog_text(m: ConfirmModal) -> str:
    """Everything the confirm dialog shows: title, each line, the impact."""
    return " | ".join([m.title_text, *(f"{k}: {v}" for k, v in m.lines), m.impact])


async def open_appliance(app, pilot, tab: str) -> ApplianceScreen:  # noqa: ANN001
    await settle(app, pilot)
    await until(app, pilot, lambda: HOST in cells(table(app, "#appliances"), "host"), HOST)
    t = table(app, "#appliances")
    t.move_cursor(row=cells(t, "host").index(HOST))
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ApplianceScreen)
    await pilot.press(tab)
    await settle(app, pilot)
    return app.screen


async def press(app, pilot, *keys: str) -> None:  # noqa: ANN001
    await pilot.press(*keys)
    await settle(app, pilot)


def fill(form: FormScreen, **values: str) -> None:
    for name, v in values.items():
        form.query_one(f"#f-{name}").value = v  # type: ignore[attr-defined]


def form_error(form: FormScreen) -> str:
    return form.error


async def test_runbook_parameter_form_checks_bounds_confirms_and_sets(live, parity) -> None:
    rb = "RB-WIN-PATCH-001"
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_appliance(app, pilot, "2")
        rbs = table(app, "#rb-table")
        await until(app, pilot, lambda: rb in cells(rbs, "id"), "runbooks")
        rbs.move_cursor(row=cells(rbs, "id").index(rb))
        await press(app, pilot, "p")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen), "param form")
        form = app.screen
        assert isinstance(form, FormScreen)
        labels = " ".join(f.label + " " + f.note for f in form.fields)
        assert "critical_overdue_days = 30  (set at default)" in labels
        assert "1..60; lower is stricter" in labels and "set by operator" in labels
        fill(form, p_critical_overdue_days="99")
        await press(app, pilot, "ctrl+s")
        assert app.screen is form, "an out-of-bounds value must not leave the form"
        assert "99 is above the maximum 60" in form_error(form)
        assert "allowed: 1..60" in form_error(form)
        fill(form, p_critical_overdue_days="15")
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        text = dialog_text(modal)
        for part in ("Parity Clinic", rb, "critical_overdue_days: 30 → 15", "Impact:", "site"):
            assert part in text
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(
                app, pilot,
                lambda: c.runbook_params(SITE, rb).get("site", {}).get("critical_overdue_days")
                == 15,
                "the site value",
            )  # fmt: skip
        assert any("PUT params site=parity" in a.what and a.ok for a in app.activity)


async def test_incident_acknowledge_assign_resolve(live, parity) -> None:
    with parity.http() as h:
        r = h.post("/api/v1/incidents", json={"incidents": [
            {"kind": "chain_gap", "severity": "warning", "host_id": "pc01",
             "summary": "parity test incident"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    inc_id = r.json()["incidents"][0]["id"]
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_appliance(app, pilot, "5")
        incs = table(app, "#inc-table")
        await until(app, pilot, lambda: incs.get_row_index(inc_id) >= 0 if incs.row_count
                    else False, "the incident row")  # fmt: skip
        incs.move_cursor(row=incs.get_row_index(inc_id))

        await press(app, pilot, "a")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert inc_id in dialog_text(modal) and "pc01" in dialog_text(modal)
        assert "stays open" in modal.impact
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(app, pilot, lambda: c.incident(inc_id).acknowledged_by is not None, "ack")

        await press(app, pilot, "s")
        form = app.screen
        assert isinstance(form, FormScreen)
        fill(form, assignee="Dana <b>")
        await press(app, pilot, "ctrl+s")
        assert app.screen is form and "may use letters" in form_error(form)
        fill(form, assignee="Dana Lee")
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert "unassigned → Dana Lee" in dialog_text(modal) and "Dana Lee owns" in modal.impact
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(app, pilot, lambda: c.incident(inc_id).assignee == "Dana Lee", "assign")
        await until(app, pilot, lambda: "Dana Lee" in cells(incs, "owner"), "owner column")

        incs.move_cursor(row=incs.get_row_index(inc_id))
        await press(app, pilot, "x")
        form = app.screen
        assert isinstance(form, FormScreen)
        fill(form, note="rebooted the appliance; chain resumed")
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert "Resolve incident" in modal.title_text and "closes" in modal.impact
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(app, pilot, lambda: c.incident(inc_id).status == "resolved", "resolved")
            done = c.incident(inc_id)
            audit = [e.action for e in c.audit(site_id=SITE, limit=50)]
    assert done.resolution_note == "rebooted the appliance; chain resumed"
    for action in ("incident.acknowledge", "incident.assign", "incident.resolve"):
        assert action in audit


async def test_withdraw_claim_code(live, parity) -> None:
    with Client(live.url, live.token) as c:
        code = c.create_provision(SITE)
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "colon", *"prov", "enter")
        assert isinstance(app.screen, ProvisionScreen)
        t = table(app, "#prov-table")
        await until(app, pilot, lambda: code["id"] in [r.key.value for r in t.ordered_rows],
                    "the new code")  # fmt: skip
        t.move_cursor(row=t.get_row_index(code["id"]))
        await press(app, pilot, "d")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert f"site: {SITE}" in dialog_text(modal) and code["id"] in modal.title_text
        assert "stops working" in modal.impact
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(
                app, pilot, lambda: code["id"] not in [p.id for p in c.provisions()], "withdrawn"
            )


async def test_add_and_edit_site(live, parity) -> None:
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "a")  # Appliances tab: the key does nothing there
        assert not isinstance(app.screen, FormScreen)
        await press(app, pilot, "tab")
        await press(app, pilot, "a")
        form = app.screen
        assert isinstance(form, FormScreen)
        fill(form, name="Parity Two", site_id="parity-two", interval="5")
        await press(app, pilot, "ctrl+s")
        assert app.screen is form and "between 10 and 3600" in form_error(form)
        fill(form, interval="120")
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert "Parity Two" in modal.title_text and "id: parity-two" in dialog_text(modal)
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(app, pilot, lambda: "parity-two" in [s.id for s in c.sites()], "created")
            assert c.site("parity-two").checkin_interval_s == 120
        sites = table(app, "#sites")
        await until(app, pilot, lambda: "parity-two" in [r.key.value for r in sites.ordered_rows],
                    "the new row")  # fmt: skip
        sites.move_cursor(row=sites.get_row_index("parity-two"))
        await press(app, pilot, "e")
        form = app.screen
        assert isinstance(form, FormScreen)
        await press(app, pilot, "ctrl+s")
        assert app.screen is form and "nothing changed" in form_error(form)
        fill(form, name="Parity Two North")
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert "name: Parity Two → Parity Two North" in dialog_text(modal)
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(app, pilot, lambda: c.site("parity-two").name == "Parity Two North",
                        "renamed")  # fmt: skip


async def test_credential_form_every_field(live, parity, tmp_path) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(KEY)
    app = OsirisApp(live.url, live.token)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_appliance(app, pilot, "3")
        with Client(live.url, live.token) as c:
            before = len(c.credentials(SITE))

        # a password typed twice differently: refused in the form, nothing sent
        await press(app, pilot, "a")
        form = app.screen
        assert isinstance(form, FormScreen)
        fill(form, host_id="pw01", address="10.0.0.30", username="svc", password="one-secret",
             password2="other-secret")  # fmt: skip
        sent = len(app.activity)
        await press(app, pilot, "ctrl+s")
        assert app.screen is form and "the two passwords differ" in form_error(form)
        assert len(app.activity) == sent
        with Client(live.url, live.token) as c:
            assert len(c.credentials(SITE)) == before

        # the server refuses (an address it does not accept): its words, in the same form
        fill(form, password2="one-secret", address="not an address!")
        await press(app, pilot, "ctrl+s")
        assert isinstance(app.screen, ConfirmModal)
        await press(app, pilot, "y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen), "the form again")
        again = app.screen
        assert isinstance(again, FormScreen)
        assert "address" in form_error(again) and again.values()["host_id"] == "pw01"
        await press(app, pilot, "escape")

        # an ssh key from a file, a port, a pinned host key
        await press(app, pilot, "a")
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-kind", Select).value = "ssh_key"
        await settle(app, pilot)
        assert not form.query_one("#f-password").display
        assert form.query_one("#f-key_path").display
        fill(form, host_id="pk01", address="10.0.0.31", port="2222", username="osiris",
             key_path=str(key_file), fingerprints="SHA256:abcdefghijklmnop")  # fmt: skip
        await press(app, pilot, "ctrl+s")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        text = dialog_text(modal)
        assert "host: pk01" in text and "port 2222" in text and f"site: {SITE}" in text
        assert "Impact:" in modal.impact
        await press(app, pilot, "y")
        with Client(live.url, live.token) as c:
            await until(
                app, pilot, lambda: "pk01" in [x.host_id for x in c.credentials(SITE)], "stored"
            )
            cred = next(x for x in c.credentials(SITE) if x.host_id == "pk01")
            secret = c.reveal_credential(SITE, cred.id)
            raw = c.credential(SITE, cred.id).raw
    assert (cred.kind, cred.port, cred.username) == ("ssh_key", 2222, "osiris")
    assert raw["host_key_fingerprints"] == ["SHA256:abcdefghijklmnop"]
    assert secret["private_key"] == KEY
    assert all(KEY.splitlines()[1] not in a.what for a in app.activity)
    assert all("one-secret" not in a.what for a in app.activity)


async def test_read_only_blocks_every_parity_action(live, parity) -> None:
    with Client(live.url, live.token) as c:
        code = c.create_provision(SITE)
        creds = len(c.credentials(SITE))
    app = OsirisApp(live.url, live.token, read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        scr = await open_appliance(app, pilot, "2")
        for tab, keys in (("2", "p"), ("3", "a"), ("5", "asxR")):
            await press(app, pilot, tab)
            for k in keys:
                await press(app, pilot, k)
                assert app.screen is scr, f"tab {tab} key {k} opened {app.screen!r}"
        await press(app, pilot, "escape")
        await press(app, pilot, "tab")
        await press(app, pilot, "a")
        await press(app, pilot, "e")
        assert not isinstance(app.screen, FormScreen | ConfirmModal)
        await press(app, pilot, "colon", *"prov", "enter")
        t = table(app, "#prov-table")
        await until(app, pilot, lambda: code["id"] in [r.key.value for r in t.ordered_rows],
                    "the code")  # fmt: skip
        t.move_cursor(row=t.get_row_index(code["id"]))
        await press(app, pilot, "d")
        assert isinstance(app.screen, ProvisionScreen)
    with Client(live.url, live.token) as c:
        assert code["id"] in [p.id for p in c.provisions()]
        assert len(c.credentials(SITE)) == creds
    assert app.activity == []


def test_cli_incident_ack_assign_resolve_note(live, parity) -> None:
    """The same three changes from the CLI, so neither side lacks what the other has."""
    import json

    from click.testing import CliRunner

    from osiris_tui.cli import main

    with parity.http() as h:
        inc = {"kind": "chain_gap", "severity": "info", "host_id": "pc02", "summary": "cli"}
        r = h.post("/api/v1/incidents", json={"incidents": [inc]})
    inc_id = r.json()["incidents"][0]["id"]
    env = {"OSIRIS_SERVER": live.url, "OSIRIS_TOKEN": live.token,
           "OSIRIS_PROFILE_FILE": "/nonexistent"}  # fmt: skip

    def osiris(*args: str) -> dict:
        res = CliRunner().invoke(main, [*args, "--json"], env=env)
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    assert osiris("incident", "ack", inc_id)["acknowledged_by"]
    assert osiris("incident", "assign", inc_id, "Sam Ortiz")["assignee"] == "Sam Ortiz"
    assert osiris("incident", "assign", inc_id, "--clear")["assignee"] is None
    res = CliRunner().invoke(main, ["incident", "assign", inc_id], env=env)
    assert res.exit_code == 2 and "ASSIGNEE or --clear" in res.output
    done = osiris("incident", "resolve", inc_id, "--note", "false alarm")
    assert (done["status"], done["resolution_note"]) == ("resolved", "false alarm")


async def test_server_refusal_of_a_parameter_is_shown_verbatim_in_the_form(live, parity) -> None:
    """An operator may not set a trust-redirecting parameter: the form says who may set it, and
    the server's refusal comes back into the same form, word for word."""
    rb, name = "RB-WIN-NET-001", "dns_servers"
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": "operator", "name": "parity operator"})
    assert r.status_code == 201, r.text
    app = OsirisApp(live.url, r.json()["token"])
    async with app.run_test(size=(160, 45)) as pilot:
        await open_appliance(app, pilot, "2")
        rbs = table(app, "#rb-table")
        await until(app, pilot, lambda: rb in cells(rbs, "id"), "runbooks")
        rbs.move_cursor(row=cells(rbs, "id").index(rb))
        await press(app, pilot, "p")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen), "param form")
        form = app.screen
        assert isinstance(form, FormScreen)
        assert "set by admin" in next(f.note for f in form.fields if f.name == f"p_{name}")
        fill(form, **{f"p_{name}": "10.0.0.53"})
        await press(app, pilot, "ctrl+s")
        assert isinstance(app.screen, ConfirmModal)
        await press(app, pilot, "y")
        await until(app, pilot, lambda: isinstance(app.screen, FormScreen), "the form again")
        again = app.screen
        assert isinstance(again, FormScreen)
        assert again.values()[f"p_{name}"] == "10.0.0.53"
        refusal = f"{rb}: {name} is trust-redirecting; only an admin may set it"
        assert refusal in form_error(again)
        assert any(not a.ok and refusal in a.result for a in app.activity)
    with Client(live.url, live.token) as c:
        assert name not in c.runbook_params(SITE, rb).get("site", {})
