"""The healer never locks itself out (issue 15 item 2), on a REAL Debian 12 host over real SSH.

Every default-enabled L1 rule that runs a Linux runbook (``rules/baseline.toml``) is run
through the agent's real ``HealingEngine``/``Executor``/``SshTransport`` on a host drifted the way
a clinic's server is (root may log in with a password, password logins on, ufw off, a second
service listening), once with the credential a clinic often hands over first — root with a
password — and once with the one the runbooks heal towards — a named sudo user with a key and a
become password. Afterwards a NEW connection with the SAME credential still gets in, and the
host's other listener is still reachable from the network (the veth), as the clinic's NAS or PBX
must be. Where keeping the agent's login means not applying a hardening (PermitRootLogin no while
it logs in as root, PasswordAuthentication no while it logs in by password), the runbook refuses,
changes nothing and the engine escalates to a person (L3) with the reason in evidence.

LIN-SSH-001, LIN-SSH-002, LIN-FW-001 are the runbooks whose guards this proves; the others run
too, so no default L1 rule's effect on the agent's path goes untested.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import Executor
from osiris_agent.hosts.base import AuthError, Target
from osiris_agent.hosts.ssh import SshTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.evidence import Chain
from osiris_lab.debian_host import DebianHost

pytestmark = pytest.mark.realhost
CAT = load_catalog()
OTHER_PORT = 2222  # a second real listener (another sshd) stands in for the clinic's service
ROOT_PASSWORD = "r00t-Pw-" + "lockout"
# How a clinic's host often is before Osiris: root and passwords may log in, shadow too open.
DRIFT = (
    "sed -i -E 's/^#?PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config"
    " && sed -i -E 's/^#?PasswordAuthentication.*/PasswordAuthentication yes/' /etc/ssh/sshd_config"
    f" && echo 'root:{ROOT_PASSWORD}' | chpasswd && chmod 0644 /etc/shadow"
    " && systemctl reload ssh"
    f" && /usr/sbin/sshd -p {OTHER_PORT}"
    # `systemctl reload ssh` returns once sshd got SIGHUP, before its re-exec listens again
    " && for i in $(seq 50); do ss -Hltn 'sport = :22' | grep -q . && break; sleep 0.1; done"
)


class Sinks:
    def __init__(self) -> None:
        self.chain = Chain("app-1")
        self.bundles: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        b = self.chain.next(site_id="site-1", **fields)  # validates the bundle
        self.bundles.append(b)
        return self.chain.advance(b)

    def raise_incident(self, **kw: Any) -> None:
        self.incidents.append(kw)


def l1_linux_runbooks() -> list[str]:
    """Every runbook a default L1 rule runs on Linux (escalate-only rules run nothing)."""
    out: list[str] = []
    for rule in CAT.rules:
        if rule.action != "run_runbook" or not rule.id.startswith("L1-") or not rule.runbook_id:
            continue
        rb = CAT.runbook(rule.runbook_id)
        if rb.platform == "linux" and rb.default_enabled and rb.id not in out:
            out.append(rb.id)
    return out


def _detect(tr: SshTransport, rid: str) -> Finding:
    pr = Executor(CAT, lambda h: tr).run_phase("deb-1", CAT.runbook(rid), "detect", None)
    return Finding(
        "deb-1", CAT.runbook(rid).check, rid, pr.status, pr.observed, pr.expected,
        canonical.utc_now(), pr.error,
    )  # fmt: skip


def _run_every_rule(target: Target, policy: Policy) -> dict[str, list[dict[str, Any]]]:
    """Detect and handle every L1 Linux runbook; the bundles each produced, by runbook."""
    tr = SshTransport(target)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        for rid in l1_linux_runbooks():
            f = _detect(tr, rid)
            sinks = Sinks()
            if f.status != "compliant":
                HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC)).handle(
                    f, policy
                )
            out[rid] = sinks.bundles
            print(rid, f.status, [(b["tier"], b["outcome"]) for b in sinks.bundles])
    finally:
        tr.close()
    return out


def _still_reaches(h: DebianHost, target: Target) -> None:
    fresh = SshTransport(target, connect_timeout=5)
    try:
        r = fresh.run_script("id -u")
        assert r.exit_code == 0 and r.stdout.strip() == "0", r.stderr
    finally:
        fresh.close()


def _root_password_target(h: DebianHost) -> Target:
    return Target(
        host_id="deb-1", kind="ssh", address=h.address, port=h.port, username="root",
        password=ROOT_PASSWORD, host_key_fingerprints=(h.host_fingerprint,),
    )  # fmt: skip


def _outcomes(bundles: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["tier"], b["outcome"]) for b in bundles]


def _refused(bundles: list[dict[str, Any]], words: str) -> None:
    """The L1 attempt was refused with ``words`` in its evidence, and a person was called."""
    assert bundles and bundles[0]["tier"] == "L1", bundles
    assert bundles[0]["outcome"] == "failed", bundles[0]  # a refusal is never "reverted"
    assert "refused" in bundles[0]["action_taken"] and words in bundles[0]["action_taken"]
    assert ("L3", "escalated") in _outcomes(bundles)


def test_root_with_a_password_is_never_locked_out(debian_host: DebianHost) -> None:
    h = debian_host
    r = h.exec(DRIFT)
    assert r.returncode == 0, r.stderr
    assert h.wait_banner(port=OTHER_PORT).startswith("SSH-2.0-")
    target = _root_password_target(h)
    _still_reaches(h, target)  # the premise: this credential gets in before the heal
    results = _run_every_rule(target, Policy.default(CAT))

    _refused(results["LIN-SSH-001"], "logs in as root")
    _refused(results["LIN-SSH-002"], "logs in by password")
    eff = h.exec("sshd -T").stdout  # neither refused change was made (SSH-003's may be)
    assert "permitrootlogin yes" in eff and "passwordauthentication yes" in eff
    assert ("L1", "healed") in _outcomes(results["LIN-FW-001"])
    assert ("L1", "healed") in _outcomes(results["LIN-PERM-001"])
    assert "Status: active" in h.exec("ufw status").stdout
    # afterwards: the same credential still gets in, and the other service still answers
    _still_reaches(h, target)
    assert h.banner(port=OTHER_PORT, timeout=3).startswith("SSH-2.0-")


def test_sudo_user_with_a_key_gets_the_hardening_and_keeps_its_way_in(
    debian_host: DebianHost,
) -> None:
    h = debian_host
    r = h.exec(DRIFT)
    assert r.returncode == 0, r.stderr
    assert h.wait_banner(port=OTHER_PORT).startswith("SSH-2.0-")
    target = h.target(sudo_user=True)
    _still_reaches(h, target)
    results = _run_every_rule(target, Policy.default(CAT))

    for rid in ("LIN-SSH-001", "LIN-SSH-002", "LIN-FW-001", "LIN-PERM-001"):
        assert ("L1", "healed") in _outcomes(results[rid]), (rid, results[rid])
    eff = h.exec("sshd -T").stdout
    assert "permitrootlogin no" in eff and "passwordauthentication no" in eff
    _still_reaches(h, target)
    assert h.banner(port=OTHER_PORT, timeout=3).startswith("SSH-2.0-")
    # the hardening is real: root with a password no longer gets in
    with pytest.raises(AuthError):
        SshTransport(_root_password_target(h), connect_timeout=5).run_script("true")


def test_a_policy_whose_ports_omit_ssh_still_keeps_the_agents_path(debian_host: DebianHost) -> None:
    """Hostile policy: allowed_ports names only 80/tcp. The site chose to close everything
    else — the second listener goes dark, as asked — but the agent's own SSH path is kept."""
    h = debian_host
    assert h.exec(f"/usr/sbin/sshd -p {OTHER_PORT}").returncode == 0
    assert h.wait_banner(port=OTHER_PORT).startswith("SSH-2.0-")
    target = h.target()
    tr = SshTransport(target)
    f = _detect(tr, "LIN-FW-001")
    assert f.status == "drift" and f.observed["active"] is False  # ufw installed, not enabled
    policy = Policy.default(CAT, params={"LIN-FW-001": {"allowed_ports": "80/tcp"}})
    sinks = Sinks()
    HealingEngine(CAT, lambda x: tr, sinks, sinks, lambda: datetime.now(UTC)).handle(f, policy)
    tr.close()
    assert _outcomes(sinks.bundles) == [("L1", "healed")], sinks.bundles[-1]["action_taken"]
    rem = [p for p in sinks.bundles[0]["post_state"]["phases"] if p["phase"] == "remediate"]
    assert "allowed the agent's path" in rem[0]["action"], rem
    _still_reaches(h, target)
    assert h.banner(port=OTHER_PORT, timeout=2) == ""  # closed, as the site's list says
    status = h.exec("ufw status").stdout
    assert "80/tcp" in status and f"22/tcp                     ALLOW       {h.host_side}" in status


