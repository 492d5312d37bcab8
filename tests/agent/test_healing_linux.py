"""Linux runbooks detect and remediate for real, over a real sshd, against a sandbox root.

The sshd is the lab one (``osiris_lab.linux.LabSshd``): the same OpenSSH recipe as the
transport tests' fixture, plus ``SetEnv OSIRIS_ROOT=<sandbox>`` and a PATH with the labelled
systemctl stand-in first — the catalogue reads ``OSIRIS_ROOT`` from the environment only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import Executor
from osiris_agent.hosts.ssh import SshTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.evidence import Chain
from osiris_lab.linux import LabSshd, LinuxSandbox

CAT = load_catalog()


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

    def outcomes(self) -> list[tuple[str, str, str | None]]:
        return [(b["outcome"], b["tier"], b["runbook_id"]) for b in self.bundles]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LinuxSandbox, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed: apt-get install -y openssh-server")
    d = tmp_path_factory.mktemp("linlab")
    sandbox = LinuxSandbox(d / "root").build()
    with LabSshd(d / "sshd", sandbox) as sshd:
        yield sandbox, sshd


@pytest.fixture()
def env(lab) -> Iterator[tuple[LinuxSandbox, SshTransport]]:
    sandbox, sshd = lab
    sandbox.build()  # a fresh, compliant sandbox per test
    tr = SshTransport(sshd.target())
    yield sandbox, tr
    tr.close()


def _detect(tr: SshTransport, rid: str, params: dict | None = None) -> Finding:
    ex = Executor(CAT, lambda h: tr)
    pr = ex.run_phase("lin-1", CAT.runbook(rid), "detect", params)
    return Finding(
        "lin-1", CAT.runbook(rid).check, rid, pr.status, pr.observed, pr.expected,
        canonical.utc_now(), pr.error,
    )  # fmt: skip


def _engine(tr: SshTransport, sinks: Sinks) -> HealingEngine:
    return HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC))


# runbook -> sandbox drift that breaks it
CASES = {
    "LIN-SSH-001": "root_login",
    "LIN-SSH-002": "password_auth",
    "LIN-SSH-003": "max_auth_tries",
    "LIN-PERM-001": "shadow_perms",
    "LIN-PERM-002": "sshd_config_perms",
    "LIN-PERM-003": "world_writable",
    "LIN-ACCT-002": "pass_max_days",
    "LIN-AUDIT-001": "audit_rules_gone",
    "LIN-AUDIT-002": "audit_rules_gone",
    "LIN-SVC-002": "service_stopped:auditd",
    "LIN-SVC-003": "service_stopped:rsyslog",
    "LIN-SVC-004": "telnet_on",
    "LIN-FW-001": "service_stopped:ufw",
}


def test_all_compliant_on_a_fresh_sandbox(env) -> None:
    sandbox, tr = env
    for rid in [*CASES, "LIN-ACCT-001", "LIN-SVC-001", "LIN-MAC-001"]:
        f = _detect(tr, rid)
        assert f.status == "compliant", (rid, f)


@pytest.mark.parametrize("rid", sorted(CASES))
def test_drift_is_healed_over_ssh(env, rid: str) -> None:
    sandbox, tr = env
    sandbox.drift(CASES[rid])
    finding = _detect(tr, rid)
    assert finding.status == "drift", finding
    sinks = Sinks()
    _engine(tr, sinks).handle(finding, Policy.default(CAT))
    assert sinks.outcomes() == [("healed", "L1", rid)], sinks.bundles[-1]["action_taken"]
    b = sinks.bundles[0]
    assert b["pre_state"]["status"] == "drift" and b["post_state"]["status"] == "compliant"
    assert b["pre_state"]["observed"] != b["post_state"]["observed"]


def test_sshd_config_really_changes_and_reload_goes_to_the_standin(env) -> None:
    sandbox, tr = env
    sandbox.drift("root_login_dropin")
    f = _detect(tr, "LIN-SSH-001")
    assert f.observed == {"permit_root_login": "yes"}
    sinks = Sinks()
    _engine(tr, sinks).handle(f, Policy.default(CAT))
    assert sinks.outcomes() == [("healed", "L1", "LIN-SSH-001")]
    dropin = sandbox.p("etc/ssh/sshd_config.d/50-cloud.conf").read_text()
    assert "PermitRootLogin no" in dropin
    assert "reload ssh" in sandbox.systemctl_calls()
    assert os.stat(sandbox.p("etc/shadow")).st_mode & 0o777 == 0o640


def test_failing_verify_rolls_back_and_is_reverted(env) -> None:
    sandbox, tr = env
    sandbox.drift("shadow_perms")  # 0644
    finding = _detect(tr, "LIN-PERM-001")
    # a site parameter that sets a (tighter) mode the check does not accept: verify fails
    policy = Policy.default(
        CAT, params={"LIN-PERM-001": {"target_mode": "400", "allowed_modes": "640"}}
    )
    sinks = Sinks()
    _engine(tr, sinks).handle(finding, policy)
    assert sinks.outcomes()[0] == ("reverted", "L1", "LIN-PERM-001")
    b = sinks.bundles[0]
    assert b["rollback_available"] is True
    # issue 15 item 5: after the rollback, detect runs again ("recheck") and `reverted` is said
    # only because the host is back in its pre-change state; post_state is that re-check
    phases = [p["phase"] for p in b["post_state"]["phases"]]
    assert phases == ["remediate", "verify", "rollback", "recheck"]
    assert b["post_state"]["observed"] == b["pre_state"]["observed"]
    assert sandbox.mode("etc/shadow") == 0o644  # put back as it was
    assert sinks.outcomes()[1] == ("escalated", "L3", "LIN-PERM-001")


class _Meddler(SshTransport):
    """The real transport to the real sshd; right after the rollback script ran, something
    else on the host (a config tool, a person) sets /etc/shadow to a third mode — so the
    rollback's "mode restored" is not what the host shows."""

    sandbox: LinuxSandbox

    def run_script(self, script: str, **kw: Any) -> Any:
        res = super().run_script(script, **kw)
        if "LIN-PERM-001 rollback" in script:
            os.chmod(self.sandbox.p("etc/shadow"), 0o600)
        return res


