"""Appliance signing-key rotation over real HTTP: ``POST /api/v1/appliance/key-rotation``.

A statement (osiris_core.trust.make_rotation) signed by the appliance's *old* key moves it to a
new key from ``effective_seq`` on. Evidence ingest then verifies each bundle with the key of the
epoch its seq falls in; ``GET /log/keys`` carries the statements for auditors.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx

from osiris_core import canonical
from osiris_core import evidence as ev
from osiris_core.canonical import utc_now
from osiris_core.keys import Signer, appliance_key_name
from osiris_core.trust import ROTATION_SCHEMA, key_epochs, make_rotation
from tests.server.conftest import Appliance, Server, start_server, stop_server

PATH = "/api/v1/appliance/key-rotation"


def _new_key(a: Appliance) -> Signer:
    return Signer.generate(appliance_key_name(a.id))


def _statement(a: Appliance, old: Signer, new: Signer, effective_seq: int) -> dict[str, Any]:
    return make_rotation(
        old, new, appliance_id=a.id, site_id=a.site_id, effective_seq=effective_seq, at=utc_now()
    )


def _send(server: Server, a: Appliance, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envelopes})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def _keys_entry(server: Server, a: Appliance) -> dict[str, Any]:
    keys = server.admin.get("/api/v1/log/keys").json()
    return next(x for x in keys["appliances"] if x["appliance_id"] == a.id)


def _digest(server: Server) -> str:
    """Every row of every table of the server's database, and the log's size."""
    h = hashlib.sha256(repr(server.index_rows()).encode())  # either engine
    return h.hexdigest() + f":{server.app.log.size()}"


def test_rotation_accepted_and_bundles_on_both_sides_of_it_ingest(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    enrolment_vkey = a.signer.vkey
    assert [x["status"] for x in _send(server, a, [a.envelope() for _ in range(3)])] == [
        "accepted"
    ] * 3
    # seq 4 and 5 are signed with the old key and still sit in the agent's outbox
    outbox = [a.envelope(), a.envelope()]
    old, new = a.signer, _new_key(a)
    stmt = _statement(a, old, new, 6)
    c = server.client(a.token)
    r = c.post(PATH, json={"rotation": stmt})
    assert r.status_code == 200, r.text
    assert r.json() == {"appliance_id": a.id, "signing_vkey": new.vkey, "effective_seq": 6}

    # the outbox drains after the rotation: below effective_seq the old key is still right
    assert [x["status"] for x in _send(server, a, outbox)] == ["accepted", "accepted"]
    a.signer = new
    assert _send(server, a, [a.envelope()])[0]["status"] == "accepted"  # seq 6, new key
    # seq 7 signed with the old key: refused, nothing stored
    late = ev_sign(_peek(a), old)
    res = _send(server, a, [late])[0]
    assert res["status"] == "rejected" and res["error"]["code"] == "E_SIG", res
    assert "seq 7" in res["error"]["message"]
    rows = server.admin.get("/api/v1/evidence", params={"site": site["id"]}).json()["evidence"]
    assert [x["seq"] for x in rows] == [1, 2, 3, 4, 5, 6]
    # an old-key bundle of the first epoch resent: still a duplicate, not a rejection
    assert _send(server, a, [outbox[0]])[0]["status"] == "duplicate"

    # the appliance's key, /log/keys and the audit log show the rotation
    appliance = server.admin.get(f"/api/v1/appliances/{a.id}").json()
    assert appliance["signing_vkey"] == new.vkey
    entry = _keys_entry(server, a)
    assert entry["signing_vkey"] == new.vkey and entry["rotations"] == [stmt]
    # the appliance itself sees its own entry (what the server holds for it), and only that
    own = c.get("/api/v1/log/keys").json()["appliances"]
    assert own == [entry]
    epochs = key_epochs(enrolment_vkey, entry["rotations"], "test")
    assert [(e.verifier.vkey, e.first_seq, e.last_seq) for e in epochs] == [
        (enrolment_vkey, 1, 5),
        (new.vkey, 6, None),
    ]
    audit = server.admin.get("/api/v1/audit", params={"action": "appliance.key_rotate"}).json()
    assert [(x["actor"], x["target"]) for x in audit["audit"]] == [(f"appliance:{a.id}", a.id)]

    # idempotent: the exact statement again is the same answer and changes nothing
    before = _digest(server)
    r2 = c.post(PATH, json={"rotation": stmt})
    assert r2.status_code == 200 and r2.json() == r.json()
    assert _digest(server) == before

    # a second rotation: the history grows in effective_seq order
    newer = _new_key(a)
    stmt2 = _statement(a, new, newer, 9)
    r3 = c.post(PATH, json={"rotation": stmt2})
    assert r3.status_code == 200, r3.text
    assert _send(server, a, [a.envelope(), a.envelope()])[1]["status"] == "accepted"  # 7, 8
    a.signer = newer
    assert _send(server, a, [a.envelope()])[0]["status"] == "accepted"  # 9
    entry = _keys_entry(server, a)
    assert entry["rotations"] == [stmt, stmt2] and entry["signing_vkey"] == newer.vkey
    # the first statement resent after the second one: still its own original answer
    assert c.post(PATH, json={"rotation": stmt}).json() == r.json()


def ev_sign(bundle: dict[str, Any], signer: Signer) -> dict[str, Any]:
    return ev.sign_bundle(bundle, signer)


def _peek(a: Appliance) -> dict[str, Any]:
    """The appliance's next bundle, without advancing its chain (it is meant to be refused)."""
    return a.chain.next(site_id=a.site_id, host_id="dc01", check="firewall", outcome="compliant")