def test_a_become_password_never_shows_in_any_process_and_a_wrong_one_is_e_auth(
    debian_host: DebianHost,
) -> None:
    """The sudo user's become password goes to sudo -S on stdin: a scan of every process's
    argv on the host while a runbook runs never shows it; a wrong one is E_AUTH, not a hang."""
    h = debian_host
    target = h.target(sudo_user=True)
    tr = SshTransport(target)
    scan = "id -u; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done"
    r = tr.run_script(scan)
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "0"
    assert "sudo -S" in r.stdout and h.sudo_password not in r.stdout
    assert all(h.sudo_password not in c for c in tr.commands_sent)
    tr.close()
    wrong = Target(**{**{k: getattr(target, k) for k in target.__dataclass_fields__},
                      "become_password": "not-the-sudo-password"})  # fmt: skip
    started = datetime.now(UTC)
    with pytest.raises(AuthError, match="sudo on deb-1 refused") as err:
        SshTransport(wrong).run_script("touch /root/should-not-exist")
    assert (datetime.now(UTC) - started).total_seconds() < 30 and err.value.code == "E_AUTH"
    assert h.exec("test -e /root/should-not-exist").returncode != 0


def test_a_match_block_that_would_shut_the_agent_out_is_caught_before_the_reload(
    debian_host: DebianHost,
) -> None:
    """The guard reads the configuration as sshd will for THIS connection (``sshd -T -C
    user=root,addr=<the agent's address>``), Match blocks included. Root logs in by key and the
    site asks for prohibit-password (which a key login passes), but a ``Match`` block for the
    agent's own address turns keys off: the change is refused before sshd is reloaded, the file
    is byte-for-byte as before, and a person is told (L3)."""
    h = debian_host
    tr = SshTransport(h.target())
    assert tr.run_script("true").exit_code == 0  # the agent's session is open first
    block = f"\\nMatch User root Address {h.host_side}\\n    PubkeyAuthentication no\\n"
    assert h.exec(f"printf '{block}' >> /etc/ssh/sshd_config && sshd -t").returncode == 0
    before = h.exec("sha256sum /etc/ssh/sshd_config").stdout
    policy = Policy.default(CAT, params={"LIN-SSH-001": {"value": "prohibit-password"}})
    pr = Executor(CAT, lambda x: tr).run_phase(
        "deb-1", CAT.runbook("LIN-SSH-001"), "detect", {"value": "prohibit-password"}
    )
    f = Finding("deb-1", "linux_ssh", "LIN-SSH-001", pr.status, pr.observed, pr.expected,
                canonical.utc_now(), pr.error)  # fmt: skip
    assert f.status == "drift", f
    sinks = Sinks()
    HealingEngine(CAT, lambda x: tr, sinks, sinks, lambda: datetime.now(UTC)).handle(f, policy)
    tr.close()
    print(_outcomes(sinks.bundles), sinks.bundles[0]["action_taken"])
    _refused(sinks.bundles, "PubkeyAuthentication no would refuse root")
    assert "sshd not reloaded" in sinks.bundles[0]["action_taken"]
    assert h.exec("sha256sum /etc/ssh/sshd_config").stdout == before
    assert not h.exec("ls /etc/ssh/ | grep osiris-bak").stdout  # nothing stale for a rollback
