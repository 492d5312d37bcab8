"""The setup screen (``osiris-agent setup``) driven by Textual's pilot against a real server: it
shows the key fingerprints (the same seeds the claim registers), a refused code says so and
enrols nothing, the good code enrols; the code is never on screen; an Agent built afterwards
records evidence and a second Agent on the same state dir continues the chain."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from osiris_agent.config import AgentConfig, load_config
from osiris_agent.cycle import Agent
from osiris_agent.enroll import public_fingerprint
from osiris_agent.setup_screen import SetupApp
from osiris_core.keys import Verifier, load_private_key
from tests.agent.fixtures_agent import good_clock
from tests.e2e.conftest import Central, assert_one_chain, seed_site

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


def _text(app: SetupApp, sel: str) -> str:
    return str(app.query_one(sel).render())


def _cycle(cfg: AgentConfig) -> list[dict]:
    a = Agent(cfg, measure_clock=good_clock, scan_self=False, scan_interval_s=0)
    try:
        a.cycle()
        return [e["bundle"] for e in a.outbox.envelopes()]
    finally:
        a.close()


async def test_setup_screen_enrols_and_chain_continues(central: Central, tmp_path) -> None:
    site = seed_site(central)
    code = central.api("POST", "/provisions", {"site_id": site.id})["code"]
    state = tmp_path / "state"
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(
        f'[server]\nurl = "{central.url}"\n[agent]\nstate_dir = "{state}"\nlab = true\n'
        "[enrolment]\nmac_poll = true\n"
    )
    cfg = load_config(cfg_path)
    app = SetupApp(cfg)
    async with app.run_test(size=(120, 30)) as pilot:
        info = _text(app, "#info")
        signing = load_private_key(state / "appliance.key")
        assert public_fingerprint(signing.public) in info and central.url in info
        assert "MAC requester" in info and "Not enrolled" in _text(app, "#result")
        await pilot.click("#code")
        await pilot.press(*"ocl_wrongwrongwrongwrongwrong", "enter")
        await pilot.pause()
        assert "Claim refused" in _text(app, "#result")
        assert not (state / "pins.json").exists()
        await pilot.press(*code, "enter")
        await pilot.pause()
        result = _text(app, "#result")
        assert "Enrolled as" in result, result
        assert code not in result and app.query_one("#code").value == ""
        await pilot.press("q")
    # The claim registered the keys whose fingerprints the screen showed, and the operator's
    # `osiris appliance show` prints the very same strings to compare by eye.
    appl = central.api("GET", "/appliances")["appliances"]
    assert len(appl) == 1
    pub = Verifier.from_vkey(appl[0]["signing_vkey"]).public
    assert public_fingerprint(pub) == public_fingerprint(signing.public)
    shown = subprocess.run(
        [sys.executable, "-m", "osiris_tui.cli", "--server", central.url, "appliance", "show",
         appl[0]["id"]],
        env={**os.environ, "OSIRIS_TOKEN": central.admin}, capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for line in (ln for ln in info.splitlines() if "key" in ln and "-" in ln):
        fp = line.split()[-1]
        assert fp in shown.stdout, (fp, shown.stdout)
    assert sum(1 for ln in info.splitlines() if "key" in ln and "-" in ln) >= 3
    first = _cycle(load_config(cfg_path))
    assert first and first[0]["seq"] == 1
    second = _cycle(load_config(cfg_path))
    assert len(second) > len(first) or second[-1]["seq"] > first[-1]["seq"]
    assert len(assert_one_chain(central, site.id)) > len(first)
