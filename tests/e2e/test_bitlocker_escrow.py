"""BitLocker is never enabled without an escrowed recovery key (RB-WIN-ENCRYPTION-001, issue 15
item 3): real osiris-server over loopback, real agent cycle, real pywinrm to the lab WS-Man
host, whose BitLocker model (osiris_lab/bitlocker.py) refuses to enable a volume whose recovery
password went nowhere.

* workgroup host: the script seals the new password to the agent's one-run key, the agent hands
  it to the server's vault, and only after the server's answer does the second step enable;
  the evidence says where it went, the admin reveal gives the very password the disk holds, and
  no file of the server or the agent (nor the server's log) holds it;
* the server refusing the escrow: the protector is removed again, nothing is encrypted, L3;
* domain-joined host: backed up to AD DS by the script itself, the server holds nothing;
  a DC that refuses the backup: nothing is encrypted, L3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from osiris_agent.escrow_upload import ServerEscrow
from tests.e2e.conftest import ALL_DAYS, add_winrm, bundles, enroll_agent, seed_site

RB = "RB-WIN-ENCRYPTION-001"
ALWAYS = {"days": ALL_DAYS, "start": "00:00", "duration_min": 1440, "timezone": "UTC"}


def _acts(agent) -> list[dict]:
    return [b for b in bundles(agent) if b["runbook_id"] == RB and b["tier"] != "monitor"]


def _volume(host) -> dict:
    return host.state["bitlocker"]["C:"]


def _osiris(central, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=central.url, OSIRIS_TOKEN=token or central.admin,
               OSIRIS_PROFILE_FILE="/nonexistent")  # fmt: skip
    return subprocess.run([sys.executable, "-m", "osiris_tui.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip


def _files_hold(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_workgroup_host_escrows_in_the_vault_before_encryption(central, win, tmp_path) -> None:
    host, server = win
    host.inject("workgroup")
    host.inject("bitlocker_off")
    site = seed_site(central, ALWAYS)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        r = a.cycle()
        assert r.reachable, r.errors
        healed = [b for b in _acts(a) if b["outcome"] == "healed"]
        assert len(healed) == 1, [(b["outcome"], b["action_taken"]) for b in _acts(a)]
        v = _volume(host)
        assert v["volume_status"] == "EncryptionInProgress" and "Tpm" in v["protectors"]
        ((pid, password),) = v["recovery"].items()
        where = v["escrow"][pid]
        assert where.startswith("osiris_vault:")
        ref = where.split(":", 1)[1]
        # the script ran twice: protect (sealed out, nothing enabled), then enable
        assert [p for r_, p in host.phases_run() if r_ == RB].count("remediate") == 2
        phases = healed[0]["post_state"]["phases"]
        assert [p["phase"] for p in phases] == ["protect", "remediate", "verify"]
        assert phases[1]["escrow"] == {"escrow": "osiris_vault", "protector_id": pid,
                                       "escrow_ref": ref}  # fmt: skip
        assert "sealed" not in str(healed[0]) and "escrow_pending" not in str(healed[0])
        # the server has it under that reference; only the admin reveal gives it back
        (row,) = central.api("GET", f"/sites/{site.id}/escrow")["escrow"]
        assert (row["id"], row["host_id"], row["protector_id"]) == (ref, "dc01", pid)
        assert row["appliance_id"] == a.appliance_id and "secret" not in row
        shown = central.api("POST", f"/sites/{site.id}/escrow/{ref}/reveal", {})
        assert shown["secret"] == password
        # the same through the operator CLI: list never shows it, reveal does (admin, --yes)
        listed = _osiris(central, "escrow", "list", "--site", site.id, "--json")
        assert listed.returncode == 0 and password not in listed.stdout
        assert [r["id"] for r in json.loads(listed.stdout)] == [ref]
        op = central.api("POST", "/tokens", {"role": "operator", "name": "op"})["token"]
        refused = _osiris(central, "escrow", "reveal", "--site", site.id, ref, "--yes", token=op)
        assert refused.returncode == 4 and password not in refused.stdout + refused.stderr
        revealed = _osiris(central, "escrow", "reveal", "--site", site.id, ref, "--yes")
        assert revealed.returncode == 0 and json.loads(revealed.stdout)["secret"] == password
        # next cycle: compliant, nothing escrowed twice
        a.cycle()
        assert len(central.api("GET", f"/sites/{site.id}/escrow")["escrow"]) == 1
    finally:
        a.close()
    central.stop()  # every file flushed and closed
    needle = password.encode()
    assert _files_hold(central.data, needle) == []  # index, log, WAL, keys: only ciphertext
    assert needle not in central.log_path.read_bytes()
    assert _files_hold(tmp_path / "state", needle) == []  # the agent's evidence and state


def test_server_refusing_the_escrow_enables_nothing_and_goes_to_l3(central, win, tmp_path):
    host, server = win
    host.inject("workgroup")
    host.inject("bitlocker_off")
    site = seed_site(central, ALWAYS)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        # the real server, asked under another appliance's id: 403, as a hostile or confused
        # appliance would be answered
        other = SimpleNamespace(client=a.client, appliance_id="app_" + "0" * 26)
        a.engine.executor.escrow = ServerEscrow(other)  # type: ignore[arg-type]
        r = a.cycle()
        assert r.reachable, r.errors
        v = _volume(host)
        assert v["volume_status"] == "FullyDecrypted" and v["protection_status"] == "Off"
        assert v["recovery"] == {} and "RecoveryPassword" not in v["protectors"]  # discarded
        outcomes = [(b["tier"], b["outcome"]) for b in _acts(a)]
        assert ("L1", "failed") in outcomes and ("L3", "escalated") in outcomes, outcomes
        failed = next(b for b in _acts(a) if b["outcome"] == "failed")
        assert "escrow of the recovery key failed" in failed["action_taken"]
        # a refused remediate is re-checked (nothing changed), never rolled back
        assert [p["phase"] for p in failed["post_state"]["phases"]] == [
            "protect", "discard", "remediate", "recheck",
        ]  # fmt: skip
        assert "nothing was changed (re-checked)" in failed["action_taken"]
        assert central.api("GET", f"/sites/{site.id}/escrow")["escrow"] == []
    finally:
        a.close()


def test_domain_joined_host_backs_up_to_ad_ds_and_a_refused_backup_enables_nothing(
    central, win, tmp_path
) -> None:
    host, server = win
    host.inject("bitlocker_off")  # the lab's default host is a domain controller
    site = seed_site(central, ALWAYS)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        healed = [b for b in _acts(a) if b["outcome"] == "healed"]
        assert len(healed) == 1, [(b["outcome"], b["action_taken"]) for b in _acts(a)]
        ((pid, _),) = _volume(host)["recovery"].items()
        assert _volume(host)["escrow"] == {pid: "ad_ds"}
        rem = healed[0]["post_state"]["phases"][0]
        assert rem["escrow"]["escrow"] == "ad_ds" and rem["escrow"]["protector_id"] == pid
        assert central.api("GET", f"/sites/{site.id}/escrow")["escrow"] == []  # AD DS holds it

        # a second host state: the DC refuses the backup -> the script throws before enabling
        host.state["bitlocker"]["C:"] = {"volume_status": "FullyDecrypted",
                                         "protection_status": "Off", "encryption_method": "None",
                                         "protectors": []}  # fmt: skip
        host.inject("ad_backup_fails")
        a.engine.memory.close()  # a fresh memory: the L1 rule's cooldown starts again
        a.engine.memory = type(a.engine.memory)(":memory:")
        a.cycle()
        v = _volume(host)
        assert v["volume_status"] == "FullyDecrypted" and v.get("escrow", {}) == {}
        failed = [b for b in _acts(a) if b["outcome"] == "failed"]
        assert failed and "0x8031006A" in failed[-1]["action_taken"]
    finally:
        a.close()
