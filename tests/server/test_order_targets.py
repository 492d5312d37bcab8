"""Orders are judged against their targets before anything is signed or queued (issue 13 item 7).

The host must be one the appliance has at its site (a credential there, or the appliance
itself), the runbook must be in the catalogue and for that host's platform; a refusal is a 400
that says what to type instead, and leaves no order row and no ``order.create`` audit entry.
"""

from __future__ import annotations

from typing import Any

from tests.server.conftest import Appliance, Server

WINRM = {"kind": "winrm", "address": "10.0.0.5", "username": "Administrator", "password": "pw"}
SSH = {"kind": "ssh_key", "address": "10.0.0.7", "username": "osiris",
       "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
       "host_key_fingerprints": ["SHA256:abcdefghijklmnop"]}  # fmt: skip


def _clinic(server: Server, name: str) -> tuple[dict[str, Any], Appliance]:
    site = server.site(name)
    for host, body in (("dc01", WINRM), ("web01", SSH)):
        r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials",
                              json={"host_id": host, **body})  # fmt: skip
        assert r.status_code == 201, r.text
    return site, server.enroll(site["id"])


def _order(server: Server, a: Appliance, token: str | None = None, **params: Any) -> Any:
    client = server.client(token) if token else server.admin
    return client.post(f"/api/v1/appliances/{a.id}/orders",
                       json={"kind": "run_runbook", "params": params})  # fmt: skip


def _nothing_queued(server: Server) -> None:
    assert server.app.db.query("SELECT id FROM orders") == []
    actions = [x["action"] for x in server.admin.get("/api/v1/audit").json()["audit"]]
    assert "order.create" not in actions


def _refused(r: Any, code: str) -> str:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    return err["message"]


def test_unknown_host_is_refused_naming_the_sites_hosts(server: Server) -> None:
    site, a = _clinic(server, "Riverside")
    msg = _refused(_order(server, a, runbook_id="RB-WIN-FIREWALL-001", host_id="dc99"),
                   "E_NO_HOST")  # fmt: skip
    assert msg.startswith(f'no host "dc99" at site {site["id"]}')
    assert msg.endswith(f"; hosts: dc01, web01 (or {a.id}, the appliance itself)")
    msg = _refused(_order(server, a, runbook_id="RB-WIN-FIREWALL-001", host_id="DC01"),
                   "E_NO_HOST")  # fmt: skip
    assert "did you mean dc01?" in msg  # host ids are exact; the message says which one
    _nothing_queued(server)


def test_mistyped_runbook_gets_the_nearest_id(server: Server) -> None:
    _site, a = _clinic(server, "Riverside")
    msg = _refused(_order(server, a, runbook_id="LIN-FW-01", host_id="web01"), "E_NO_RUNBOOK")
    assert msg == 'runbook "LIN-FW-01" not found; did you mean LIN-FW-001?'
    msg = _refused(_order(server, a, runbook_id="rb-win-firewall-001", host_id="dc01"),
                   "E_NO_RUNBOOK")  # fmt: skip
    assert "did you mean RB-WIN-FIREWALL-001?" in msg
    msg = _refused(_order(server, a, runbook_id="ZZZZZZ", host_id="dc01"), "E_NO_RUNBOOK")
    assert "osiris runbook list" in msg
    _nothing_queued(server)


def test_runbook_for_another_platform_is_refused_with_the_right_ones(server: Server) -> None:
    _site, a = _clinic(server, "Riverside")
    msg = _refused(_order(server, a, runbook_id="RB-WIN-FIREWALL-001", host_id="web01"),
                   "E_PLATFORM")  # fmt: skip
    assert msg.startswith("runbook RB-WIN-FIREWALL-001 is for windows hosts, and web01 is linux")
    assert "try LIN-FW-001" in msg
    # a Linux runbook on the Windows host, and a Windows one on the appliance itself (nixos)
    _refused(_order(server, a, runbook_id="LIN-FW-001", host_id="dc01"), "E_PLATFORM")
    msg = _refused(_order(server, a, runbook_id="RB-WIN-FIREWALL-001", host_id=a.id),
                   "E_PLATFORM")  # fmt: skip
    assert "try RB-NIX-FW-001" in msg
    _nothing_queued(server)


