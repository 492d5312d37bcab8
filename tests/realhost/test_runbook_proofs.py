"""Every Linux runbook of the catalogue, proven on a REAL Debian 12 host (systemd PID 1 under
systemd-nspawn), over the agent's own SSH transport, executor and healing engine.

For each case: drift the host for real (``DebianHost.exec``, the test's own view), detect →
drift, heal through the real engine, verify → compliant (the heal bundle's post state and a
fresh detect), the signed evidence checked (signatures + hash chain, ``kit.check_evidence``),
and the host itself looked at again (``after``: a shell test that must pass on the host). Where
a runbook has a rollback it is exercised too: a configuration tool on the host puts its own
value back right after the remediate (what happens on clinic hosts managed by something else),
verify fails, the rollback runs, and the executor's re-check must say ``reverted`` with the host
back in its pre-change state.

The cases come FROM THE CATALOGUE: a Linux runbook with neither a case here nor an entry in
``ELSEWHERE`` (naming the real-host test that proves it, and why it is there) fails
``test_every_linux_runbook_has_a_real_host_proof``.

What a container cannot give, each case says, and the runbook must then fail honestly (never
claim a heal): the kernel audit subsystem is not namespaced (``auditctl`` gets "Operation not
permitted", auditd cannot start) and this kernel has no AppArmor.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from osiris_agent.hosts.ssh import SshTransport
from osiris_lab.debian_host import DebianHost
from tests.realhost.kit import CAT, detect, heal, phases, run_order

pytestmark = pytest.mark.realhost
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One real-host proof. ``drift``: shell run on the host first (None: a fresh Debian 12 is
    already in drift). ``after``: shell that must exit 0 on the host once the runbook ran.
    ``outcome``/``tier``/``why``: what the first bundle must say when the honest answer is not
    a heal. ``order``: the baseline only escalates this runbook (disruptive, or it needs a
    window), so it is run as an operator's order in an open maintenance window.
    ``sudo``: log in as the sudo user ``osiris`` by key, sudo with its become password — the
    credential a clinic should give (root may then be refused logins: LIN-SSH-001)."""

    drift: str | None
    after: str
    outcome: str = "healed"
    tier: str = "L1"
    why: str = ""
    order: bool = False
    sudo: bool = True
    connect_first: bool = False  # open the agent's SSH connection before the drift


PROBE_DEB = r"""
set -e
mk() {
  rm -rf /tmp/pkg && mkdir -p /tmp/pkg/DEBIAN
  printf 'Package: osiris-probe\nVersion: %s\nArchitecture: all\n' "$1" >/tmp/pkg/DEBIAN/control
  printf 'Maintainer: lab <lab@example.invalid>\nDescription: Osiris lab probe\n' \
    >>/tmp/pkg/DEBIAN/control
  dpkg-deb -b /tmp/pkg "$2" >/dev/null
}
d=/srv/osiris-security
mkdir -p $d/pool
mk 1.0 /tmp/osiris-probe_1.0_all.deb && dpkg -i /tmp/osiris-probe_1.0_all.deb >/dev/null
mk 1.1 $d/pool/osiris-probe_1.1_all.deb
cd $d
f=pool/osiris-probe_1.1_all.deb
{
  dpkg-deb -f $f
  echo "Filename: $f"
  echo "Size: $(stat -c %s $f)"
  echo "SHA256: $(sha256sum $f | cut -d' ' -f1)"
} >Packages
{
  printf 'Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\n'
  printf 'Codename: bookworm-security\nDate: %s\nArchitectures: all amd64\n' "$(date -Ru)"
  printf 'SHA256:\n %s %s Packages\n' "$(sha256sum Packages | cut -d' ' -f1)" \
    "$(stat -c %s Packages)"
} >Release
# no network in the test: the host's only mirror is this local security archive
: >/etc/apt/sources.list
echo "deb [trusted=yes] file:$d ./" >/etc/apt/sources.list.d/osiris-security.list
apt-get update >/dev/null 2>&1
apt-get -s upgrade | grep -q '^Inst osiris-probe .*Debian-Security'
"""

