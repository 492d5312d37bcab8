"""Two `osiris-server` processes on one PostgreSQL database, one of them killed -9 mid-batch.

Eight simulated appliances (real enrolment, real signed bundles, real HTTP) are spread over the
two servers; each uploads its chain in batches and checks in (cosigning the newest checkpoint
it verified) between batches, all at once. While batches are in flight one server gets SIGKILL;
every request that fails on it is resent to the other (ingest is idempotent by bundle hash).
Each appliance checks every answer as an agent does: the receipts against the answer's
checkpoint, and that checkpoint's consistency with the last one it saw.

Then: every acknowledged bundle is stored at the index its receipt names and is in the log; no
leaf is stored twice and the indices are dense; every checkpoint either server ever returned is
consistent with the next larger one and with the final one (one size, one root: no fork); every
receipt verifies; `osiris-server log verify` agrees.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from osiris_core import evidence as ev
from osiris_core import note, tlog
from tests.server.conftest import Appliance, Server, checkin_body
from tests.server.serverproc import ServerProc, run_cli, verified_checkpoint

APPLIANCES = 8
BATCHES = 6
PER_BATCH = 12
KILL_AFTER = APPLIANCES * BATCHES // 3  # batches acknowledged before the kill


class Fleet:
    """What every appliance saw, collected for the checks after the run."""

    def __init__(self, log_vkey: str) -> None:
        self.log_vkey = log_vkey
        self.lock = threading.Lock()
        self.acked: dict[str, tuple[int, dict[str, Any], str]] = {}  # hash -> (idx, env, receipt)
        self.checkpoints: dict[int, bytes] = {}  # size -> root, from every answer
        self.batches_done = 0
        self.retries = 0
        self.forks: list[str] = []

    def saw(self, cp_note: str) -> note.Checkpoint:
        body = verified_checkpoint(cp_note, self.log_vkey)
        with self.lock:
            old = self.checkpoints.setdefault(body.size, body.root)
            if old != body.root:
                self.forks.append(f"two roots for size {body.size}")
        return body


def _post(urls: list[str], home: int, path: str, token: str, body: dict, fleet: Fleet) -> dict:
    """POST to the appliance's home server; on a dead server or a 5xx, to the other one."""
    last = ""
    for attempt in range(12):
        url = urls[(home + attempt) % len(urls)]
        try:
            r = httpx.post(
                url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=20
            )
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if r.status_code == 200:
                return r.json()
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code < 500:
                raise AssertionError(f"{path} refused: {last}")
        with fleet.lock:
            fleet.retries += 1
        time.sleep(0.05)
    raise AssertionError(f"{path} failed on every server: {last}")


def _appliance(a: Appliance, home: int, urls: list[str], fleet: Fleet, errors: list) -> None:
    try:
        seen: note.Checkpoint | None = None
        for b in range(BATCHES):
            envs = [a.envelope(check="firewall", outcome="compliant") for _ in range(PER_BATCH)]
            size_seen = seen.size if seen else 0
            body = {"envelopes": envs, "log_size_seen": size_seen}
            out = _post(urls, home, "/api/v1/evidence", a.token, body, fleet)
            cp = fleet.saw(out["checkpoint"])
            # the agent's checks: consistency with what it saw, then each receipt
            if seen is not None and 0 < seen.size < cp.size:
                proof = [base64.b64decode(h) for h in out["consistency"]["proof"]]
                tlog.verify_consistency(seen.size, cp.size, seen.root, cp.root, proof)
            for env, res in zip(envs, out["results"], strict=True):
                assert res["status"] in ("accepted", "duplicate"), res
                tp = note.TlogProof.parse(res["receipt"])
                assert fleet.saw(tp.checkpoint).size == cp.size
                leaf = tlog.leaf_hash(ev.envelope_bytes(env))
                tlog.verify_inclusion(leaf, tp.index, cp.size, tp.hashes, cp.root)
                with fleet.lock:
                    fleet.acked[res["bundle_hash"]] = (res["index"], env, res["receipt"])
            seen = cp
            with fleet.lock:
                fleet.batches_done += 1
            line = note.cosign(cp.body(), a.cosigner, int(time.time()))
            ci = checkin_body(a, cp.size, cosignatures=[{"size": cp.size, "line": line}])
            _post(urls, home + b, "/api/v1/checkin", a.token, ci, fleet)
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        errors.append(exc)


