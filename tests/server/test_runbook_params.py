"""Per-site / per-appliance runbook parameters over real HTTP and real SQLite: the catalogue's
one validator (semantic bounds), roles, tenancy, audit, trust-redirecting parameters (admin-only,
per-site allow-lists, change records) and delivery inside the signed policy at the very next
check-in — with a version that only grows."""

from __future__ import annotations

from typing import Any

from osiris_core import protocol
from osiris_core.keys import Verifier
from osiris_core.release import verify_release
from tests.server.conftest import checkin_body, policy_of

NET = "RB-WIN-NET-001"
PATCH = "RB-WIN-PATCH-001"
PERM = "LIN-PERM-001"
UPD = "RB-WIN-UPD-002"
GEN = "RB-NIX-GEN-001"
STORE = "/nix/store/" + "d" * 32 + "-nixos-system-osiris-25.05"


def _token(server, role: str, site_id: str | None = None) -> str:
    body = {"role": role, "name": f"{role} token"}
    if site_id:
        body["site_id"] = site_id
    r = server.admin.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _path(site_id: str, rb: str = PATCH) -> str:
    return f"/api/v1/sites/{site_id}/runbooks/{rb}/params"


def _checkin(server, a, **extra: Any) -> dict[str, Any]:
    r = server.client(a.token).post("/api/v1/checkin", json=checkin_body(a, **extra))
    assert r.status_code == 200, r.text
    resp = r.json()
    protocol.validate_checkin_response(resp)  # what the agent runs before trusting it
    assert "runbooks" not in resp and "window" not in resp  # nothing unsigned to act on
    return resp


def _policy(server, a) -> dict[str, Any]:
    return policy_of(a, _checkin(server, a))


def _rows(server) -> int:
    return len(server.app.db.query("SELECT * FROM runbook_params"))


def test_get_shows_schema_bounds_who_sets_and_effective(server) -> None:
    site = server.site()
    r = server.admin.get(_path(site["id"]))
    assert r.status_code == 200, r.text
    v = r.json()
    rb = server.app.catalog_runbooks()[PATCH]
    assert v["runbook_id"] == PATCH and v["site_id"] == site["id"]
    assert set(v["schema"]) == set(rb.params)
    days = v["schema"]["critical_overdue_days"]
    assert days["type"] == "int" and days["min"] == rb.params["critical_overdue_days"].min
    assert days["bound"] == {"kind": "range", "set_by": "operator", "tighter": "lower"}
    assert days["set_by"] == "operator" and "baseline at most 60" in days["bound_text"]
    assert v["defaults"] == {n: p.default for n, p in rb.params.items()}
    assert v["site"] == {} and v["effective"] == v["defaults"]
    wsus = server.admin.get(_path(site["id"], UPD)).json()["schema"]["wsus_server"]
    assert wsus["set_by"] == "admin" and wsus["bound"]["kind"] == "trusted"
    assert server.admin.get(_path(site["id"], "RB-NOPE-001")).status_code == 404


