"""`osiris site settings …` against the real server over loopback: the stable ``--json`` shape,
a partial window edit, every value judged by the API (its message, exit 2, nothing changed), the
audit record (who, old, new), and the hostile operator and partner: an operator setting an
admin-only allow-list is refused (exit 4) and a partner key cannot touch another partner's site
— in both cases the site's settings are byte-for-byte what they were."""

from __future__ import annotations

import json

import pytest

from tests.tui.test_cli import run

UPD = "RB-WIN-UPD-002"
WSUS = "http://wsus.clinic.local:8530"
KEYS = {"site_id", "name", "window", "checkin_interval_s", "watchdog_missed_checkins",
        "watchdog_host_silent_min", "allowlists", "alert_routes"}  # fmt: skip
WINDOW_KEYS = {"days", "start", "duration_min", "timezone"}


def _settings(live, site_id: str, token: str | None = None) -> dict:
    r = run(live, "site", "settings", "show", site_id, "--json", token=token)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _token(live, role: str) -> str:
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": role, "name": f"{role} for settings"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture()
def site(live) -> str:
    return live.site("Settings clinic")["id"]


def test_show_has_stable_keys_and_set_merges_a_partial_window(live, site) -> None:
    view = _settings(live, site)
    assert set(view) == KEYS and set(view["window"]) == WINDOW_KEYS
    assert view["allowlists"][UPD]["wsus_server"] == []
    before = view["window"]
    r = run(live, "site", "settings", "set", site, "--days", "sat,sun", "--start", "03:30",
            "--checkin-interval", "120", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    after = json.loads(r.stdout)
    assert set(after) == KEYS
    assert after["window"] == {**before, "days": ["sat", "sun"], "start": "03:30"}
    assert after["checkin_interval_s"] == 120
    assert _settings(live, site) == after  # it is what the server now holds
    # the human form names the window on one line
    r = run(live, "site", "settings", "show", site)
    assert r.returncode == 0 and "window\tsat,sun 03:30 +" in r.stdout
    # 'none': the window never opens
    r = run(live, "site", "settings", "set", site, "--days", "none", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["window"]["days"] == []
    # audited: who, old and new
    with live.admin() as h:
        rows = h.get("/api/v1/audit", params={"site": site, "action": "site.update"}).json()
    (entry,) = [a for a in rows["audit"] if a["detail"]["new"].get("checkin_interval_s") == 120]
    assert entry["actor"].startswith("operator:")  # who (the admin token's actor)
    change = entry["detail"]
    assert change["old"] == {"checkin_interval_s": 60, "window": before}
    assert change["new"]["window"]["days"] == ["sat", "sun"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--timezone", "Mars/Olympus_Mons"], "not an IANA time zone"),
        (["--duration", "0"], "duration_min"),
        (["--duration", "2880"], "duration_min"),
        (["--days", "mon,funday"], "days"),
        (["--start", "25:00"], "start"),
        (["--checkin-interval", "5"], "checkin_interval_s"),
    ],
)
def test_a_bad_value_is_the_apis_error_and_changes_nothing(live, site, args, says) -> None:
    before = _settings(live, site)
    r = run(live, "site", "settings", "set", site, *args, "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("osiris: error: ") and says in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1  # one line, no traceback
    assert _settings(live, site) == before


def test_watchdog_thresholds_and_alert_routes(live, site) -> None:
    view = _settings(live, site)
    assert view["watchdog_missed_checkins"] == 3 and view["alert_routes"] == []
    r = run(live, "site", "settings", "set", site, "--watchdog-missed", "5",
            "--watchdog-host-silent", "90", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    after = json.loads(r.stdout)
    assert (after["watchdog_missed_checkins"], after["watchdog_host_silent_min"]) == (5, 90)
    assert after["window"] == view["window"]  # untouched
    for bad in (["--watchdog-missed", "0"], ["--watchdog-host-silent", "-1"]):
        r = run(live, "site", "settings", "set", site, *bad)
        assert r.returncode == 2 and "watchdog_" in r.stderr, r.stderr
    assert _settings(live, site) == after
    # a route added with `osiris alerts`' API shows here, masked (no routing key)
    key = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    with live.admin() as h:
        made = h.post(
            f"/api/v1/sites/{site}/alert-routes",
            json={"name": "on call", "preset": "pagerduty", "routing_key": key},
        )
    assert made.status_code == 201, made.text
    r = run(live, "site", "settings", "show", site, "--json")
    (route,) = json.loads(r.stdout)["alert_routes"]
    assert route["name"] == "on call" and route["preset"] == "pagerduty"
    assert route["scope"] == "site" and key not in r.stdout
    r = run(live, "site", "settings", "show", site)
    assert "alert route on call\tpagerduty level 0 (site)" in r.stdout


def test_nothing_to_change_is_a_usage_error(live, site) -> None:
    r = run(live, "site", "settings", "set", site)
    assert r.returncode == 2 and "nothing to change" in r.stderr


def test_allowlist_is_admin_only_and_audited(live, site) -> None:
    operator = _token(live, "operator")
    before = _settings(live, site)
    r = run(live, "site", "settings", "allowlist", site, UPD, "wsus_server", WSUS, "--yes",
            token=operator)  # fmt: skip
    assert r.returncode == 4 and r.stdout == "", r.stderr
    assert _settings(live, site) == before  # nothing changed
    # without --yes and without a terminal: refused before anything is sent
    r = run(live, "site", "settings", "allowlist", site, UPD, "wsus_server", WSUS)
    assert r.returncode == 2 and "refusing without --yes" in r.stderr
    assert _settings(live, site) == before
    # the admin may
    r = run(live, "site", "settings", "allowlist", site, UPD, "wsus_server", WSUS, "--yes",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["allowlists"][UPD]["wsus_server"] == [WSUS]
    with live.admin() as h:
        rows = h.get("/api/v1/audit", params={"site": site, "action": "allowlist.site"}).json()
    (entry,) = rows["audit"]
    assert entry["detail"]["old"] == [] and entry["detail"]["new"] == [WSUS]
    # an entry the parameter's own bound refuses: the API's message, nothing changed
    r = run(live, "site", "settings", "allowlist", site, UPD, "wsus_server", "ftp://x", "--yes")
    assert r.returncode == 2 and r.stderr.startswith("osiris: error: ")
    assert _settings(live, site)["allowlists"][UPD]["wsus_server"] == [WSUS]
    r = run(live, "site", "settings", "allowlist", site, UPD, "wsus_server", "--clear", "--yes",
            "--json")  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["allowlists"][UPD]["wsus_server"] == []


def test_a_partner_key_cannot_touch_another_partners_site(live) -> None:
    """Partner keys are ``X-API-Key`` credentials for the partner's own tooling (the CLI speaks
    for staff tokens), so the hostile partner is played over HTTP, on the very endpoints
    ``osiris site settings`` calls: another partner's site is a 404 that names nothing (the same
    answer as a site that does not exist), an allow-list a 403, and nothing changes."""
    import httpx

    with live.admin() as h:
        p1 = h.post("/api/v1/partners", json={"name": "MSP one"}).json()
        p2 = h.post("/api/v1/partners", json={"name": "MSP two"}).json()
        theirs = h.post("/api/v1/sites", json={"name": "Theirs", "partner_id": p2["partner"]["id"]})
        mine = h.post("/api/v1/sites", json={"name": "Mine", "partner_id": p1["partner"]["id"]})
    theirs, mine = theirs.json(), mine.json()
    before = _settings(live, theirs["id"])
    win = {**before["window"], "days": ["mon"]}
    allow = f"/allowlists/{UPD}/wsus_server"
    with httpx.Client(base_url=live.url + "/api/v1", headers={"X-API-Key": p1["api_key"]},
                      timeout=20) as partner:  # fmt: skip
        nowhere = partner.patch("/sites/no-such-site", json={"window": win})
        for method, path, body in (
            ("GET", "", None),
            ("GET", "/allowlists", None),
            ("PATCH", "", {"window": win}),
            ("PATCH", "", {"checkin_interval_s": 600}),
        ):
            r = partner.request(method, f"/sites/{theirs['id']}{path}", json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"] == nowhere.json()["error"]  # names nothing of theirs
        r = partner.put(f"/sites/{theirs['id']}{allow}", json={"values": [WSUS]})
        assert r.status_code in (403, 404), r.text
        # its own site: the window yes, the allow-list no (admin only)
        r = partner.patch(f"/sites/{mine['id']}", json={"window": win})
        assert r.status_code == 200, r.text
        r = partner.put(f"/sites/{mine['id']}{allow}", json={"values": [WSUS]})
        assert r.status_code == 403, r.text
    assert _settings(live, theirs["id"]) == before
    assert _settings(live, mine["id"])["allowlists"][UPD]["wsus_server"] == []
