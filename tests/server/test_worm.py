"""The WORM copy against moto's S3 server on loopback (osiris_server/worm.py).

What moto enforces is tested as moto's answer (a locked version cannot be deleted: 403); what
it does not (shortening, downgrading, suspending versioning) is what the client-side guard
refuses before any request leaves the process — test_worm_guard.py. Here: every object goes up
locked COMPLIANCE for at least six years with its checksum, content-addressed; a pass killed
half-way and re-run duplicates nothing and misses nothing; retention only goes up; a bucket
that is not a COMPLIANCE Object Lock bucket gets nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from osiris_server import worm
from osiris_server.db import worm as db_worm
from osiris_server.worm_config import WormConfig, WormConfigError
from tests.server.worm_fixtures import aws_env, fake_packet, make_bucket, moto_url, raw_client

__all__ = ["aws_env", "moto_url"]  # fixtures


def cfg_for(url: str, bucket: str, **kw: Any) -> WormConfig:
    kw.setdefault("leaf_batch", 3)
    return WormConfig(bucket=bucket, endpoint_url=url, **kw)


def evidence(server: Any, n: int, site_id: str | None = None) -> Any:
    site_id = site_id or server.site()["id"]
    a = server.enroll(site_id)
    envs = [a.envelope() for _ in range(n)]
    r = server.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    return a


def uploader(server: Any, cfg: WormConfig, **kw: Any) -> worm.Uploader:
    app = server.app
    return worm.Uploader(app.db, app.log, server.data, cfg, worm.make_client(cfg), **kw)


def versions(url: str, bucket: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for v in raw_client(url).list_object_versions(Bucket=bucket).get("Versions", []):
        out.setdefault(v["Key"], []).append(v)
    return out


def store_packet(server: Any, site_id: str, body: bytes) -> dict[str, Any]:
    r = server.admin.post(
        f"/api/v1/sites/{site_id}/packets",
        content=body,
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 201, r.text
    return r.json()["packet"]


def test_every_object_goes_up_locked_compliance_six_years(server, moto_url, aws_env) -> None:
    bucket = make_bucket(moto_url)
    a = evidence(server, 7)
    pk = store_packet(server, a.site_id, fake_packet(a.site_id))
    cfg = cfg_for(moto_url, bucket)
    out = uploader(server, cfg).run()
    size = server.app.log.latest_checkpoint().size
    assert size == 7
    keys = set(versions(moto_url, bucket))
    leaves = sorted(k for k in keys if "/leaves/" in k)
    assert [k.split("/")[-1].split("-")[:2] for k in leaves] == [["0", "2"], ["3", "5"]]
    assert any(k.startswith(f"osiris/checkpoints/{size}-") for k in keys)
    assert f"osiris/packets/{a.site_id}/{pk['sha256']}.zip" in keys
    assert out == {"uploaded": len(keys), "skipped": 0, "pending": 0}
    raw = raw_client(moto_url)
    six_years = datetime.now(UTC) + timedelta(days=365 * 6)
    for key, vs in versions(moto_url, bucket).items():
        assert len(vs) == 1, key  # content-addressed: one version per key
        head = raw.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] >= six_years
        body = raw.get_object(Bucket=bucket, Key=key)["Body"].read()
        sha = hashlib.sha256(body).hexdigest()
        assert sha in key
        row = server.app.db.one("SELECT * FROM worm_objects WHERE key = ?", [key])
        assert row["state"] == "uploaded" and row["sha256"] == sha
        assert row["version_id"] == vs[0]["VersionId"]
    # the leaves object is the log's entries, one a line, in index order
    first = raw.get_object(Bucket=bucket, Key=leaves[0])["Body"].read()
    assert first.split(b"\n")[:-1] == [server.app.log.entry(i) for i in range(3)]
    # moto enforces the lock on delete: a locked version cannot be removed, even by the owner
    with pytest.raises(Exception) as e:
        raw.delete_object(Bucket=bucket, Key=leaves[0], VersionId=versions(moto_url, bucket)[
            leaves[0]][0]["VersionId"])  # fmt: skip
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert leaves[0] in versions(moto_url, bucket)


def test_a_killed_pass_resumes_without_duplicates_or_gaps(server, moto_url, aws_env) -> None:
    bucket = make_bucket(moto_url)
    a = evidence(server, 10)
    store_packet(server, a.site_id, fake_packet(a.site_id))
    cfg = cfg_for(moto_url, bucket)

    class Killed(BaseException):
        pass

    seen: list[str] = []

    def die_on_second(msg: str) -> None:
        seen.append(msg)
        if len(seen) == 2:
            raise Killed  # the process dies between two objects

    with pytest.raises(Killed):
        uploader(server, cfg, progress=die_on_second).run()
    rows = server.app.db.query("SELECT key, state FROM worm_objects ORDER BY key")
    assert [r["state"] for r in rows].count("uploaded") == 2
    # and a kill between a PUT and its bookkeeping: S3 has it, the row still says pending
    done = next(r["key"] for r in rows if r["state"] == "uploaded")
    server.app.db.transact(
        lambda w: w.execute("UPDATE worm_objects SET state = 'pending' WHERE key = ?", [done])
    )
    # the lease of the dead pass is its own holder's; a new process waits it out (or it is
    # dropped by the finally of the dying one, as here)
    out = uploader(server, cfg).run()
    assert out["skipped"] == 1 and out["pending"] == 0
    got = versions(moto_url, bucket)
    assert all(len(v) == 1 for v in got.values()), got  # nothing duplicated
    leaves = sorted(
        (int(k.split("/")[-1].split("-")[0]), int(k.split("/")[-1].split("-")[1]))
        for k in got
        if "/leaves/" in k
    )
    assert leaves == [(0, 2), (3, 5), (6, 8)]  # nothing missed: every full batch below size 10
    assert sum("/packets/" in k for k in got) == 1
    states = {r["state"] for r in server.app.db.query("SELECT state FROM worm_objects")}
    assert states == {"uploaded"}
    assert uploader(server, cfg).run() == {"uploaded": 0, "skipped": 0, "pending": 0}
    # more evidence: only what is new goes up
    r = server.client(a.token).post(
        "/api/v1/evidence", json={"envelopes": [a.envelope() for _ in range(3)]}
    )
    assert r.status_code == 200
    out = uploader(server, cfg).run()
    assert out["uploaded"] == 2  # leaves 9-11 and the checkpoint closing it
    assert all(len(v) == 1 for v in versions(moto_url, bucket).values())


def test_retention_only_goes_up(server, moto_url, aws_env) -> None:
    bucket = make_bucket(moto_url, years=7)
    evidence(server, 3)
    uploader(server, cfg_for(moto_url, bucket, retention_years=7)).run()
    assert db_worm.high_water(server.app.db) == 7
    before = versions(moto_url, bucket)
    evidence(server, 3)
    with pytest.raises(WormConfigError, match="can only be raised"):
        uploader(server, cfg_for(moto_url, bucket, retention_years=6)).run()
    assert versions(moto_url, bucket) == before  # nothing went up with the shorter retention
    until = raw_client(moto_url).head_object(Bucket=bucket, Key=next(iter(before)))
    assert until["ObjectLockRetainUntilDate"] >= datetime.now(UTC) + timedelta(days=365 * 7)


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"lock": False}, "Object Lock is not enabled"),
        ({"mode": "GOVERNANCE"}, "not COMPLIANCE"),
        ({"years": 1}, "below the configured 6"),
    ],
)
def test_a_bucket_not_fit_for_worm_gets_nothing(server, moto_url, aws_env, kw, why) -> None:
    bucket = make_bucket(moto_url, **kw)
    evidence(server, 4)
    with pytest.raises(worm.WormError, match=why):
        uploader(server, cfg_for(moto_url, bucket)).run()
    assert raw_client(moto_url).list_object_versions(Bucket=bucket).get("Versions") is None
    assert server.app.db.query("SELECT key FROM worm_objects") == []


def test_an_unreachable_endpoint_is_a_clear_error(server, aws_env) -> None:
    evidence(server, 3)
    cfg = cfg_for("http://127.0.0.1:9", "osiris-worm-x")
    with pytest.raises(worm.WormError, match="cannot reach S3"):
        uploader(server, cfg).run()


def test_the_tick_runs_at_its_cadence_and_respects_the_lease(server, moto_url, aws_env) -> None:
    bucket = make_bucket(moto_url)
    evidence(server, 3)
    server.app.cfg.worm = cfg_for(moto_url, bucket, cadence_s=3600)
    with server.app.db.write() as w:  # another server is uploading right now
        assert db_worm.take_lease(w, "other-host:1", int(datetime.now(UTC).timestamp()), 900)
    out = worm.tick(server.app)
    assert out == {"uploaded": 0, "skipped": 0, "pending": 0}
    assert versions(moto_url, bucket) == {}
    with server.app.db.write() as w:
        db_worm.drop_lease(w, "other-host:1")
        db_worm.set_state(w, db_worm.LAST_PASS, "0")
    out = worm.tick(server.app)
    assert out is not None and out["uploaded"] == 2  # leaves 0-2 and checkpoint 3
    assert worm.tick(server.app) is None  # within cadence_s of the last pass


def test_the_server_tick_thread_uploads_by_itself(server_factory, moto_url, aws_env) -> None:
    """No CLI: a server with [worm] and a running tick thread puts the log's data up."""
    import time

    bucket = make_bucket(moto_url)
    server = server_factory(watchdog_tick_s=0.2, worm=cfg_for(moto_url, bucket, cadence_s=0.1))
    evidence(server, 3)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(versions(moto_url, bucket)) < 2:
        time.sleep(0.2)
    keys = set(versions(moto_url, bucket))
    assert any("/leaves/0-2-" in k for k in keys) and any("/checkpoints/3-" in k for k in keys)
    assert all(len(v) == 1 for v in versions(moto_url, bucket).values())


def test_log_entries_changed_under_the_copy_stop_the_pass(server, moto_url, aws_env) -> None:
    """An operator edits log entries already copied: the next batch hashes differently from
    the queued or uploaded one, and the pass stops instead of putting a second version."""
    bucket = make_bucket(moto_url)
    evidence(server, 3)
    cfg = cfg_for(moto_url, bucket)
    uploader(server, cfg).run()
    before = versions(moto_url, bucket)
    with server.app.db.write() as w:  # a queued row whose bytes no longer match the log's
        db_worm.add_pending(w, {"key": "osiris/leaves/0-2-" + "0" * 64 + ".jsonl",
                                "kind": "leaves", "sha256": "0" * 64, "bytes": 1,
                                "first_index": 0, "last_index": 2})  # fmt: skip
    with pytest.raises(worm.WormError, match="changed since it was queued"):
        uploader(server, cfg).run()
    assert versions(moto_url, bucket) == before