def test_put_validates_against_the_catalogue_and_writes_nothing_on_error(server) -> None:
    site = server.site()
    p = _path(site["id"])
    cases = [
        ({"no_such_param": 1}, "no_such_param"),
        ({"critical_overdue_days": "15"}, "critical_overdue_days"),  # wrong type
        ({"critical_overdue_days": 0}, "critical_overdue_days"),  # below min
        ({"critical_overdue_days": 90}, "critical_overdue_days"),  # looser than the baseline
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


def test_the_issue_attacks_are_refused_and_change_nothing(server) -> None:
    """Issue 11, first bullet, by a partner key on its own site (and by an operator): each
    attack gets a clear 400/403, no row is written, no audit row claims a change, and the
    appliance's signed policy stays the same version."""
    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    partner = server.client(api_key=p1["api_key"])
    operator = server.client(_token(server, "operator"))
    site = partner.post("/api/v1/sites", json={"name": "clinic"}).json()
    a = server.enroll(site["id"])
    before = _policy(server, a)
    sid = site["id"]
    attacks = [
        (PERM, {"target_mode": "0666", "allowed_modes": "666"}, 400, "adds permission bits"),
        ("LIN-SVC-002", {"service": "debug-shell.service"}, 400, "root shell"),
        ("LIN-SVC-004", {"units": "sshd auditd"}, 400, "allow-list"),
        ("LIN-SVC-004", {"units": "telnet.socket inetd xinetd sshd"}, 400, "allow-list"),
        (UPD, {"wsus_server": "http://attacker.example"}, 403, "only an admin"),
        (NET, {"dns_servers": "203.0.113.53"}, 403, "only an admin"),
        ("RB-NIX-FW-001", {"state_file": "/var/lib/osiris/appliance.key"}, 400, "inside"),
        ("RB-NIX-FW-001", {"baseline_sha256": "ab" * 32}, 403, "only an admin"),
        (GEN, {"desired_system": STORE}, 403, "only an admin"),
    ]
    for client in (partner, operator):
        for rb, params, status, why in attacks:
            r = client.put(_path(sid, rb), json={"params": params})
            assert r.status_code == status, (rb, params, r.text)
            assert why in r.json()["error"]["message"], (rb, r.text)
            ap = f"/api/v1/appliances/{a.id}/runbooks/{rb}/params"
            assert client.put(ap, json={"params": params}).status_code == status, (rb, params)
    # an admin gets no further with values off the site's allow-list (there is none)
    for rb, params, _status, _why in attacks:
        r = server.admin.put(_path(sid, rb), json={"params": params})
        assert r.status_code == 400, (rb, params, r.text)
    assert _rows(server) == 0
    assert server.app.db.query("SELECT * FROM trust_changes") == []
    audit = server.admin.get("/api/v1/audit", params={"limit": 1000}).json()["audit"]
    assert not [x for x in audit if x["action"].startswith("runbook_params.")]
    after = _policy(server, a)
    assert after == before  # same version, same content, same issue time


def test_set_clear_audit_and_signed_delivery(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], "appliance-2")
    first = _policy(server, a)
    assert first["params"] == {} and first["version"] == 1

    r = server.admin.put(_path(site["id"]), json={"params": {"critical_overdue_days": 15}})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["site"] == {"critical_overdue_days": 15}
    assert v["effective"]["critical_overdue_days"] == 15
    assert v["effective"]["include_important"] is True  # untouched: the catalogue default
    # the very next check-in carries it, in a newer signed policy
    pol = _policy(server, a)
    assert pol["params"] == {PATCH: {"critical_overdue_days": 15}} and pol["version"] == 2
    assert pol["ruleset_hash"] == first["ruleset_hash"]  # the signed rules are unaffected

    # per-appliance value wins, for that appliance only; other params still inherit
    ap = f"/api/v1/appliances/{a.id}/runbooks/{PATCH}/params"
    r = server.admin.put(ap, json={"params": {"critical_overdue_days": 7}})
    assert r.status_code == 200, r.text
    assert r.json()["appliance"] == {"critical_overdue_days": 7}
    assert r.json()["site"] == {"critical_overdue_days": 15}
    assert r.json()["effective"]["critical_overdue_days"] == 7
    assert _policy(server, a)["params"][PATCH] == {"critical_overdue_days": 7}
    assert _policy(server, b)["params"][PATCH] == {"critical_overdue_days": 15}

    r = server.admin.put(_path(site["id"]), json={"params": {"include_important": False}})
    assert r.json()["site"] == {"critical_overdue_days": 15, "include_important": False}
    assert _policy(server, a)["params"][PATCH] == {
        "critical_overdue_days": 7,
        "include_important": False,
    }
    all_site = server.admin.get(f"/api/v1/sites/{site['id']}/runbook-params").json()
    assert all_site["params"] == {PATCH: {"critical_overdue_days": 15, "include_important": False}}

    # null clears: back to the site value, then to the catalogue default
    server.admin.put(ap, json={"params": {"critical_overdue_days": None}})
    assert _policy(server, a)["params"][PATCH]["critical_overdue_days"] == 15
    server.admin.put(
        _path(site["id"]),
        json={"params": {"critical_overdue_days": None, "include_important": None}},
    )
    last = _policy(server, a)
    assert last["params"] == {} and _rows(server) == 0
    # the content is the first one again, but its version is new: never reused
    assert last["version"] > 2 and last["version"] != first["version"]

    audit = server.admin.get("/api/v1/audit", params={"limit": 1000}).json()["audit"]
    mine = [x for x in audit if x["action"].startswith("runbook_params.")]
    assert [x["action"] for x in mine].count("runbook_params.site") == 3
    assert [x["action"] for x in mine].count("runbook_params.appliance") == 2
    assert all(x["site_id"] == site["id"] for x in mine)
    assert any(x["detail"] == {"runbook_id": PATCH, "changes": {"critical_overdue_days": 15}}
               for x in mine)  # fmt: skip