TELNET_UNITS = r"""
set -e
printf '[Socket]\nListenStream=23\nAccept=yes\n[Install]\nWantedBy=sockets.target\n' \
  >/etc/systemd/system/telnet.socket
printf '[Service]\nExecStart=-/bin/cat\nStandardInput=socket\n' >/etc/systemd/system/telnet@.service
systemctl daemon-reload
systemctl enable --now telnet.socket
"""

AUDIT_WHY = "kernel audit subsystem is unavailable"

CASES: dict[str, list[Case]] = {
    "LIN-ACCT-001": [
        Case(
            "useradd -o -u 0 -M -N -s /usr/sbin/nologin toor",
            "getent passwd toor | grep -q '^toor:x:0:'",  # detect only: nothing is removed
            outcome="escalated",
            tier="L3",
            why="rule L1-LIN-ACCT-001 escalates",
        )
    ],
    "LIN-ACCT-002": [
        Case(
            None,  # Debian ships PASS_MAX_DAYS 99999
            "grep -qx 'PASS_MAX_DAYS 90' /etc/login.defs && useradd -m probe1 "
            "&& chage -l probe1 | grep -q 'Maximum number of days between password change.*: 90'",
        )
    ],
    "LIN-AUDIT-001": [
        Case(
            None,  # no Osiris rules; and auditd cannot run in a container
            "for w in /etc/passwd /etc/shadow /etc/group /etc/gshadow; do "
            'grep -qx -- "-w $w -p wa -k identity" /etc/audit/rules.d/osiris-identity.rules '
            '&& grep -qx -- "-w $w -p wa -k identity" /etc/audit/audit.rules || exit 1; done; '
            "augenrules --check | grep -q 'No change'",
            outcome="failed",
            why=AUDIT_WHY,
        )
    ],
    "LIN-AUDIT-002": [
        Case(
            None,
            "grep -qx -- '-w /var/log/auth.log -p wa -k authlog' "
            "/etc/audit/rules.d/osiris-authlog.rules "
            "&& grep -qx -- '-w /var/log/auth.log -p wa -k authlog' /etc/audit/audit.rules "
            "&& augenrules --check | grep -q 'No change'",
            outcome="failed",
            why=AUDIT_WHY,
        )
    ],
    "LIN-FW-001": [
        Case(
            None,  # Debian installs ufw inactive (ufw.service is active all the same: a oneshot)
            "ufw status | grep -qx 'Status: active' && ufw status | grep -q '^22/tcp .*ALLOW'",
        )
    ],
    "LIN-MAC-001": [
        Case(
            None,  # this kernel has no AppArmor: /sys/module/apparmor does not exist
            "! systemctl is-active --quiet apparmor && [ ! -e /sys/module/apparmor ]",
            outcome="failed",
            tier="order",
            why="the kernel has AppArmor off",
            order=True,
        )
    ],
    "LIN-PATCH-001": [
        Case(
            PROBE_DEB,
            "dpkg-query -W -f '${Version}' osiris-probe | grep -qx 1.1 "
            "&& ! apt-get -s upgrade | grep -q '^Inst' "  # installed by unattended-upgrade itself:
            "&& grep -q osiris-probe /var/log/unattended-upgrades/unattended-upgrades.log",
            tier="order",
            order=True,
        )
    ],
    "LIN-PERM-001": [Case("chmod 0644 /etc/shadow", "[ $(stat -c %a:%U /etc/shadow) = 640:root ]")],
    "LIN-PERM-002": [Case(None, "[ $(stat -c %a:%U /etc/ssh/sshd_config) = 600:root ]")],
    "LIN-PERM-003": [
        Case(
            "chmod o+w /etc/issue.net",
            "[ $(stat -c %a /etc/issue.net) = 644 ] "
            '&& [ -z "$(find /etc -xdev -type f -perm -0002)" ]',
        )
    ],
    "LIN-SSH-001": [
        Case(
            None,  # Debian: PermitRootLogin unset (prohibit-password); the agent logs in as osiris
            "sshd -T | grep -qx 'permitrootlogin no'",
        )
    ],
    "LIN-SSH-002": [Case(None, "sshd -T | grep -qx 'passwordauthentication no'")],
    "LIN-SSH-003": [Case(None, "sshd -T | grep -qx 'maxauthtries 3'")],
    "LIN-SVC-001": [
        Case(
            "systemctl stop ssh",  # KillMode=process: the agent's open session survives the stop
            "systemctl is-active --quiet ssh && systemctl is-enabled --quiet ssh",
            connect_first=True,
        )
    ],
    "LIN-SVC-002": [
        Case(
            None,  # auditd.service fails in a container: the kernel audit is not namespaced
            "systemctl is-enabled --quiet auditd",  # the unit was left as it was
            outcome="failed",
            why=AUDIT_WHY,
        )
    ],
    "LIN-SVC-003": [
        Case(
            "systemctl disable --now rsyslog syslog.socket 2>/dev/null",
            "systemctl is-active --quiet rsyslog && logger -t osiris-proof heal-ok && sleep 1 "
            "&& grep -q 'osiris-proof.*heal-ok' /var/log/syslog",
        )
    ],
    "LIN-SVC-004": [
        Case(
            TELNET_UNITS,
            "! systemctl is-active --quiet telnet.socket "
            "&& ! systemctl is-enabled --quiet telnet.socket",
        )
    ],
}

