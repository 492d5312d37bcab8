"""The release key end to end (issue 16 item 6): a real osiris-server process, real
``osiris-agent once`` processes and the lab's STAND-IN root switch (same check as the NixOS unit).

Cases: an appliance enrolled now pins ``release_vkey`` and an update through the API switches and
is healthy; a release signed by the ORDER key (a hostile server process that holds only the order
key, signing its own update order) is refused by the agent with ``rejected`` evidence and by the
stand-in on its own, nothing switches; a release signed offline (``osiris-server release sign``)
is accepted and switches; an appliance with old pins (no ``release_vkey``) still updates with an
order-key release.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest

from osiris_core.keys import Signer, Verifier, load_private_key
from osiris_core.release import make_release, sign_release, verify_release
from tests.e2e.conftest import ROOT, Central, _env
from tests.e2e.test_agent_update import S0, S1, Appliance, _release
from tests.realhost.sntp_server import SntpServer

S4 = "/nix/store/" + "5" * 32 + "-osiris-appliance-0.4.0"


@pytest.fixture()
def sntp() -> Iterator[SntpServer]:
    server = SntpServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


def _pins(a: Appliance) -> dict:
    return json.loads((a.state / "pins.json").read_text())


def test_enrolled_now_pins_the_release_key_and_updates(central: Central, tmp_path, sntp):
    a = Appliance(central, tmp_path, sntp)
    release = load_private_key(central.data / "keys" / "release.key")
    order = load_private_key(central.data / "keys" / "order.key")
    pins = _pins(a)
    assert pins["release_vkey"] == release.vkey and pins["release_vkey"] != order.vkey
    assert central.api("GET", "/log/keys")["release"] == release.vkey
    a.once()
    assert _release(central, "0.2.0", S1)["key_id"] == release.key_id_hex
    ro = a.rollout("0.2.0")
    a.once()
    a.once()
    assert a.state_of(ro) == "healthy", a.steps(ro["appliances"][0]["order_id"])
    assert a.current()["system"] == S1
    # the stand-in seeded its trusted keys from the pins: the release key alone
    trusted = (a.root / "trusted-keys").read_text()
    assert release.vkey in trusted and order.vkey not in trusted


def test_an_order_key_release_is_refused_by_agent_and_standin(central: Central, tmp_path, sntp):
    """A hostile server process holding only the order key signs a release and an order."""
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent, CycleReport
    from osiris_core.orders import new_order, sign_order

    a = Appliance(central, tmp_path, sntp)
    a.once()
    order_key = load_private_key(central.data / "keys" / "order.key")
    forged = sign_release(make_release(S1, "osiris-0.2.0", version="0.2.0"), order_key)
    # the real server refuses to store it...
    r = central.api("POST", "/releases", {"envelope": forged}, ok=(400,))
    assert r["error"]["code"] == "E_RELEASE" and central.api("GET", "/releases")["releases"] == []
    # ...and an order signed with the real order key carrying it is refused by the agent
    params = {"version": "0.2.0", "system": S1, "release": forged}
    order = new_order(a.site.id, a.id, "update_agent", params, False)
    agent = Agent(load_config(a.state / "agent.toml"), scan_self=False)
    try:
        agent.order_actions.receive([sign_order(order, order_key)], CycleReport())
    finally:
        agent.close()
    steps = a.steps(order["order_id"])
    assert [s[0] for s in steps] == ["rejected"], steps
    assert f"release signed by an unknown key {order_key.key_id_hex}" in steps[0][1], steps
    assert a.current() == {"generation": 1, "system": S0, "version": "0.1.0"}
    assert not (a.state / "update.json").exists()
    # the root half refuses the same request by itself
    req = tmp_path / "request.json"
    req.write_text(json.dumps({"action": "switch", "release": forged}, sort_keys=True,
                              separators=(",", ":")))  # fmt: skip
    p = a.standin("switch", str(req))
    assert p.returncode == 1 and "unknown key" in p.stderr, p.stderr
    assert a.current()["generation"] == 1
    assert order_key.vkey not in (a.root / "trusted-keys").read_text()


def test_an_offline_signed_release_is_accepted_and_switches(central: Central, tmp_path, sntp):
    a = Appliance(central, tmp_path, sntp)
    a.once()
    key = central.data / "keys" / "release.key"
    out = subprocess.run(
        [sys.executable, "-m", "osiris_server.cli", "release", "sign", "--key", str(key),
         "--version", "0.4.0", "--system", S4],
        env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    view = central.api("POST", "/releases", {"envelope": env})
    assert view["version"] == "0.4.0" and view["key_id"] == env["sig"]["key_id"]
    # another key's envelope: refused, nothing stored
    other = sign_release(make_release(S1, "osiris-0.2.0", version="0.2.0"),
                         Signer.generate("msp/other"))  # fmt: skip
    central.api("POST", "/releases", {"envelope": other}, ok=(400,))
    assert [r["version"] for r in central.api("GET", "/releases")["releases"]] == ["0.4.0"]
    ro = a.rollout("0.4.0")
    a.once()
    a.once()
    assert a.state_of(ro) == "healthy", a.steps(ro["appliances"][0]["order_id"])
    assert a.current()["system"] == S4


def test_old_pins_still_accept_an_order_key_release(central: Central, tmp_path, sntp):
    """An appliance enrolled before release keys: pins without release_vkey, no key id on the
    server; the rollout sends it the release signed by the order key, and it switches."""
    a = Appliance(central, tmp_path, sntp)
    pins = _pins(a)
    del pins["release_vkey"]
    (a.state / "pins.json").write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    db = sqlite3.connect(central.data / "osiris.db")
    with db:
        db.execute("UPDATE appliances SET release_key_id = NULL WHERE id = ?", (a.id,))
    db.close()
    a.once()
    _release(central, "0.2.0", S1)
    ro = a.rollout("0.2.0")
    orders = central.api("GET", f"/appliances/{a.id}/orders")["orders"]
    sent = orders[0]["envelope"]["order"]["params"]["release"]
    order = load_private_key(central.data / "keys" / "order.key")
    assert sent["sig"]["key_id"] == order.key_id_hex
    assert verify_release(sent, [Verifier.from_vkey(order.vkey)])["system"] == S1
    a.once()
    a.once()
    assert a.state_of(ro) == "healthy", a.steps(ro["appliances"][0]["order_id"])
    assert order.vkey in (a.root / "trusted-keys").read_text()