def test_policy_version_grows_only_and_is_left_out_when_current(server_factory) -> None:
    server = server_factory()
    site = server.site()
    a = server.enroll(site["id"])
    v1 = _policy(server, a)["version"]
    # unchanged content: the same version, and nothing at all when the appliance has it
    assert _policy(server, a)["version"] == v1
    resp = _checkin(server, a, policy_version=v1)
    assert "policy" not in resp
    # the operators' view is the exact document the check-in delivers
    view = server.admin.get(f"/api/v1/appliances/{a.id}/policy").json()
    assert view["version"] == v1 and view["policy"] == _checkin(server, a)["policy"]
    server.admin.put(_path(site["id"]), json={"params": {"critical_overdue_days": 20}})
    resp = _checkin(server, a, policy_version=v1)
    v2 = policy_of(a, resp)["version"]
    assert v2 == v1 + 1
    assert "policy" not in _checkin(server, a, policy_version=v2)
    rows = server.app.db.query("SELECT version FROM policy_versions WHERE appliance_id = ?",
                               [a.id])  # fmt: skip
    assert rows == [{"version": v2}]


def test_trust_redirecting_params_need_an_admin_and_the_allow_list(server) -> None:
    site = server.site()
    sid = site["id"]
    a = server.enroll(sid)
    operator = server.client(_token(server, "operator"))
    wsus = "https://wsus.clinic.example:8531"
    allow = f"/api/v1/sites/{sid}/allowlists/{UPD}/wsus_server"
    # only an admin edits an allow-list; an entry must itself be a valid value
    assert operator.put(allow, json={"values": [wsus]}).status_code == 403
    r = server.admin.put(allow, json={"values": ["ftp://x"]})
    assert r.status_code == 400 and "wsus_server" in r.json()["error"]["message"]
    r = server.admin.put(f"/api/v1/sites/{sid}/allowlists/{PATCH}/critical_overdue_days",
                         json={"values": ["3"]})  # fmt: skip
    assert r.status_code == 400 and "not trust-redirecting" in r.json()["error"]["message"]
    r = server.admin.put(allow, json={"values": [wsus]})
    assert r.status_code == 200, r.text
    assert r.json()["allowlists"][UPD] == {"wsus_server": [wsus]}
    # an operator still may not set it, even to an allow-listed value; an admin may
    r = operator.put(_path(sid, UPD), json={"params": {"wsus_server": wsus}})
    assert r.status_code == 403
    r = server.admin.put(_path(sid, UPD), json={"params": {"wsus_server": "https://other:1"}})
    assert r.status_code == 400 and "allow-list" in r.json()["error"]["message"]
    assert server.admin.put(_path(sid, UPD), json={"params": {"wsus_server": wsus}}).is_success
    # DNS: every server of the list must be on the allow-list
    dns_allow = f"/api/v1/sites/{sid}/allowlists/{NET}/dns_servers"
    r = server.admin.put(dns_allow, json={"values": ["10.20.0.53,10.20.0.54"]})
    assert r.status_code == 400  # one server per entry
    assert server.admin.put(dns_allow, json={"values": ["10.20.0.53", "10.20.0.54"]}).is_success
    r = server.admin.put(_path(sid, NET), json={"params": {"dns_servers": "10.20.0.53,8.8.8.8"}})
    assert r.status_code == 400 and "8.8.8.8" in r.json()["error"]["message"]
    ok = server.admin.put(
        _path(sid, NET), json={"params": {"dns_servers": "10.20.0.54,10.20.0.53"}}
    )
    assert ok.is_success, ok.text
    # the signed policy carries values, allow-lists and who changed what
    pol = _policy(server, a)
    assert pol["params"][UPD] == {"wsus_server": wsus}
    assert pol["allowlists"][UPD] == {"wsus_server": [wsus]}
    changes = {(c["runbook_id"], c["param"]): c for c in pol["changes"]}
    rec = changes[(UPD, "wsus_server")]
    assert rec["old"] is None and rec["new"] == wsus and rec["scope"] == "site"
    assert rec["by"].startswith("operator:") and rec["at"]
    assert changes[(NET, "dns_servers")]["new"] == "10.20.0.54,10.20.0.53"
    # the audit log names the allow-list edits and the trust changes
    audit = server.admin.get("/api/v1/audit", params={"limit": 1000}).json()["audit"]
    assert [x["action"] for x in audit].count("allowlist.site") == 2
    puts = [x for x in audit if x["action"] == "runbook_params.site"]
    assert any(x["detail"].get("trust_changes") for x in puts)
    # shrinking the allow-list: the value is no longer delivered (the default applies)
    assert server.admin.put(allow, json={"values": []}).is_success
    pol = _policy(server, a)
    assert UPD not in pol["params"] and UPD not in pol["allowlists"]
    view = server.admin.get(f"/api/v1/sites/{sid}/allowlists").json()
    assert view["allowlists"][UPD] == {"wsus_server": []}
    assert [c["param"] for c in view["changes"]][:2] == ["dns_servers", "wsus_server"]