# Proven in another real-host test (path — why it is not a case here).
ELSEWHERE: dict[str, str] = {
    **{
        rid: "tests/realhost/test_linux_coverage.py — issue 15 item 6's new runbook, proven with "
        "its own real services (chrony against a test NTP server, ClamAV units, backup jobs)"
        for rid in ("LIN-AV-001", "LIN-BACKUP-001", "LIN-EDR-001", "LIN-LUKS-001", "LIN-TIME-001")
    },
}

# Rollback exercises: the configuration tool's command, run on the host right after remediate.
RETAKE: dict[str, tuple[str | None, str]] = {
    "LIN-ACCT-002": (None, "sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS 99999/' /etc/login.defs"),
    "LIN-PERM-001": ("chmod 0644 /etc/shadow", "chmod 0644 /etc/shadow"),
    "LIN-PERM-002": (None, "chmod 0644 /etc/ssh/sshd_config"),
    "LIN-SSH-001": (None, "sed -i '/^PermitRootLogin/d' /etc/ssh/sshd_config"),
    "LIN-SSH-002": (None, "sed -i '/^PasswordAuthentication/d' /etc/ssh/sshd_config"),
    "LIN-SSH-003": (None, "sed -i '/^MaxAuthTries/d' /etc/ssh/sshd_config"),
}
FILES = {  # what must be byte-for-byte as before once the rollback ran
    "LIN-ACCT-002": "/etc/login.defs",
    "LIN-PERM-001": "/etc/shadow",
    "LIN-PERM-002": "/etc/ssh/sshd_config",
    "LIN-SSH-001": "/etc/ssh/sshd_config",
    "LIN-SSH-002": "/etc/ssh/sshd_config",
    "LIN-SSH-003": "/etc/ssh/sshd_config",
}


def _linux() -> list[str]:
    return sorted(r.id for r in CAT.runbooks.values() if r.platform == "linux")


def _ok(host: DebianHost, cmd: str) -> None:
    r = host.exec(cmd)
    assert r.returncode == 0, f"{cmd!r} exited {r.returncode}: {(r.stdout + r.stderr)[-400:]}"


def _params() -> list[Any]:
    return [
        pytest.param(rid, i, c, id=f"{rid}-{i}") for rid, cs in CASES.items()
        for i, c in enumerate(cs)
    ]  # fmt: skip


