"""`osiris packet build` and `osiris evidence verify --packet` against a real osiris-server.

A real server on 127.0.0.1 (tests/tui/conftest.py), real enrolled appliances that sign evidence
over three months and cosign the log checkpoint at check-in, the real CLI in a subprocess. The
packet for the middle month must hold that month's bundles plus each appliance's boundary
bundles, verify offline against the clinic's attestations, list its exceptions, and fail with a
stable code when tampered with — or when verified without pinned keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from osiris_core import canonical
from osiris_core.controls import controls_for
from osiris_core.trust import make_attestation
from osiris_core.verify import DECOMMISSION_CHECK

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
               OSIRIS_PROFILE_FILE="/nonexistent",
               XDG_CONFIG_HOME=str(live.data.parent / "cfg"))  # fmt: skip
    return subprocess.run([OSIRIS, *args], capture_output=True, text=True, env=env, timeout=120)


def cosign_now(live, a) -> None:  # noqa: ANN001
    """The appliance witnesses the checkpoint covering its bundles, as the agent does."""
    a.witness()


def attest(live, a, out: Path) -> Path:  # noqa: ANN001
    """What `osiris-agent attest` writes on that appliance (same format, same keys)."""
    with live.admin() as h:
        keys = h.get("/api/v1/log/keys").json()
    env = make_attestation(
        a.signer, appliance_id=a.id, site_id=a.site_id, cosign_vkey=a.cosigner.vkey,
        log_vkey=keys["log"], order_vkey=keys["order"], rotations=[],
        chain_head={"seq": a.chain.seq, "hash": a.chain.head}, cosigned_checkpoint=None,
        attested_at=canonical.utc_now(), agent_version="0.1.0",
    )  # fmt: skip
    out.write_text(json.dumps(env))
    return out


@pytest.fixture(scope="module")
def site(live, tmp_path_factory) -> dict:
    """A site of its own: one appliance with evidence over three months, one decommissioned
    in September (its chain closed before the month)."""
    site_id = f"pkt-{uuid.uuid4().hex[:8]}"
    live.site("Packet Clinic", site_id)
    a = live.enroll(site_id, f"{site_id}-app")
    retired = live.enroll(site_id, f"{site_id}-old")
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
    t = "2026-09-15T08:00:00.000Z"
    retired.send_bundles(
        [{"host_id": retired.id, "check": DECOMMISSION_CHECK, "controls": [],
          "outcome": "compliant", "started_at": t, "finished_at": t}]
    )  # fmt: skip
    cosign_now(live, a)
    with live.admin() as h:
        log_vkey = h.get("/api/v1/log/keys").json()["log"]
        # the site's targets: ws07 reports, ws99 never does (the report must say so)
        for host in ("ws07", "ws99"):
            r = h.post(f"/api/v1/sites/{site_id}/credentials",
                       json={"host_id": host, "kind": "ssh_password", "address": "192.0.2.7",
                             "username": "osiris", "password": "pw"})  # fmt: skip
            assert r.status_code in (200, 201), r.text
    tmp = tmp_path_factory.mktemp("att")
    trust = [attest(live, a, tmp / "a.json"), attest(live, retired, tmp / "retired.json")]
    return {"id": site_id, "app": a, "retired": retired, "fields": fields,
            "log_vkey": log_vkey, "trust": trust}  # fmt: skip


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


def trust_args(site: dict) -> list[str]:
    return [x for p in site["trust"] for x in ("--trust", str(p))]


def test_packet_holds_the_month_with_its_boundaries_and_verifies(live, site, packet) -> None:
    r = run(live, "evidence", "verify", "--packet", str(packet), *trust_args(site))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS E_MANIFEST " in r.stdout and "PASS E_COMPLETE " in r.stdout
    assert "W_" not in r.stdout and "FAIL" not in r.stdout
    assert f"TRUST appliance osiris/appliance/{site['app'].id} " in r.stdout
    with zipfile.ZipFile(packet) as z:
        m = canonical.loads_canonical(z.read("manifest.json"))
        bundles = [json.loads(x)["bundle"] for x in z.read("bundles.jsonl").splitlines()]
        report = canonical.loads_canonical(z.read("report.json"))
        assert "manifest.sig" not in z.namelist() and "report.md" not in z.namelist()
    october = [f for f in site["fields"] if f["finished_at"].startswith(MONTH)]
    app = site["app"].id
    # seq 2 (30 Sep) is the start boundary, seq 10 (1 Nov) the end boundary
    assert [b["seq"] for b in bundles if b["appliance_id"] == app] == list(range(2, 11))
    assert m["site_id"] == site["id"] and m["month"] == MONTH and m["bundles"] == len(october)
    assert m["appliances"][app] == {
        "bundles": 9, "in_period": 7, "seq_first": 2, "seq_last": 10,
        "start_boundary": 2, "end_boundary": 10, "decommissioned": False,
    }  # fmt: skip
    assert m["appliances"][site["retired"].id]["decommissioned"] is True
    # the per-control counts follow from what the appliance signed, computed independently
    expected: dict[str, dict[str, int]] = {}
    for f in october:
        for c in f["controls"]:
            expected.setdefault(c, {})
            expected[c][f["outcome"]] = expected[c].get(f["outcome"], 0) + 1
    assert m["controls"] == expected
    assert m["exceptions"] == 3
    # population: the site's targets (its credentials) and appliances, plus hosts seen only
    # in evidence; ws99 is a target that never reported, the appliances checked no host of
    # their own, so each is a host without evidence
    pop = {p["host_id"]: (p["platform"], p["source"]) for p in report["population"]["expected"]}
    assert pop["ws07"] == ("linux", "site target") and pop["ws99"] == ("linux", "site target")
    assert pop["dc01"] == (None, "evidence only") and pop[app] == ("nixos", "appliance")
    assert m["population"] == [
        {"host_id": h, "platform": "linux", "source": "site target"} for h in ("ws07", "ws99")
    ]
    assert "ws99" in report["population"]["missing"]
    assert site["retired"].id in report["population"]["missing"]
    # one exception per episode, each with what closed it (or nothing)
    got = {(e["host_id"], e["check"]): e["status"] for e in report["exceptions"]}
    assert got == {
        ("dc01", "bitlocker"): "open",
        ("ws07", "firewall"): "healed",
        ("ws07", "bitlocker"): "escalated",
        ("ws07", "audit_policy"): "open",
    }
    healed = next(e for e in report["exceptions"] if e["status"] == "healed")
    assert healed["closed_by"]["seq"] == healed["opened_by"]["seq"] == 5  # found and fixed
    # the end boundary's November day is there, November's failure (seq 11) is not
    assert not any(e["opened_at"].startswith("2026-11") for e in report["exceptions"])
    assert {c["status"] for c in report["controls"]} <= {
        "met", "partially_met", "not_met", "not_evidenced"
    }  # fmt: skip
    assert "met" not in {c["status"] for c in report["controls"]}  # ws99 never reported


def test_build_prints_a_one_line_report_summary(live, site, tmp_path) -> None:
    out = tmp_path / "again.zip"
    r = run(live, "packet", "build", "--site", site["id"], "--month", MONTH, "--out", str(out))
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stderr.splitlines() if x.startswith("report ")]
    assert " met, " in line and "not evidenced" in line
    assert "expected hosts without evidence" in line and "ws99" in line


def test_packet_without_pinned_keys_fails(live, packet) -> None:
    r = run(live, "evidence", "verify", "--packet", str(packet))
    assert r.returncode == 1 and "WARN W_UNPINNED" in r.stdout and "summary:" in r.stdout
    # the log key alone pins the log, not the appliances: still unpinned
    with live.admin() as h:
        log_vkey = h.get("/api/v1/log/keys").json()["log"]
    r = run(live, "evidence", "verify", "--packet", str(packet), "--log-key", log_vkey)
    assert r.returncode == 1 and "WARN W_UNPINNED keys.json appliance keys" in r.stdout
    assert "W_UNPINNED keys.json log key" not in r.stdout


def test_tampered_packets_fail_with_their_codes(live, site, packet, tmp_path) -> None:
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

    def drop_end(files: dict[str, bytes]) -> None:
        lines = files["bundles.jsonl"].splitlines(keepends=True)
        files["bundles.jsonl"] = b"".join(x for x in lines if b"2026-11-01" not in x)

    cases = [
        (tamper_bundle, {"FAIL E_MANIFEST bundles.jsonl", "FAIL E_SIG"}),
        (tamper_manifest, {"FAIL E_MANIFEST manifest.json"}),
        (drop_proof, {"FAIL E_MANIFEST proofs/", "FAIL E_INCLUSION"}),
        (add_file, {"FAIL E_MANIFEST proofs/extra.tlog-proof"}),
        (drop_end, {"FAIL E_END_BOUNDARY"}),
    ]
    for i, (change, wants) in enumerate(cases):
        bad = _rewrite(packet, tmp_path / f"bad{i}.zip", change)
        r = run(live, "evidence", "verify", "--packet", str(bad), *trust_args(site))
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
    z = str(packet.parent / "z.zip")
    r = run(live, "packet", "build", "--site", site["id"], "--month", MONTH,
            "--from", "2026-10-01T00:00:00.000Z", "--out", z)  # fmt: skip
    assert r.returncode == 2 and "not both" in r.stderr
    for name in ("x.zip", "y.zip", "z.zip"):
        assert not (packet.parent / name).exists()


def test_previous_packet_consistency(live, site, packet, tmp_path) -> None:
    """November's packet carries the log's consistency proof from October's checkpoint."""
    a = site["app"]
    t = "2026-12-01T09:00:00.000Z"
    a.send_bundles([{"host_id": "dc01", "check": "firewall", "controls": [],
                     "outcome": "compliant", "started_at": t, "finished_at": t}])  # fmt: skip
    cosign_now(live, a)
    nov = tmp_path / "nov.zip"
    r = run(live, "packet", "build", "--site", site["id"], "--month", "2026-11", "--out",
            str(nov), "--previous", str(packet))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run(live, "evidence", "verify", "--packet", str(nov), "--previous", str(packet),
            *trust_args(site))  # fmt: skip
    # the attestations name the chain head as it was before the December bundle: still valid
    assert r.returncode == 0, r.stdout
    assert "PASS E_CONSISTENCY" in r.stdout and "PASS E_PREVIOUS" in r.stdout


