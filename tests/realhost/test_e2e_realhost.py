"""The whole path on a REAL Debian 12 host: a real ``osiris-server`` process, a real agent
process (``osiris-agent enroll``, then ``osiris-agent once`` per cycle) enrolled against it, a
credential for the host added through the server's API (the sudo user ``osiris``: SSH key, sudo
with a sealed become password), runbooks drifted on the host for real, cycles until healed.

Then, on the server's side: the evidence of each drift (the scan's ``alert``), its heal (L1
``healed``, remediate + verify in the bundle) and the following compliant scan exists; the
export verifies offline (``osiris evidence verify --strict`` against the appliance's own
attestation); the host is compliant in the server's view (each drifted runbook's newest bundle);
no healed runbook ever escalated; and an escalation (an extra UID-0 account, detect only) opens
the host's drift incident (the server keeps one open ``drift_unresolved`` per host, whatever
runbook raised it), which stays closed once a person has removed the account and resolved it:
the next cycle finds the host compliant and opens nothing again for it.

One boot, one server, one agent for the module. Nothing is stood in: the host, sshd, sudo,
systemd, the server, its log and the verifier are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osiris_lab.debian_host import SUDO_USER, DebianHost
from tests.agent.fixtures_agent import Sntp
from tests.e2e.conftest import Central, Site, _env, free_port, seed_site

pytestmark = [pytest.mark.realhost, pytest.mark.timeout(240)]
HOST = "deb-e2e"
DRIFTS = {  # runbook → how the host is drifted (None: a fresh Debian 12 already is)
    "LIN-PERM-001": "chmod 0644 /etc/shadow",
    "LIN-PERM-002": None,
    "LIN-PERM-003": "chmod o+w /etc/issue.net",
    "LIN-SSH-003": None,
    "LIN-SVC-003": "systemctl disable --now rsyslog syslog.socket 2>/dev/null",
}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    tmp = tmp_path_factory.mktemp("e2e-srv")
    init = subprocess.run(
        [sys.executable, "-m", "osiris_server.cli", "init", "--data", str(tmp / "srv"), "--json"],
        env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr[-500:]
    c = Central(tmp / "srv", free_port(), json.loads(init.stdout)["admin_token"], tmp / "srv.log")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris_agent.cli", *args],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _osiris(c: Central, cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in _env().items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=c.url, OSIRIS_TOKEN=c.admin, OSIRIS_PROFILE_FILE="/nonexistent",
               XDG_CONFIG_HOME=str(cfg))  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "osiris_tui.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def _enroll(c: Central, site: Site, state: Path, ntp: Sntp) -> Path:
    """The real ``osiris-agent enroll``, then the config a lab appliance on this box needs: the
    loopback SNTP server (no network here) and a 5 s scan cadence (lab minimum)."""
    import tomllib

    from osiris_agent.config import AgentConfig, load_config, to_toml

    code = c.api("POST", "/provisions", {"site_id": site.id})["code"]
    r = _agent("enroll", "--server", c.url, "--claim-code", code, "--state", str(state), "--lab")
    assert r.returncode == 0, r.stderr
    cfg = state / "agent.toml" if (state / "agent.toml").exists() else None
    cfg = cfg or Path(r.stdout.strip().rsplit("config ", 1)[1])
    d = load_config(cfg).to_dict()
    extra = f'[ntp]\nservers = ["{ntp.server}"]\nmin_good = 1\n[agent]\nscan_interval_s = 5\n'
    for section, body in tomllib.loads(extra).items():
        d.setdefault(section, {}).update(body)
    cfg.write_text(to_toml(AgentConfig.from_dict(d)))
    return cfg


def _bundles(c: Central, site: Site) -> list[dict[str, Any]]:
    """The host's bundles as the server holds them (each from the log entry it serves)."""
    out = [e["envelope"]["bundle"] for e in c.evidence(site.id)]
    return sorted((b for b in out if b["host_id"] == HOST), key=lambda b: b["seq"])


def _newest(bundles: list[dict[str, Any]], rid: str) -> dict[str, Any]:
    mine = [b for b in bundles if b.get("runbook_id") == rid]
    assert mine, f"the server holds no evidence for {rid}"
    return mine[-1]