def test_a_host_of_another_site_is_not_a_target(server: Server) -> None:
    """Attack: an operator or a partner points site A's appliance at a host only site B has
    (its credential never reaches A's appliance; the order would sign a phantom). Refused,
    nothing signed; a partner of another site cannot even see A's appliance."""
    p1 = server.admin.post("/api/v1/partners", json={"name": "P1"}).json()
    p2 = server.admin.post("/api/v1/partners", json={"name": "P2"}).json()
    a_site = server.client(api_key=p1["api_key"]).post("/api/v1/sites", json={"name": "A"}).json()
    a = server.enroll(a_site["id"])
    b_site = server.site("Clinic B")
    r = server.admin.post(f"/api/v1/sites/{b_site['id']}/credentials",
                          json={"host_id": "bdc01", **WINRM})  # fmt: skip
    assert r.status_code == 201
    b = server.enroll(b_site["id"])
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op"}).json()
    for who in (server.client(op["token"]), server.client(api_key=p1["api_key"])):
        path = f"/api/v1/appliances/{a.id}/orders"
        for rb, host in (("RB-WIN-FIREWALL-001", "bdc01"), ("RB-NIX-FW-001", b.id)):
            r = who.post(path, json={"kind": "run_runbook",
                                     "params": {"runbook_id": rb, "host_id": host}})  # fmt: skip
            msg = _refused(r, "E_NO_HOST")
            # A has no hosts of its own, and B's are never listed to A
            assert "no host credentials yet" in msg and "hosts:" not in msg
    r = server.client(api_key=p2["api_key"]).post(
        f"/api/v1/appliances/{a.id}/orders",
        json={"kind": "run_runbook", "params": {"runbook_id": "RB-NIX-FW-001", "host_id": a.id}},
    )
    assert r.status_code == 404
    _nothing_queued(server)


def test_collect_evidence_for_a_named_host_is_checked_too(server: Server) -> None:
    _site, a = _clinic(server, "Riverside")
    body = {"kind": "collect_evidence", "params": {"host_id": "dc1"}}
    r = server.admin.post(f"/api/v1/appliances/{a.id}/orders", json=body)
    assert "did you mean dc01?" in _refused(r, "E_NO_HOST")
    _nothing_queued(server)


def test_valid_targets_are_signed_and_queued(server: Server) -> None:
    _site, a = _clinic(server, "Riverside")
    for rb, host in (("RB-WIN-FIREWALL-001", "dc01"), ("LIN-FW-001", "web01"),
                     ("RB-NIX-FW-001", a.id)):  # fmt: skip
        r = _order(server, a, runbook_id=rb, host_id=host)
        assert r.status_code == 201, r.text
    assert len(server.app.db.query("SELECT id FROM orders")) == 3


def _cli(server: Server, *args: str) -> Any:
    from click.testing import CliRunner

    from osiris_tui.cli import main

    env = {"OSIRIS_SERVER": server.url, "OSIRIS_TOKEN": server.admin_token,
           "OSIRIS_PROFILE_FILE": "/nonexistent"}  # fmt: skip
    return CliRunner().invoke(main, list(args), env=env)


