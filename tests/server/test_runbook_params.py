"""Per-site / per-appliance runbook parameters over real HTTP and real SQLite: validation
against the catalogue schema, roles, tenancy, audit, and delivery at the very next check-in."""

from __future__ import annotations

from typing import Any

from osiris_core import protocol
from tests.server.conftest import checkin_body

NET = "RB-WIN-NET-001"
PATCH = "RB-WIN-PATCH-001"


def _token(server, role: str, site_id: str | None = None) -> str:
    body = {"role": role, "name": f"{role} token"}
    if site_id:
        body["site_id"] = site_id
    r = server.admin.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _path(site_id: str, rb: str = PATCH) -> str:
    return f"/api/v1/sites/{site_id}/runbooks/{rb}/params"


def _checkin(server, a) -> dict[str, Any]:
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a))
    assert r.status_code == 200, r.text
    resp = r.json()
    protocol.validate_checkin_response(resp)  # what the agent runs before trusting it
    return resp


def _rows(server) -> int:
    return len(server.app.db.query("SELECT * FROM runbook_params"))


def test_get_shows_schema_defaults_and_effective(server) -> None:
    site = server.site()
    r = server.admin.get(_path(site["id"]))
    assert r.status_code == 200, r.text
    v = r.json()
    rb = server.app.catalog_runbooks()[PATCH]
    assert v["runbook_id"] == PATCH and v["site_id"] == site["id"]
    assert set(v["schema"]) == set(rb.params)
    assert v["schema"]["critical_overdue_days"]["type"] == "int"
    assert v["schema"]["critical_overdue_days"]["min"] == rb.params["critical_overdue_days"].min
    assert v["defaults"] == {n: p.default for n, p in rb.params.items()}
    assert v["site"] == {} and v["effective"] == v["defaults"]
    assert server.admin.get(_path(site["id"], "RB-NOPE-001")).status_code == 404


def test_put_validates_against_the_catalogue_and_writes_nothing_on_error(server) -> None:
    site = server.site()
    p = _path(site["id"])
    cases = [
        ({"no_such_param": 1}, "no_such_param"),
        ({"critical_overdue_days": "15"}, "critical_overdue_days"),  # wrong type
        ({"critical_overdue_days": 0}, "critical_overdue_days"),  # below min
        ({"critical_overdue_days": True}, "critical_overdue_days"),  # bool is not an int
        ({"include_important": "yes"}, "include_important"),
        ({"critical_overdue_days": 15, "bogus": None}, "bogus"),  # clearing an unknown name
    ]
    for body, named in cases:
        r = server.admin.put(p, json={"params": body})
        assert r.status_code == 400, (body, r.text)
        assert named in r.json()["error"]["message"], (body, r.json())
        assert _rows(server) == 0, body
    r = server.admin.put(_path(site["id"], NET), json={"params": {"dns_servers": "8.8.8.8; rm"}})
    assert r.status_code == 400 and "dns_servers" in r.json()["error"]["message"]
    assert server.admin.put(p, json={"params": {}}).status_code == 400
    assert server.admin.put(p, json={"critical_overdue_days": 15}).status_code == 400
    assert server.admin.put(p, json={"params": [1]}).status_code == 400
    assert _rows(server) == 0
    r = server.admin.put(_path(site["id"], "RB-NOPE-001"), json={"params": {"x": 1}})
    assert r.status_code == 404


