"""`osiris site hold|unhold|holds` against the real server over loopback: the stable ``--json``
shape, the API's refusals as exit codes (an operator placing or lifting a hold: 403, exit 4; an
empty reason: 400, exit 2; already held: 409) with nothing changed, and the audit record."""

from __future__ import annotations

import json

from tests.tui.test_cli import run

KEYS = {"site_id", "held", "reason", "held_by", "held_at"}


def _token(live, role: str) -> str:
    with live.admin() as h:
        r = h.post("/api/v1/tokens", json={"role": role, "name": f"{role} for holds"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _holds(live) -> list[dict]:
    r = run(live, "site", "holds", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hold_holds_unhold_and_the_hostile_operator(live) -> None:
    site = live.site("Hold clinic")["id"]
    op = _token(live, "operator")
    r = run(live, "site", "hold", site, "--reason", "subpoena 42", token=op)
    assert r.returncode == 4, r.stderr
    assert r.stderr.startswith("osiris: error:") and len(r.stderr.strip().splitlines()) == 1
    assert site not in [h["site_id"] for h in _holds(live)]
    r = run(live, "site", "hold", site, "--reason", "")
    assert r.returncode == 2, r.stderr
    r = run(live, "site", "hold", site, "--reason", "subpoena 42", "--json")
    assert r.returncode == 0, r.stderr
    view = json.loads(r.stdout)
    assert set(view) == KEYS and view["held"] and view["reason"] == "subpoena 42"
    assert run(live, "site", "hold", site, "--reason", "again").returncode != 0
    [h] = [h for h in _holds(live) if h["site_id"] == site]
    assert h["reason"] == "subpoena 42" and h["held_by"]
    r = run(live, "site", "holds")
    assert r.returncode == 0 and site in r.stdout and "subpoena 42" in r.stdout
    r = run(live, "site", "unhold", site, token=op)
    assert r.returncode == 4
    assert site in [h["site_id"] for h in _holds(live)]
    r = run(live, "site", "unhold", site, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["held"] is False and out["released"]["reason"] == "subpoena 42"
    assert site not in [h["site_id"] for h in _holds(live)]
    assert run(live, "site", "unhold", site).returncode != 0  # not held: 404
    with live.admin() as c:
        acts = [a["action"] for a in c.get("/api/v1/audit", params={"site": site}).json()["audit"]]
    assert "legal_hold.place" in acts and "legal_hold.release" in acts
