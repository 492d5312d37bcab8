"""Linux over a real sshd (the lab sandbox) healed end to end; and no credential ever leaks into
the state dir, the agent's logs, the evidence or the server's log output."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from osiris_lab.linux import LabSshd, LinuxSandbox
from tests.e2e.conftest import (
    WIN_PASSWORD,
    add_winrm,
    bundles,
    enroll_agent,
    seed_site,
)


@pytest.fixture()
def lin(tmp_path) -> Iterator[tuple[LinuxSandbox, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed")
    box = LinuxSandbox(tmp_path / "root").build()
    with LabSshd(tmp_path / "sshd", box) as sshd:
        yield box, sshd


def _add_ssh(central, site, sshd: LabSshd, pin: bool = True) -> None:
    central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": "lin-1", "kind": "ssh_key", "address": "127.0.0.1", "port": sshd.port,
        "username": sshd.user, "private_key": sshd.client_key,
        "host_key_fingerprints": [sshd.host_fingerprint] if pin else [],
    })  # fmt: skip


def test_linux_ssh_drift_healed_over_real_sshd(central, lin, tmp_path) -> None:
    """One cycle: the unpinned host key is accepted on first use (as evidence), the drifted
    sshd_config is detected, healed by L1 and verified — the sandbox file really changed."""
    box, sshd = lin
    site = seed_site(central)
    _add_ssh(central, site, sshd, pin=False)
    box.drift("root_login")
    assert "PermitRootLogin yes" in box.p("etc/ssh/sshd_config").read_text()
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        r = a.cycle()
        assert r.reachable and a.outbox.depth() == 0, r.errors
        tofu = [b for b in bundles(a) if "first use" in (b["action_taken"] or "")]
        assert len(tofu) == 1 and sshd.host_fingerprint in tofu[0]["action_taken"]
        assert tofu[0]["outcome"] == "alert" and tofu[0]["check"] == "linux_ssh"
        assert a._tofu_pins["lin-1"] == sshd.host_fingerprint
        acts = [b for b in bundles(a) if b["runbook_id"] == "LIN-SSH-001" and b["tier"] == "L1"]
        assert [b["outcome"] for b in acts] == ["healed"], [b["action_taken"] for b in acts]
        assert acts[0]["check"] == "linux_ssh" and acts[0]["host_id"] == "lin-1"
        assert acts[0]["pre_state"]["status"] == "drift"
        assert acts[0]["pre_state"]["observed"]["permit_root_login"] == "yes"
        assert acts[0]["post_state"]["status"] == "compliant"
        assert acts[0]["rollback_available"] is True
        text = box.p("etc/ssh/sshd_config").read_text()
        assert "PermitRootLogin yes" not in text and "PermitRootLogin no" in text
        # Runbooks that were compliant were not touched.
        assert not [b for b in bundles(a) if b["outcome"] == "healed"
                    and b["runbook_id"] != "LIN-SSH-001"]  # fmt: skip
    finally:
        a.close()


def test_secrets_never_leak(central, win, lin, tmp_path, caplog, capfd) -> None:
    host, server = win
    box, sshd = lin
    key_marker = sshd.client_key.strip().splitlines()[1]  # a line of the private key body
    site = seed_site(central)
    add_winrm(central, site, server)
    _add_ssh(central, site, sshd)
    caplog.set_level(logging.DEBUG)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        host.inject("firewall_off")
        box.drift("root_login")
        server.faults.fail_next(1)  # a transport error on the way, with its message logged
        a.cycle()
        assert any(b["outcome"] == "healed" for b in bundles(a))
        assert a.targets and any(t.password == WIN_PASSWORD for t in a.targets)
        local_evidence = repr(a.outbox.envelopes()).encode()
        server_evidence = repr(central.evidence(site.id)).encode()
    finally:
        a.close()
    central.stop()  # flush the server's log output
    out, err = capfd.readouterr()
    places = {
        "agent logs": (caplog.text + out + err).encode(),
        "server log": central.log_path.read_bytes(),
        "local evidence": local_evidence,
        "server evidence": server_evidence,
    }
    for p in (tmp_path / "state").rglob("*"):
        if p.is_file():
            places[str(p)] = p.read_bytes()
    for where, blob in places.items():
        for secret in (WIN_PASSWORD, key_marker):
            assert secret.encode() not in blob, f"credential found in {where}"
    central.start()
