"""Agent releases, rollouts and fleet versions on the server (issue 16 item 6), both engines:
the rollout's orders are signed update_agent orders carrying the release and delivered at the
next check-in; a check-in's agent_version is what the fleet view shows; tenancy (a partner sees
only its own sites' rollouts and appliances, and cannot roll out to another's site) and bad
input (a 400, never a 500, and nothing made)."""

from __future__ import annotations

from osiris_core.keys import Verifier
from osiris_core.orders import MemoryReplayGuard, check_order
from osiris_core.release import verify_release
from tests.server.conftest import checkin_body

SYS = "/nix/store/" + "4" * 32 + "-osiris-appliance-0.2.0"


def test_rollout_orders_are_signed_and_delivered_fleet_shows_versions(server) -> None:
    site = server.site("Clinic A")
    a = server.enroll(site["id"], "box-a")
    r = server.admin.post("/api/v1/releases", json={"version": "0.2.0", "system": SYS})
    assert r.status_code == 201, r.text
    again = server.admin.post("/api/v1/releases", json={"version": "0.2.0", "system": SYS})
    assert again.status_code == 409
    r = server.admin.post("/api/v1/rollouts", json={"release": "0.2.0", "sites": [site["id"]],
                                                    "outside_window": True})  # fmt: skip
    assert r.status_code == 201, r.text
    ro = r.json()
    assert ro["counts"]["pending"] == 1 and ro["appliances"][0]["appliance_id"] == a.id
    # the appliance's check-in delivers it; the order verifies under the pinned order key
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a))
    assert resp.status_code == 200, resp.text
    (env,) = resp.json()["orders"]
    keys = server.admin.get("/api/v1/log/keys").json()
    order_key = Verifier.from_vkey(keys["order"])
    v = check_order(env, order_key, None, MemoryReplayGuard(), a.id)  # type: ignore[arg-type]
    assert v.status == "accepted", v.reason
    params = v.order["params"]
    assert params["version"] == "0.2.0" and params["system"] == SYS
    # the release is the release key's (pinned at enrolment), not the order key's
    assert verify_release(params["release"], [Verifier.from_vkey(keys["release"])])
    assert params["release"]["sig"]["key_id"] != order_key.key_id_hex
    view = server.admin.get(f"/api/v1/rollouts/{ro['rollout_id']}").json()
    assert view["appliances"][0]["state"] == "delivered"
    body = checkin_body(a)
    body["agent_version"] = "0.2.0"
    assert server.client(a.token).post("/api/v1/checkin", json=body).status_code == 200
    fleet = server.admin.get("/api/v1/fleet/versions").json()
    assert fleet["versions"] == {"0.2.0": 1}
    assert fleet["appliances"][0]["update"]["rollout_id"] == ro["rollout_id"]


def test_tenancy_and_bad_input(server) -> None:
    pa = server.admin.post("/api/v1/partners", json={"name": "Partner A"}).json()
    pb = server.admin.post("/api/v1/partners", json={"name": "Partner B"}).json()
    sa = server.site("A clinic", partner_id=pa["partner"]["id"])
    sb = server.site("B clinic", partner_id=pb["partner"]["id"])
    server.enroll(sa["id"], "box-a")
    server.enroll(sb["id"], "box-b")
    rel = server.admin.post("/api/v1/releases", json={"version": "0.3.0", "system": SYS})
    assert rel.status_code == 201, rel.text
    ro = server.admin.post("/api/v1/rollouts", json={"release": "0.3.0", "sites": [sb["id"]]})
    assert ro.status_code == 201, ro.text
    partner_a = server.client(api_key=pa["api_key"])
    assert partner_a.get("/api/v1/rollouts").json()["rollouts"] == []
    assert partner_a.get(f"/api/v1/rollouts/{ro.json()['rollout_id']}").status_code == 404
    r = partner_a.post("/api/v1/rollouts", json={"release": "0.3.0", "sites": [sb["id"]]})
    assert r.status_code == 404
    mine = partner_a.get("/api/v1/fleet/versions").json()["appliances"]
    assert [x["site_id"] for x in mine] == [sa["id"]]
    assert partner_a.post("/api/v1/releases",
                          json={"version": "0.4.0", "system": SYS}).status_code == 403  # fmt: skip
    before = len(server.admin.get("/api/v1/rollouts").json()["rollouts"])
    for bad in ({"release": "latest", "sites": [sa["id"]]}, {"release": "0.3.0", "sites": []},
                {"release": "0.3.0", "sites": [sa["id"]], "command": "x"},
                {"release": "0.3.0", "sites": "all"}, {"release": "9.9.9", "sites": [sa["id"]]},
                {"release": "0.3.0", "sites": [sa["id"]], "allow_downgrade": True}):  # fmt: skip
        r = server.admin.post("/api/v1/rollouts", json=bad)
        assert r.status_code in (400, 404), (bad, r.status_code, r.text)
    for bad in ({"version": "1.0.0", "system": "/tmp/evil"}, {"version": "x", "system": SYS},
                {"version": "1.0.0", "system": SYS, "url": "http://evil"}):  # fmt: skip
        assert server.admin.post("/api/v1/releases", json=bad).status_code == 400
    assert len(server.admin.get("/api/v1/rollouts").json()["rollouts"]) == before
