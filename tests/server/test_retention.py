"""Retention (osiris_server/retention.py): what a prune may drop, that each prune is recorded, and
that the log and every receipt still verify afterwards — on SQLite and PostgreSQL.

These tests state what is in WORM by inserting ``worm_objects`` rows directly (the WORM upload
is the worm module's, not built here); an end-to-end test with the real upload to moto's S3
comes with the merge. Time is moved by ``prune(now=...)``, which the CLI never exposes.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from osiris_core import canonical, tlog
from osiris_server import backup, retention
from osiris_server.config import ConfigError
from osiris_server.config import load as load_config
from tests.server.conftest import Appliance, Server

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=int(365.25 * 6) + 30)  # past 6 years
SOON = dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 6 - 30)  # not yet 6 years


def _ingest(s: Server, a: Appliance, n: int) -> list[dict[str, Any]]:
    envs = [a.envelope(host_id=f"h{i}") for i in range(n)]
    r = s.client(a.token).post("/api/v1/evidence", json={"envelopes": envs})
    assert r.status_code == 200, r.text
    assert all(x["status"] == "accepted" for x in r.json()["results"])
    return envs


def _worm(s: Server, first: int, last: int, key: str | None = None, state: str = "uploaded"):
    """What the worm module records once an object is locked in S3 (stated here directly)."""
    s.index_sql(
        "INSERT INTO worm_objects (key, kind, sha256, bytes, first_index, last_index, site_id,"
        " retain_until, version_id, state, created_at, uploaded_at)"
        " VALUES (?, 'leaves', ?, 1, ?, ?, NULL, '2040-01-01T00:00:00.000Z', 'v1', ?,"
        " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [key or f"leaves/{first}-{last}", "0" * 64, first, last, state],
    )


def _prune(s: Server, **kw: Any) -> dict[str, Any]:
    kw.setdefault("now", LATER)
    return retention.prune(s.app.db, s.app.log.store, 6, "test", **kw)


def _entries(s: Server) -> dict[int, bytes]:
    with s.app.log.store.reading() as r:
        return {int(x["idx"]): bytes(x["entry"]) for x in r.query("SELECT idx, entry FROM leaves")}


def _audit(s: Server) -> list[dict[str, Any]]:
    return s.app.db.query("SELECT * FROM audit WHERE action = 'retention.prune' ORDER BY id")


def _verify(s: Server) -> Any:
    return backup.verify_data(s.data, s.app.cfg.db_url)


def _world(server: Server, n: int = 6) -> tuple[Appliance, list[dict[str, Any]]]:
    a = server.enroll(server.site("Old clinic")["id"])
    return a, _ingest(server, a, n)


def test_nothing_younger_than_six_years_is_pruned(server: Server) -> None:
    _a, envs = _world(server)
    _worm(server, 0, len(envs) - 1)
    before = _entries(server)
    out = _prune(server, now=SOON)
    assert out["prunable"] == 0 and out["prunes"] == []
    assert _entries(server) == before
    assert server.app.db.scalar("SELECT COUNT(*) FROM retention_prunes") == 0


def test_prune_blanks_bodies_keeps_proofs_logs_itself_and_is_idempotent(server: Server) -> None:
    a, envs = _world(server)
    _worm(server, 0, len(envs) - 1, key="leaves/0-5")
    out = _prune(server)
    assert out["pruned"] == len(envs)
    [p] = out["prunes"]
    assert (p["first_index"], p["last_index"], p["count"]) == (0, 5, 6)
    assert p["worm_keys"] == ["leaves/0-5"]
    assert set(_entries(server).values()) == {retention.PRUNED}
    row = server.app.db.one("SELECT * FROM retention_prunes")
    assert row["pruned_by"] == "test" and row["log_done_at"] and row["retention_years"] == 6
    [aud] = _audit(server)
    assert aud["site_id"] == a.site_id and aud["target"] == f"prune:{row['id']}"
    # the log still verifies end to end: tree, checkpoints, every receipt, the prune digest
    rep = _verify(server)
    assert rep.ok, rep.problems
    assert rep.pruned == 6 and rep.receipts_verified == 6
    # again: nothing more to do, nothing more written
    again = _prune(server)
    assert again["pruned"] == 0 and again["prunes"] == []
    assert server.app.db.scalar("SELECT COUNT(*) FROM retention_prunes") == 1
    assert len(_audit(server)) == 1


def test_export_says_the_body_is_in_worm_and_its_proof_still_verifies(server: Server) -> None:
    a, envs = _world(server, 3)
    _worm(server, 0, 2, key="leaves/0-2")
    _prune(server)
    cp = server.admin.get("/api/v1/log/checkpoint").json()
    r = server.admin.get("/api/v1/evidence", params={"site": a.site_id, "proof_size": cp["size"]})
    assert r.status_code == 200, r.text
    rows = r.json()["evidence"]
    assert len(rows) == 3
    from osiris_core import note as notes

    root = notes.Checkpoint.parse(cp["note"][: cp["note"].rfind("\n\n") + 1]).root
    for row, env in zip(rows, envs, strict=True):
        assert row["envelope"] is None
        assert row["pruned"]["worm_keys"] == ["leaves/0-2"]
        assert "WORM" in row["pruned"]["note"]
        # the original envelope (as WORM holds it) still proves inclusion with the served path
        hashes = [base64.b64decode(h) for h in row["proof"]["hashes"]]
        leaf = tlog.leaf_hash(canonical.dumps(env))
        tlog.verify_inclusion(leaf, row["index"], cp["size"], hashes, root)
    one = server.admin.get(f"/api/v1/evidence/{rows[0]['bundle_hash']}")
    assert one.status_code == 200 and one.json()["envelope"] is None
    assert one.json()["pruned"]["prune_id"] == 1
    # the event feed reads entries too: a pruned one is not a 500
    assert server.admin.get("/api/v1/events", params={"site": a.site_id}).status_code == 200


def test_only_the_part_in_worm_is_pruned(server: Server) -> None:
    _a, envs = _world(server)
    _worm(server, 0, 2)
    _worm(server, 3, 5, state="uploading")  # not locked yet: does not count
    out = _prune(server)
    assert out["pruned"] == 3 and out["refused_not_in_worm"] == 3
    assert out["first_not_in_worm"] == 3
    ent = _entries(server)
    assert [i for i, e in ent.items() if e == retention.PRUNED] == [0, 1, 2]
    assert all(ent[i] for i in (3, 4, 5))
    assert _verify(server).ok


def test_no_worm_nothing_pruned(server: Server) -> None:
    _world(server)
    out = _prune(server)
    assert out["pruned"] == 0 and out["refused_not_in_worm"] == 6


def test_dry_run_changes_nothing(server: Server) -> None:
    _a, envs = _world(server)
    _worm(server, 0, 5)
    rows, ent = server.index_rows(), _entries(server)
    out = _prune(server, dry_run=True)
    assert out["dry_run"] and out["prunable"] == 6 and out["prunes"] == []
    assert server.index_rows() == rows and _entries(server) == ent


def test_legal_hold_keeps_the_site_and_only_an_admin_sets_or_clears_it(server: Server) -> None:
    held = server.enroll(server.site("Held clinic")["id"], hostname="held-1")
    free = server.enroll(server.site("Free clinic")["id"], hostname="free-1")
    _ingest(server, held, 3)
    _ingest(server, free, 3)
    _worm(server, 0, 5)
    url = f"/api/v1/sites/{held.site_id}/legal-hold"
    # a hostile operator (and a partner-less auditor) can neither place nor lift a hold
    for role in ("operator", "auditor"):
        tok = server.admin.post("/api/v1/tokens", json={"role": role, "name": role}).json()
        c = server.client(tok["token"])
        assert c.post(url, json={"reason": "x"}).status_code == 403
    assert server.admin.post(url, json={"reason": ""}).status_code == 400
    assert server.admin.post(url, json={}).status_code == 400
    r = server.admin.post(url, json={"reason": "litigation 2026-17"})
    assert r.status_code == 201, r.text
    assert r.json()["held"] and r.json()["reason"] == "litigation 2026-17"
    assert server.admin.post(url, json={"reason": "again"}).status_code == 409
    op = server.admin.post("/api/v1/tokens", json={"role": "operator", "name": "op2"}).json()
    assert server.client(op["token"]).delete(url).status_code == 403
    st = server.client(op["token"]).get(url).json()
    assert st["held"] and st["held_by"] and st["held_at"]
    listed = server.admin.get("/api/v1/legal-holds").json()["holds"]
    assert [h["site_id"] for h in listed] == [held.site_id]

    out = _prune(server)
    assert out["pruned"] == 3 and out["refused_held"] == {held.site_id: 3}
    rows = server.app.db.query("SELECT site_id, pruned_id FROM evidence ORDER BY log_index")
    assert {r["site_id"] for r in rows if r["pruned_id"] is not None} == {free.site_id}
    assert all(r["pruned_id"] is None for r in rows if r["site_id"] == held.site_id)
    acts = [r["action"] for r in server.app.db.query("SELECT action FROM audit ORDER BY id")]
    assert "legal_hold.place" in acts

    r = server.admin.delete(url)
    assert r.status_code == 200 and r.json()["released"]["reason"] == "litigation 2026-17"
    assert server.admin.delete(url).status_code == 404
    assert _prune(server)["pruned"] == 3
    assert "legal_hold.release" in [
        r["action"] for r in server.app.db.query("SELECT action FROM audit")
    ]
    assert _verify(server).ok


def test_a_hold_placed_after_the_plan_still_wins(server: Server) -> None:
    a, _envs = _world(server, 2)
    _worm(server, 0, 1)
    p = retention.plan(server.app.db, 6, LATER)
    assert len(p.prunable) == 2
    assert (
        server.admin.post(
            f"/api/v1/sites/{a.site_id}/legal-hold", json={"reason": "late"}
        ).status_code
        == 201
    )
    leaves = retention._leaf_hashes(server.app.log.store, [0, 1])
    with server.app.db.write() as w:
        assert retention._record(w, p.prunable, leaves, p, "test") is None
    assert server.app.db.scalar("SELECT COUNT(*) FROM retention_prunes") == 0


def test_a_crash_between_index_and_log_is_finished_by_the_next_run(server: Server) -> None:
    _a, _envs = _world(server, 2)
    _worm(server, 0, 1)
    p = retention.plan(server.app.db, 6, LATER)
    leaves = retention._leaf_hashes(server.app.log.store, [0, 1])
    with server.app.db.write() as w:
        assert retention._record(w, p.prunable, leaves, p, "test") is not None
    # "crashed" here: recorded, not blanked. The log still verifies (nothing blank yet)
    assert [r["id"] for r in retention.pending(server.app.db)] == [1]
    assert _verify(server).ok
    out = _prune(server)
    assert out["finished"] == [1] and out["pruned"] == 0
    assert set(_entries(server).values()) == {retention.PRUNED}
    assert retention.pending(server.app.db) == []
    assert _verify(server).pruned == 2


def test_a_blanked_entry_without_a_prune_record_is_caught(server: Server) -> None:
    """The attack: an operator with database access drops a body and calls it retention."""
    _world(server, 2)
    server.app.log.store.transact(
        lambda tx: tx.execute("UPDATE leaves SET entry = ? WHERE idx = 1", [b""])
    )
    rep = _verify(server)
    assert not rep.ok
    assert any("without a recorded prune" in p for p in rep.problems)


def test_a_forged_prune_record_is_caught(server: Server) -> None:
    """The attack: mark a young leaf pruned in the index by hand and blank it; the digest the
    record would need is not what the operator wrote."""
    _world(server, 2)
    _worm(server, 0, 1)
    _prune(server)
    server.index_sql("UPDATE retention_prunes SET hashes_sha256 = ?", ["0" * 64])
    rep = _verify(server)
    assert any("do not match its record" in p for p in rep.problems)


def test_no_api_route_prunes(server: Server) -> None:
    doc = server.client().get("/api/v1/openapi.json").json()
    assert not [p for p in doc["paths"] if "prune" in p or "retention" in p]


def test_retention_years_below_six_is_refused(server: Server) -> None:
    toml = server.data / "server.toml"
    text = toml.read_text()
    toml.write_text(text + "\nretention_years = 5\n")
    with pytest.raises(ConfigError, match="below the 6 years"):
        load_config(server.data)
    toml.write_text(text + "\nretention_years = 7\n")
    assert load_config(server.data).retention_years == 7
    toml.write_text(text + '\nretention_years = "6"\n')
    with pytest.raises(ConfigError):
        load_config(server.data)
    toml.write_text(text)
    assert load_config(server.data).retention_years == 6


def test_a_partner_cannot_hold_or_release_even_its_own_site(server: Server) -> None:
    """The reseller a dispute may be about must not be able to lift (or fake) a hold."""
    r = server.admin.post("/api/v1/partners", json={"name": "Reseller"})
    assert r.status_code == 201, r.text
    pid, key = r.json()["partner"]["id"], r.json()["api_key"]
    site = server.site("Partner clinic", partner_id=pid)["id"]
    partner = server.client(api_key=key)
    url = f"/api/v1/sites/{site}/legal-hold"
    assert partner.get(url).status_code == 200  # it may see the status of its own site
    assert partner.post(url, json={"reason": "x"}).status_code == 403
    assert server.admin.post(url, json={"reason": "audit by OCR"}).status_code == 201
    assert partner.delete(url).status_code == 403
    assert partner.get(url).json()["held"] is True
    assert [h["site_id"] for h in partner.get("/api/v1/legal-holds").json()["holds"]] == [site]
    other = server.site("Not theirs")["id"]
    assert partner.get(f"/api/v1/sites/{other}/legal-hold").status_code == 404