def test_set_clear_audit_and_checkin_delivery(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], "appliance-2")
    first = _checkin(server, a)
    assert "params" not in first["runbooks"]  # nothing set: the field is left out entirely

    r = server.admin.put(_path(site["id"]), json={"params": {"critical_overdue_days": 15}})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["site"] == {"critical_overdue_days": 15}
    assert v["effective"]["critical_overdue_days"] == 15
    assert v["effective"]["include_important"] is True  # untouched: the catalogue default
    # the very next check-in sees it (the site's cache generation was bumped)
    assert _checkin(server, a)["runbooks"]["params"] == {PATCH: {"critical_overdue_days": 15}}
    # the signed rules are unaffected
    assert _checkin(server, a)["rules"] == first["rules"]

    # per-appliance value wins, for that appliance only; other params still inherit
    ap = f"/api/v1/appliances/{a.id}/runbooks/{PATCH}/params"
    r = server.admin.put(ap, json={"params": {"critical_overdue_days": 7}})
    assert r.status_code == 200, r.text
    assert r.json()["appliance"] == {"critical_overdue_days": 7}
    assert r.json()["site"] == {"critical_overdue_days": 15}
    assert r.json()["effective"]["critical_overdue_days"] == 7
    assert _checkin(server, a)["runbooks"]["params"][PATCH] == {"critical_overdue_days": 7}
    assert _checkin(server, b)["runbooks"]["params"][PATCH] == {"critical_overdue_days": 15}

    r = server.admin.put(_path(site["id"]), json={"params": {"include_important": False}})
    assert r.json()["site"] == {"critical_overdue_days": 15, "include_important": False}
    assert _checkin(server, a)["runbooks"]["params"][PATCH] == {
        "critical_overdue_days": 7,
        "include_important": False,
    }
    all_site = server.admin.get(f"/api/v1/sites/{site['id']}/runbook-params").json()
    assert all_site["params"] == {PATCH: {"critical_overdue_days": 15, "include_important": False}}

    # null clears: back to the site value, then to the catalogue default
    server.admin.put(ap, json={"params": {"critical_overdue_days": None}})
    assert _checkin(server, a)["runbooks"]["params"][PATCH]["critical_overdue_days"] == 15
    server.admin.put(
        _path(site["id"]),
        json={"params": {"critical_overdue_days": None, "include_important": None}},
    )
    assert "params" not in _checkin(server, a)["runbooks"]
    assert _rows(server) == 0

    audit = server.admin.get("/api/v1/audit", params={"limit": 1000}).json()["audit"]
    mine = [x for x in audit if x["action"].startswith("runbook_params.")]
    assert [x["action"] for x in mine].count("runbook_params.site") == 3
    assert [x["action"] for x in mine].count("runbook_params.appliance") == 2
    assert all(x["site_id"] == site["id"] for x in mine)
    assert any(x["detail"] == {"runbook_id": PATCH, "changes": {"critical_overdue_days": 15}}
               for x in mine)  # fmt: skip


def test_roles_and_tenancy(server) -> None:
    site = server.site()
    other = server.site("Other")
    body = {"params": {"critical_overdue_days": 20}}
    operator = server.client(_token(server, "operator"))
    auditor = server.client(_token(server, "auditor"))
    client = server.client(_token(server, "client", site["id"]))
    assert operator.put(_path(site["id"]), json=body).status_code == 200
    assert auditor.get(_path(site["id"])).json()["site"] == {"critical_overdue_days": 20}
    assert auditor.put(_path(site["id"]), json=body).status_code == 403
    assert client.get(_path(site["id"])).status_code == 200
    assert client.put(_path(site["id"]), json=body).status_code == 403
    assert client.get(_path(other["id"])).status_code == 404
    a = server.enroll(site["id"])
    assert server.client(a.token).get(_path(site["id"])).status_code == 403

    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = server.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    c1 = server.client(api_key=p1["api_key"])
    c2 = server.client(api_key=p2["api_key"])
    s1 = c1.post("/api/v1/sites", json={"name": "mine"}).json()
    a1 = server.enroll(s1["id"])
    assert c1.put(_path(s1["id"]), json=body).status_code == 200
    assert c1.get(_path(s1["id"])).json()["site"] == {"critical_overdue_days": 20}
    ap = f"/api/v1/appliances/{a1.id}/runbooks/{PATCH}/params"
    assert c1.put(ap, json={"params": {"allow_reboot": False}}).status_code == 200
    # another partner: the site and its appliance do not exist, reading or writing
    for c, path in ((c2, _path(s1["id"])), (c2, ap), (c1, _path(site["id"]))):
        assert c.get(path).status_code == 404, path
        r = c.put(path, json={"params": {"critical_overdue_days": 99}})
        assert r.status_code == 404, path
    assert c1.get(_path(s1["id"])).json()["site"] == {"critical_overdue_days": 20}
    assert c2.get(f"/api/v1/sites/{s1['id']}/runbook-params").status_code == 404


def test_rows_the_catalogue_no_longer_knows_are_not_delivered(server) -> None:
    """A value stored for a runbook or parameter since removed from the catalogue stays in the
    database (the audit trail) but is neither delivered nor shown as in force."""
    from osiris_server.db import runbooks as db_runbooks

    site = server.site()
    a = server.enroll(site["id"])
    with server.app.db.write() as w:
        db_runbooks.apply_params(w, "site", site["id"], "RB-GONE-001", {"x": 1}, "test")
        db_runbooks.apply_params(w, "site", site["id"], PATCH, {"retired_knob": 3}, "test")
        db_runbooks.apply_params(w, "site", site["id"], NET, {"dns_servers": "10.9.9.9"}, "test")
    assert _checkin(server, a)["runbooks"]["params"] == {NET: {"dns_servers": "10.9.9.9"}}
    assert server.admin.get(_path(site["id"])).json()["site"] == {}
    listed = server.admin.get(f"/api/v1/sites/{site['id']}/runbook-params").json()["params"]
    assert listed == {NET: {"dns_servers": "10.9.9.9"}}
