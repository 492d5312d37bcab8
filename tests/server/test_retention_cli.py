"""`osiris-server retention status|prune` as subprocesses over a served data dir (both engines):
JSON shape, a dry run that writes nothing, a prune recorded and audited, and a server.toml asking
for fewer than six years refused (exit 2, one line, nothing pruned).

The evidence is made old by rewriting its two times in the index (the CLI has no clock option,
by design) and its WORM copy is stated by a ``worm_objects`` row (the worm module's job).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.server.conftest import Server

CLI = [sys.executable, "-m", "osiris_server.cli"]
OLD = "2019-01-02T03:04:05.000Z"


def _run(s: Server, *args: str) -> subprocess.CompletedProcess:
    db = ["--db", s.app.cfg.db_url] if s.app.cfg.db_url else []
    return subprocess.run(
        [*CLI, "retention", *args, "--data", str(s.data), *db],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _old_world(s: Server, n: int = 4) -> Any:
    a = s.enroll(s.site("Old clinic")["id"])
    envs = [a.envelope(host_id=f"h{i}") for i in range(n)]
    r = s.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    s.index_sql("UPDATE evidence SET received_at = ?, finished_at = ?", [OLD, OLD])
    s.index_sql(
        "INSERT INTO worm_objects (key, kind, sha256, bytes, first_index, last_index, state,"
        " created_at, uploaded_at, retain_until) VALUES ('leaves/0-3', 'leaves', ?, 1, 0, 3,"
        " 'uploaded', ?, ?, '2031-01-01T00:00:00.000Z')",
        ["0" * 64, OLD, OLD],
    )
    return a


def test_status_dry_run_and_prune(server: Server) -> None:
    a = _old_world(server)
    r = _run(server, "status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["retention_years"] == 6 and st["prunable"] == 4 and st["pruned"] == 0
    rows = server.index_rows()
    r = _run(server, "prune", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prunable"] == 4
    assert server.index_rows() == rows
    r = _run(server, "prune")
    assert r.returncode == 0, r.stderr
    assert "pruned 4 bodies" in r.stdout
    prune = server.app.db.one("SELECT * FROM retention_prunes")
    assert prune["count"] == 4 and prune["pruned_by"].startswith("cli:") and prune["log_done_at"]
    aud = server.app.db.query("SELECT * FROM audit WHERE action = 'retention.prune'")
    assert [x["site_id"] for x in aud] == [a.site_id]
    r = _run(server, "status")
    assert r.returncode == 0 and "bodies pruned 4" in r.stdout
    r = _run(server, "prune", "--json")
    assert json.loads(r.stdout)["pruned"] == 0


def test_fewer_than_six_years_is_refused(server: Server) -> None:
    _old_world(server)
    toml = server.data / "server.toml"
    toml.write_text(toml.read_text() + "\nretention_years = 5\n")
    for cmd in (("prune",), ("status",)):
        r = _run(server, *cmd)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("osiris-server: error:") and "retention_years = 5" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert server.app.db.scalar("SELECT COUNT(*) FROM retention_prunes") == 0
    assert server.app.db.scalar("SELECT COUNT(*) FROM evidence WHERE pruned_id IS NOT NULL") == 0


def test_an_uninitialised_data_dir_is_a_usage_error(tmp_path) -> None:
    r = subprocess.run([*CLI, "retention", "status", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "not initialised" in r.stderr


def test_a_pull_over_pruned_evidence_says_where_the_bodies_are(server: Server, tmp_path) -> None:
    """An export never has a silent gap: `osiris evidence pull` over a pruned period stops
    (exit 1, one line) naming the WORM keys, and writes no folder."""
    import os
    from pathlib import Path

    a = _old_world(server)
    assert _run(server, "prune").returncode == 0
    osiris = str(Path(sys.executable).parent / "osiris")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=server.url, OSIRIS_TOKEN=server.admin_token,
               OSIRIS_PROFILE_FILE="/nonexistent")  # fmt: skip
    out = tmp_path / "export"
    cmd = [osiris, "evidence", "pull", "--site", a.site_id, "--out", str(out), "--latest"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "pruned" in r.stderr and "leaves/0-3" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
