"""Enrolment grants nothing by itself (DESIGN §3.7, §6), against a real osiris-server.

The attackers: someone on the clinic LAN who knows the box's MAC, a flood of anonymous polls, and
an operator or partner who may not reveal secrets but can make claim codes and enrol a box whose
keys they hold. None of them gets a credential; the real box enrols once an operator names its
full fingerprint, and an admin-made or admin-confirmed appliance gets credentials — sealed to its
own box key.
"""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest
from nacl.public import PrivateKey

from osiris_core.seal import SealError, open_sealed
from tests.server.conftest import checkin_body, start_server, stop_server
from tests.server.test_resources import WINRM

SECRET = "S3cret-Pa55!"


def add_cred(server, site_id: str) -> None:  # noqa: ANN001
    r = server.admin.post(f"/api/v1/sites/{site_id}/credentials", json=WINRM)
    assert r.status_code == 201, r.text


def _token(server, role: str) -> str:  # noqa: ANN001
    r = server.admin.post("/api/v1/tokens", json={"role": role, "name": f"{role} token"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _code(client: httpx.Client, site_id: str) -> str:
    r = client.post("/api/v1/provisions", json={"site_id": site_id})
    assert r.status_code == 201, r.text
    return r.json()["code"]


def _checkin(server, a) -> dict:  # noqa: ANN001
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a))
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------ MAC enrolment


def test_knowing_a_mac_grants_nothing(server) -> None:
    site = server.site()
    anon = server.client()
    mac = "aa:bb:cc:00:11:22"
    box = {"X-Osiris-Enroll-Secret": "a" * 43}
    thief = {"X-Osiris-Enroll-Secret": "b" * 43}
    # the thief polls FIRST: it binds nothing, it only makes a request of its own
    t = anon.get(f"/api/v1/provision/{mac}", headers=thief).json()
    mine = anon.get(f"/api/v1/provision/{mac}", headers=box).json()
    assert t["status"] == mine["status"] == "pending" and t["fingerprint"] != mine["fingerprint"]
    assert len(mine["fingerprint"].replace("-", "")) == 64  # 256 bits, shown in full
    listed = server.admin.get("/api/v1/provisions").json()["mac_requests"]
    assert {r["requester_fingerprint"] for r in listed if r["mac"] == mac} == {
        t["fingerprint"],
        mine["fingerprint"],
    }
    assert "requester_hash" not in json.dumps(listed)
    # an approval must name the requester, in full
    r = server.admin.post(f"/api/v1/provision/{mac}", json={"site_id": site["id"]})
    assert r.status_code == 400
    short = mine["fingerprint"][:14]
    r = server.admin.post(
        f"/api/v1/provision/{mac}", json={"site_id": site["id"], "requester_fingerprint": short}
    )
    assert r.status_code == 400 and "full fingerprint" in r.json()["error"]["message"]
    # no approval for a MAC nobody requested
    r = server.admin.post(
        "/api/v1/provision/aa:bb:cc:00:11:99",
        json={"site_id": site["id"], "requester_fingerprint": mine["fingerprint"]},
    )
    assert r.status_code == 404
    r = server.admin.post(
        f"/api/v1/provision/{mac}",
        json={"site_id": site["id"], "requester_fingerprint": mine["fingerprint"]},
    )
    assert r.status_code == 201, r.text
    # the thief, polling again, still gets nothing; the box gets its code
    again = anon.get(f"/api/v1/provision/{mac}", headers=thief).json()
    assert again["status"] == "pending" and "claim_code" not in again
    st = anon.get(f"/api/v1/provision/{mac}", headers=box).json()
    assert st["status"] == "approved" and st["claim_code"].startswith("ocl_")
    a = server.enroll(site["id"], "ap", code=st["claim_code"])
    assert a.enroll["quarantined"] is False  # an admin approved it
    # removing a request; unknown MAC 404; malformed MAC 400
    assert anon.get(f"/api/v1/provision/{mac}", headers=thief).status_code == 200
    assert server.admin.delete(f"/api/v1/provision/{mac}").status_code == 200
    assert server.admin.delete(f"/api/v1/provision/{mac}").status_code == 404
    assert anon.get("/api/v1/provision/not-a-mac", headers=box).status_code == 400