def test_desired_system_comes_with_a_release_signed_by_the_release_key(server) -> None:
    site = server.site()
    sid = site["id"]
    a = server.enroll(sid)
    r = server.admin.put(_path(sid, GEN), json={"params": {"desired_system": STORE}})
    assert r.status_code == 400  # not allow-listed, no release: "looks like a system" is nothing
    allow = f"/api/v1/sites/{sid}/allowlists/{GEN}/desired_system"
    assert server.admin.put(allow, json={"values": ["/nix/store/short"]}).status_code == 400
    r = server.admin.put(allow, json={"values": [STORE]})
    assert r.status_code == 200, r.text
    rel = r.json()["releases"]
    release = Verifier.from_vkey(a.enroll["release_vkey"])  # pinned at enrolment
    assert [verify_release(e, [release])["system"] for e in rel] == [STORE]
    assert all(e["sig"]["key_id"] != a.enroll["order_vkey"].split("+")[1] for e in rel)
    assert server.admin.put(_path(sid, GEN), json={"params": {"desired_system": STORE}}).is_success
    pol = _policy(server, a)
    assert pol["params"][GEN] == {"desired_system": STORE}
    assert pol["releases"] == rel


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
    assert server.client(a.token).get(f"/api/v1/appliances/{a.id}/policy").status_code == 403

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
    assert c1.get(f"/api/v1/appliances/{a1.id}/policy").status_code == 200
    allow = f"/api/v1/sites/{s1['id']}/allowlists/{UPD}/wsus_server"
    assert c1.put(allow, json={"values": ["https://wsus.p1:8531"]}).status_code == 403
    # another partner: the site and its appliance do not exist, reading or writing
    for c, path in ((c2, _path(s1["id"])), (c2, ap), (c1, _path(site["id"]))):
        assert c.get(path).status_code == 404, path
        r = c.put(path, json={"params": {"critical_overdue_days": 30}})
        assert r.status_code == 404, path
    assert c2.get(f"/api/v1/appliances/{a1.id}/policy").status_code == 404
    assert c2.get(f"/api/v1/sites/{s1['id']}/allowlists").status_code == 404
    assert c1.get(_path(s1["id"])).json()["site"] == {"critical_overdue_days": 20}
    assert c2.get(f"/api/v1/sites/{s1['id']}/runbook-params").status_code == 404