def test_an_enrolled_agent_heals_a_real_host_and_the_server_can_prove_it(
    central: Central, module_host: DebianHost, tmp_path: Path
) -> None:
    h, c = module_host, central
    site = seed_site(c)
    c.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": HOST, "kind": "ssh_key", "address": h.address, "port": h.port,
        "username": SUDO_USER, "private_key": h.client_key,
        "host_key_fingerprints": [h.host_fingerprint],
        "sudo": True, "become_password": h.sudo_password,
    })  # fmt: skip
    for cmd in [d for d in DRIFTS.values() if d] + ["useradd -o -u 0 -M -N toor"]:
        assert h.exec(cmd).returncode == 0, cmd
    ntp = Sntp()
    state = tmp_path / "agent"
    try:
        cfg = _enroll(c, site, state, ntp)
        t0 = time.monotonic()
        for i in range(6):  # cycles until every drift is healed and re-scanned compliant
            r = _agent("once", "--config", str(cfg))
            assert r.returncode == 0, (i, r.stdout, r.stderr[-800:])
            ev = _bundles(c, site)
            if i and all(_newest_or_none(ev, rid) in ("compliant", "healed") for rid in DRIFTS):
                break
            time.sleep(5)  # the lab scan cadence
        print(f"healed in {i + 1} cycles, {time.monotonic() - t0:.1f} s")
        # the host itself, seen through its own eyes
        assert h.exec("stat -c %a /etc/shadow").stdout.strip() == "640"
        assert h.exec("stat -c %a /etc/ssh/sshd_config").stdout.strip() == "600"
        assert h.exec("stat -c %a /etc/issue.net").stdout.strip() == "644"
        assert "maxauthtries 3" in h.exec("sshd -T").stdout
        assert h.exec("systemctl is-active rsyslog").stdout.strip() == "active"
        assert h.sudo_password not in c.log_path.read_text()  # never in the server's log

        ev = _bundles(c, site)
        for rid in DRIFTS:
            outcomes = [b["outcome"] for b in ev if b.get("runbook_id") == rid]
            assert "alert" in outcomes and "healed" in outcomes, (rid, outcomes)  # drift, heal
            assert outcomes.index("alert") < outcomes.index("healed"), (rid, outcomes)

        # no healed runbook ever went to a person; the extra UID-0 account (detect only) did
        assert not [b for b in ev if b["runbook_id"] in DRIFTS and b["outcome"] == "escalated"]
        assert _newest(ev, "LIN-ACCT-001")["outcome"] == "escalated"
        open_ = c.api("GET", f"/incidents?site={site.id}&status=open")["incidents"]
        mine = [i for i in open_ if i["host_id"] == HOST]
        assert "drift_unresolved" in {i["kind"] for i in mine}, open_
        # the person removes the account and closes the host's incidents; the next cycle sees
        # the host compliant and opens none again for what was healed or fixed
        assert h.exec("userdel -f toor").returncode == 0  # uid 0: "used by process 1"
        for inc in mine:
            c.api("POST", f"/incidents/{inc['id']}/resolve", {"note": "account removed"})
        time.sleep(5)
        r = _agent("once", "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-800:]
        assert _newest(_bundles(c, site), "LIN-ACCT-001")["outcome"] == "compliant"
        for rid in DRIFTS:
            assert _newest(_bundles(c, site), rid)["outcome"] in ("compliant", "healed"), rid
        still = c.api("GET", f"/incidents?site={site.id}&status=open")["incidents"]
        assert not [i for i in still if _names(i) & (set(DRIFTS) | {"LIN-ACCT-001"})], still
        assert all(c.api("GET", f"/incidents/{i['id']}")["status"] == "resolved" for i in mine)

        # offline: the export verifies strictly against the appliance's own attestation
        att = tmp_path / "att.json"
        r = _agent("attest", "--state", str(state), "--out", str(att))
        assert r.returncode == 0, r.stderr
        ui = tmp_path / "ui"
        r = _osiris(c, ui, "evidence", "pull", "--site", site.id, "--out", str(tmp_path / "ex"))
        assert r.returncode == 0, r.stderr
        r = _osiris(c, ui, "evidence", "verify", "--strict", "--trust", str(att),
                    str(tmp_path / "ex"))  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        lines = (tmp_path / "ex" / "bundles.jsonl").read_text().splitlines()
        heals = [json.loads(x)["bundle"] for x in lines]
        heals = [b for b in heals if b["outcome"] == "healed" and b["host_id"] == HOST]
        assert {b["runbook_id"] for b in heals} >= set(DRIFTS)
        for b in heals:
            got = [p["phase"] for p in b["post_state"]["phases"]]
            assert got == ["remediate", "verify"], (b["runbook_id"], got)
            assert b["pre_state"]["status"] == "drift" and b["post_state"]["status"] == "compliant"
        # the verifier can fail: one changed byte in a bundle and --strict says so
        bad = tmp_path / "ex" / "bundles.jsonl"
        bad.write_text(bad.read_text().replace('"healed"', '"Healed"', 1))
        r = _osiris(c, ui, "evidence", "verify", "--strict", "--trust", str(att),
                    str(tmp_path / "ex"))  # fmt: skip
        assert r.returncode != 0, r.stdout
    finally:
        ntp.close()


def _newest_or_none(bundles: list[dict[str, Any]], rid: str) -> str | None:
    mine = [b for b in bundles if b.get("runbook_id") == rid]
    return mine[-1]["outcome"] if mine else None


def _names(incident: dict[str, Any]) -> set[str]:
    """The runbook ids an incident is about (its kind and details name them)."""
    text = json.dumps(incident)
    return {rid for rid in (*DRIFTS, "LIN-ACCT-001") if rid in text}