def test_two_servers_one_database_kill9_mid_batch(tmp_path: Path, pg_cluster: Any) -> None:
    t0 = time.monotonic()
    url = pg_cluster.create_database("multihost")
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    r = run_cli("init", "--data", str(host_a), "--db", url, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    with open(host_a / "server.toml", "a") as f:
        f.write("checkpoint_interval_s = 0.02\nrequest_log = false\n")
    # the second host: the same server.toml and keys, its own data dir (docs/server.md)
    host_b.mkdir(mode=0o700)
    shutil.copy2(host_a / "server.toml", host_b / "server.toml")
    shutil.copytree(host_a / "keys", host_b / "keys")
    a_srv, b_srv = ServerProc(host_a), ServerProc(host_b)
    try:
        admin = Server(url=a_srv.url, app=None, data=host_a, admin_token=info["admin_token"],
                       init=info)  # type: ignore[arg-type]  # fmt: skip
        fleet_ = [
            admin.enroll(admin.site(f"Clinic {i}")["id"], f"ap{i}") for i in range(APPLIANCES)
        ]
        for c in admin.clients:
            c.close()
        fleet = Fleet(info["log_vkey"])
        urls = [a_srv.url, b_srv.url]
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_appliance, args=(a, i % 2, urls, fleet, errors))
            for i, a in enumerate(fleet_)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while fleet.batches_done < KILL_AFTER and time.monotonic() < deadline and not errors:
            time.sleep(0.005)
        a_srv.kill9()  # batches are in flight on it right now
        killed_at = fleet.batches_done
        for t in threads:
            t.join(90)
        assert not errors, errors[0]
        assert killed_at < APPLIANCES * BATCHES, "the kill came after the work"
        assert fleet.retries > 0, "no request was in flight on the killed server"
        assert fleet.batches_done == APPLIANCES * BATCHES
        assert not fleet.forks, fleet.forks
        _check_store(url, fleet, b_srv, info)
    finally:
        a_srv.stop()
        b_srv.stop()
    r = run_cli("log", "verify", "--data", str(host_b), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["signature"] == "verified"
    assert out["evidence"] == out["receipts_verified"] == APPLIANCES * BATCHES * PER_BATCH
    assert time.monotonic() - t0 < 120  # budget ~30 s on a quiet box; generous for a busy one


def _check_store(url: str, fleet: Fleet, b_srv: ServerProc, info: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT bundle_hash, log_index FROM evidence").fetchall()
        n, distinct, lo, hi = conn.execute(
            "SELECT count(*), count(DISTINCT leaf_hash), min(idx), max(idx) FROM osiris_log.leaves"
        ).fetchone()
        leaves = dict(conn.execute("SELECT idx, leaf_hash FROM osiris_log.leaves").fetchall())
    stored = dict(rows)
    total = APPLIANCES * BATCHES * PER_BATCH
    # every acknowledged bundle is stored at its receipt's index, and that leaf is its envelope
    assert len(fleet.acked) == total
    for bh, (idx, env, _receipt) in fleet.acked.items():
        assert stored.get(bh) == idx, bh
        assert bytes(leaves[idx]) == tlog.leaf_hash(ev.envelope_bytes(env))
    # one leaf per bundle, indices dense from 0: nothing logged twice, nothing lost
    assert n == distinct == len(stored) == total
    assert (lo, hi) == (0, total - 1)
    # every checkpoint ever returned is consistent with the next larger one and the final one
    h = {"Authorization": f"Bearer {info['admin_token']}"}
    final = fleet.saw(httpx.get(b_srv.url + "/api/v1/log/checkpoint", headers=h).json()["note"])
    assert final.size == total
    sizes = sorted(fleet.checkpoints)
    pairs = set(zip(sizes, sizes[1:], strict=False)) | {(s, final.size) for s in sizes}
    for old, new in sorted(pairs):
        if not 0 < old < new:
            continue
        r = httpx.get(b_srv.url + "/api/v1/log/proof/consistency", params={"from": old, "to": new},
                      headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
        proof = [base64.b64decode(x) for x in r.json()["proof"]]
        tlog.verify_consistency(old, new, fleet.checkpoints[old], fleet.checkpoints[new], proof)
    # every receipt handed out (by either server, before or after the kill) still verifies
    for _bh, (idx, env, receipt) in fleet.acked.items():
        tp = note.TlogProof.parse(receipt)
        body = verified_checkpoint(tp.checkpoint, info["log_vkey"])
        tlog.verify_inclusion(
            tlog.leaf_hash(ev.envelope_bytes(env)), idx, body.size, tp.hashes, body.root
        )


pytestmark = pytest.mark.timeout(240)
