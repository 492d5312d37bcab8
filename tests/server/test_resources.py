"""Credentials, check-in contents, orders, runbook toggles, provisioning, incidents, stats."""

from __future__ import annotations

import base64
import json
import time

from osiris_core import canonical
from osiris_core.keys import Verifier
from osiris_core.orders import MemoryReplayGuard, check_order
from osiris_core.protocol import validate_checkin_response
from tests.server.conftest import checkin_body, policy_of

WINRM = {
    "host_id": "dc01",
    "kind": "winrm",
    "address": "10.0.0.5",
    "username": "CLINIC\\osiris",
    "password": "S3cret-Pa55!",
}


def test_credentials_encrypted_masked_delivered_rotated_audited(server) -> None:
    site = server.site()
    other = server.site("Other")
    a = server.enroll(site["id"])
    b = server.enroll(other["id"])
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM)
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["secret"] == "********" and "S3cret" not in r.text
    assert cred["port"] == 5986 and cred["use_tls"] is True
    # not in the database file in clear
    raw = server.index_bytes()
    assert b"S3cret-Pa55!" not in raw
    listing = server.admin.get(f"/api/v1/sites/{site['id']}/credentials").text
    assert "S3cret" not in listing

    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    validate_checkin_response(resp)
    # the secret travels sealed to a's box key, never in the clear
    assert "S3cret" not in json.dumps(resp) and "sealed" in resp["targets"][0]
    assert a.opened(resp) == [
        {
            "host_id": "dc01",
            "kind": "winrm",
            "address": "10.0.0.5",
            "port": 5986,
            "lab": False,
            "username": "CLINIC\\osiris",
            "password": "S3cret-Pa55!",
            "host_key_fingerprints": [],
            "use_tls": True,
            "verify_tls": True,
            "sudo": False,  # issue 15: every target says whether scripts run through sudo
            # issue 15 item 4: and how its WinRM listener is trusted (none: trust on first use)
            "ca_bundle": "",
            "cert_thumbprint": "",
            "auth": "ntlm",
        }
    ]
    # an appliance of another site never sees it
    other_resp = server.client(b.token).post("/api/v1/checkin", json=checkin_body(b)).json()
    assert other_resp["targets"] == []

    # rotation takes effect at the next check-in
    r = server.admin.patch(
        f"/api/v1/sites/{site['id']}/credentials/{cred['id']}", json={"password": "N3w-one"}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    resp = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a)).json()
    assert a.opened(resp)[0]["password"] == "N3w-one"

    # reveal: admin only, audited
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    path = f"/api/v1/sites/{site['id']}/credentials/{cred['id']}/reveal"
    assert server.client(op["token"]).post(path, json={}).status_code == 403
    r = server.admin.post(path, json={})
    assert r.status_code == 200 and r.json()["password"] == "N3w-one"
    actions = [x["action"] for x in server.admin.get("/api/v1/audit").json()["audit"]]
    for action in (
        "credential.create",
        "credential.update",
        "credential.reveal",
        "credential.deliver",
    ):
        assert action in actions
    audit_text = server.admin.get("/api/v1/audit", params={"limit": 1000}).text
    assert "N3w-one" not in audit_text and "S3cret" not in audit_text


def test_credential_validation(server) -> None:
    site = server.site()
    base = f"/api/v1/sites/{site['id']}/credentials"
    bad = [
        {**WINRM, "kind": "telnet"},
        {**WINRM, "port": "22"},
        {**WINRM, "unknown": 1},
        {k: v for k, v in WINRM.items() if k != "password"},
        {**WINRM, "private_key": "x"},
        {**WINRM, "address": "a b"},
    ]
    for body in bad:
        r = server.admin.post(base, json=body)
        assert r.status_code == 400, body
    assert server.admin.post(base, json=WINRM).status_code == 201
    assert server.admin.post(base, json=WINRM).status_code == 409


