"""`osiris-server retention status|prune` as subprocesses over a served data dir (both engines):
JSON shape, a dry run that writes nothing, a prune recorded and audited, and a server.toml asking
for fewer than six years refused (exit 2, one line, nothing pruned).

The evidence is made old by rewriting its two times in the index (the CLI has no clock option,
by design). Its WORM copy is real: ``osiris-server worm upload`` puts the leaves into a bucket
with Object Lock on moto's S3 server (loopback), and the prune believes only what the BUCKET
confirms (locked COMPLIANCE, the bytes the index records): a ``worm_objects`` row written into
the index by hand covers nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.server.conftest import Server
from tests.server.worm_fixtures import make_bucket, moto_url

__all__ = ["moto_url"]
CLI = [sys.executable, "-m", "osiris_server.cli"]
OLD = "2019-01-02T03:04:05.000Z"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSIRIS_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    return env


def _run(s: Server, *args: str, group: str = "retention") -> subprocess.CompletedProcess:
    db = ["--db", s.app.cfg.db_url] if s.app.cfg.db_url else []
    return subprocess.run(
        [*CLI, group, *args, "--data", str(s.data), *db],
        capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip


@pytest.fixture
def worm_bucket(server: Server, moto_url: str) -> str:  # noqa: F811
    """A real Object Lock bucket (moto, COMPLIANCE 6 years) named in server.toml's [worm]."""
    bucket = make_bucket(moto_url)
    toml = server.data / "server.toml"
    toml.write_text(toml.read_text() + f'\n[worm]\nbucket = "{bucket}"\n'
                    f'endpoint_url = "{moto_url}"\nleaf_batch = 3\ncadence_s = 0\n')  # fmt: skip
    return bucket


def _old_world(s: Server, n: int = 6) -> Any:
    """``n`` bundles of one site, their leaves really uploaded to WORM, then made 7 years old."""
    a = s.enroll(s.site("Old clinic")["id"])
    envs = [a.envelope(host_id=f"h{i}") for i in range(n)]
    r = s.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    up = _run(s, "upload", group="worm")
    assert up.returncode == 0, up.stderr
    s.index_sql("UPDATE evidence SET received_at = ?, finished_at = ?", [OLD, OLD])
    return a


def _leaf_keys(s: Server) -> list[str]:
    rows = s.app.db.query("SELECT key FROM worm_objects WHERE kind = 'leaves' ORDER BY key")
    return [r["key"] for r in rows]


def test_status_dry_run_and_prune(server: Server, worm_bucket: str) -> None:
    a = _old_world(server)
    assert len(_leaf_keys(server)) == 2  # leaves 0-2 and 3-5, locked in the bucket
    r = _run(server, "status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["retention_years"] == 6 and st["prunable"] == 6 and st["pruned"] == 0
    rows = server.index_rows()
    r = _run(server, "prune", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prunable"] == 6
    assert server.index_rows() == rows
    r = _run(server, "prune")
    assert r.returncode == 0, r.stderr
    assert "pruned 6 bodies" in r.stdout
    prune = server.app.db.one("SELECT * FROM retention_prunes")
    assert prune["count"] == 6 and prune["pruned_by"].startswith("cli:") and prune["log_done_at"]
    assert json.loads(prune["worm_keys"]) == _leaf_keys(server)
    aud = server.app.db.query("SELECT * FROM audit WHERE action = 'retention.prune'")
    assert [x["site_id"] for x in aud] == [a.site_id]
    r = _run(server, "status")
    assert r.returncode == 0 and "bodies pruned 6" in r.stdout
    r = _run(server, "prune", "--json")
    assert json.loads(r.stdout)["pruned"] == 0


def test_a_worm_row_the_bucket_does_not_confirm_covers_nothing(
    server: Server, worm_bucket: str
) -> None:
    """Hostile DB admin: rows claiming leaves are in WORM — one for a key the bucket never got,
    one re-pointed at other bytes — prune nothing; the prune says which and why."""
    first = _old_world(server, 3)  # leaves 0-2 really uploaded
    more = server.enroll(server.site("Second clinic")["id"])
    envs = [more.envelope(host_id=f"x{i}") for i in range(3)]
    r = server.client(more.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    server.index_sql("UPDATE evidence SET received_at = ?, finished_at = ?", [OLD, OLD])
    server.index_sql(
        "INSERT INTO worm_objects (key, kind, sha256, bytes, first_index, last_index, state,"
        " created_at, uploaded_at, retain_until) VALUES ('osiris/leaves/3-5-forged', 'leaves',"
        " ?, 10, 3, 5, 'uploaded', ?, ?, '2031-01-01T00:00:00.000Z')",
        ["0" * 64, OLD, OLD],
    )
    r = _run(server, "prune", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["pruned"] == 3 and out["refused_not_in_worm"] == 3  # only the real object's
    assert "osiris/leaves/3-5-forged: not in the bucket" in r.stderr
    pruned = server.app.db.query("SELECT site_id FROM evidence WHERE pruned_id IS NOT NULL")
    assert {p["site_id"] for p in pruned} == {first.site_id}
    # the real object re-pointed at other bytes in the index: not confirmed either
    server.index_sql("UPDATE worm_objects SET sha256 = ? WHERE key <> 'osiris/leaves/3-5-forged'"
                     " AND kind = 'leaves'", ["1" * 64])  # fmt: skip
    r = _run(server, "status", "--json")
    assert "holds other bytes than the index records" in r.stderr


def test_prune_without_a_worm_section_refuses(server: Server) -> None:
    a = server.enroll(server.site("No WORM")["id"])
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": [a.envelope()]})
    assert r.status_code == 200, r.text
    server.index_sql("UPDATE evidence SET received_at = ?, finished_at = ?", [OLD, OLD])
    server.index_sql(
        "INSERT INTO worm_objects (key, kind, sha256, bytes, first_index, last_index, state,"
        " created_at) VALUES ('leaves/0-0', 'leaves', ?, 1, 0, 0, 'uploaded', ?)",
        ["0" * 64, OLD],
    )
    r = _run(server, "prune")
    assert r.returncode == 1 and "no [worm] section" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert server.app.db.scalar("SELECT COUNT(*) FROM evidence WHERE pruned_id IS NOT NULL") == 0


def test_fewer_than_six_years_is_refused(server: Server, worm_bucket: str) -> None:
    _old_world(server)
    toml = server.data / "server.toml"
    toml.write_text("retention_years = 5\n" + toml.read_text())  # top level, not in [worm]
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


def test_a_pull_over_pruned_evidence_says_where_the_bodies_are(
    server: Server, worm_bucket: str, tmp_path
) -> None:
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
    assert "pruned" in r.stderr and _leaf_keys(server)[0] in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
