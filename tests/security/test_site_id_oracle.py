"""`POST /sites` is no existence oracle: a partner cannot learn that a site id is in use by
another tenant. Partners never choose site ids — naming any id gets the same 400, whether the
id is free, its own or another tenant's — and without one they get a fresh server-assigned id.
Admins and operators (who see every site anyway) choose ids and get 409 for a taken one."""

from __future__ import annotations

from typing import Any

import pytest


def _partner(server, name: str) -> tuple[dict[str, Any], Any]:
    p = server.admin.post("/api/v1/partners", json={"name": name}).json()
    return p, server.client(api_key=p["api_key"])


@pytest.fixture
def tenants(server):
    pa, a = _partner(server, "Partner A")
    pb, b = _partner(server, "Partner B")
    site_a = a.post("/api/v1/sites", json={"name": "A clinic"}).json()
    site_b = b.post("/api/v1/sites", json={"name": "B clinic"}).json()
    msp = server.site("MSP clinic", id="msp-own-clinic")
    return {"a": (pa, a, site_a), "b": (pb, b, site_b), "msp": msp}


def _sites(server) -> list[dict[str, Any]]:
    return server.admin.get("/api/v1/sites").json()["sites"]


def test_a_partner_gets_the_same_answer_for_taken_and_free_ids(server, tenants) -> None:
    before = _sites(server)
    for me, other in (("a", "b"), ("b", "a")):
        _, client, mine = tenants[me]
        _, _, theirs = tenants[other]
        answers = {}
        for label, sid in (
            ("free", f"never-used-{me}"),
            ("other tenant", theirs["id"]),
            ("msp", tenants["msp"]["id"]),
            ("own", mine["id"]),
        ):
            r = client.post("/api/v1/sites", json={"id": sid, "name": "probe"})
            answers[label] = (r.status_code, r.headers["content-type"], r.json())
        assert len(set(map(repr, answers.values()))) == 1, answers
        status, ctype, body = answers["free"]
        assert (status, ctype, body["error"]["code"]) == (400, "application/json", "E_SCHEMA")
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    # nothing changed: no site created, none renamed or moved to the prober
    assert _sites(server) == before


def test_a_partner_without_an_id_gets_a_fresh_one_under_itself(server, tenants) -> None:
    pa, a, site_a = tenants["a"]
    r = a.post("/api/v1/sites", json={"name": "A second clinic"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["partner_id"] == pa["partner"]["id"]
    assert new["id"] not in {s["id"] for s in _sites(server) if s["id"] != new["id"]}
    assert {s["id"] for s in a.get("/api/v1/sites").json()["sites"]} == {site_a["id"], new["id"]}
    # partner B still sees only its own
    _, b, site_b = tenants["b"]
    assert [s["id"] for s in b.get("/api/v1/sites").json()["sites"]] == [site_b["id"]]


def test_admin_and_operator_choose_ids_and_see_conflicts(server, tenants) -> None:
    r = server.admin.post("/api/v1/sites", json={"id": "chosen-by-admin", "name": "x"})
    assert r.status_code == 201 and r.json()["id"] == "chosen-by-admin"
    _, _, site_b = tenants["b"]
    before = _sites(server)
    r = server.admin.post("/api/v1/sites", json={"id": site_b["id"], "name": "steal"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "E_CONFLICT"
    tok = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    op = server.client(tok["token"])
    r = op.post("/api/v1/sites", json={"id": "chosen-by-operator", "name": "y"})
    assert r.status_code == 201 and r.json()["id"] == "chosen-by-operator"
    r = op.post("/api/v1/sites", json={"id": site_b["id"], "name": "steal"})
    assert r.status_code == 409
    after = [s for s in _sites(server) if s["id"] != "chosen-by-operator"]
    assert after == before  # the conflicting creates changed nothing
