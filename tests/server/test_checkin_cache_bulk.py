"""Check-in caching seen from outside, and bulk inclusion proofs on the evidence listing.

The check-in caches per-site rows in memory; these tests change those rows through a *second*
``Database`` handle — what another gunicorn worker or an ``osiris-server`` command does — and
require the very next check-in to show the change. Then ``GET /evidence?proof_size=N`` must
return proofs that verify against the signed checkpoint of size N.
"""

from __future__ import annotations

import base64
import hashlib

from osiris_core import canonical, note, tlog
from osiris_core.keys import Verifier
from osiris_server.db import credentials as db_creds
from osiris_server.db import open_database
from osiris_server.db import runbooks as db_runbooks
from osiris_server.db import tenants as db_tenants
from osiris_server.vault import Vault
from tests.server.conftest import checkin_body, policy_of
from tests.server.test_resources import WINRM


def test_changes_by_another_process_show_at_next_checkin(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    c = server.client(a.token)
    r = server.admin.post(f"/api/v1/sites/{site['id']}/credentials", json=WINRM)
    assert r.status_code == 201, r.text
    cred_id = r.json()["id"]

    def checkin() -> dict:
        r = c.post("/api/v1/checkin", json=checkin_body(a))
        assert r.status_code == 200, r.text
        return r.json()

    first = checkin()
    assert a.opened(first)[0]["password"] == "S3cret-Pa55!"
    assert checkin()["targets"] == first["targets"]  # served from the warm cache

    other = open_database(server.app.cfg)  # a second writer, as another worker is
    vault = Vault.open(server.data / "keys" / "vault.keyring")
    try:
        token = vault.encrypt(b'{"password": "R0tated"}', db_creds.context(site["id"], cred_id))
        with other.write() as w:
            db_creds.update(w, cred_id, {"address": "10.0.0.9"}, token)
        resp = checkin()
        assert a.opened(resp)[0]["password"] == "R0tated"
        assert resp["targets"][0]["address"] == "10.0.0.9"

        window = {"days": ["mon"], "start": "03:30", "duration_min": 60, "timezone": "UTC"}
        with other.write() as w:
            db_tenants.update_site(w, site["id"], {"window": window, "checkin_interval_s": 120})
        resp = checkin()
        assert policy_of(a, resp)["window"] == window and resp["next_checkin_s"] == 120
        assert policy_of(a, resp)["checkin_interval_s"] == 120

        rb = sorted(server.app.runbook_defaults())[0]
        with other.write() as w:
            off = dict.fromkeys(server.app.runbook_defaults(), False)
            db_runbooks.apply(w, "site", site["id"], off, "test")
        assert policy_of(a, checkin())["runbooks"]["enabled"] == []
        with other.write() as w:
            db_runbooks.apply(w, "appliance", a.id, {rb: True}, "test")
        assert policy_of(a, checkin())["runbooks"]["enabled"] == [rb]

        with other.write() as w:
            assert db_creds.delete(w, site["id"], cred_id)
        assert checkin()["targets"] == []
    finally:
        other.close()


def test_evidence_listing_with_bulk_proofs(server) -> None:
    site = server.site()
    a = server.enroll(site["id"])
    b = server.enroll(site["id"], "appliance-2")
    envs = {}
    for ap in (a, b):
        batch = [ap.envelope() for _ in range(7)]
        r = server.client(ap.token).post("/api/v1/evidence", json={"envelopes": batch})
        assert r.status_code == 200, r.text
        for e in batch:
            envs[note_hash(e)] = e
    cp = server.admin.get("/api/v1/log/checkpoint").json()
    size = cp["size"]
    assert size == 14
    # one more leaf after the checkpoint we ask proofs against
    late = a.envelope()
    server.client(a.token).post("/api/v1/evidence", json={"envelopes": [late]})

    r = server.admin.get("/api/v1/evidence", params={"site": site["id"], "proof_size": size})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["checkpoint"]["size"] == size
    opened = note.open_note(
        doc["checkpoint"]["note"], [Verifier.from_vkey(server.init["log_vkey"])]
    )
    signed = note.Checkpoint.parse(opened.text)
    assert signed.size == size
    rows = doc["evidence"]
    assert len(rows) == 15
    covered = 0
    for row in rows:
        if row["index"] >= size:
            assert row["proof"] is None
            continue
        covered += 1
        p = row["proof"]
        assert p["index"] == row["index"] and p["size"] == size
        leaf = tlog.leaf_hash(canonical.dumps(row["envelope"]))
        hashes = [base64.b64decode(h) for h in p["hashes"]]
        tlog.verify_inclusion(leaf, p["index"], size, hashes, signed.root)
        # the same answer as the one-by-one endpoint
        one = server.admin.get(
            "/api/v1/log/proof/inclusion", params={"hash": row["bundle_hash"], "size": size}
        ).json()
        assert one["hashes"] == p["hashes"]
    assert covered == 14
    # a tampered path must not verify (the check above can fail)
    row = next(r for r in rows if r["proof"])
    bad = [base64.b64decode(h) for h in row["proof"]["hashes"]]
    bad[0] = bytes(32)
    try:
        tlog.verify_inclusion(
            tlog.leaf_hash(canonical.dumps(row["envelope"])), row["index"], size, bad, signed.root
        )
    except Exception:  # noqa: BLE001 - ProofError expected
        pass
    else:
        raise AssertionError("tampered proof verified")

    # without proof_size: no proofs, no checkpoint (the listing is unchanged)
    plain = server.admin.get("/api/v1/evidence", params={"site": site["id"]}).json()
    assert "checkpoint" not in plain and "proof" not in plain["evidence"][0]
    # unknown checkpoint size: 404; bad value: 400; another tenant's site: 404
    r = server.admin.get("/api/v1/evidence", params={"site": site["id"], "proof_size": 13})
    assert r.status_code == 404
    r = server.admin.get("/api/v1/evidence", params={"site": site["id"], "proof_size": "x"})
    assert r.status_code == 400
    client_tok = server.admin.post(
        "/api/v1/tokens",
        json={"role": "client", "name": "c", "site_id": server.site("Other")["id"]},
    ).json()["token"]
    r = server.client(client_tok).get(
        "/api/v1/evidence", params={"site": site["id"], "proof_size": size}
    )
    assert r.status_code == 404


def note_hash(env: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical.dumps(env["bundle"])).hexdigest()


def test_group_commit_shares_transactions_and_isolates_failures(tmp_path) -> None:
    import threading

    from osiris_server.db import audit as db_audit

    db = open_database(tmp_path / "g.db")
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def work(i: int) -> None:
        def fn(w) -> None:
            if i == 7:
                w.execute("INSERT INTO no_such_table VALUES (1)")
            db_audit.record(w, "t", "group.test", f"item{i}")

        start.wait()
        try:
            db.write_grouped(fn)
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = db.query("SELECT target FROM audit WHERE action = 'group.test'")
        assert sorted(r["target"] for r in rows) == sorted(f"item{i}" for i in range(16) if i != 7)
        assert len(errors) == 1 and "no_such_table" in str(errors[0])
    finally:
        db.close()
