"""`osiris packet build` and `osiris evidence verify --packet` against a real osiris-server.

A real server on 127.0.0.1 (tests/tui/conftest.py), a real enrolled appliance that signs evidence
over three months and cosigns the log checkpoint at check-in, the real CLI in a subprocess. The
packet for the middle month must hold exactly that month's bundles, verify offline, list its
exceptions, and fail with a stable code when tampered with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from osiris_core import canonical, note
from osiris_core.controls import controls_for
from osiris_core.keys import Verifier

OSIRIS = str(Path(sys.executable).parent / "osiris")
MONTH = "2026-10"

# (month day, check, outcome): seq 1-2 in September, 3-9 in October, 10-11 in November
PLAN = [
    ("2026-09-29", "firewall", "compliant"),
    ("2026-09-30", "firewall", "healed"),
    ("2026-10-01", "firewall", "compliant"),
    ("2026-10-05", "bitlocker", "failed"),
    ("2026-10-09", "firewall", "healed"),
    ("2026-10-12", "audit_policy", "compliant"),
    ("2026-10-20", "bitlocker", "escalated"),
    ("2026-10-25", "firewall", "compliant"),
    ("2026-10-31", "audit_policy", "deferred"),
    ("2026-11-01", "firewall", "compliant"),
    ("2026-11-02", "firewall", "failed"),
]


def run(live, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=live.url, OSIRIS_TOKEN=token or live.token,
               OSIRIS_PROFILE_FILE="/nonexistent")  # fmt: skip
    return subprocess.run([OSIRIS, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def site(live) -> dict:
    """A site of its own: one appliance with evidence over three months, one without."""
    site_id = f"pkt-{uuid.uuid4().hex[:8]}"
    live.site("Packet Clinic", site_id)
    a = live.enroll(site_id, f"{site_id}-app")
    silent = live.enroll(site_id, f"{site_id}-idle")
    fields = []
    for i, (day, check_id, outcome) in enumerate(PLAN):
        t = f"{day}T10:{i:02d}:00.000Z"
        fields.append(
            {
                "host_id": "dc01" if i % 2 else "ws07",
                "check": check_id,
                "controls": list(controls_for(_catalog_check(check_id))),
                "outcome": outcome,
                "started_at": t,
                "finished_at": t,
            }
        )
    a.send_bundles(fields)
    # the appliance witnesses the checkpoint covering its bundles, as the agent does
    with live.admin() as h:
        cp = h.get("/api/v1/log/checkpoint").json()
        log_vkey = h.get("/api/v1/log/keys").json()["log"]
    text = note.open_note(cp["note"], [Verifier.from_vkey(log_vkey)]).text
    line = note.cosign(text, a.cosigner, int(time.time()))
    body = {
        "appliance_id": a.id,
        "agent_version": "0.1.0",
        "status": {
            "uptime_s": 10,
            "outbox_depth": 0,
            "chain_head": a.chain.head,
            "seq": a.chain.seq,
            "clock": {"ntp_ok": True, "offset_ms": 3, "source": "127.0.0.1"},
            "checks": [],
        },
        "log_size_seen": cp["size"],
        "cosignatures": [{"size": cp["size"], "line": line}],
    }
    with a.http() as h:
        r = h.post("/api/v1/checkin", json=body)
    assert r.status_code == 200, r.text
    return {"id": site_id, "app": a, "idle": silent, "fields": fields, "log_vkey": log_vkey}


def _catalog_check(check_id: str) -> str:
    """The seed's short check names mapped to catalogue ids (for their HIPAA citations)."""
    return {
        "firewall": "windows_firewall",
        "bitlocker": "windows_bitlocker",
        "audit_policy": "windows_audit_policy",
    }.get(check_id, check_id)


