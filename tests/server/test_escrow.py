"""Recovery-key escrow on the server: an appliance hands a BitLocker recovery password in for its
own site's hosts; only an admin reads it back (audited); no listing, other appliance, operator,
partner or quarantined appliance gets it; the stored bytes never hold it. Real server over
loopback, both engines."""

from __future__ import annotations

import json

PW = "123456-234567-345678-456789-567890-678901-789012-890123"
OTHER_PW = "111111-222222-333333-444444-555555-666666-777777-888888"
PROT = "{0A1B2C3D-1111-2222-3333-444455556666}"


def _site_with_host(server, name: str = "Clinic", host_id: str = "dc01"):
    site = server.site(name)
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json={
        "host_id": host_id, "kind": "winrm", "address": "10.0.0.5", "username": "Administrator",
        "password": "Cred-Pw-1",
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return site


def _upload(server, a, host_id: str = "dc01", secret: str = PW, appliance_id: str | None = None):
    return server.client(a.token).post(
        f"/api/v1/appliances/{appliance_id or a.id}/escrow",
        json={"host_id": host_id, "kind": "bitlocker_recovery_password",
              "protector_id": PROT, "secret": secret},
    )  # fmt: skip


def test_upload_then_only_an_admin_reveals_it_audited(server) -> None:
    site = _site_with_host(server)
    a = server.enroll(site["id"])
    r = _upload(server, a)
    assert r.status_code == 201, r.text
    ref = r.json()["escrow_ref"]
    assert r.json() == {"escrow_ref": ref, "host_id": "dc01", "protector_id": PROT, "stored": True}
    # resent (an agent that lost the answer): the same escrow, nothing new
    again = _upload(server, a)
    assert again.status_code == 200 and again.json()["escrow_ref"] == ref
    assert not again.json()["stored"]
    # a different password for the same protector never replaces the first
    r = _upload(server, a, secret=OTHER_PW)
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_CONFLICT"
    assert OTHER_PW not in r.text

    listing = server.admin.get(f"/api/v1/sites/{site['id']}/escrow")
    assert listing.status_code == 200
    (row,) = listing.json()["escrow"]
    assert row["id"] == ref and row["protector_id"] == PROT and row["appliance_id"] == a.id
    assert "secret" not in row and "secret_enc" not in row and PW not in listing.text

    path = f"/api/v1/sites/{site['id']}/escrow/{ref}/reveal"
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    aud = server.admin.post("/api/v1/tokens", json={"role": "auditor", "name": "au"}).json()
    for token in (op["token"], aud["token"], a.token):
        r = server.client(token).post(path, json={})
        assert r.status_code in (401, 403), (token[:4], r.status_code)
        assert PW not in r.text
    r = server.admin.post(path, json={})
    assert r.status_code == 200 and r.json()["secret"] == PW and r.json()["host_id"] == "dc01"
    audit = server.admin.get("/api/v1/audit").json()["audit"]
    actions = [x["action"] for x in audit]
    assert "escrow.store" in actions and "escrow.reveal" in actions
    assert PW not in json.dumps(audit)
    # a thief of the index file reads no recovery password
    assert PW.encode() not in server.index_bytes()


def test_a_hostile_appliance_cannot_plant_or_read_another_sites_keys(server) -> None:
    s1 = _site_with_host(server, "Clinic A")
    s2 = _site_with_host(server, "Clinic B", host_id="dc02")
    a = server.enroll(s1["id"], "appliance-a")
    b = server.enroll(s2["id"], "appliance-b")
    assert _upload(server, a).status_code == 201
    # b under a's id: refused, whatever the body says
    r = _upload(server, b, appliance_id=a.id)
    assert r.status_code == 403 and r.json()["error"]["code"] == "E_IDENTITY"
    # b for a host of site A (b's site has no dc01): no such host for b
    r = _upload(server, b, host_id="dc01")
    assert r.status_code == 404
    # b cannot list or reveal site A's escrow (an appliance token is not a staff token)
    for path in (f"/api/v1/sites/{s1['id']}/escrow",):
        assert server.client(b.token).get(path).status_code in (401, 403)
    ref = server.admin.get(f"/api/v1/sites/{s1['id']}/escrow").json()["escrow"][0]["id"]
    # an admin asking under the wrong site sees nothing (the row is bound to its site)
    assert server.admin.post(f"/api/v1/sites/{s2['id']}/escrow/{ref}/reveal",
                             json={}).status_code == 404  # fmt: skip
    # a partner of another site neither lists nor reveals it
    partner = server.admin.post("/api/v1/partners", json={"name": "Other MSP"})
    assert partner.status_code == 201, partner.text
    c = server.client(api_key=partner.json()["api_key"])
    assert c.get(f"/api/v1/sites/{s1['id']}/escrow").status_code == 404
    r = c.post(f"/api/v1/sites/{s1['id']}/escrow/{ref}/reveal", json={})
    assert r.status_code in (403, 404) and PW not in r.text


def test_bad_input_is_a_clear_400_and_nothing_is_stored(server) -> None:
    site = _site_with_host(server)
    a = server.enroll(site["id"])
    c = server.client(a.token)
    url = f"/api/v1/appliances/{a.id}/escrow"
    base = {"host_id": "dc01", "kind": "bitlocker_recovery_password", "protector_id": PROT,
            "secret": PW}  # fmt: skip
    for bad in ({"secret": "not-a-recovery-password"}, {"protector_id": "abc"},
                {"kind": "luks"}, {"secret": PW + "-123456"}):  # fmt: skip
        r = c.post(url, json={**base, **bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", (bad, r.text)
    r = c.post(url, json={k: v for k, v in base.items() if k != "secret"})
    assert r.status_code == 400
    assert server.admin.get(f"/api/v1/sites/{site['id']}/escrow").json()["escrow"] == []


def test_a_quarantined_appliance_cannot_escrow(server) -> None:
    site = _site_with_host(server)
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    r = server.client(op["token"]).post("/api/v1/provisions", json={"site_id": site["id"]})
    assert r.status_code == 201, r.text
    a = server.enroll(site["id"], "quarantined-1", code=r.json()["code"])
    assert a.enroll["quarantined"] is True
    r = _upload(server, a)
    assert r.status_code == 403 and r.json()["error"]["code"] == "E_QUARANTINED"
