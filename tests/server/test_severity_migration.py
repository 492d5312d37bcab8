"""The migration to one severity scale (issue 16 item 1) on both engines: incidents stored in
the server's old words take the agent's own word where it sent one, else info -> low and
warning -> medium; the scale's words and critical are untouched; partners get ``high``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osiris_server.db.migrations import MIGRATIONS, migrate
from osiris_server.storage import Engine
from osiris_server.storage.postgres import PostgresEngine
from osiris_server.storage.sqlite import SqliteEngine

TS = "2026-01-01T00:00:00Z"


def _bare(kind: str, where: str) -> Engine:
    """An engine without migrations at open: the test decides the version."""
    return SqliteEngine(where) if kind == "sqlite" else PostgresEngine(where, lock_key=99)


# the migration that introduced the scale, found by what it adds (numbers may shift in review)
SCALE = next(
    n for n, steps in enumerate(MIGRATIONS, 1) if any("alert_threshold" in str(s) for s in steps)
)

OLD = {  # id: (stored severity, details, expected after)
    "inc_info": ("info", {}, "low"),
    "inc_warn": ("warning", {}, "medium"),
    "inc_warn_high": ("warning", {"agent_severity": "high"}, "high"),
    "inc_warn_junk": ("warning", {"agent_severity": "urgent"}, "medium"),
    "inc_crit": ("critical", {"agent_severity": "critical"}, "critical"),
    "inc_high": ("high", {}, "high"),  # provisioning already stored the scale's words
}


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("pg_url")
    return "sqlite", str(tmp_path / "osiris.db")


def test_stored_severities_move_to_the_one_scale(where: tuple[str, str]) -> None:
    e = _bare(*where)
    try:
        assert migrate(e, upto=SCALE - 1) == SCALE - 1
        with e.write() as w:
            w.insert("partners", {"id": "ptn_1", "name": "MSP", "contact_email": None,
                                  "created_at": TS})  # fmt: skip
            w.insert("sites", {
                "id": "site-old", "partner_id": "ptn_1", "name": "Old Clinic",
                "window_days": '["sun"]', "window_start": "02:00", "window_duration_min": 120,
                "timezone": "UTC", "checkin_interval_s": 60, "created_at": TS,
            })  # fmt: skip
            for n, (iid, (sev, details, _)) in enumerate(OLD.items(), 1):
                w.insert("incidents", {
                    "id": iid, "site_id": "site-old", "appliance_id": None, "host_id": "dc01",
                    "kind": f"k{n}", "severity": sev, "summary": "s",
                    "details_json": json.dumps(details), "status": "open", "count": 1,
                    "first_seen": TS, "last_seen": TS, "first_seen_epoch": 1_700_000_000 + n,
                    "feed_seq": n,
                })  # fmt: skip
        assert migrate(e) == len(MIGRATIONS)
        got = {r["id"]: r["severity"] for r in e.query("SELECT id, severity FROM incidents")}
        assert got == {iid: want for iid, (_, _, want) in OLD.items()}
        assert e.scalar("SELECT alert_threshold FROM partners WHERE id = 'ptn_1'") == "high"
    finally:
        e.close()
