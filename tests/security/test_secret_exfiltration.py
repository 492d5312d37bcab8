"""Secrets stay where DESIGN §6 puts them: a non-admin cannot redirect a stored secret to a
host of their choosing (a reveal in disguise), and nothing secret reaches the log or the
database in clear, with the server really running and request logging on."""

from __future__ import annotations

import secrets

from tests.server.conftest import checkin_body


def _winrm(password: str) -> dict:
    return {
        "host_id": "dc01",
        "kind": "winrm",
        "address": "10.0.0.5",
        "username": "CLINIC\\osiris",
        "password": password,
    }


def test_operator_cannot_redirect_a_secret_without_knowing_it(server) -> None:
    marker = "Mk-" + secrets.token_hex(8)
    site = server.site()
    a = server.enroll(site["id"])
    cred = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=_winrm(marker))
    assert cred.status_code == 201, cred.text
    path = f"/api/v1/sites/{site['id']}/credentials/{cred.json()['id']}"
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    opc = server.client(op["token"])
    # the operator may not reveal ...
    assert opc.post(path + "/reveal", json={}).status_code == 403
    # ... so pointing the password at their own box over plain HTTP must not work either
    for change in (
        {"address": "203.0.113.9", "use_tls": False, "lab": True},
        {"address": "203.0.113.9"},
        {"verify_tls": False, "lab": True},
        {"port": 8443},
    ):
        r = opc.patch(path, json=change)
        assert r.status_code == 409, (change, r.text)
        assert r.json()["error"]["code"] == "E_SECRET_REQUIRED"
    target = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    assert target["targets"][0]["address"] == "10.0.0.5"
    assert target["targets"][0]["lab"] is False and target["targets"][0]["use_tls"] is True
    # with the secret given again the change is an ordinary rotation
    r = opc.patch(path, json={"address": "10.0.0.6", "password": "Other-" + marker})
    assert r.status_code == 200, r.text
    # changing nothing about the destination needs no secret, and same values are no change
    assert opc.patch(path, json={"username": "CLINIC\\svc"}).status_code == 200
    assert opc.patch(path, json={"address": "10.0.0.6", "port": 5986}).status_code == 200


def test_no_secret_in_request_log_or_database(server_factory, capfd) -> None:
    server = server_factory(request_log=True)
    marker = "Mk-" + secrets.token_hex(8)
    site = server.site()
    a = server.enroll(site["id"])
    code = server.claim_code(site["id"])
    cred = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=_winrm(marker))
    path = f"/api/v1/sites/{site['id']}/credentials/{cred.json()['id']}"
    assert server.admin.post(path + "/reveal", json={}).json()["password"] == marker
    assert server.admin.patch(path, json={"password": marker + "2"}).status_code == 200
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    assert a.opened(resp)[0]["password"] == marker + "2"
    tok = server.admin.post("/api/v1/tokens", json={"role": "auditor", "name": "aud"}).json()
    # failed logins with a secret-looking token, in the header and in the query string
    server.client("osk_" + marker).get("/api/v1/sites")
    server.client().get("/api/v1/sites", params={"token": marker})
    server.app.heartbeats.flush()
    err = capfd.readouterr().err
    assert '"status":' in err  # the request log really ran
    secrets_seen = {
        "credential": marker,
        "admin token": server.admin_token,
        "appliance token": a.token,
        "auditor token": tok["token"],
        "claim code": code,
    }
    db = server.index_bytes()  # the SQLite files, or every row on PostgreSQL
    for what, value in secrets_seen.items():
        assert value not in err, f"{what} in the server log"
        assert value.encode() not in db, f"{what} in the database in clear"