def _sign_doc(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """A statement signed by whoever we like (the server must check it was the old key)."""
    sig = base64.b64encode(signer.sign(canonical.dumps(doc))).decode()
    return {"rotation": doc, "sig": {"alg": "ed25519", "key_id": signer.key_id_hex, "value": sig}}


def test_forged_or_stale_rotations_are_refused_and_change_nothing(server) -> None:
    site, other_site = server.site("A"), server.site("B")
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], hostname="appliance-2")
    z = server.enroll(other_site["id"], hostname="appliance-z")
    _send(server, a, [a.envelope() for _ in range(3)])
    c = server.client(a.token)
    new = _new_key(a)
    good = _statement(a, a.signer, new, 4)
    doc = good["rotation"]

    def refused(body: Any, status: int, code: str) -> None:
        before = _digest(server)
        r = c.post(PATH, json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text
        assert _digest(server) == before  # nothing changed: no row, no key, no audit

    # signed by the new key, or by another appliance's key, instead of the old key
    refused({"rotation": _sign_doc(doc, new)}, 400, "E_ROTATION_SIG")
    refused({"rotation": _sign_doc(doc, b.signer)}, 400, "E_ROTATION_SIG")
    tampered = json.loads(json.dumps(good))
    tampered["rotation"]["effective_seq"] = 40
    refused({"rotation": tampered}, 400, "E_ROTATION_SIG")
    # well signed, but by a key that is not the appliance's current one (an attacker's key
    # under the appliance's name, or another appliance's key renamed)
    intruder = Signer.generate(appliance_key_name(a.id))
    refused({"rotation": _statement(a, intruder, new, 4)}, 409, "E_ROTATION_OLD_KEY")
    renamed_b = Signer(appliance_key_name(a.id), bytes(b.signer._sk))
    refused({"rotation": _statement(a, renamed_b, new, 4)}, 409, "E_ROTATION_OLD_KEY")
    # naming another appliance (the other's own valid statement), or another site
    b_stmt = _statement(b, b.signer, _new_key(b), 2)
    refused({"rotation": b_stmt}, 403, "E_ROTATION_IDENTITY")
    z_stmt = _statement(z, z.signer, _new_key(z), 2)
    refused({"rotation": z_stmt}, 403, "E_ROTATION_IDENTITY")
    wrong_site = make_rotation(
        a.signer, new, appliance_id=a.id, site_id=other_site["id"], effective_seq=4, at=utc_now()
    )
    refused({"rotation": wrong_site}, 403, "E_ROTATION_IDENTITY")
    # effective_seq at or below what the server already accepted (3), or 1
    for seq in (1, 2, 3):
        refused({"rotation": _statement(a, a.signer, new, seq)}, 409, "E_ROTATION_SEQ")
    # to the cosigning key, or to the current key itself
    cosign_as_signing = Signer(appliance_key_name(a.id), bytes(a.cosigner._sk))
    refused(
        {"rotation": _statement(a, a.signer, cosign_as_signing, 4)}, 409, "E_ROTATION_KEY_REUSED"
    )
    same = dict(doc, new_vkey=doc["old_vkey"])
    refused({"rotation": _sign_doc(same, a.signer)}, 400, "E_ROTATION_SCHEMA")
    # malformed
    refused({"rotation": "nope"}, 400, "E_SCHEMA")
    refused({"rotation": {**good, "extra": 1}}, 400, "E_ROTATION_SCHEMA")
    refused(
        {"rotation": {"rotation": {**doc, "schema": "x"}, "sig": good["sig"]}},
        400,
        "E_ROTATION_SCHEMA",
    )
    refused(
        {"rotation": {"rotation": doc, "sig": {**good["sig"], "alg": "rsa"}}},
        400,
        "E_ROTATION_SCHEMA",
    )
    refused(
        {"rotation": {"rotation": {**doc, "x": 1}, "sig": good["sig"]}}, 400, "E_ROTATION_SCHEMA"
    )
    refused(
        {"rotation": {"rotation": {**doc, "effective_seq": "4"}, "sig": good["sig"]}},
        400,
        "E_ROTATION_SCHEMA",
    )
    refused({}, 400, "E_SCHEMA")
    before = _digest(server)
    r = c.post(PATH, content=b'{"rotation": 1.5}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_PARSE"
    # only appliances rotate, and only their own key
    assert server.admin.post(PATH, json={"rotation": good}).status_code == 403
    assert server.client().post(PATH, json={"rotation": good}).status_code == 401
    assert server.client(b.token).post(PATH, json={"rotation": good}).status_code == 403
    assert _digest(server) == before

    entry = _keys_entry(server, a)
    assert entry["rotations"] == [] and entry["signing_vkey"] == a.signer.vkey
    assert _send(server, a, [a.envelope()])[0]["status"] == "accepted"  # the old key still works

    # after a real rotation: a statement of the retired key, an effective_seq not beyond the
    # last rotation's, and rotating back to a retired key are all refused
    assert c.post(PATH, json={"rotation": _statement(a, a.signer, new, 10)}).status_code == 200
    refused({"rotation": _statement(a, a.signer, _new_key(a), 11)}, 409, "E_ROTATION_OLD_KEY")
    refused({"rotation": _statement(a, new, _new_key(a), 10)}, 409, "E_ROTATION_SEQ")
    refused({"rotation": _statement(a, new, a.signer, 12)}, 409, "E_ROTATION_KEY_REUSED")


def test_rotation_is_seen_by_another_worker_at_once(server) -> None:
    """Two App instances on one data directory (as two gunicorn workers): a rotation accepted
    by one is applied by the other's very next ingest, however warm its caches are."""
    app2, srv2, url2 = start_server(server.data)
    try:
        site = server.site()
        a = server.enroll(site["id"])
        with httpx.Client(
            base_url=url2, headers={"Authorization": f"Bearer {a.token}"}, timeout=20
        ) as w2:

            def send2(envs: list[dict[str, Any]]) -> list[dict[str, Any]]:
                r = w2.post("/api/v1/evidence", json={"envelopes": envs})
                assert r.status_code == 200, r.text
                return r.json()["results"]

            assert send2([a.envelope(), a.envelope()])[1]["status"] == "accepted"
            old, new = a.signer, _new_key(a)
            r = server.client(a.token).post(PATH, json={"rotation": _statement(a, old, new, 3)})
            assert r.status_code == 200, r.text
            res = send2([ev_sign(_peek(a), old)])
            assert res[0]["status"] == "rejected" and res[0]["error"]["code"] == "E_SIG"
            a.signer = new
            assert send2([a.envelope()])[0]["status"] == "accepted"
        entry = _keys_entry(server, a)
        assert entry["signing_vkey"] == new.vkey and len(entry["rotations"]) == 1
        assert entry["rotations"][0]["rotation"]["schema"] == ROTATION_SCHEMA
    finally:
        stop_server(app2, srv2)