def test_every_linux_runbook_has_a_real_host_proof() -> None:
    """A Linux runbook added to the catalogue without a real-host case fails here."""
    missing = [r for r in _linux() if r not in CASES and r not in ELSEWHERE]
    assert not missing, f"no real-host proof (add a Case or an ELSEWHERE entry): {missing}"
    assert not set(CASES) - set(_linux()), "a case for a runbook the catalogue no longer has"
    for rid, where in ELSEWHERE.items():
        path = HERE.parents[1] / where.split(" — ")[0]
        assert path.is_file() and rid in path.read_text(), (rid, where)
    with_rollback = [r for r in _linux() if "rollback" in CAT.runbook(r).phases]
    missing = [r for r in with_rollback if r not in RETAKE and r not in ELSEWHERE]
    assert not missing, f"a rollback never exercised on the real host: {missing}"


class _ConfigTool(SshTransport):
    """The agent's real transport; right after the remediate script ran, the host's own
    configuration tool (Puppet, a golden image's cron job…) puts its value back."""

    host: DebianHost
    rid: str
    retake: str

    def run_script(self, script: str, **kw: Any) -> Any:
        res = super().run_script(script, **kw)
        if f"{self.rid} remediate" in script:
            _ok(self.host, self.retake)
        return res


@pytest.mark.parametrize("rid", sorted(RETAKE))
def test_rollback_on_the_real_host_is_reverted_to_the_pre_state(
    module_host: DebianHost, rid: str
) -> None:
    """remediate → (the tool takes the change back) → verify drift → rollback → the executor's
    re-check: ``reverted`` only because the host is back in its pre-change state — the file is
    byte-for-byte what it was, and the failure goes to a person (L3). Runs before the heal
    cases, which start from the state it leaves (the pre-change one)."""
    h = module_host
    drift, retake = RETAKE[rid]
    if drift:
        _ok(h, drift)
    before = h.exec(f"sha256sum {FILES[rid]}; stat -c %a:%U {FILES[rid]}").stdout
    tr = _ConfigTool(h.target(sudo_user=True))
    tr.host, tr.rid, tr.retake = h, rid, retake
    try:
        f = detect(tr, rid)
        assert f.status == "drift", f
        sinks = heal(tr, f)
        first = sinks.bundles[0]
        print(rid, sinks.outcomes(), first["action_taken"])
        assert sinks.outcomes()[0] == ("reverted", "L1", rid), first["action_taken"]
        assert phases(first) == ["remediate", "verify", "rollback", "recheck"]
        assert first["rollback_available"] is True
        assert first["post_state"]["observed"] == first["pre_state"]["observed"]
        assert sinks.outcomes()[-1][:2] == ("escalated", "L3")
    finally:
        tr.close()
    assert h.exec(f"sha256sum {FILES[rid]}; stat -c %a:%U {FILES[rid]}").stdout == before
    assert not h.exec(f"ls {FILES[rid]}.osiris-bak-{rid} 2>/dev/null").stdout
    if rid.startswith("LIN-SSH"):
        assert h.exec("systemctl is-active ssh").stdout.strip() == "active"
        with socket.create_connection((h.address, 22), timeout=3) as s:
            assert s.recv(64).startswith(b"SSH-2.0-")