def test_pending_requests_are_capped_per_source_and_expire(server) -> None:
    from osiris_server.api.provisioning import MAX_PENDING_PER_SOURCE

    anon = server.client()
    for i in range(MAX_PENDING_PER_SOURCE):
        secret = {"X-Osiris-Enroll-Secret": f"{i:02d}" + "x" * 40}
        r = anon.get(f"/api/v1/provision/aa:bb:cc:00:20:{i:02x}", headers=secret)
        assert r.status_code == 200, r.text
    r = anon.get(
        "/api/v1/provision/aa:bb:cc:00:21:00", headers={"X-Osiris-Enroll-Secret": "z" * 43}
    )
    assert r.status_code == 429 and r.json()["error"]["code"] == "E_RATE_LIMIT"
    # another source is not locked out by that one
    other = httpx.Client(
        base_url=server.url, timeout=20,
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )  # fmt: skip
    with other:
        r = other.get(
            "/api/v1/provision/aa:bb:cc:00:21:00", headers={"X-Osiris-Enroll-Secret": "y" * 43}
        )
        assert r.status_code == 200, r.text
    # requests expire: once their time is past, the source may ask again
    with server.app.db.write() as w:
        w.execute("UPDATE enroll_requests SET expires_epoch = 1 WHERE source = '127.0.0.1'")
    r = anon.get(
        "/api/v1/provision/aa:bb:cc:00:21:00", headers={"X-Osiris-Enroll-Secret": "z" * 43}
    )
    assert r.status_code == 200, r.text
    left = [x for x in server.admin.get("/api/v1/provisions").json()["mac_requests"]
            if x["source"] == "127.0.0.1"]  # fmt: skip
    assert len(left) == 1


# ------------------------------------------------------------------ quarantine


@pytest.mark.parametrize("who", ["operator", "partner"])
def test_a_non_admin_code_enrols_a_quarantined_appliance(server, who) -> None:
    """The reveal bypass: a non-admin makes a code, enrols a box whose keys it holds, and
    would read every secret of the site at check-in. It gets none until an admin confirms."""
    if who == "operator":
        staff = server.client(_token(server, "operator"))
        site = server.site()
    else:
        p = server.admin.post("/api/v1/partners", json={"name": "P-q"}).json()
        staff = server.client(api_key=p["api_key"])
        site = staff.post("/api/v1/sites", json={"name": "partner clinic"}).json()
    assert (
        server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).status_code == 201
    )
    a = server.enroll(site["id"], "rogue", code=_code(staff, site["id"]))
    assert a.enroll["quarantined"] is True
    resp = _checkin(server, a)
    assert resp["targets"] == [] and SECRET not in json.dumps(resp)
    listed = server.admin.get(f"/api/v1/sites/{site['id']}/appliances").json()
    row = next(x for x in listed["appliances"] if x["id"] == a.id)
    assert row["quarantined"] == 1
    # it may still send evidence (it is watched, not trusted)
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": [a.envelope()]})
    assert r.json()["results"][0]["status"] == "accepted"
    # every enrolment is an incident (and an alert); this one critical
    inc = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()["incidents"]
    enrolled = [i for i in inc if i["kind"] == "appliance_enrolled"]
    assert enrolled and enrolled[0]["severity"] == "critical"
    assert "QUARANTINED" in enrolled[0]["summary"]
    # only an admin can confirm
    r = staff.post(f"/api/v1/appliances/{a.id}/confirm", json={})
    assert r.status_code in (403, 404)
    assert _checkin(server, a)["targets"] == []
    r = server.admin.post(f"/api/v1/appliances/{a.id}/confirm", json={})
    assert r.status_code == 200 and r.json()["confirmed"] is True
    assert a.opened(_checkin(server, a))[0]["password"] == SECRET
    audit = server.admin.get("/api/v1/audit", params={"action": "appliance.confirm"}).json()
    assert a.id in json.dumps(audit)
    r = server.admin.post(f"/api/v1/appliances/{a.id}/confirm", json={})
    assert r.status_code == 200 and r.json()["confirmed"] is False  # already confirmed


