"""Incident triage over real HTTP (issue 13 item 8): acknowledge, assign, resolve with a note —
each validated, audited, refused on a resolved incident, and hidden from other sites' tokens."""

from __future__ import annotations

from typing import Any


def _token(server: Any, role: str, site_id: str | None = None) -> str:
    body = {"role": role, "name": f"{role} token"}
    if site_id:
        body["site_id"] = site_id
    r = server.admin.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _incident(server: Any, a: Any) -> str:
    with server.client(a.token) as c:
        inc = {"kind": "chain_gap", "severity": "warning", "host_id": "dc01", "summary": "gap"}
        r = c.post("/api/v1/incidents", json={"incidents": [inc]})
    assert r.status_code == 201, r.text
    return r.json()["incidents"][0]["id"]


def test_acknowledge_assign_resolve_audited(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    inc = _incident(server, a)
    base = f"/api/v1/incidents/{inc}"

    r = server.admin.post(base + "/acknowledge", json={})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "open" and first["acknowledged_by"]
    again = server.admin.post(base + "/acknowledge", json={}).json()
    assert again["acknowledged_at"] == first["acknowledged_at"]  # the first look is kept

    for bad in ("", "<script>", "x" * 65, 7):
        r = server.admin.post(base + "/assign", json={"assignee": bad})
        assert r.status_code == 400, (bad, r.text)
    assert server.admin.post(base + "/assign", json={}).status_code == 400
    r = server.admin.post(base + "/assign", json={"assignee": "dana.lee@clinic-it.example"})
    assert r.status_code == 200 and r.json()["assignee"] == "dana.lee@clinic-it.example"
    r = server.admin.post(base + "/assign", json={"assignee": None})
    assert r.status_code == 200 and r.json()["assignee"] is None
    server.admin.post(base + "/assign", json={"assignee": "Dana Lee"})

    assert server.admin.post(base + "/resolve", json={"note": "x" * 1025}).status_code == 400
    r = server.admin.post(base + "/resolve", json={"note": "restarted the agent"})
    assert r.status_code == 200
    done = r.json()
    assert (done["status"], done["resolution_note"]) == ("resolved", "restarted the agent")
    assert done["assignee"] == "Dana Lee"

    for path, body in (("/acknowledge", {}), ("/assign", {"assignee": "Sam"})):
        r = server.admin.post(base + path, json=body)
        assert r.status_code == 409 and "already resolved" in r.text

    audit = server.admin.get("/api/v1/audit", params={"site": site["id"]}).json()["audit"]
    actions = [e["action"] for e in audit if e["target"] == inc]
    assert actions.count("incident.acknowledge") == 1  # the repeat changed nothing
    assert actions.count("incident.assign") == 3
    assert actions.count("incident.resolve") == 1
    assign = [e for e in audit if e["action"] == "incident.assign"]
    assert {"old": None, "new": "dana.lee@clinic-it.example"} in [e["detail"] for e in assign]


def test_triage_scoped_and_role_checked(server) -> None:
    site = server.site()
    inc = _incident(server, server.enroll(site["id"]))
    partner = server.admin.post("/api/v1/partners", json={"name": "Other MSP"}).json()
    auditor = _token(server, "auditor")
    with server.client(api_key=partner["api_key"]) as c:  # a writer, but not of this site
        for path, body in (("/acknowledge", {}), ("/assign", {"assignee": "Sam"}),
                           ("/resolve", {})):  # fmt: skip
            assert c.post(f"/api/v1/incidents/{inc}{path}", json=body).status_code == 404
    with server.client(auditor) as c:
        r = c.post(f"/api/v1/incidents/{inc}/assign", json={"assignee": "Sam"})
        assert r.status_code == 403
    row = server.admin.get(f"/api/v1/incidents/{inc}").json()
    assert (row["status"], row["assignee"], row["acknowledged_at"]) == ("open", None, None)
