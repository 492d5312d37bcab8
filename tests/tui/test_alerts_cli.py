"""`osiris alerts …` against the real server over loopback: stable ``--json`` keys, a route's
secret read from stdin (never argv) and masked in every listing, the API's refusals as exit 2
with the server's message (an http URL, a private address), SLA timers set and shown, the
deliveries listing, and an auditor who reads routes but cannot add one (exit 4)."""

from __future__ import annotations

import json

from osiris_tui import alert_calls
from tests.tui.test_cli import run

PD_KEY = "R0UTINGKEY0123456789abcdefABCDEF"


def _partner(live, name: str) -> tuple[str, str]:
    with live.admin() as h:
        r = h.post("/api/v1/partners", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["partner"]["id"], r.json()["api_key"]


def test_routes_sla_and_deliveries_from_the_cli(live) -> None:
    site = live.site("Alerting clinic")["id"]
    add = ("alerts", "add-route", "--site", site, "--name", "pd", "--preset", "pagerduty")
    r = run(live, *add, "--level", "1", "--secret-stdin", "--json", input=PD_KEY + "\n")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert set(row) == set(alert_calls.ROUTE_KEYS)
    assert row["scope"] == "site" and row["level"] == 1 and PD_KEY not in r.stdout
    r = run(live, "alerts", "routes", "--site", site, "--json")
    assert r.returncode == 0, r.stderr
    assert [x["id"] for x in json.loads(r.stdout)] == [row["id"]] and PD_KEY not in r.stdout
    # the server's refusals: exit 2 with its message, nothing stored
    for url in ("http://93.184.216.34/hook", "https://10.1.2.3/hook"):
        r = run(live, "alerts", "add-route", "--site", site, "--name", "chat", "--preset",
                "slack", "--secret-stdin", input=url + "\n")  # fmt: skip
        assert r.returncode == 2, (url, r.stdout, r.stderr)
        assert "osiris: error:" in r.stderr and url not in r.stderr
    r = run(live, "alerts", "add-route", "--site", site, "--name", "x", "--preset", "slack")
    assert r.returncode == 2 and "--secret-stdin" in r.stderr  # no terminal: never argv
    r = run(live, "alerts", "routes", "--site", site)
    assert r.returncode == 0 and r.stdout.count("\n") == 2  # header + the one route

    r = run(live, "alerts", "deliveries", "--site", site, "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run(live, "alerts", "deliveries", "--state", "bogus")
    assert r.returncode == 2

    pid, key = _partner(live, "CLI partner A")
    r = run(live, "alerts", "sla", "--partner", pid, "--set", "critical=600", "--set", "high=0",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"partner_id": pid, "sla": {"critical": 600}}
    r = run(live, "alerts", "sla", "--partner", pid, "--set", "critical=5")
    assert r.returncode == 2 and "60 seconds" in r.stderr
    r = run(live, "alerts", "sla", "--partner", pid, "--set", "urgent=60")
    assert r.returncode == 2
    # an auditor reads routes but cannot add one (exit 4); partner keys are X-API-Key
    # credentials for the partner's own tooling (tests/server/test_alert_routing.py)
    with live.admin() as h:
        aud = h.post("/api/v1/tokens", json={"role": "auditor", "name": "aud"}).json()["token"]
    r = run(live, "alerts", "routes", "--site", site, "--json", token=aud)
    assert r.returncode == 0, r.stderr
    r = run(live, "alerts", "add-route", "--partner", pid, "--name", "pd", "--preset",
            "pagerduty", "--secret-stdin", input=PD_KEY + "\n", token=aud)  # fmt: skip
    assert r.returncode == 4, r.stderr
    r = run(live, "alerts", "rm-route", row["id"], "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"deleted": row["id"]}
    r = run(live, "alerts", "routes", "--site", site, "--json")
    assert json.loads(r.stdout) == []