@pytest.fixture(scope="module")
def packet(live, site, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packet") / f"{site['id']}-{MONTH}.zip"
    r = run(live, "packet", "build", "--site", site["id"], "--month", MONTH, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "wrote" in r.stderr
    return out


def _rewrite(src: Path, dst: Path, change) -> Path:  # noqa: ANN001
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    change(files)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def test_packet_holds_exactly_the_month_and_verifies(live, site, packet) -> None:
    r = run(live, "evidence", "verify", "--packet", str(packet), "--strict",
            "--log-key", site["log_vkey"])  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS E_MANIFEST_SIG" in r.stdout and "PASS E_MANIFEST " in r.stdout
    assert "W_CHAIN_START" not in r.stdout and "FAIL" not in r.stdout
    with zipfile.ZipFile(packet) as z:
        m = canonical.loads_canonical(z.read("manifest.json"))
        bundles = [json.loads(x)["bundle"] for x in z.read("bundles.jsonl").splitlines()]
        report = z.read("report.md").decode()
        sig = z.read("manifest.sig").decode()
    october = [f for f in site["fields"] if f["finished_at"].startswith(MONTH)]
    assert [b["seq"] for b in bundles] == list(range(3, 10))
    assert m["site_id"] == site["id"] and m["month"] == MONTH and m["bundles"] == len(october)
    assert m["appliances"] == {site["app"].id: {"bundles": 7, "seq_first": 3, "seq_last": 9}}
    # the per-control counts follow from what the appliance signed, computed independently
    expected: dict[str, dict[str, int]] = {}
    for f in october:
        for c in f["controls"]:
            expected.setdefault(c, {})
            expected[c][f["outcome"]] = expected[c].get(f["outcome"], 0) + 1
    assert m["controls"] == expected
    assert m["exceptions"] == 3
    # the server's log key signed it (the key pinned for checkpoints)
    opened = note.open_note(sig, [Verifier.from_vkey(site["log_vkey"])])
    assert opened.text.startswith(f"osiris-packet-manifest\n{site['id']}\n{MONTH}\n")
    # report: population (the idle appliance has no evidence), control table, exceptions
    assert f"| {site['idle'].id} | 0 | - | NO EVIDENCE THIS MONTH |" in report
    assert f"| {site['app'].id} | 7 | 3..9 | dc01, ws07 |" in report
    exc_rows = [x for x in report.split("## Exceptions", 1)[1].splitlines() if x.startswith("| 2")]
    assert len(exc_rows) == 3
    for f in october:
        if f["outcome"] in ("failed", "escalated", "deferred"):
            assert any(
                f["finished_at"] in x and f["check"] in x and f["host_id"] in x for x in exc_rows
            )
    for cit, counts in expected.items():
        row = next(x for x in report.splitlines() if x.startswith(f"| {cit} |"))
        bad = any(o in counts for o in ("failed", "escalated", "deferred"))
        assert ("exceptions" if bad else "evidenced") in row
    # the November failure is not this month's exception
    assert "2026-11-02" not in report


def test_tampered_packets_fail_with_their_codes(live, packet, tmp_path) -> None:
    def tamper_bundle(files: dict[str, bytes]) -> None:
        files["bundles.jsonl"] = files["bundles.jsonl"].replace(b'"ws07"', b'"ws08"', 1)

    def tamper_manifest(files: dict[str, bytes]) -> None:
        m = json.loads(files["manifest.json"])
        m["exceptions"] = 0
        files["manifest.json"] = canonical.dumps(m)

    def drop_proof(files: dict[str, bytes]) -> None:
        del files[next(n for n in files if n.startswith("proofs/"))]

    def add_file(files: dict[str, bytes]) -> None:
        files["proofs/extra.tlog-proof"] = b"c2sp.org/tlog-proof@v1\n"

    cases = [
        (tamper_bundle, {"FAIL E_MANIFEST bundles.jsonl", "FAIL E_SIG"}),
        (tamper_manifest, {"FAIL E_MANIFEST_SIG"}),
        (drop_proof, {"FAIL E_MANIFEST proofs/", "FAIL E_INCLUSION"}),
        (add_file, {"FAIL E_MANIFEST proofs/extra.tlog-proof"}),
    ]
    for i, (change, wants) in enumerate(cases):
        bad = _rewrite(packet, tmp_path / f"bad{i}.zip", change)
        r = run(live, "evidence", "verify", "--packet", str(bad))
        assert r.returncode == 1, (change.__name__, r.stdout)
        for want in wants:
            assert want in r.stdout, (change.__name__, r.stdout)
    r = run(live, "evidence", "verify", "--packet", str(tmp_path / "none.zip"))
    assert r.returncode == 2
    r = run(live, "evidence", "verify")
    assert r.returncode == 2


def test_build_refuses_bad_month_and_existing_file(live, site, packet) -> None:
    r = run(live, "packet", "build", "--site", site["id"], "--month", "2026-13",
            "--out", str(packet.parent / "x.zip"))  # fmt: skip
    assert r.returncode == 2 and "month" in r.stderr
    r = run(live, "packet", "build", "--site", site["id"], "--month", MONTH, "--out", str(packet))
    assert r.returncode == 2 and "exists" in r.stderr
    r = run(live, "packet", "build", "--site", "no-such-site", "--month", MONTH,
            "--out", str(packet.parent / "y.zip"))  # fmt: skip
    assert r.returncode == 2
    assert not (packet.parent / "x.zip").exists() and not (packet.parent / "y.zip").exists()


def test_sign_endpoint_tenancy_validation_and_audit(live, site) -> None:
    body = {"site_id": site["id"], "month": MONTH, "manifest_sha256": "0" * 64}
    with live.admin() as h:
        p = h.post("/api/v1/partners", json={"name": f"P-{uuid.uuid4().hex[:6]}"}).json()
        r = h.post("/api/v1/packets/sign", json={**body, "month": "2026-13"})
        assert r.status_code == 400
        r = h.post("/api/v1/packets/sign", json={**body, "manifest_sha256": "x"})
        assert r.status_code == 400
        r = h.post("/api/v1/packets/sign", json=body)
        assert r.status_code == 200
        assert r.json()["log_vkey"] == site["log_vkey"]
        audit = h.get("/api/v1/audit", params={"action": "packet.sign"}).json()
    assert site["id"] in json.dumps(audit) and "0" * 64 in json.dumps(audit)
    partner = httpx.Client(base_url=live.url, headers={"X-API-Key": p["api_key"]}, timeout=20)
    with partner:
        # another partner's (here: the MSP's own) site is invisible: 404, not 403
        r = partner.post("/api/v1/packets/sign", json=body)
        assert r.status_code == 404, r.text
        own = partner.post("/api/v1/sites", json={"name": "own"}).json()
        r = partner.post("/api/v1/packets/sign", json={**body, "site_id": own["id"]})
        assert r.status_code == 200
    r = httpx.post(live.url + "/api/v1/packets/sign", json=body, timeout=20)
    assert r.status_code == 401
