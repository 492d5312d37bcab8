"""Linux runbooks on a REAL Debian 12 host (systemd PID 1 in systemd-nspawn), over real SSH.

No ``OSIRIS_ROOT`` sandbox and no stand-in ``systemctl``: the agent's own ``SshTransport`` and
``Executor``/``HealingEngine`` run the catalogue scripts' production branches (real
``systemctl``, ``sshd -t`` + ``systemctl reload ssh``, ``ufw``, ``augenrules``). Each test drifts
the host through ``DebianHost.exec`` (the test's own view, not the agent's), detects, heals,
re-detects and checks the evidence, and looks at the host again through ``exec``.

The per-runbook proofs of every Linux runbook (drift, heal, verify, evidence, rollback) are in
``test_runbook_proofs.py``; this module keeps the cases that need a host of their own (sshd
rejecting a config, a reload keeping sshd's PID, the firewall and root-login lock-outs).
Not namespaced, so not testable here: the kernel audit subsystem (``auditd.service`` fails in
the container and ``auditctl`` gets "Operation not permitted") and the clock.
"""

from __future__ import annotations

import pytest

from osiris_agent.hosts.ssh import SshTransport
from osiris_lab.debian_host import DebianHost
from tests.realhost.kit import Sinks, phases
from tests.realhost.kit import detect as _detect
from tests.realhost.kit import heal as _heal

pytestmark = pytest.mark.realhost
__all__ = ["Sinks", "_detect", "_heal", "_healed"]


def _healed(host: DebianHost, rid: str, drift_cmd: str | None) -> tuple[SshTransport, Sinks]:
    """Drift (if given), detect → drift, heal → healed L1, re-detect → compliant."""
    if drift_cmd:
        r = host.exec(drift_cmd)
        assert r.returncode == 0, r.stderr
    tr = SshTransport(host.target())
    f = _detect(tr, rid)
    assert f.status == "drift", f
    sinks = _heal(tr, f)
    assert sinks.outcomes() == [("healed", "L1", rid)], sinks.bundles[-1]["action_taken"]
    b = sinks.bundles[0]
    assert b["pre_state"]["status"] == "drift" and b["post_state"]["status"] == "compliant"
    assert b["pre_state"]["observed"] != b["post_state"]["observed"]
    assert _detect(tr, rid).status == "compliant"
    return tr, sinks


def test_the_host_is_real(debian_host: DebianHost) -> None:
    """The suite's premise: systemd is PID 1, real OpenSSH answers on the veth, no sandbox."""
    h = debian_host
    assert h.banner().startswith("SSH-2.0-OpenSSH_9.2p1 Debian")
    assert h.exec("cat /proc/1/comm").stdout.strip() == "systemd"
    tr = SshTransport(h.target())
    r = tr.run_script('echo "${OSIRIS_ROOT:-none}"; readlink -f "$(command -v systemctl)"')
    assert r.stdout.split() == ["none", "/usr/bin/systemctl"]
    tr.close()


def test_sudo_user_runs_runbooks_through_real_sudo(debian_host: DebianHost) -> None:
    """A non-root login with ``Target.sudo``: the password goes to sudo -S on stdin, and the
    detect script runs as root (it reads /etc/shadow's mode and owner)."""
    tr = SshTransport(debian_host.target(sudo_user=True))
    assert tr.run_script("id -un").stdout.strip() == "root"
    f = _detect(tr, "LIN-PERM-001")
    assert f.status == "compliant" and f.observed == {"mode": "640", "owner": "root"}
    assert all(debian_host.sudo_password not in c for c in tr.commands_sent)


def test_max_auth_tries_goes_through_sshd_t_and_a_real_reload(debian_host: DebianHost) -> None:
    """Debian's default (unset = 6) is drift; the remediate validates with the real ``sshd -t``
    and reloads the real ssh.service; the running sshd's effective config (``sshd -T``) shows it,
    and a NEW SSH connection still gets in."""
    h = debian_host
    pid_before = h.exec("systemctl show -p MainPID --value ssh").stdout.strip()
    _healed(h, "LIN-SSH-003", None)
    assert "maxauthtries 3" in h.exec("sshd -T").stdout
    assert h.exec("systemctl is-active ssh").stdout.strip() == "active"
    assert h.exec("systemctl show -p MainPID --value ssh").stdout.strip() == pid_before  # reload
    fresh = SshTransport(h.target())
    assert fresh.run_script("true").exit_code == 0
    fresh.close()