def test_pull_refuses_a_checkpoint_the_clinic_never_cosigned(live, tmp_path) -> None:
    site_id = f"unw-{uuid.uuid4().hex[:8]}"
    live.site("Unwitnessed Clinic", site_id)
    a = live.enroll(site_id, f"{site_id}-app")
    a.send_evidence(2, host_id="dc01", check="windows_firewall", outcome="compliant")
    r = run(live, "evidence", "pull", "--site", site_id, "--out", str(tmp_path / "e"))
    assert r.returncode == 1 and "cosigned" in r.stderr and "--allow-uncosigned" in r.stderr
    assert not (tmp_path / "e").exists()
    r = run(live, "evidence", "pull", "--site", site_id, "--out", str(tmp_path / "e"),
            "--allow-uncosigned")  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_sign_endpoint_is_gone(live, site) -> None:
    """The log key signs checkpoints only: no endpoint signs a manifest for anyone."""
    body = {"site_id": site["id"], "month": MONTH, "manifest_sha256": "0" * 64}
    with live.admin() as h:
        r = h.post("/api/v1/packets/sign", json=body)
    assert r.status_code in (404, 405), r.text
    r = httpx.post(live.url + "/api/v1/packets/sign", json=body, timeout=20)
    assert r.status_code in (401, 404, 405)
