"""Witness cosignatures and checkpoint publication in front of a hostile tenant, over real HTTP.

* Each appliance keeps its own newest cosignature: a tenant enrolling many appliances that
  cosign with far-future timestamps (refused, not stored) or validly and newer cannot move
  another clinic's ``GET /log/checkpoint?cosigned_by_site=…`` answer.
* A checkpoint note carries only the cosignature lines of appliances the caller may see: the
  key names (``osiris/appliance/<id>``) of another tenant's witnesses never leak.
* The log publishes the size-0 checkpoint, so ``/log/checkpoint`` never 404s; ``/healthz``
  says nothing but "ok".
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from osiris_agent.outbox import Pending
from osiris_agent.state import StateDB
from osiris_agent.witness import Witness
from osiris_core import canonical, tlog
from osiris_core import note as notes
from osiris_core.evidence import bundle_hash
from osiris_core.keys import Verifier
from osiris_server.log import COSIG_MAX_FUTURE_S
from tests.server.conftest import Appliance, Server, checkin_body


def _log_v(server: Server) -> Verifier:
    return Verifier.from_vkey(server.init["log_vkey"])


def _ingest(server: Server, a: Appliance, n: int = 1) -> dict[str, Any]:
    r = server.client(a.token).post(
        "/api/v1/evidence", json={"envelopes": [a.envelope() for _ in range(n)]}
    )
    assert r.status_code == 200, r.text
    assert {x["status"] for x in r.json()["results"]} == {"accepted"}
    return r.json()


def _cosign(server: Server, a: Appliance, note_text: str, ts: int) -> tuple[int, str]:
    """Cosign a log-signed checkpoint note at check-in, as the agent does; (size, line)."""
    body = notes.open_note(note_text, [_log_v(server)]).text
    size = notes.Checkpoint.parse(body).size
    line = notes.cosign(body, a.cosigner, ts)
    cs = [{"size": size, "line": line.rstrip("\n")}]
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a, size, cosignatures=cs))
    assert r.status_code == 200, r.text
    return size, line


def _site_answer(server: Server, site_id: str) -> httpx.Response:
    return server.admin.get("/api/v1/log/checkpoint", params={"cosigned_by_site": site_id})


def _stored_cosigners(server: Server) -> list[str]:
    """The cosigners the log stored, read through its own store (SQLite file or PostgreSQL)."""
    with server.app.log.store.reading() as tx:
        return sorted(r["name"] for r in tx.query("SELECT name FROM cosigners"))


def test_a_tenant_cannot_move_another_sites_cosigned_checkpoint(server) -> None:
    victim = server.site("Victim clinic")
    v = server.enroll(victim["id"], hostname="victim-1")
    size_v, line_v = _cosign(server, v, _ingest(server, v)["checkpoint"], int(time.time()))
    before = _site_answer(server, victim["id"])
    assert before.status_code == 200 and before.json()["size"] == size_v
    assert line_v.rstrip("\n") in before.json()["note"]

    tenant = server.site("Big tenant")
    fleet = [server.enroll(tenant["id"], hostname=f"t-{i}") for i in range(25)]
    # 25 appliances cosign with far-future timestamps: each refused, none stored, counted
    far = int(time.time()) + 10**8
    for t in fleet:
        _cosign(server, t, _ingest(server, t)["checkpoint"], far)
    assert _stored_cosigners(server) == [v.cosigner.name]
    assert _site_answer(server, tenant["id"]).status_code == 404
    latest = server.admin.get("/api/v1/log/checkpoint").json()
    for size in {latest["size"], size_v}:
        note = server.admin.get("/api/v1/log/checkpoint", params={"size": size}).json()["note"]
        assert not any(t.id in note for t in fleet)
    rejected = server.admin.get(
        "/api/v1/audit", params={"action": "cosignature.rejected", "limit": 1000}
    ).json()["audit"]
    assert {x["target"] for x in rejected} == {t.id for t in fleet}
    assert _site_answer(server, victim["id"]).json() == before.json()

    # then all 25 cosign validly, newer checkpoints, timestamps at the edge of the skew allowed
    sizes = []
    for t in fleet:
        ts = int(time.time()) + COSIG_MAX_FUTURE_S - 5
        sizes.append(_cosign(server, t, _ingest(server, t)["checkpoint"], ts)[0])
    assert len(_stored_cosigners(server)) == 26
    assert _site_answer(server, victim["id"]).json() == before.json()  # untouched
    assert _site_answer(server, tenant["id"]).json()["size"] == max(sizes)

    # the victim's answer moves only with its own appliances: a second appliance cosigns the
    # newest checkpoint, then the first re-cosigns an older one (which changes nothing)
    v2 = server.enroll(victim["id"], hostname="victim-2")
    size_v2, line_v2 = _cosign(server, v2, _ingest(server, v2)["checkpoint"], int(time.time()))
    assert size_v2 > size_v
    now_ans = _site_answer(server, victim["id"]).json()
    assert now_ans["size"] == size_v2 and line_v2.rstrip("\n") in now_ans["note"]
    assert not any(t.id in now_ans["note"] for t in fleet)  # only the site's own witnesses
    _cosign(server, v, before.json()["note"], int(time.time()) + 10)
    assert _site_answer(server, victim["id"]).json()["size"] == size_v2


def _two_tenants(server: Server) -> dict[str, Any]:
    """Site A (the MSP's own) and site B (a partner's), one appliance each, both cosigning
    the same checkpoint."""
    partner = server.admin.post("/api/v1/partners", json={"name": "Partner B"}).json()
    pkey = partner["api_key"]
    site_b = server.client(api_key=pkey).post("/api/v1/sites", json={"name": "B"}).json()
    site_a = server.site("A")
    a1 = server.enroll(site_a["id"], hostname="a-1")
    b1 = server.enroll(site_b["id"], hostname="b-1")
    out_a = _ingest(server, a1)
    out_b = _ingest(server, b1, 2)
    size, line_b = _cosign(server, b1, out_b["checkpoint"], int(time.time()))
    size_a, line_a = _cosign(server, a1, out_b["checkpoint"], int(time.time()))
    assert size == size_a
    tokens = {}
    for name, body in (
        ("client_b", {"role": "client", "name": "b", "site_id": site_b["id"]}),
        ("client_a", {"role": "client", "name": "a", "site_id": site_a["id"]}),
    ):
        r = server.admin.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        tokens[name] = r.json()["token"]
    return {
        "a1": a1,
        "b1": b1,
        "site_a": site_a["id"],
        "site_b": site_b["id"],
        "size": size,
        "line_a": line_a.rstrip("\n"),
        "line_b": line_b.rstrip("\n"),
        "bundle_a": out_a["results"][0]["bundle_hash"],
        "bundle_b": out_b["results"][0]["bundle_hash"],
        "client_b": server.client(tokens["client_b"]),
        "client_a": server.client(tokens["client_a"]),
        "partner_b": server.client(api_key=pkey),
    }


def test_checkpoint_notes_carry_only_the_callers_cosignatures(server) -> None:
    w = _two_tenants(server)
    a1, b1, size = w["a1"], w["b1"], w["size"]
    log_v = _log_v(server)
    # the unfiltered view exists: an MSP admin sees both witnesses on the shared checkpoint
    both = server.admin.get("/api/v1/log/checkpoint", params={"size": size}).json()["note"]
    assert w["line_a"] in both and w["line_b"] in both

    def tenant_b_answers(c: Any) -> list[tuple[str, str]]:
        """Every answer tenant B's side can get that carries a checkpoint note."""
        out = []
        for params in ({}, {"size": size}, {"cosigned_by_site": w["site_b"]}):
            r = c.get("/api/v1/log/checkpoint", params=params)
            assert r.status_code == 200, r.text
            out.append((f"checkpoint {params}", r.text))
        for params in ({"hash": w["bundle_b"]}, {"hash": w["bundle_b"], "size": size}):
            r = c.get("/api/v1/log/proof/inclusion", params=params)
            assert r.status_code == 200, r.text
            out.append((f"inclusion {params}", r.text))
        return out

    viewers = {
        "client of B": w["client_b"],
        "partner of B": w["partner_b"],
        "appliance of B": server.client(b1.token),
    }
    for who, c in viewers.items():
        answers = tenant_b_answers(c) if who != "appliance of B" else []
        if who == "appliance of B":
            for params in ({}, {"size": size}):
                r = c.get("/api/v1/log/checkpoint", params=params)
                assert r.status_code == 200
                answers.append((f"checkpoint {params}", r.text))
            for params in ({"hash": w["bundle_b"]}, {"hash": w["bundle_b"], "size": size}):
                r = c.get("/api/v1/log/proof/inclusion", params=params)
                assert r.status_code == 200, r.text
                answers.append((f"inclusion {params}", r.text))
            r = c.post("/api/v1/evidence", json={"envelopes": [b1.envelope()]})
            assert r.status_code == 200
            answers.append(("ingest receipts", r.text))
            r = c.post("/api/v1/checkin", json=checkin_body(b1, size))
            assert r.status_code == 200, r.text
            answers.append(("check-in", r.text))
            r = c.get("/api/v1/log/keys")
            answers.append(("keys", r.text))
        else:
            r = c.get("/api/v1/evidence", params={"site": w["site_b"], "proof_size": size})
            assert r.status_code == 200, r.text
            answers.append(("evidence proofs", r.text))
            r = c.get("/api/v1/log/keys")
            answers.append(("keys", r.text))
        for what, text in answers:
            assert a1.id not in text, f"{who}: {what} names tenant A's appliance"
        checkpoint_answers = [t for what, t in answers if what.startswith("checkpoint {'size'")]
        for text in checkpoint_answers:
            note = canonical.loads(text.encode())["note"]
            opened = notes.open_note(note, [log_v, b1.cosigner.verifier()])
            assert b1.cosigner.name in opened.verified  # its own clinic's witness is there
    # and the other way round: tenant A's client never sees B's witness
    for params in ({}, {"size": size}, {"cosigned_by_site": w["site_a"]}):
        r = w["client_a"].get("/api/v1/log/checkpoint", params=params)
        assert r.status_code == 200 and b1.id not in r.text, params
    assert (
        w["line_a"]
        in w["client_a"].get("/api/v1/log/checkpoint", params={"size": size}).json()["note"]
    )
    r = w["client_a"].get("/api/v1/log/proof/inclusion", params={"hash": w["bundle_a"]})
    assert r.status_code == 200 and b1.id not in r.text
    # a note served for one site's evidence carries that site's witnesses, whoever asks
    q = {"hash": w["bundle_b"], "size": size}
    r = server.admin.get("/api/v1/log/proof/inclusion", params=q)
    assert b1.id in r.text and a1.id not in r.text
    r = server.admin.get("/api/v1/evidence", params={"site": w["site_b"], "proof_size": size})
    assert b1.id in r.text and a1.id not in r.text