def test_an_sshd_config_that_sshd_t_rejects_is_restored_not_reloaded(
    debian_host: DebianHost,
) -> None:
    """The production branch: a config the real ``sshd -t`` rejects (here a drop-in with an
    unknown keyword, already on the host) fails the remediate, the old file is put back, and
    sshd keeps running — the heal is never claimed."""
    h = debian_host
    assert h.exec("echo 'NoSuchKeyword yes' > /etc/ssh/sshd_config.d/10-bad.conf").returncode == 0
    before = h.exec("sha256sum /etc/ssh/sshd_config").stdout
    tr = SshTransport(h.target())
    f = _detect(tr, "LIN-SSH-003")
    assert f.status == "drift"
    sinks = _heal(tr, f)
    print(f.runbook_id, sinks.outcomes(), sinks.bundles[0]["action_taken"])
    assert sinks.outcomes()[0][0] != "healed", sinks.bundles[0]
    assert "sshd -t rejected" in sinks.bundles[0]["action_taken"]
    # the remediate put the old file back itself; the rollback finds nothing to restore and the
    # executor's re-check sees the pre-change state: reverted, and a person is told
    assert sinks.outcomes()[0] == ("reverted", "L1", "LIN-SSH-003"), sinks.bundles[0]
    assert phases(sinks.bundles[0]) == ["remediate", "rollback", "recheck"]
    assert sinks.outcomes()[-1][:2] == ("escalated", "L3")
    assert h.exec("sha256sum /etc/ssh/sshd_config").stdout == before
    assert h.exec("systemctl is-active ssh").stdout.strip() == "active"


def test_permit_root_login_heal_keeps_the_agent_in(debian_host: DebianHost) -> None:
    """Issue 15 item 2 (was a strict xfail: the heal locked the root-logged-in agent out). As
    root, LIN-SSH-001 refuses PermitRootLogin no — nothing changes, a person is told (L3) — and a
    NEW root connection still gets in; as the sudo user the same rule heals, and the sudo user
    still gets in. (tests/realhost/test_lockout.py runs every default L1 rule both ways.)"""
    h = debian_host
    tr = SshTransport(h.target())
    sinks = _heal(tr, _detect(tr, "LIN-SSH-001"))
    print("LIN-SSH-001", sinks.outcomes(), sinks.bundles[0]["action_taken"])
    assert sinks.outcomes()[0][0] in ("failed", "reverted"), sinks.bundles[0]
    assert "refused: the agent logs in as root" in sinks.bundles[0]["action_taken"]
    assert sinks.outcomes()[-1][:2] == ("escalated", "L3")
    assert "permitrootlogin no" not in h.exec("sshd -T").stdout.splitlines()
    fresh = SshTransport(h.target(), connect_timeout=5)
    assert fresh.run_script("true").exit_code == 0
    fresh.close()
    tr.close()
    tr = SshTransport(h.target(sudo_user=True))
    sinks = _heal(tr, _detect(tr, "LIN-SSH-001"))
    assert sinks.outcomes() == [("healed", "L1", "LIN-SSH-001")], sinks.bundles[0]
    assert "permitrootlogin no" in h.exec("sshd -T").stdout.splitlines()
    fresh = SshTransport(h.target(sudo_user=True), connect_timeout=5)
    assert fresh.run_script("id -u").stdout.strip() == "0"
    fresh.close()


def test_fw_detect_calls_an_inactive_ufw_drift(debian_host: DebianHost) -> None:
    """``ufw.service`` is a oneshot that is active after boot even when ufw.conf says
    ENABLED=no. LIN-FW-001's detect called that compliant (the firewall off); it now asks ufw
    itself (issue 15 item 2; deliberate change of this test's expectation: drift)."""
    h = debian_host
    assert "Status: inactive" in h.exec("ufw status").stdout
    assert h.exec("systemctl is-active ufw").stdout.strip() == "active"  # the trap
    f = _detect(SshTransport(h.target()), "LIN-FW-001")
    assert f.status == "drift"
    assert f.observed == {"service": "ufw", "active": False, "installed": True}


def test_fw_heal_keeps_the_agents_ssh(debian_host: DebianHost) -> None:
    """On the real host LIN-FW-001's remediate (``ufw default deny incoming``, ``allow 22/tcp``,
    ``ufw --force enable``) keeps port 22: the heal is claimed and a NEW SSH connection from the
    network still gets in (the lock-out in limits.md §8 was a bare ``ufw --force enable``)."""
    h = debian_host
    assert h.exec("systemctl stop ufw").returncode == 0
    tr = SshTransport(h.target())
    f = _detect(tr, "LIN-FW-001")
    assert f.status == "drift"
    sinks = _heal(tr, f)
    print("LIN-FW-001", sinks.outcomes(), sinks.bundles[0]["action_taken"])
    assert sinks.outcomes() == [("healed", "L1", "LIN-FW-001")]
    assert "Status: active" in h.exec("ufw status").stdout
    fresh = SshTransport(h.target(), connect_timeout=5)
    assert fresh.run_script("true").exit_code == 0
    fresh.close()


def test_fw_heal_keeps_the_ports_the_host_listens_on(debian_host: DebianHost) -> None:
    """Issue 15 item 2 (was a strict xfail: ufw denied every port but 22): with no allowed_ports
    in the policy, LIN-FW-001 allows every port the host listens on before enabling ufw."""
    h = debian_host
    # a second real listener on the host: another sshd on 2222 stands in for the clinic's service
    assert h.exec("/usr/sbin/sshd -p 2222").returncode == 0
    assert h.wait_banner(port=2222).startswith("SSH-2.0-")
    assert h.exec("systemctl stop ufw").returncode == 0
    tr = SshTransport(h.target())
    _heal(tr, _detect(tr, "LIN-FW-001"))
    assert h.banner(port=2222, timeout=3).startswith("SSH-2.0-")
    assert "Status: active" in h.exec("ufw status").stdout
