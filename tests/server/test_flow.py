"""The appliance path end to end over real HTTP: enroll, check in, ingest evidence, receipts."""

from __future__ import annotations

import base64
import copy

from osiris_core import canonical, note, tlog
from osiris_core import evidence as ev
from osiris_core.keys import Verifier
from osiris_core.protocol import validate_checkin_response
from tests.server.conftest import checkin_body


def _verify_receipt(receipt: str, envelope: dict, log_vkey: str) -> note.Checkpoint:
    proof = note.TlogProof.parse(receipt)
    opened = note.open_note(proof.checkpoint, [Verifier.from_vkey(log_vkey)])
    cp = note.Checkpoint.parse(opened.text)
    leaf = tlog.leaf_hash(canonical.dumps(envelope))
    tlog.verify_inclusion(leaf, proof.index, cp.size, proof.hashes, cp.root)
    return cp


def test_enroll_checkin_and_ingest(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    assert a.enroll["log_vkey"] == server.init["log_vkey"]
    assert a.enroll["order_vkey"] == server.init["order_vkey"]
    assert a.enroll["signing_vkey"].startswith(f"osiris/appliance/{a.id}+")
    c = server.client(a.token)

    r = c.post("/api/v1/checkin", json=checkin_body(a))
    assert r.status_code == 200, r.text
    resp = r.json()
    validate_checkin_response(resp)
    assert resp["next_checkin_s"] == site["checkin_interval_s"]
    assert resp["orders"] == [] and resp["targets"] == []

    envs = [a.envelope() for _ in range(3)]
    r = c.post("/api/v1/evidence", json={"envelopes": envs, "log_size_seen": 0})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["status"] for x in out["results"]] == ["accepted"] * 3
    sizes = set()
    for env, res in zip(envs, out["results"], strict=True):
        assert res["bundle_hash"] == ev.bundle_hash(env["bundle"])
        cp = _verify_receipt(res["receipt"], env, server.init["log_vkey"])
        sizes.add(cp.size)
    assert sizes == {3}
    assert out["consistency"] == {"from": 0, "to": 3, "proof": []}

    # replay: same receipt index, no new leaf
    before = server.app.log.size()
    r2 = c.post("/api/v1/evidence", json={"envelopes": envs, "log_size_seen": 3})
    assert [x["status"] for x in r2.json()["results"]] == ["duplicate"] * 3
    assert [x["index"] for x in r2.json()["results"]] == [x["index"] for x in out["results"]]
    assert r2.json()["results"][0]["receipt"] == out["results"][0]["receipt"]
    assert server.app.log.size() == before

    # next batch: consistency proof from the size the appliance saw
    more = [a.envelope() for _ in range(2)]
    r3 = c.post("/api/v1/evidence", json={"envelopes": more, "log_size_seen": 3})
    body = r3.json()
    log_v = Verifier.from_vkey(server.init["log_vkey"])
    old_root = note.Checkpoint.parse(note.open_note(out["checkpoint"], [log_v]).text).root
    new_cp = _verify_receipt(body["results"][1]["receipt"], more[1], server.init["log_vkey"])
    proof = [base64.b64decode(h) for h in body["consistency"]["proof"]]
    tlog.verify_consistency(3, new_cp.size, old_root, new_cp.root, proof)

    # evidence query by an operator returns the same envelopes
    q = server.admin.get("/api/v1/evidence", params={"site": site["id"]}).json()["evidence"]
    assert [e["envelope"] for e in q] == envs + more


def test_forged_signature_and_identity_rejected_without_writing(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], "appliance-2")
    c = server.client(a.token)
    good = a.envelope()
    forged = copy.deepcopy(good)
    forged["bundle"]["outcome"] = "healed"  # signature no longer matches
    other = b.envelope()  # b's bundle sent with a's token
    before = server.app.log.size()
    r = c.post("/api/v1/evidence", json={"envelopes": [forged, other, {"x": 1}, "{ bad"]})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["rejected"] * 4
    assert res[0]["error"]["code"] == "E_SIG"
    assert res[1]["error"]["code"] == "E_IDENTITY"
    assert res[2]["error"]["code"] == "E_SCHEMA"
    assert res[3]["error"]["code"] == "E_PARSE"
    assert server.app.log.size() == before
    # the genuine one still goes in afterwards
    r = c.post("/api/v1/evidence", json={"envelopes": [good]})
    assert r.json()["results"][0]["status"] == "accepted"


def test_non_canonical_text_envelope_rejected(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    env = a.envelope()
    text = canonical.dumps(env).decode()
    spaced = text.replace(",", ", ", 1)
    c = server.client(a.token)
    r = c.post("/api/v1/evidence", json={"envelopes": [spaced]})
    assert r.json()["results"][0]["error"]["code"] == "E_NONCANONICAL"
    r = c.post("/api/v1/evidence", json={"envelopes": [text]})
    assert r.json()["results"][0]["status"] == "accepted"


def test_seq_gap_opens_incident_and_seq_reuse_rejected(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    e1 = a.envelope()
    a.envelope()  # seq 2 is never sent
    e3 = a.envelope()
    r = c.post("/api/v1/evidence", json={"envelopes": [e1, e3]})
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]
    inc = server.admin.get("/api/v1/incidents", params={"site": site["id"]}).json()["incidents"]
    inc = [i for i in inc if i["kind"] != "appliance_enrolled"]  # every enrolment is one too
    assert [i["kind"] for i in inc] == ["chain_gap"]
    assert inc[0]["details"]["seq"] == 3

    # a different bundle claiming seq 3 again: E_CHAIN
    fork = ev.Chain(a.id, seq=2, head=e1["bundle"]["prev_hash"])
    b = fork.next(site_id=site["id"], host_id="x1", check="firewall", outcome="failed")
    r = c.post("/api/v1/evidence", json={"envelopes": [ev.sign_bundle(b, a.signer)]})
    assert r.json()["results"][0]["error"]["code"] == "E_CHAIN"
