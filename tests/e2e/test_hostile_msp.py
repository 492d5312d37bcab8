"""The proof holds against the MSP (DESIGN §6): a hostile MSP runs a second osiris-server.

Real servers on loopback, real agents (enroll, check in, sign, flush, cosign), the real
`osiris-agent attest` and `osiris` CLIs. The MSP's second server has a fresh log key under the
same origin name and its own, fabricated appliance for a site of the same id. Its export and its
packet are self-consistent — and must fail against the clinic's attestation, while the honest
server's export and packet pass it strictly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from osiris_core import canonical
from osiris_core.trust import open_attestation
from tests.e2e.conftest import Central, _env, free_port, seed_site

ROOT = Path(__file__).resolve().parents[2]


def second_central(tmp: Path, origin: str) -> Central:
    data = tmp / "hostile-srv"
    init = subprocess.run(
        [sys.executable, "-m", "osiris_server.cli", "init", "--data", str(data), "--json",
         "--origin", origin],
        env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr[-500:]
    c = Central(data, free_port(), json.loads(init.stdout)["admin_token"], tmp / "hostile.log")
    c.start()
    return c


def osiris(c: Central, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in _env().items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=c.url, OSIRIS_TOKEN=c.admin, OSIRIS_PROFILE_FILE="/nonexistent",
               XDG_CONFIG_HOME=str(cfg))  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "osiris_tui.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def run_cycles(agent, n: int) -> None:  # noqa: ANN001
    for _ in range(n):
        report = agent.cycle()
        assert report.checked_in, report.errors


def test_second_server_with_fabricated_appliances_fails_against_the_attestation(
    central: Central, tmp_path: Path
) -> None:
    from tests.e2e.conftest import enroll_agent

    cfg = tmp_path / "cfg"
    site = seed_site(central)
    agent = enroll_agent(central, site, tmp_path / "clinic-agent")
    t0 = canonical.utc_now()
    run_cycles(agent, 2)
    time.sleep(0.01)
    period_end = canonical.utc_now()
    run_cycles(agent, 2)  # bundles after the period, then cosigned at the next check-in
    agent.close()
    att = tmp_path / "clinic.json"
    r = subprocess.run(
        [sys.executable, "-m", "osiris_agent.cli", "attest", "--state",
         str(tmp_path / "clinic-agent"), "--out", str(att)],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    a = open_attestation(json.loads(att.read_text()))
    assert a.appliance_id == site.appliance_id and a.head_seq > 0
    origin = a.log.name

    # the honest export and packet pass strictly against the attestation
    r = osiris(central, cfg, "evidence", "pull", "--site", site.id, "--out", str(tmp_path / "ok"))
    assert r.returncode == 0, r.stderr
    r = osiris(central, cfg, "evidence", "verify", "--strict", "--trust", str(att),
               str(tmp_path / "ok"))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    ok_zip = tmp_path / "ok.zip"
    r = osiris(central, cfg, "packet", "build", "--site", site.id, "--from", t0, "--to",
               period_end, "--out", str(ok_zip))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = osiris(central, cfg, "evidence", "verify", "--packet", str(ok_zip), "--trust", str(att))
    assert r.returncode == 0, r.stdout + r.stderr

    # the MSP's second server: fresh log key, same origin, a fabricated appliance
    hostile = second_central(tmp_path, origin)
    try:
        partner = hostile.api("POST", "/partners", {"name": "MSP"})["partner"]["id"]
        hostile.api("POST", "/sites", {"id": site.id, "name": "Clinic", "partner_id": partner})
        from tests.e2e.conftest import Site

        fake_site = Site(site.id)
        fake = enroll_agent(hostile, fake_site, tmp_path / "fake-agent")
        run_cycles(fake, 2)
        fake_end = canonical.utc_now()
        run_cycles(fake, 2)
        fake.close()
        assert hostile.log_verifier().name == origin  # indistinguishable by name
        exp = tmp_path / "fake-export"
        r = osiris(hostile, cfg, "evidence", "pull", "--site", site.id, "--out", str(exp))
        assert r.returncode == 0, r.stderr
        # self-consistent: it verifies when nothing is pinned (only W_UNPINNED)
        r = osiris(hostile, cfg, "evidence", "verify", str(exp))
        assert r.returncode == 0 and "W_UNPINNED" in r.stdout, r.stdout
        r = osiris(hostile, cfg, "evidence", "verify", "--trust", str(att), str(exp))
        assert r.returncode == 1, r.stdout
        assert "FAIL E_LOG_UNTRUSTED" in r.stdout and "FAIL E_KEY_UNTRUSTED" in r.stdout
        fake_zip = tmp_path / "fake.zip"
        r = osiris(hostile, cfg, "packet", "build", "--site", site.id, "--from", t0, "--to",
                   fake_end, "--out", str(fake_zip))  # fmt: skip
        assert r.returncode == 0, r.stderr
        r = osiris(hostile, cfg, "evidence", "verify", "--packet", str(fake_zip), "--trust",
                   str(att))  # fmt: skip
        assert r.returncode == 1, r.stdout
        for code in ("E_LOG_UNTRUSTED", "E_KEY_UNTRUSTED", "E_APPLIANCE_MISSING"):
            assert f"FAIL {code}" in r.stdout, (code, r.stdout)
        assert site.appliance_id in r.stdout  # the attested appliance is named as missing
    finally:
        hostile.stop()
    assert os.path.exists(att)
