"""Agent updates end to end (issue 16 item 6): a real osiris-server process, real agent processes
(``osiris-agent once`` per cycle, clock checked against a loopback SNTP server) and the lab's
STAND-IN root switch (``osiris_lab.standin_switch``: generations, ``previous``, the same release
check as the NixOS unit).

Cases: an update is requested, switched and found healthy (the next check-in reports the new
version, the rollout says healthy, the fleet view shows it); an unhealthy build is rolled back
(evidence ``reverted``, incident ``update_rolled_back``, the old version again); hostile: a
release no pinned key signed (planted in the server's index) is refused with evidence and
nothing is switched, and the stand-in refuses the same request on its own; a downgrade is
refused unless release and order both say so; a replayed update order is refused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osiris_core.keys import Signer
from osiris_core.release import make_release, sign_release
from tests.e2e.conftest import ALL_DAYS, ROOT, Central, _env, enroll_agent, seed_site
from tests.realhost.sntp_server import SntpServer

S0 = "/nix/store/" + "0" * 32 + "-osiris-appliance-0.1.0"
S1 = "/nix/store/" + "1" * 32 + "-osiris-appliance-0.2.0"
S2 = "/nix/store/" + "2" * 32 + "-osiris-appliance-0.1.5"
S3 = "/nix/store/" + "3" * 32 + "-osiris-appliance-0.3.0"
WINDOW = {"days": ALL_DAYS, "start": "00:00", "duration_min": 1440, "timezone": "UTC"}


@pytest.fixture()
def sntp() -> Any:
    server = SntpServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


class Appliance:
    """An enrolled appliance whose cycles are real ``osiris-agent once`` processes."""

    def __init__(self, c: Central, tmp: Path, sntp: Any) -> None:
        self.c = c
        self.site = seed_site(c, WINDOW)
        self.state = tmp / "state"
        self.root = tmp / "standin-switch"
        self.switch = [sys.executable, "-m", "osiris_lab.standin_switch", "--root",
                       str(self.root), "--pins", str(self.state / "pins.json")]  # fmt: skip
        port = sntp.sock.getsockname()[1]
        extra = (
            f"[agent]\nswitch_command = {json.dumps(self.switch)}\n"
            f'[ntp]\nservers = ["127.0.0.1:{port}"]\nmin_good = 1\n'
        )
        agent = enroll_agent(c, self.site, self.state, extra)
        agent.close()
        self.id = self.site.appliance_id
        init = self.standin("init", "--version", "0.1.0", "--system", S0)
        assert init.returncode == 0, init.stderr

    def standin(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.switch, *args], env=_env(), capture_output=True,
                              text=True, cwd=ROOT, check=False)  # fmt: skip

    def current(self) -> dict[str, Any]:
        return json.loads(self.standin("current").stdout)

    def once(self) -> None:
        p = subprocess.run(
            [sys.executable, "-m", "osiris_agent.cli", "once", "--config",
             str(self.state / "agent.toml")],
            env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert p.returncode in (0, 1), p.stderr[-2000:]

    def steps(self, order_id: str) -> list[tuple[str, str]]:
        """(outcome, action_taken) of the order's bundles, read from the agent's own outbox."""
        db = sqlite3.connect(self.state / "state.db")
        try:
            rows = db.execute("SELECT envelope FROM evidence ORDER BY seq").fetchall()
        finally:
            db.close()
        out = []
        for (env,) in rows:
            b = json.loads(bytes(env))["bundle"]
            if b["order_id"] == order_id:
                out.append((b["outcome"], b["action_taken"]))
        return out

    def version(self) -> str:
        fleet = self.c.api("GET", "/fleet/versions")["appliances"]
        return next(a for a in fleet if a["appliance_id"] == self.id)["agent_version"]

    def rollout(self, release: str, **kw: Any) -> dict[str, Any]:
        body = {"release": release, "sites": [self.site.id], "outside_window": True, **kw}
        return self.c.api("POST", "/rollouts", body)

    def state_of(self, rollout: dict[str, Any]) -> str:
        view = self.c.api("GET", f"/rollouts/{rollout['rollout_id']}")
        return view["appliances"][0]["state"]


def _release(c: Central, version: str, system: str, **kw: Any) -> dict[str, Any]:
    return c.api("POST", "/releases", {"version": version, "system": system, **kw})


def test_update_healthy_then_downgrade_and_replay_refused(central: Central, tmp_path, sntp):
    a = Appliance(central, tmp_path, sntp)
    a.once()
    assert a.version() == "0.1.0"
    _release(central, "0.2.0", S1)
    ro = a.rollout("0.2.0")
    assert [x["state"] for x in ro["appliances"]] == ["pending"]
    order_id = ro["appliances"][0]["order_id"]
    a.once()  # the order arrives: requested, then switched (the stand-in re-checked the sig)
    assert [s[0] for s in a.steps(order_id)] == ["compliant", "compliant"], a.steps(order_id)
    assert a.steps(order_id)[0][1].startswith("order update_agent: compliant: requested: 0.1.0")
    assert "switched: 0.1.0 -> 0.2.0" in a.steps(order_id)[1][1]
    assert a.current()["system"] == S1 and a.current()["generation"] == 2
    a.once()  # the next cycle checks in as 0.2.0, runs, and is judged healthy
    assert "healthy: 0.2.0" in a.steps(order_id)[-1][1]
    assert a.version() == "0.2.0"
    assert a.state_of(ro) == "healthy"
    fleet = central.api("GET", "/fleet/versions")
    assert fleet["versions"] == {"0.2.0": 1}
    assert fleet["appliances"][0]["update"]["state"] == "healthy"

    # a downgrade: refused by the server when the release does not allow it...
    _release(central, "0.1.5", S2)
    central.api("POST", "/rollouts", {"release": "0.1.5", "sites": [a.site.id],
                                      "allow_downgrade": True}, ok=(400,))  # fmt: skip
    # ...and by the agent when the order does not ask for it: nothing switched
    down = a.rollout("0.1.5")
    a.once()
    assert a.state_of(down) == "refused"
    why = a.steps(down["appliances"][0]["order_id"])[-1][1]
    assert "needs allow_downgrade in the order" in why, why
    assert a.current()["generation"] == 2 and a.version() == "0.2.0"

    # a replay of the healthy update's signed order is refused by the replay guard
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent, CycleReport

    orders = central.api("GET", f"/appliances/{a.id}/orders")["orders"]
    env = next(o["envelope"] for o in orders if o["id"] == order_id)
    agent = Agent(load_config(a.state / "agent.toml"), scan_self=False)
    try:
        agent.order_actions.receive([env], CycleReport())
    finally:
        agent.close()
    assert a.steps(order_id)[-1][0] == "rejected"
    assert a.current()["generation"] == 2


def test_unhealthy_update_rolls_back(central: Central, tmp_path, sntp):
    a = Appliance(central, tmp_path, sntp)
    a.once()
    a.standin("unhealthy", "0.3.0")  # the build this release names comes up broken
    _release(central, "0.3.0", S3)
    ro = a.rollout("0.3.0")
    order_id = ro["appliances"][0]["order_id"]
    a.once()
    assert a.current()["version"] == "0.3.0"
    a.once()  # health check fails -> rollback to the system the switch recorded
    outcomes = [s[0] for s in a.steps(order_id)]
    assert outcomes == ["compliant", "compliant", "reverted"], a.steps(order_id)
    assert "rolled_back: 0.3.0 was unhealthy" in a.steps(order_id)[-1][1]
    assert a.current()["system"] == S0 and a.current()["generation"] == 3
    assert a.state_of(ro) == "rolled_back"
    incidents = central.api("GET", f"/incidents?site={a.site.id}")["incidents"]
    assert any(i["kind"] == "update_rolled_back" for i in incidents), incidents
    a.once()
    assert a.version() == "0.1.0"


def _stored(central: Central, version: str) -> dict:
    db = sqlite3.connect(central.data / "osiris.db")
    try:
        row = db.execute("SELECT envelope FROM agent_releases WHERE version = ?",
                         (version,)).fetchone()  # fmt: skip
    finally:
        db.close()
    return json.loads(row[0])


def test_release_not_signed_by_the_pinned_key_is_refused(central: Central, tmp_path, sntp):
    a = Appliance(central, tmp_path, sntp)
    a.once()
    _release(central, "0.2.0", S1)
    # someone with write access to the index (not the order key) swaps the stored release
    rogue = sign_release(make_release(S1, "osiris-0.2.0", version="0.2.0"),
                         Signer.generate("rogue/release"))  # fmt: skip
    # ... naming the real release key's id (else the server itself refuses the rollout, 409)
    rogue["sig"]["key_id"] = _stored(central, "0.2.0")["sig"]["key_id"]
    db = sqlite3.connect(central.data / "osiris.db")
    with db:
        db.execute("UPDATE agent_releases SET envelope = ? WHERE version = '0.2.0'",
                   (json.dumps(rogue),))  # fmt: skip
    db.close()
    ro = a.rollout("0.2.0")
    a.once()
    steps = a.steps(ro["appliances"][0]["order_id"])
    assert [s[0] for s in steps] == ["rejected"], steps
    assert "release signature does not verify" in steps[0][1]
    assert a.current() == {"generation": 1, "system": S0, "version": "0.1.0"}
    assert a.state_of(ro) == "refused"
    # the root half refuses the same request by itself (a compromised agent gains nothing)
    req = tmp_path / "request.json"
    req.write_text(json.dumps({"action": "switch", "release": rogue}, sort_keys=True,
                              separators=(",", ":")))  # fmt: skip
    p = a.standin("switch", str(req))
    assert p.returncode == 1 and "does not verify" in p.stderr, p.stderr
    assert a.current()["generation"] == 1


def test_an_order_that_misnames_its_release_is_refused(central: Central, tmp_path, sntp):
    """An order signed with the real order key (a hostile or buggy server) whose system is not
    the one its genuine release names: refused before any switch, with the reason."""
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent, CycleReport
    from osiris_core.keys import load_private_key
    from osiris_core.orders import new_order, sign_order

    a = Appliance(central, tmp_path, sntp)
    a.once()
    key = load_private_key(central.data / "keys" / "order.key")
    release_key = load_private_key(central.data / "keys" / "release.key")
    genuine = sign_release(make_release(S1, "osiris-0.2.0", version="0.2.0"), release_key)
    made = []
    for params in ({"version": "0.2.0", "system": S3, "release": genuine},
                   {"version": "0.3.0", "system": S1, "release": genuine}):  # fmt: skip
        order = new_order(a.site.id, a.id, "update_agent", params, False)
        made.append(order["order_id"])
        agent = Agent(load_config(a.state / "agent.toml"), scan_self=False)
        try:
            agent.order_actions.receive([sign_order(order, key)], CycleReport())
        finally:
            agent.close()
    assert "system is not the release's" in a.steps(made[0])[-1][1]
    assert "version is not the release's" in a.steps(made[1])[-1][1]
    assert [a.steps(o)[-1][0] for o in made] == ["rejected", "rejected"]
    assert a.current()["generation"] == 1 and not (a.state / "update.json").exists()
