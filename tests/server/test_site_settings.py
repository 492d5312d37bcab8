"""A site's window and cadence over real HTTP on both engines: the API judges the window as the
agent will (an unknown time zone or a length outside 1 … 1440 minutes is a 400 and nothing is
stored — otherwise the agent would silently ignore or clamp what the operator was told was set),
and every change is audited with who, old and new."""

from __future__ import annotations

import pytest

WIN = {"days": ["sun"], "start": "02:00", "duration_min": 120, "timezone": "Europe/Berlin"}


@pytest.mark.parametrize(
    "window",
    [
        {**WIN, "timezone": "Mars/Olympus_Mons"},
        {**WIN, "timezone": "/etc/passwd"},
        {**WIN, "duration_min": 0},
        {**WIN, "duration_min": 1441},
    ],
)
def test_a_window_the_agent_would_not_apply_is_refused(server, window) -> None:
    r = server.admin.post("/api/v1/sites", json={"name": "c", "window": window})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", r.text
    site = server.admin.post("/api/v1/sites", json={"name": "c", "window": WIN}).json()
    r = server.admin.patch(f"/api/v1/sites/{site['id']}", json={"window": window})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E_SCHEMA", r.text
    assert server.admin.get(f"/api/v1/sites/{site['id']}").json()["window"] == WIN
    assert not [
        a for a in server.admin.get("/api/v1/audit", params={"site": site["id"]}).json()["audit"]
        if a["action"] == "site.update"
    ]  # fmt: skip


def test_a_change_is_audited_with_old_and_new(server) -> None:
    site = server.admin.post("/api/v1/sites", json={"name": "c", "window": WIN}).json()
    new = {**WIN, "days": ["sat", "sun"], "timezone": "America/New_York"}
    r = server.admin.patch(f"/api/v1/sites/{site['id']}",
                           json={"window": new, "checkin_interval_s": 300})  # fmt: skip
    assert r.status_code == 200 and r.json()["window"] == new
    rows = server.admin.get("/api/v1/audit", params={"site": site["id"],
                                                     "action": "site.update"}).json()  # fmt: skip
    (entry,) = rows["audit"]
    assert entry["detail"] == {
        "fields": ["checkin_interval_s", "window"],
        "old": {"checkin_interval_s": site["checkin_interval_s"], "window": WIN},
        "new": {"checkin_interval_s": 300, "window": new},
    }
