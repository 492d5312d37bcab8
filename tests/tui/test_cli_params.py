"""`osiris runbook params` / `osiris runbook set` against the real server: values converted by
the catalogue schema, clear errors (exit 2) before anything is sent, appliance scope."""

from __future__ import annotations

import json

import pytest

from osiris_tui.cli.runbook import convert_param
from osiris_tui.client import UsageError
from tests.tui.test_cli import run

PATCH = "RB-WIN-PATCH-001"
NET = "RB-WIN-NET-001"


def _params(live, site: str, rb: str = PATCH, *extra: str) -> dict:
    r = run(live, "runbook", "params", site, rb, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_set_converts_by_schema_and_reaches_the_server(live) -> None:
    site = live.site("Params clinic")["id"]
    before = _params(live, site)
    assert before["site"] == {} and before["effective"] == before["defaults"]
    assert before["schema"]["critical_overdue_days"]["type"] == "int"

    r = run(live, "runbook", "set", site, PATCH, "critical_overdue_days=15",
            "include_important=no", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["site"] == {"critical_overdue_days": 15, "include_important": False}
    # what another client reads back from the server, not an echo of the CLI's own input
    assert _params(live, site)["effective"]["critical_overdue_days"] == 15

    # human output: one row per parameter, with where the value comes from
    r = run(live, "runbook", "params", site, PATCH)
    rows = {ln.split("\t")[0]: ln.split("\t") for ln in r.stdout.splitlines()[1:]}
    assert rows["critical_overdue_days"][2:4] == ["15", "site"]
    assert rows["allow_reboot"][2:4] == ["true", "default"]

    r = run(live, "runbook", "set", site, PATCH, "--clear", "include_important", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["site"] == {"critical_overdue_days": 15}

    # DNS servers are trust-redirecting: an admin allow-lists them for the site first
    r = run(live, "runbook", "set", site, NET, "dns_servers=10.1.1.1,10.1.1.2", "--json")
    assert r.returncode != 0 and "allow-list" in r.stderr, (r.stdout, r.stderr)
    with live.admin() as h:
        allow = h.put(f"/api/v1/sites/{site}/allowlists/{NET}/dns_servers",
                      json={"values": ["10.1.1.1", "10.1.1.2"]})  # fmt: skip
        assert allow.status_code == 200, allow.text
    r = run(live, "runbook", "set", site, NET, "dns_servers=10.1.1.1,10.1.1.2", "--json")
    assert json.loads(r.stdout)["effective"] == {"dns_servers": "10.1.1.1,10.1.1.2"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["critical_overdue_days=soon"], "must be an integer"),
        (["include_important=maybe"], "true or false"),
        (["no_such=1"], "no parameter no_such"),
        (["critical_overdue_days"], "expected NAME=VALUE"),
        (["critical_overdue_days=0"], "critical_overdue_days"),  # the server's bound check
        ([], "at least one"),
    ],
)
def test_set_errors_are_one_line_exit_2_and_change_nothing(live, args, says) -> None:
    site = live.site("Params errors")["id"]
    r = run(live, "runbook", "set", site, PATCH, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.startswith("osiris: error:") and says in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert _params(live, site)["site"] == {}


def test_unknown_site_runbook_and_foreign_appliance(live) -> None:
    # a seeded appliance (enrolling another would change the fleet other console tests read);
    # parameter values show on no other screen, so setting them disturbs no other test
    a = live.appliances["weird-app"]
    site = a.site_id
    other = live.site("Params other")["id"]
    assert run(live, "runbook", "params", "no-such-site", PATCH).returncode == 2
    assert run(live, "runbook", "params", site, "RB-NOPE-001").returncode == 2
    r = run(live, "runbook", "set", site, PATCH, "critical_overdue_days=20")
    assert r.returncode == 0, r.stderr
    r = run(live, "runbook", "set", site, PATCH, "critical_overdue_days=7", "--appliance", a.id,
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert (
        v["appliance"] == {"critical_overdue_days": 7} and v["site"]["critical_overdue_days"] == 20
    )
    assert v["effective"]["critical_overdue_days"] == 7
    # an appliance named with the wrong site is refused before anything is written
    r = run(live, "runbook", "set", other, PATCH, "critical_overdue_days=9", "--appliance", a.id)
    assert r.returncode == 2 and "not in site" in r.stderr
    assert _params(live, site, PATCH, "--appliance", a.id)["appliance"] == {
        "critical_overdue_days": 7
    }


def test_convert_param_types() -> None:
    assert convert_param("n", {"type": "int"}, " 42 ") == 42
    assert convert_param("b", {"type": "bool"}, "ON") is True
    assert convert_param("b", {"type": "bool"}, "0") is False
    assert convert_param("s", {"type": "str"}, "a,b") == "a,b"
    with pytest.raises(UsageError):
        convert_param("n", {"type": "int"}, "1.5")
    with pytest.raises(UsageError):
        convert_param("x", None, "1")