def test_a_rollback_that_does_not_restore_the_state_is_failed_not_reverted(lab) -> None:
    """Issue 15 item 5: a rollback exiting 0 proves nothing. The re-check sees a state that is
    neither the pre-change one nor compliant: the outcome is `failed` (never `reverted`), the
    evidence shows the re-check, and the failure goes up to a person (L3)."""
    sandbox, sshd = lab
    sandbox.build()
    sandbox.drift("shadow_perms")  # 0644
    tr = _Meddler(sshd.target())
    tr.sandbox = sandbox
    finding = _detect(tr, "LIN-PERM-001")
    policy = Policy.default(
        CAT, params={"LIN-PERM-001": {"target_mode": "400", "allowed_modes": "640"}}
    )
    sinks = Sinks()
    _engine(tr, sinks).handle(finding, policy)
    assert sinks.outcomes()[0] == ("failed", "L1", "LIN-PERM-001")
    b = sinks.bundles[0]
    phases = [p["phase"] for p in b["post_state"]["phases"]]
    assert phases == ["remediate", "verify", "rollback", "recheck"]
    assert b["post_state"]["observed"] != b["pre_state"]["observed"]
    assert "not back in its pre-change state" in b["action_taken"]
    assert sandbox.mode("etc/shadow") == 0o600
    assert sinks.outcomes()[1] == ("escalated", "L3", "LIN-PERM-001")


def test_weakening_site_mode_is_refused_before_anything_runs(env) -> None:
    """Issue 11: a value that would weaken the control (0666 on /etc/shadow) never reaches the
    host, whatever path it came by; the outcome is a refusal, never ``healed``."""
    sandbox, tr = env
    sandbox.drift("shadow_perms")  # 0644
    finding = _detect(tr, "LIN-PERM-001")
    sent = len(tr.commands_sent)
    policy = Policy.default(
        CAT, params={"LIN-PERM-001": {"target_mode": "0666", "allowed_modes": "666"}}
    )
    sinks = Sinks()
    _engine(tr, sinks).handle(finding, policy)
    assert [o for o, _, _ in sinks.outcomes()] == ["failed", "escalated"]
    assert "adds permission bits" in sinks.bundles[0]["action_taken"]
    assert len(tr.commands_sent) == sent  # not one script went to the host
    assert sandbox.mode("etc/shadow") == 0o644


def test_remediation_error_without_rollback_is_failed(env) -> None:
    sandbox, tr = env
    sandbox.drift("service_stopped:rsyslog")
    sandbox.drift("fail_verb:enable")
    sinks = Sinks()
    _engine(tr, sinks).handle(_detect(tr, "LIN-SVC-003"), Policy.default(CAT))
    assert sinks.outcomes()[0] == ("failed", "L1", "LIN-SVC-003")
    assert "remediate failed" in sinks.bundles[0]["action_taken"]
    assert not sandbox.unit_active("rsyslog")


def test_detect_only_runbook_escalates(env) -> None:
    sandbox, tr = env
    sandbox.drift("uid0")
    f = _detect(tr, "LIN-ACCT-001")
    assert f.observed == {"uid0_accounts": ["toor"]}
    sinks = Sinks()
    _engine(tr, sinks).handle(f, Policy.default(CAT))
    assert sinks.outcomes()[-1][0] in ("escalated", "alert")
    assert "toor" in sandbox.p("etc/passwd").read_text()  # never "fixed" automatically
