"""SSH credentials that become root through sudo (issue 15 item 2): ``sudo`` and a sealed
``become_password`` — validated, masked to operators, revealed (audited) only to admins,
delivered sealed at check-in, never redirected without being given again."""

from __future__ import annotations

import json

from osiris_core.protocol import validate_checkin_response
from tests.server.conftest import checkin_body

BECOME = "B3come-Pa55-7c1!"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA-not-a-key\n-----END OPENSSH PRIVATE KEY-----\n"
SSH_KEY = {
    "host_id": "lin01",
    "kind": "ssh_key",
    "address": "10.0.0.7",
    "username": "osiris",
    "private_key": KEY,
    "sudo": True,
    "become_password": BECOME,
}


def _base(server, site) -> str:
    return f"/api/v1/sites/{site['id']}/credentials"


def test_sudo_and_become_password_validated(server) -> None:
    site = server.site()
    base = _base(server, site)
    winrm = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5", "username": "a",
             "password": "x"}  # fmt: skip
    cases = [
        ({**winrm, "sudo": True}, "sudo is for SSH credentials only"),
        ({**winrm, "become_password": "p"}, "takes no become_password"),
        ({**SSH_KEY, "sudo": False}, "only with sudo true"),
        ({**{k: v for k, v in SSH_KEY.items() if k != "sudo"}}, "only with sudo true"),
        ({**SSH_KEY, "sudo": "yes"}, None),
        ({**SSH_KEY, "become_password": "x" * 4097}, None),
    ]
    for body, why in cases:
        r = server.admin.post(base, json=body)
        assert r.status_code == 400, (body.get("sudo"), r.text)
        assert r.json()["error"]["code"] == "E_SCHEMA", r.text
        if why:
            assert why in r.json()["error"]["message"], r.text
        assert BECOME not in r.text
    assert server.admin.get(base).json()["credentials"] == []  # nothing half-written
    # a kind change to winrm while sudo is on is refused too
    r = server.admin.post(base, json=SSH_KEY)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = server.admin.patch(f"{base}/{cid}", json={"kind": "winrm", "password": "p"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA"
    r = server.admin.patch(f"{base}/{cid}", json={"become_password": "p", "sudo": False})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA"


def test_become_password_masked_sealed_revealed_audited(server) -> None:
    site = server.site()
    base = _base(server, site)
    a = server.enroll(site["id"])
    r = server.admin.post(base, json=SSH_KEY)
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["sudo"] is True and cred["secret"] == "********"
    assert BECOME not in r.text and "become_password" not in cred
    assert BECOME.encode() not in server.index_bytes()
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    opc = server.client(op["token"])
    for text in (opc.get(base).text, opc.get(f"{base}/{cred['id']}").text):
        assert BECOME not in text and '"sudo": true' in text.replace('"sudo":true', '"sudo": true')
    # check-in: sudo in the clear (not secret), the become password only inside the seal
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    validate_checkin_response(resp)
    assert BECOME not in json.dumps(resp)
    (t,) = a.opened(resp)
    assert t["sudo"] is True and t["become_password"] == BECOME and t["private_key"] == KEY
    # reveal: operators may not; an admin may, and it is audited without the secret
    path = f"{base}/{cred['id']}/reveal"
    assert opc.post(path, json={}).status_code == 403
    r = server.admin.post(path, json={})
    assert r.status_code == 200 and r.json()["become_password"] == BECOME
    audit = server.admin.get("/api/v1/audit", params={"limit": 1000})
    assert "credential.reveal" in [x["action"] for x in audit.json()["audit"]]
    assert BECOME not in audit.text


def test_become_password_rotates_alone_and_goes_with_sudo_off(server) -> None:
    site = server.site()
    base = _base(server, site)
    a = server.enroll(site["id"])
    cid = server.admin.post(base, json=SSH_KEY).json()["id"]
    # rotating only the become password keeps the key
    r = server.admin.patch(f"{base}/{cid}", json={"become_password": "N3w-become"})
    assert r.status_code == 200, r.text
    (t,) = a.opened(server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json())
    assert t["become_password"] == "N3w-become" and t["private_key"] == KEY
    # rotating the key keeps the become password
    r = server.admin.patch(f"{base}/{cid}", json={"private_key": KEY + "\n"})
    assert r.status_code == 200, r.text
    (t,) = a.opened(server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json())
    assert t["become_password"] == "N3w-become"
    # sudo off: a password nobody uses is no longer kept nor sent
    r = server.admin.patch(f"{base}/{cid}", json={"sudo": False})
    assert r.status_code == 200 and r.json()["sudo"] is False
    (t,) = a.opened(server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json())
    assert t["sudo"] is False and "become_password" not in t
    assert "become_password" not in server.admin.post(f"{base}/{cid}/reveal", json={}).json()


def test_ssh_password_with_sudo_needs_no_become_password(server) -> None:
    site = server.site()
    base = _base(server, site)
    a = server.enroll(site["id"])
    body = {"host_id": "lin02", "kind": "ssh_password", "address": "10.0.0.8",
            "username": "osiris", "password": "L0gin-pw", "sudo": True}  # fmt: skip
    r = server.admin.post(base, json=body)
    assert r.status_code == 201, r.text
    (t,) = a.opened(server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json())
    assert t["sudo"] is True and t["password"] == "L0gin-pw" and "become_password" not in t


def test_hostile_redirect_must_give_the_become_password_again(server) -> None:
    """An operator who may not reveal secrets points the credential at a host of their own
    with a new key of their own: the stored become password must not follow it there."""
    site = server.site()
    base = _base(server, site)
    cid = server.admin.post(base, json=SSH_KEY).json()["id"]
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    opc = server.client(op["token"])
    r = opc.patch(f"{base}/{cid}", json={"address": "203.0.113.9", "private_key": KEY})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_SECRET_REQUIRED", r.text
    assert "become password" in r.json()["error"]["message"]
    assert server.admin.get(f"{base}/{cid}").json()["address"] == "10.0.0.7"  # unchanged
    r = opc.patch(f"{base}/{cid}", json={"address": "203.0.113.9", "private_key": KEY,
                                         "become_password": "theirs"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert server.admin.post(f"{base}/{cid}/reveal", json={}).json()["become_password"] == "theirs"
