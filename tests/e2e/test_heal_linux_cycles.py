"""Several agent cycles against a Linux target over a real sshd.

Regression for the demo's ``--linux`` report ("one SSH session is accepted and no second cycle
completes"): every cycle must re-scan the host over the *same* SSH connection (new channels,
each closed), heal drift injected between cycles, and get its evidence acknowledged by the real
server. The transport stages and runs each script in one exec, so a cycle of 17 Linux detects
stays a couple of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from osiris_lab.linux import LabSshd, LinuxSandbox
from tests.e2e.conftest import bundles, enroll_agent, seed_site


@pytest.fixture()
def lin(tmp_path) -> Iterator[tuple[LinuxSandbox, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed")
    box = LinuxSandbox(tmp_path / "root").build()
    with LabSshd(tmp_path / "sshd", box) as sshd:
        yield box, sshd


@pytest.mark.timeout(120)
def test_four_cycles_over_real_sshd(central, lin, tmp_path) -> None:
    box, sshd = lin
    site = seed_site(central)
    central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": "lin-1", "kind": "ssh_key", "address": "127.0.0.1", "port": sshd.port,
        "username": sshd.user, "private_key": sshd.client_key,
        "host_key_fingerprints": [sshd.host_fingerprint],
    })  # fmt: skip
    a = enroll_agent(central, site, tmp_path / "state")  # scans every cycle
    drifts = {1: ("root_login", "LIN-SSH-001"), 3: ("shadow_perms", None)}
    try:
        connection = None
        runs = 0
        for i in range(4):
            if i in drifts:
                box.drift(drifts[i][0])
            t0 = time.monotonic()
            r = a.cycle()
            took = time.monotonic() - t0
            assert r.reachable and not r.errors, (i, r.errors)
            assert a.outbox.depth() == 0, f"cycle {i}: evidence not acknowledged"
            tr = a._transports["lin-1"]
            sent = len(tr.commands_sent) - runs
            runs = len(tr.commands_sent)
            assert sent >= 17, f"cycle {i} ran only {sent} scripts over SSH"
            assert took < 30, f"cycle {i} took {took:.1f} s"
            t = tr._client.get_transport()
            connection = connection or t
            assert t is connection and t.is_active()  # one connection, reused
        healed = [b for b in bundles(a) if b["host_id"] == "lin-1" and b["outcome"] == "healed"]
        assert "LIN-SSH-001" in {b["runbook_id"] for b in healed}
        assert len(healed) >= 2, [b["runbook_id"] for b in healed]
        assert "PermitRootLogin no" in box.p("etc/ssh/sshd_config").read_text()
        assert box.mode("etc/shadow") & 0o004 == 0
        assert sshd_accepts(sshd) == 1  # sshd saw exactly one login for all four cycles
    finally:
        a.close()


def sshd_accepts(sshd: LabSshd) -> int:
    return (sshd.dir / "sshd.log").read_text().count("Accepted publickey")