def test_l2_limits_travel_in_the_policy(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    assert _policy(server, a)["l2"] == {"allowed": True, "min_confidence": 0}
    path = f"/api/v1/sites/{site['id']}/l2"
    assert server.admin.put(path, json={"allowed": False, "min_confidence": 101}).status_code == 400
    r = server.admin.put(path, json={"allowed": False, "min_confidence": 90})
    assert r.status_code == 200 and r.json()["allowed"] is False
    assert _policy(server, a)["l2"] == {"allowed": False, "min_confidence": 90}


def test_rows_the_catalogue_no_longer_knows_or_refuses_are_not_delivered(server) -> None:
    """A value stored for a runbook or parameter since removed from the catalogue — or one
    written before its bound existed (a weakening mode) — stays in the database (the audit
    trail) but is neither delivered nor shown as in force."""
    from osiris_server.db import runbooks as db_runbooks

    site = server.site()
    a = server.enroll(site["id"])
    with server.app.db.write() as w:
        db_runbooks.apply_params(w, "site", site["id"], "RB-GONE-001", {"x": 1}, "test")
        db_runbooks.apply_params(w, "site", site["id"], PATCH, {"retired_knob": 3}, "test")
        db_runbooks.apply_params(w, "site", site["id"], PERM, {"target_mode": "0666"}, "test")
        db_runbooks.apply_params(w, "site", site["id"], PATCH, {"allow_reboot": False}, "test")
    assert _policy(server, a)["params"] == {PATCH: {"allow_reboot": False}}
    assert server.admin.get(_path(site["id"])).json()["site"] == {"allow_reboot": False}


def test_orders_cannot_carry_weakening_or_redirecting_parameters(server) -> None:
    """An order's parameters go through the same validator: refused before anything is
    signed or queued (the agent refuses them again, see tests/agent)."""
    site = server.site()
    a = server.enroll(site["id"])
    path = f"/api/v1/appliances/{a.id}/orders"
    # the hosts must be the site's, each with a runbook of its platform (test_order_targets.py)
    for host, kind in (("lin-1", "ssh_password"), ("dc01", "winrm")):
        body = {"host_id": host, "kind": kind, "address": "10.0.0.9", "username": "u",
                "password": "pw"}  # fmt: skip
        assert (
            server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=body).status_code
            == 201
        )
    for rb, values in (
        (PERM, {"target_mode": "0666"}),
        ("LIN-SVC-002", {"service": "debug-shell.service"}),
        (UPD, {"wsus_server": "http://attacker.example"}),
    ):
        body = {"kind": "run_runbook",
                "params": {"runbook_id": rb, "host_id": "dc01" if rb == UPD else "lin-1",
                           "parameters": values}}  # fmt: skip
        r = server.admin.post(path, json=body)
        assert r.status_code == 400, (rb, r.text)
        assert next(iter(values)) in r.json()["error"]["message"]
    assert server.app.db.query("SELECT * FROM orders") == []
    tighter = {"runbook_id": PERM, "host_id": "lin-1", "parameters": {"target_mode": "600"}}
    ok = {"kind": "run_runbook", "params": tighter}
    assert server.admin.post(path, json=ok).status_code == 201


def test_stale_content_never_becomes_a_newer_version(server) -> None:
    """Another process changed the site while this one computed the policy from the old
    generations: nothing is issued, the newer policy stays the newest (no content rollback)."""
    from osiris_server.api import policy as api_policy
    from osiris_server.db import gen

    site = server.site()
    a = server.enroll(site["id"])
    v1 = _policy(server, a)["version"]
    scopes = (gen.site_scope(site["id"]), gen.appliance_scope(a.id))
    old_gens = gen.read_two(server.app.db, *scopes)
    _, srow, _c, site_t, site_p = server.app.checkin_cache.site(server.app, site["id"], old_gens[0])
    inputs = api_policy.site_inputs(server.app, site["id"], old_gens[0])
    stale = api_policy.content(server.app, a.id, srow, site_t, site_p, {}, {}, inputs, {})
    server.admin.put(_path(site["id"]), json={"params": {"critical_overdue_days": 20}})
    v2 = _policy(server, a)["version"]
    assert v2 == v1 + 1
    version, env_json, fresh = api_policy.issue(server.app, a.id, stale, old_gens)
    assert (version, fresh) == (v2, False)
    assert _policy(server, a)["params"] == {PATCH: {"critical_overdue_days": 20}}
    assert _policy(server, a)["version"] == v2
