"""The healing engine against a simulated Windows host, over the real pywinrm client.

Every bundle is built, validated and signed with ``osiris_core.evidence`` (a real chain), so a
field the engine gets wrong fails here, not later on the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import parse_output
from osiris_agent.hosts.base import Target, TransportError
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog, render
from osiris_core.evidence import Chain, sign_bundle, verify_envelope
from osiris_core.keys import Signer, Verifier
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

CAT = load_catalog()
SECRET = "Pw-UNIQUE-MARKER-7f3a9c"


class Sinks:
    """Evidence + incident sinks that do what the agent does: build, validate, sign, chain."""

    def __init__(self) -> None:
        self.signer = Signer.generate("osiris/appliance/app-1")
        self.chain = Chain("app-1")
        self.bundles: list[dict[str, Any]] = []
        self.envelopes: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        bundle = self.chain.next(site_id="site-1", **fields)
        env = sign_bundle(bundle, self.signer)
        verify_envelope(env, {self.signer.key_id_hex: Verifier.from_vkey(self.signer.vkey)})
        self.envelopes.append(env)
        self.bundles.append(bundle)
        return self.chain.advance(bundle)

    def raise_incident(self, **kw: Any) -> None:
        self.incidents.append(kw)

    def outcomes(self) -> list[tuple[str, str, str | None]]:
        return [(b["outcome"], b["tier"], b["runbook_id"]) for b in self.bundles]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 4, 15, 14, 0, tzinfo=UTC)  # a Tuesday afternoon

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def lab() -> Iterator[tuple[WindowsLabHost, WinrmTransport, WsmanLabServer]]:
    host = WindowsLabHost(CAT)
    with WsmanLabServer(handler=host, password=SECRET) as server:
        target = Target(
            host_id="dc01", kind="winrm", address="127.0.0.1", port=server.port,
            username="Administrator", password=SECRET, lab=True, use_tls=False, auth="basic",
        )  # fmt: skip
        tr = WinrmTransport(target, backoff_s=0.01, retries=1)
        yield host, tr, server
        tr.close()


def _detect(tr: WinrmTransport, rid: str, params: dict | None = None) -> Finding:
    rb = CAT.runbook(rid)
    r = tr.run_script(render(rb, "detect", params), interpreter="powershell")
    pr = parse_output("detect", r.exit_code, r.stdout, r.stderr)
    return Finding(
        "dc01", rb.check, rid, pr.status, pr.observed, pr.expected, canonical.utc_now(), pr.error
    )


def _engine(tr: WinrmTransport, sinks: Sinks, clock: Clock | None = None) -> HealingEngine:
    return HealingEngine(CAT, lambda host_id: tr, sinks, sinks, clock or Clock())


def test_firewall_drift_is_healed_with_pre_and_post_state(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    host.inject("firewall_off")
    finding = _detect(tr, "RB-WIN-FIREWALL-001")
    assert finding.status == "drift"
    hashes = _engine(tr, sinks).handle(finding, Policy.default(CAT))
    assert len(hashes) == 1
    b = sinks.bundles[0]
    assert (b["outcome"], b["tier"], b["runbook_id"]) == ("healed", "L1", "RB-WIN-FIREWALL-001")
    assert b["check"] == "windows_firewall" and "164.312(e)(1)" in b["controls"]
    assert b["pre_state"]["observed"] == {"domain": False, "private": False, "public": False}
    assert b["post_state"]["observed"] == {"domain": True, "private": True, "public": True}
    assert [p["phase"] for p in b["post_state"]["phases"]] == ["remediate", "verify"]
    assert "L1-WIN-FIREWALL-001" in b["action_taken"]
    assert host.state["firewall"]["public"]["enabled"] is True
    assert _detect(tr, "RB-WIN-FIREWALL-001").status == "compliant"
    assert sinks.incidents == []


def test_disabled_runbook_is_alert_and_never_runs(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    host.inject("firewall_off")
    finding = _detect(tr, "RB-WIN-FIREWALL-001")
    policy = Policy.default(CAT)
    policy.disabled_runbooks = frozenset({"RB-WIN-FIREWALL-001"})
    _engine(tr, sinks).handle(finding, policy)
    assert sinks.outcomes() == [("alert", "L1", "RB-WIN-FIREWALL-001")]
    assert "disabled" in sinks.bundles[0]["action_taken"]
    assert ("RB-WIN-FIREWALL-001", "remediate") not in host.phases_run()
    assert host.state["firewall"]["public"]["enabled"] is False


def test_empty_enabled_list_means_nothing_runs(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    host.inject("firewall_off")
    policy = Policy(enabled_runbooks=frozenset())
    _engine(tr, sinks).handle(_detect(tr, "RB-WIN-FIREWALL-001"), policy)
    assert sinks.outcomes() == [("alert", "L1", "RB-WIN-FIREWALL-001")]
    assert ("RB-WIN-FIREWALL-001", "remediate") not in host.phases_run()


def test_window_only_runbook_is_deferred_outside_and_runs_inside(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    clock = Clock()
    host.inject("updates_overdue")
    finding = _detect(tr, "RB-WIN-PATCH-001")
    assert finding.status == "drift" and finding.observed["overdue"] == 1
    in_window = [False]
    policy = Policy.default(CAT, in_window=lambda now: in_window[0])
    engine = _engine(tr, sinks, clock)
    engine.handle(finding, policy)
    assert sinks.outcomes() == [("deferred", "L1", "RB-WIN-PATCH-001")]
    assert ("RB-WIN-PATCH-001", "remediate") not in host.phases_run()
    # still inside the rule's cooldown: nothing new, no duplicate bundle
    assert engine.handle(finding, policy) == []
    clock.now = clock.now.replace(hour=23)  # cooldown (3600 s) over, window open
    in_window[0] = True
    engine.handle(finding, policy)
    assert sinks.outcomes()[-1] == ("healed", "L1", "RB-WIN-PATCH-001")
    assert host.state["reboot_pending"] is True


def test_disruptive_runbook_needs_window_unless_allowed(lab) -> None:
    host, tr, _ = lab
    host.inject("inbound_allow")  # RB-WIN-SEC-001 is disruptive, not window-only
    finding = _detect(tr, "RB-WIN-SEC-001")
    sinks = Sinks()
    _engine(tr, sinks).handle(finding, Policy.default(CAT))
    assert sinks.outcomes() == [("deferred", "L1", "RB-WIN-SEC-001")]
    sinks2 = Sinks()
    policy = Policy.default(CAT, allow_disruptive_outside_window=True)
    _engine(tr, sinks2).handle(finding, policy)
    assert sinks2.outcomes() == [("healed", "L1", "RB-WIN-SEC-001")]


def test_ineffective_remediation_fails_then_escalates_to_l3(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    # issue 15: SEC-006 gained a rollback (tests/agent/test_windows_rollback.py), so this runs on
    # AV-001, which changes no configuration and has none (deliberate change of runbook)
    host.inject("defender_stopped")
    host.break_next("RB-WIN-AV-001")
    finding = _detect(tr, "RB-WIN-AV-001")
    _engine(tr, sinks).handle(finding, Policy.default(CAT))
    # no rollback phase: failed, then an L3 incident
    assert sinks.outcomes() == [
        ("failed", "L1", "RB-WIN-AV-001"),
        ("escalated", "L3", "RB-WIN-AV-001"),
    ]
    assert sinks.bundles[0]["post_state"]["status"] == "drift"
    inc = sinks.incidents[0]
    assert inc["host_id"] == "dc01" and inc["check"] == "windows_defender"
    assert inc["severity"] == "critical" and inc["kind"] == "drift_unresolved"
    assert inc["details"]["tried"][0]["rule"] == "L1-WIN-AV-001"


def test_max_attempts_then_l3_only(lab) -> None:
    host, tr, _ = lab
    clock = Clock()
    sinks = Sinks()
    engine = _engine(tr, sinks, clock)
    host.inject("firewall_off")
    policy = Policy.default(CAT)
    rule = next(r for r in CAT.rules if r.id == "L1-WIN-FIREWALL-001")
    for _ in range(rule.max_attempts):
        host.fail_next("RB-WIN-FIREWALL-001", "remediate")
        engine.handle(_detect(tr, "RB-WIN-FIREWALL-001"), policy)
        clock.now = clock.now.replace(hour=clock.now.hour + 2)  # past every cooldown
    remediations = [p for p in host.phases_run() if p == ("RB-WIN-FIREWALL-001", "remediate")]
    assert len(remediations) == rule.max_attempts
    engine.handle(_detect(tr, "RB-WIN-FIREWALL-001"), policy)
    remediations = [p for p in host.phases_run() if p == ("RB-WIN-FIREWALL-001", "remediate")]
    assert len(remediations) == rule.max_attempts  # no further L1 try
    assert sinks.outcomes()[-1] == ("escalated", "L3", "RB-WIN-FIREWALL-001")
    assert "max" in str(sinks.incidents[-1]["details"]["tried"])


def test_connection_dropped_during_remediate_is_failed_not_healed(lab) -> None:
    host, tr, server = lab
    sinks = Sinks()
    host.inject("audit_policy_gone")
    finding = _detect(tr, "RB-WIN-SEC-002")
    tr.close()
    server.faults.drop_next(10)
    _engine(tr, sinks).handle(finding, Policy.default(CAT))
    server.faults.clear()
    assert sinks.outcomes()[0] == ("failed", "L1", "RB-WIN-SEC-002")
    assert "unreachable:" in sinks.bundles[0]["action_taken"]  # issue 13: the reason word
    assert sinks.outcomes()[1] == ("escalated", "L3", "RB-WIN-SEC-002")


def test_order_runs_through_the_same_guards(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    engine = _engine(tr, sinks)
    host.inject("service_stopped:DNS")
    order = {
        "order_id": "ord-1", "kind": "run_runbook", "disruptive": False,
        "params": {"runbook_id": "RB-WIN-SVC-001", "host_id": "dc01"},
    }  # fmt: skip
    engine.run_order(order, "dc01", Policy.default(CAT))
    b = sinks.bundles[-1]
    assert (b["outcome"], b["tier"], b["order_id"]) == ("healed", "order", "ord-1")
    assert b["pre_state"]["observed"]["status"] == "Stopped"
    assert b["post_state"]["observed"]["status"] == "Running"
    policy = Policy.default(CAT)
    policy.disabled_runbooks = frozenset({"RB-WIN-SVC-001"})
    engine.run_order({**order, "order_id": "ord-2"}, "dc01", policy)
    assert sinks.outcomes()[-1] == ("alert", "order", "RB-WIN-SVC-001")
    order3 = {
        "order_id": "ord-3", "kind": "run_runbook", "disruptive": False,
        "params": {"runbook_id": "RB-WIN-ENCRYPTION-001", "host_id": "dc01"},
    }  # fmt: skip
    engine.run_order(order3, "dc01", Policy.default(CAT))
    assert sinks.outcomes()[-1] == ("deferred", "order", "RB-WIN-ENCRYPTION-001")


def test_no_secret_in_evidence_or_incidents(lab) -> None:
    host, tr, _ = lab
    sinks = Sinks()
    engine = _engine(tr, sinks)
    host.inject("firewall_off")
    host.inject("defender_off")
    host.break_next("RB-WIN-SEC-006")
    engine.handle(_detect(tr, "RB-WIN-FIREWALL-001"), Policy.default(CAT))
    engine.handle(_detect(tr, "RB-WIN-SEC-006"), Policy.default(CAT))
    blob = canonical.dumps([sinks.envelopes, sinks.incidents]).decode()
    assert len(sinks.bundles) >= 3
    assert SECRET not in blob


def test_unreachable_host_is_an_error_not_a_pass() -> None:
    class Down:
        def run_script(self, *a: Any, **k: Any) -> Any:
            raise TransportError("cannot connect to dc01")

    sinks = Sinks()
    engine = HealingEngine(CAT, lambda h: Down(), sinks, sinks, Clock())
    f = Finding("dc01", "windows_firewall", "RB-WIN-FIREWALL-001", "drift", {}, {}, "x")
    engine.handle(f, Policy.default(CAT))
    assert sinks.outcomes()[0] == ("failed", "L1", "RB-WIN-FIREWALL-001")