def test_orders_signed_delivered_and_done(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    # an order's host must be one the site has (tests/server/test_order_targets.py)
    assert (
        server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM).status_code == 201
    )
    rb = next(r.id for r in server.app.catalog_runbooks().values() if r.platform == "windows")
    path = f"/api/v1/appliances/{a.id}/orders"
    # only catalogue runbooks, never shell strings
    r = server.admin.post(path, json={"kind": "run_runbook", "params": {"runbook_id": "rm -rf /"}})
    assert r.status_code == 400
    r = server.admin.post(path, json={"kind": "shell", "params": {"cmd": "id"}})
    assert r.status_code == 400
    r = server.admin.post(
        path, json={"kind": "run_runbook", "params": {"runbook_id": rb, "host_id": "dc01"}}
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending"

    c = server.client(a.token)
    resp = c.post("/api/v1/checkin", json=checkin_body(a)).json()
    validate_checkin_response(resp)
    assert len(resp["orders"]) == 1
    assert resp["next_checkin_s"] == server.app.cfg.order_checkin_s
    verdict = check_order(
        resp["orders"][0],
        Verifier.from_vkey(a.enroll["order_vkey"]),
        canonical.utc_now(),
        MemoryReplayGuard(),
    )
    assert verdict.status == "accepted", verdict.reason
    assert verdict.order["order_id"] == order["id"]
    listed = server.admin.get(path).json()["orders"]
    assert listed[0]["status"] == "delivered"
    # handed out once
    resp = c.post("/api/v1/checkin", json=checkin_body(a)).json()
    assert resp["orders"] == []

    # result evidence naming the order marks it done
    env = a.envelope(order_id=order["id"], tier="order", runbook_id=rb, outcome="healed")
    r = c.post("/api/v1/evidence", json={"envelopes": [env]})
    assert r.json()["results"][0]["status"] == "accepted"
    done = server.admin.get(f"{path}/{order['id']}").json()
    assert done["status"] == "done" and done["result_outcome"] == "healed"
    resp = c.post("/api/v1/checkin", json=checkin_body(a)).json()
    assert resp["next_checkin_s"] == site["checkin_interval_s"]


def test_runbook_toggles_precedence_and_empty_list(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    defaults = server.app.runbook_defaults()
    assert defaults, "the catalogue should define runbooks"
    ids = sorted(defaults)
    c = server.client(a.token)

    def effective() -> dict:
        resp = c.post("/api/v1/checkin", json=checkin_body(a)).json()
        return policy_of(a, resp)["runbooks"]  # the signed policy is the only source

    assert effective()["enabled"] == sorted(k for k, v in defaults.items() if v)
    # explicit empty list = everything disabled (never "all enabled")
    r = server.admin.put(f"/api/v1/sites/{site['id']}/runbooks", json={"enabled": []})
    assert r.status_code == 200, r.text
    assert effective() == {"enabled": [], "disabled": ids}
    # appliance override wins over the site
    r = server.admin.put(f"/api/v1/appliances/{a.id}/runbooks", json={"runbooks": {ids[0]: True}})
    assert r.status_code == 200
    assert effective()["enabled"] == [ids[0]]
    # clearing the override falls back to the site setting
    server.admin.put(f"/api/v1/appliances/{a.id}/runbooks", json={"runbooks": {ids[0]: None}})
    assert effective()["enabled"] == []
    r = server.admin.put(f"/api/v1/sites/{site['id']}/runbooks", json={"enabled": ["NOPE-1"]})
    assert r.status_code == 400


def test_claim_codes_single_use_and_expiry(server) -> None:
    site = server.site()
    code = server.claim_code(site["id"])
    key = base64.b64encode(b"\x01" * 32).decode()
    key2 = base64.b64encode(b"\x02" * 32).decode()
    body = {
        "code": code,
        "hostname": "ap1",
        "signing_pub": key,
        "cosign_pub": key2,
        "agent_version": "0.1.0",
    }
    anon = server.client()
    assert anon.post("/api/v1/provision/claim", json=body).status_code == 201
    r = anon.post("/api/v1/provision/claim", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "E_CLAIM"
    # the code itself is never stored
    raw = server.index_bytes()
    assert code.encode() not in raw
    # expired
    code2 = server.claim_code(site["id"], ttl_s=60)
    server.index_sql("UPDATE provisions SET expires_epoch = ?", (int(time.time()) - 1,))
    r = anon.post("/api/v1/provision/claim", json={**body, "code": code2})
    assert r.status_code == 401
    listing = server.admin.get("/api/v1/provisions").text
    assert code not in listing and code2 not in listing


# MAC enrolment: tests/security/test_enrolment.py


def test_mac_polling_rate_limited(server_factory) -> None:
    server = server_factory(provision_rate_per_min=3)
    anon = server.client()
    h = {"X-Osiris-Enroll-Secret": "e" * 40}
    codes = [
        anon.get("/api/v1/provision/aa:bb:cc:00:11:44", headers=h).status_code for _ in range(5)
    ]
    assert codes[:3] == [200] * 3 and codes[-1] == 429


def test_incidents_dedup_and_resolve(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    inc = {
        "kind": "backup_failed",
        "severity": "warning",
        "host_id": "dc01",
        "summary": "backup failed for SSN 123-45-6789",
    }
    r1 = c.post("/api/v1/incidents", json={"incidents": [inc]}).json()["incidents"][0]
    r2 = c.post("/api/v1/incidents", json={"incidents": [inc]}).json()["incidents"][0]
    assert r1["new"] is True and r2["new"] is False and r1["id"] == r2["id"]
    listed = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()
    listed["incidents"] = [i for i in listed["incidents"] if i["kind"] != "appliance_enrolled"]
    assert len(listed["incidents"]) == 1 and listed["incidents"][0]["count"] == 2
    assert "123-45-6789" not in listed["incidents"][0]["summary"]
    r = server.admin.post(f"/api/v1/incidents/{r1['id']}/resolve", json={})
    assert r.json()["status"] == "resolved"
    r3 = c.post("/api/v1/incidents", json={"incidents": [inc]}).json()["incidents"][0]
    assert r3["new"] is True and r3["id"] != r1["id"]
    bad = c.post("/api/v1/incidents", json={"incidents": [{**inc, "severity": "meh"}]})
    assert bad.status_code == 400


def test_stats_online_offline_and_drift(server) -> None:
    site = server.site(checkin_interval_s=10)
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], "ap2")
    body = checkin_body(a)
    body["status"]["checks"] = [
        {
            "host_id": "dc01",
            "check": "firewall",
            "status": "drift",
            "since": "2026-01-01T00:00:00.000Z",
        },
        {
            "host_id": "dc01",
            "check": "windows_bitlocker",
            "status": "compliant",
            "since": "2026-01-01T00:00:00.000Z",
        },
    ]
    server.client(a.token).post("/api/v1/checkin", json=body)
    server.client(b.token).post("/api/v1/checkin", json=checkin_body(b))
    s = server.admin.get("/api/v1/stats").json()
    assert s["appliances"] == {"online": 2, "offline": 0, "never_seen": 0}
    assert s["drift"]["checks"] == 1 and s["drift"]["hosts"] == 1
    # unseen for 3 intervals = offline
    server.app.heartbeats.flush()
    server.index_sql(
        "UPDATE appliances SET last_seen_epoch = ? WHERE id = ?", (int(time.time()) - 31, b.id)
    )
    s = server.admin.get("/api/v1/stats").json()
    assert s["appliances"]["online"] == 1 and s["appliances"]["offline"] == 1
    apps = server.admin.get(f"/api/v1/sites/{site['id']}/appliances").json()["appliances"]
    assert {x["id"]: x["online"] for x in apps} == {a.id: True, b.id: False}


def test_checkin_validation(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    body = checkin_body(a)
    assert c.post("/api/v1/checkin", json={**body, "extra": 1}).status_code == 400
    assert c.post("/api/v1/checkin", json={**body, "log_size_seen": "0"}).status_code == 400
    assert c.post("/api/v1/checkin", json={**body, "appliance_id": "app_other"}).status_code == 403
    assert c.post("/api/v1/checkin", json={**body, "log_size_seen": 99}).status_code == 409
    r = c.post(
        "/api/v1/checkin", content=b'{"a": 1.5}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_PARSE"


def test_cosignatures_at_checkin_are_stored(server) -> None:
    from osiris_core import note

    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    out = c.post("/api/v1/evidence", json={"envelopes": [a.envelope()]}).json()
    cp_note = out["checkpoint"]
    text = note.open_note(cp_note, [Verifier.from_vkey(server.init["log_vkey"])]).text
    line = note.cosign(text, a.cosigner, int(time.time()))
    size = note.Checkpoint.parse(text).size
    body = checkin_body(a, log_size_seen=size, cosignatures=[{"size": size, "line": line}])
    assert c.post("/api/v1/checkin", json=body).status_code == 200
    cp = server.admin.get("/api/v1/log/checkpoint", params={"size": size}).json()
    assert line.strip() in cp["note"]
    opened = note.open_note(
        cp["note"], [Verifier.from_vkey(server.init["log_vkey"]), a.cosigner.verifier()]
    )
    assert a.cosigner.name in opened.verified
    # a forged cosignature is refused (and audited), the check-in still answers
    forged = line[:-6] + ("AAAA==\n" if not line.endswith("AAAA==\n") else "BBBB==\n")
    body = checkin_body(a, log_size_seen=size, cosignatures=[{"size": size, "line": forged}])
    assert c.post("/api/v1/checkin", json=body).status_code == 200
    actions = [x["action"] for x in server.admin.get("/api/v1/audit").json()["audit"]]
    assert "cosignature.rejected" in actions


def test_checkpoint_cosigned_by_a_sites_appliances(server) -> None:
    """Exports prove against the newest checkpoint the clinic's own appliances cosigned."""
    from osiris_core import note

    log_v = Verifier.from_vkey(server.init["log_vkey"])
    site, other_site = server.site("A"), server.site("B")
    a = server.enroll(site["id"])
    b = server.enroll(other_site["id"], hostname="appliance-b")
    q = {"cosigned_by_site": site["id"]}
    assert server.admin.get("/api/v1/log/checkpoint", params=q).status_code == 404
    sizes = {}
    for app_ in (a, b):
        c = server.client(app_.token)
        out = c.post("/api/v1/evidence", json={"envelopes": [app_.envelope()]}).json()
        text = note.open_note(out["checkpoint"], [log_v]).text
        size = note.Checkpoint.parse(text).size
        line = note.cosign(text, app_.cosigner, int(time.time()))
        body = checkin_body(app_, log_size_seen=size, cosignatures=[{"size": size, "line": line}])
        assert c.post("/api/v1/checkin", json=body).status_code == 200
        sizes[app_.id] = size
    assert sizes[b.id] > sizes[a.id]
    cp = server.admin.get("/api/v1/log/checkpoint", params=q).json()
    assert cp["size"] == sizes[a.id]  # not B's newer checkpoint: B is another clinic
    assert a.cosigner.name in note.open_note(cp["note"], [log_v, a.cosigner.verifier()]).verified
    # an appliance cannot use it, and another tenant's view of the site is a 404
    assert server.client(a.token).get("/api/v1/log/checkpoint", params=q).status_code == 404


def test_winrm_without_tls_only_towards_a_lab_host(server) -> None:
    """Plain HTTP or an unchecked certificate is refused for a real WinRM host (the agent would
    refuse the target anyway, and the password would travel in the clear); nothing is stored,
    and an update cannot switch TLS off either."""
    site = server.site()
    base = f"/api/v1/sites/{site['id']}/credentials"
    for off in ({"use_tls": False}, {"verify_tls": False}):
        r = server.admin.post(base, json={**WINRM, **off})
        assert r.status_code == 400, off
        assert "lab" in r.json()["error"]["message"]
    assert server.admin.get(base).json()["credentials"] == []
    lab = server.admin.post(base, json={**WINRM, "use_tls": False, "verify_tls": False,
                                        "lab": True})  # fmt: skip
    assert lab.status_code == 201
    real = server.admin.post(base, json={**WINRM, "host_id": "dc02"})
    assert real.status_code == 201
    cred_id = real.json()["id"]
    r = server.admin.patch(f"{base}/{cred_id}", json={"verify_tls": False, "password": "x"})
    assert r.status_code == 400
    assert server.admin.get(f"{base}/{cred_id}").json()["verify_tls"] in (True, 1)