def test_healthz_says_only_ok(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    _ingest(server, a, 3)
    r = server.client().get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_a_new_log_publishes_its_size_0_checkpoint(server, tmp_path: Path) -> None:
    log_v = _log_v(server)
    site = server.site()
    a = server.enroll(site["id"])
    for c in (server.admin, server.client(a.token)):
        r = c.get("/api/v1/log/checkpoint")
        assert r.status_code == 200, r.text
        cp = r.json()
        assert cp["size"] == 0 and base64.b64decode(cp["root"]) == tlog.EMPTY_ROOT
        body = notes.Checkpoint.parse(notes.open_note(cp["note"], [log_v]).text)
        assert (body.origin, body.size, body.root) == (log_v.name, 0, tlog.EMPTY_ROOT)
        assert c.get("/api/v1/log/checkpoint", params={"size": 0}).json() == cp
    r = server.admin.get("/api/v1/log/proof/consistency", params={"from": 0, "to": 0})
    assert r.status_code == 200 and r.json()["proof"] == []
    r = server.admin.get("/api/v1/evidence", params={"site": site["id"], "proof_size": 0})
    assert r.status_code == 200 and r.json()["checkpoint"]["size"] == 0

    # the agent's witness starts from it: an all-rejected batch on the empty log answers the
    # size-0 checkpoint, which the witness verifies (trivially consistent) and stores
    db = StateDB(tmp_path / "state.db")
    try:
        witness = Witness(db, log_v, server.app.cfg.origin)
        bad = a.envelope()
        bad["sig"]["value"] = base64.b64encode(b"\0" * 64).decode()
        answer = server.client(a.token).post("/api/v1/evidence", json={"envelopes": [bad]}).json()
        assert answer["results"][0]["status"] == "rejected"
        pending = [_pending(bad)]
        verdict = witness.verify_batch(answer, pending)
        assert verdict.size == 0 and verdict.rejected and not verdict.acks
        witness.commit(verdict, lambda *x: None)
        assert witness.size == 0 and witness.trusted
        assert witness.cosignatures(a.cosigner) == []  # nothing worth cosigning yet
        # then real evidence: consistent with size 0, receipts verify, and it cosigns
        a.chain.seq, a.chain.head = 0, bad["bundle"]["prev_hash"]  # resend seq 1 properly
        good = [a.envelope(), a.envelope()]
        answer = server.client(a.token).post("/api/v1/evidence", json={"envelopes": good}).json()
        verdict = witness.verify_batch(answer, [_pending(e) for e in good])
        assert len(verdict.acks) == 2 and verdict.size == 2
        witness.commit(verdict, lambda *x: None)
        [cs] = witness.cosignatures(a.cosigner)
        r = server.client(a.token).post(
            "/api/v1/checkin", json=checkin_body(a, 2, cosignatures=[cs])
        )
        assert r.status_code == 200
        q = {"cosigned_by_site": site["id"]}
        assert server.admin.get("/api/v1/log/checkpoint", params=q).json()["size"] == 2
    finally:
        db.close()


def _pending(env: dict[str, Any]) -> Pending:
    return Pending(
        seq=env["bundle"]["seq"],
        bundle_hash=bundle_hash(env["bundle"]),
        data=canonical.dumps(env),
        attempts=0,
        state="queued",
        last_error=None,
    )