def test_cli_names_the_appliance_by_hostname_and_shows_the_servers_refusal(
    server: Server,
) -> None:
    site, _a = _clinic(server, "Riverside")
    a = server.enroll(site["id"], "rv-app-01")
    r = _cli(server, "order", "run", "--appliance", "rv-app-01", "--runbook", "LIN-FW-001",
             "--host", "web01", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [o["appliance_id"] for o in server.app.db.query("SELECT appliance_id FROM orders")] == [
        a.id
    ]
    r = _cli(server, "order", "list", "--appliance", "RV-APP-01", "--json")
    assert r.exit_code == 0 and a.id in r.output
    # the typo of the issue: exit 2, the server's words, nothing more queued
    r = _cli(server, "order", "run", "--appliance", "rv-app-01", "--runbook", "LIN-FW-001",
             "--host", "dc99")  # fmt: skip
    assert r.exit_code == 2
    assert f'no host "dc99" at site {site["id"]}; hosts: dc01, web01' in r.output
    assert "Traceback" not in r.output
    r = _cli(server, "order", "run", "--appliance", "rv-app-01", "--runbook", "LIN-FW-01",
             "--host", "web01")  # fmt: skip
    assert r.exit_code == 2 and "did you mean LIN-FW-001?" in r.output
    r = _cli(server, "order", "list", "--appliance", "rv-app-1")
    assert r.exit_code == 2 and 'no appliance named "rv-app-1"; did you mean rv-app-01?' in r.output
    assert len(server.app.db.query("SELECT id FROM orders")) == 1


def test_cli_ambiguous_appliance_name_lists_the_candidates(server: Server) -> None:
    one = server.enroll(server.site("A")["id"], "front-desk")
    two = server.enroll(server.site("B")["id"], "front-desk")
    r = _cli(server, "order", "list", "--appliance", "front-desk")
    assert r.exit_code == 2
    assert 'appliance name "front-desk" is ambiguous' in r.output
    assert one.id in r.output and two.id in r.output and "give its id" in r.output
    r = _cli(server, "runbook", "list", "--appliance", "front-desk")
    assert r.exit_code == 2 and "ambiguous" in r.output
    r = _cli(server, "order", "list", "--appliance", one.id, "--json")
    assert r.exit_code == 0


def test_runbook_changes_name_the_runbook_meant(server: Server) -> None:
    """Toggles and parameter values of a mistyped runbook: the nearest id, and for a mistyped
    parameter the nearest name and the runbook's parameters — never bare API words."""
    site = server.site("Riverside")
    r = server.admin.put(f"/api/v1/sites/{site['id']}/runbooks",
                         json={"runbooks": {"LIN-FW-01": False}})  # fmt: skip
    assert r.status_code == 400
    assert r.json()["error"]["message"] == 'runbook "LIN-FW-01" not found; did you mean LIN-FW-001?'
    r = server.admin.get(f"/api/v1/sites/{site['id']}/runbooks/RB-WIN-PATCH-01/params")
    assert r.status_code == 404
    assert "did you mean RB-WIN-PATCH-001?" in r.json()["error"]["message"]
    r = server.admin.put(f"/api/v1/sites/{site['id']}/runbooks/RB-WIN-PATCH-001/params",
                         json={"params": {"critical_overdue_day": 15}})  # fmt: skip
    msg = r.json()["error"]["message"]
    assert r.status_code == 400 and "did you mean critical_overdue_days?" in msg
    assert "(parameters: " in msg


def test_credential_refusals_say_what_to_type_instead(server: Server) -> None:
    """Host ids are unique per site (an order's target is judged by them), and a local
    credential names an appliance of the site: the refusals name the one that exists."""
    site, a = _clinic(server, "Riverside")
    base = f"/api/v1/sites/{site['id']}/credentials"
    held = next(c for c in server.admin.get(base).json()["credentials"] if c["host_id"] == "dc01")
    r = server.admin.post(base, json={"host_id": "dc01", **WINRM})
    assert r.status_code == 409
    msg = r.json()["error"]["message"]
    assert f"already has a credential for host dc01 ({held['id']})" in msg
    assert f"osiris cred rotate --site {site['id']} {held['id']}" in msg
    r = server.admin.post(base, json={"host_id": "app_nope", "kind": "local", "address": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_LOCAL_HOST"
    assert a.id in r.json()["error"]["message"]
    assert [c["host_id"] for c in server.admin.get(base).json()["credentials"]] == [
        "dc01", "web01"
    ]  # fmt: skip