# ------------------------------------------------------------------ sealed credentials


def test_credentials_travel_sealed_to_the_appliances_own_box_key(server) -> None:
    site = server.site()
    assert (
        server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).status_code == 201
    )
    a = server.enroll(site["id"], "a")
    b = server.enroll(site["id"], "b")
    ra, rb = _checkin(server, a), _checkin(server, b)
    for r in (ra, rb):
        assert SECRET not in json.dumps(r)
        assert set(r["targets"][0]) >= {"sealed"} and "password" not in r["targets"][0]
    assert a.opened(ra)[0]["password"] == SECRET == b.opened(rb)[0]["password"]
    # a's sealed secret cannot be opened with b's key, nor with any other key
    with pytest.raises(SealError):
        open_sealed(b.box, ra["targets"][0]["sealed"])
    with pytest.raises(SealError):
        open_sealed(PrivateKey.generate(), ra["targets"][0]["sealed"])


def test_an_appliance_without_a_box_key_gets_no_credential(server) -> None:
    from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer

    site = server.site()
    assert (
        server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).status_code == 201
    )
    sk, ck = Signer("t", os.urandom(32)), Signer("t", os.urandom(32), KEY_TYPE_COSIGNATURE)
    r = server.client().post("/api/v1/provision/claim", json={
        "code": server.claim_code(site["id"]), "hostname": "old", "agent_version": "0.1.0",
        "signing_pub": base64.b64encode(sk.public).decode(),
        "cosign_pub": base64.b64encode(ck.public).decode(),
    })  # fmt: skip
    assert r.status_code == 201, r.text
    out = r.json()
    body = checkin_body(type("A", (), {"id": out["appliance_id"], "chain": _Genesis()})())
    r = server.client(out["token"]).post("/api/v1/checkin", json=body)
    assert r.status_code == 200 and r.json()["targets"] == []


class _Genesis:
    head = "sha256:" + "0" * 64
    seq = 0


def test_each_delivery_is_audited_once_ever_across_restarts(server_factory, tmp_path) -> None:
    server = server_factory()
    site = server.site()
    cred = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).json()
    a = server.enroll(site["id"])
    for _ in range(3):
        _checkin(server, a)

    def deliveries(srv) -> list:  # noqa: ANN001
        rows = srv.admin.get("/api/v1/audit", params={"action": "credential.deliver"}).json()
        return [x for x in rows["audit"] if x["target"] == cred["id"]]

    assert len(deliveries(server)) == 1
    # a second server process on the same data (a restart, or another worker)
    app2, srv2, url2 = start_server(server.data)
    try:
        with httpx.Client(base_url=url2, timeout=20,
                          headers={"Authorization": f"Bearer {a.token}"}) as c:  # fmt: skip
            r = c.post("/api/v1/checkin", json=checkin_body(a))
            assert r.status_code == 200 and a.opened(r.json())[0]["password"] == SECRET
    finally:
        stop_server(app2, srv2)
    assert len(deliveries(server)) == 1
    # a rotated credential is a new version: one more delivery row
    server.admin.patch(f"/api/v1/sites/{site['id']}/credentials/{cred['id']}",
                       json={"password": "N3w"})  # fmt: skip
    _checkin(server, a)
    _checkin(server, a)
    assert len(deliveries(server)) == 2


def test_a_local_credential_is_only_for_the_appliance_itself(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    url = f"/api/v1/sites/{site['id']}/credentials"
    r = server.admin.post(url, json={"host_id": "dc01", "kind": "local", "address": "localhost"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_LOCAL_HOST"
    r = server.admin.post(url, json={"host_id": a.id, "kind": "local", "address": "localhost"})
    assert r.status_code == 201, r.text
    # and it cannot be moved onto a clinic host afterwards
    r = server.admin.patch(f"{url}/{r.json()['id']}", json={"host_id": "dc01"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_LOCAL_HOST"
