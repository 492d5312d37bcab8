"""`osiris update …` and `osiris fleet versions` against the real server over loopback: stable
``--json`` keys, a rollout names each active appliance of the site with one signed order, and
the refusals — an operator cannot sign a release (exit 4), a version is one build (exit 2, the
first kept), a downgrade the release does not allow is refused (exit 2, no rollout made), an
unknown site is 404 naming nothing (exit 2), and a generic order cannot carry an update."""

from __future__ import annotations

import json
import os

from tests.tui.test_cli import run

SYS = "/nix/store/" + "7" * 32 + "-osiris-appliance-"
REL_KEYS = {"version", "system", "name", "allow_downgrade", "issued_at", "key_id", "created_by"}
ROLLOUT_KEYS = {"rollout_id", "release", "system", "sites", "allow_downgrade", "created_at",
                "created_by", "appliances", "counts"}  # fmt: skip
TARGET_KEYS = {"appliance_id", "site_id", "hostname", "order_id", "state", "agent_version",
               "last_seen_at"}  # fmt: skip


def _ok(live, *args: str, token: str | None = None):
    r = run(live, *args, "--json", token=token)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_release_rollout_show_and_fleet_versions(live) -> None:
    site = live.site("Update clinic")["id"]
    a = live.enroll(site, f"upd-{os.urandom(2).hex()}")
    ver = f"9.{os.urandom(1)[0]}.1"
    rel = _ok(live, "update", "release", "--version", ver, "--system", SYS + ver)
    assert set(rel) == REL_KEYS and rel["version"] == ver and rel["allow_downgrade"] is False
    assert ver in [r["version"] for r in _ok(live, "update", "releases")]
    # a version is one build: signing it again for another system is refused, the first kept
    r = run(live, "update", "release", "--version", ver, "--system", SYS + "other")
    assert r.returncode == 2 and "exists" in r.stderr, r.stderr
    view = _ok(live, "update", "rollout", "--site", site, "--release", ver)
    assert set(view) == ROLLOUT_KEYS and view["sites"] == [site]
    assert [t["appliance_id"] for t in view["appliances"]] == [a.id]
    assert set(view["appliances"][0]) == TARGET_KEYS
    assert view["appliances"][0]["state"] == "pending" and view["counts"]["pending"] == 1
    shown = _ok(live, "update", "show", view["rollout_id"])
    assert shown["appliances"] == view["appliances"]
    listed = _ok(live, "update", "rollouts")
    assert view["rollout_id"] in [x["rollout_id"] for x in listed]
    fleet = _ok(live, "fleet", "versions")
    assert set(fleet) == {"appliances", "versions"}
    mine = next(x for x in fleet["appliances"] if x["appliance_id"] == a.id)
    assert mine["update"] == {"rollout_id": view["rollout_id"], "release": ver,
                              "state": "pending"}  # fmt: skip
    # the order the appliance will get is a signed update_agent carrying the release
    with live.admin() as h:
        orders = h.get(f"/api/v1/appliances/{a.id}/orders").json()["orders"]
    order = next(o for o in orders if o["id"] == view["appliances"][0]["order_id"])
    assert order["kind"] == "update_agent" and order["disruptive"] is True
    assert order["envelope"]["order"]["params"]["release"]["release"]["version"] == ver
    r = run(live, "update", "show", view["rollout_id"])
    assert r.returncode == 0 and a.id in r.stdout


def test_refusals(live) -> None:
    site = live.site("Update refusals")["id"]
    aid = live.enroll(site, f"upd-{os.urandom(2).hex()}").id
    ver = f"8.{os.urandom(1)[0]}.0"
    with live.admin() as h:
        tok = h.post("/api/v1/tokens", json={"role": "operator", "name": "upd op"}).json()["token"]
        before = len(h.get("/api/v1/rollouts").json()["rollouts"])
    r = run(live, "update", "release", "--version", ver, "--system", SYS + ver, token=tok)
    assert r.returncode == 4, r.stderr
    _ok(live, "update", "release", "--version", ver, "--system", SYS + ver)
    r = run(live, "update", "rollout", "--site", site, "--release", ver, "--allow-downgrade")
    assert r.returncode == 2 and "does not allow a downgrade" in r.stderr, r.stderr
    r = run(live, "update", "rollout", "--site", "no-such-site", "--release", ver)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run(live, "update", "rollout", "--site", site, "--release", "0.0.0-nope")
    assert r.returncode == 2, r.stderr
    with live.admin() as h:
        assert len(h.get("/api/v1/rollouts").json()["rollouts"]) == before
        r2 = h.post(f"/api/v1/appliances/{aid}/orders",
                    json={"kind": "update_agent", "params": {}})  # fmt: skip
    assert r2.status_code == 400 and r2.json()["error"]["code"] == "E_USE_ROLLOUT", r2.text