@pytest.mark.parametrize(("rid", "i", "case"), _params())
def test_runbook_on_the_real_host(module_host: DebianHost, rid: str, i: int, case: Case) -> None:
    h = module_host
    tr = SshTransport(h.target(sudo_user=case.sudo))
    try:
        if case.connect_first:
            assert tr.run_script("true").exit_code == 0
        if case.drift:
            _ok(h, case.drift)
        f = detect(tr, rid)
        assert f.status == "drift", f
        # evidence signed, chained, verified (kit.check_evidence)
        sinks = run_order(tr, rid) if case.order else heal(tr, f)
        first = sinks.bundles[0]
        print(rid, sinks.outcomes(), first["action_taken"])
        assert sinks.outcomes()[0] == (case.outcome, case.tier, rid), first["action_taken"]
        if first["pre_state"] is not None:
            assert first["pre_state"]["status"] == "drift"
        if case.outcome == "healed":
            assert first["post_state"]["status"] == "compliant"
            assert first["pre_state"]["observed"] != first["post_state"]["observed"]
            assert detect(tr, rid).status == "compliant"
            assert len(sinks.bundles) == 1 and not sinks.incidents
        else:  # never a claimed heal: the reason is in the evidence and a person is told
            assert case.why in first["action_taken"], first["action_taken"]
            if case.tier != "order":
                assert sinks.outcomes()[-1][:2] == ("escalated", "L3"), sinks.outcomes()
            assert detect(tr, rid).status != "compliant"
        _ok(h, case.after)
    finally:
        tr.close()
    if rid.startswith(("LIN-SSH", "LIN-FW")) or rid == "LIN-SVC-001":  # the agent still gets in
        assert h.banner().startswith("SSH-2.0-")
        fresh = SshTransport(h.target(sudo_user=case.sudo), connect_timeout=5)
        assert fresh.run_script("id -un").stdout.strip() == "root"
        fresh.close()


def test_a_journald_only_host_keeps_its_log_across_reboots(debian_host: DebianHost) -> None:
    """LIN-SVC-003 on Debian 12 as installed: no syslog daemon, the systemd journal is the
    system log. That is a legitimate configuration — compliant when journald runs with
    persistent storage; a journal made volatile (logs die at reboot) is drift, and the heal
    makes it persistent again without installing anything."""
    h = debian_host
    _ok(h, "dpkg --purge rsyslog >/dev/null && ! systemctl is-enabled rsyslog 2>/dev/null")
    tr = SshTransport(h.target(sudo_user=True))
    try:
        assert detect(tr, "LIN-SVC-003").status == "compliant"  # Debian's default journal
        _ok(h, "mkdir -p /etc/systemd/journald.conf.d && printf '[Journal]\\nStorage=volatile\\n'"
               " >/etc/systemd/journald.conf.d/50-volatile.conf"
               " && systemctl restart systemd-journald")  # fmt: skip
        f = detect(tr, "LIN-SVC-003")
        assert f.status == "drift" and f.observed["persistent"] is False, f
        assert f.observed["service"] == "systemd-journald"
        sinks = heal(tr, f)
        assert sinks.outcomes() == [("healed", "L1", "LIN-SVC-003")], sinks.bundles[0]
        assert detect(tr, "LIN-SVC-003").status == "compliant"
        # hostile: a drop-in applied after Osiris's turns the journal off again — the heal
        # cannot win against it, and must say so rather than claim it
        _ok(h, "printf '[Journal]\\nStorage=none\\n' >/etc/systemd/journald.conf.d/99-zz.conf"
               " && systemctl restart systemd-journald")  # fmt: skip
        f = detect(tr, "LIN-SVC-003")
        assert f.status == "drift" and f.observed["storage"] == "none", f
        sinks = heal(tr, f)
        assert [o for o, _, _ in sinks.outcomes()] == ["failed", "escalated"], sinks.outcomes()
        assert "verify drift" in sinks.bundles[0]["action_taken"], sinks.bundles[0]
        _ok(h, "rm /etc/systemd/journald.conf.d/99-zz.conf && systemctl restart systemd-journald")
    finally:
        tr.close()
    _ok(h, "grep -qx 'Storage=persistent' /etc/systemd/journald.conf.d/90-osiris-persistent.conf"
           " && logger -t osiris-proof persisted && sleep 1"
           " && journalctl -D /var/log/journal -t osiris-proof | grep -q persisted"
           " && ! dpkg -l rsyslog 2>/dev/null | grep -q '^ii'")  # fmt: skip
