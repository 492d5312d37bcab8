"""Scanner cadence, change-only evidence, hourly snapshots and durability, over real pywinrm."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from osiris_agent.healing.engine import HealingEngine, Policy
from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_agent.scanner import Scanner
from osiris_core.catalog import load_catalog
from osiris_core.evidence import Chain
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

CAT = load_catalog()
T0 = datetime(2025, 4, 15, 14, 0, tzinfo=UTC)
# a small policy: two checks (firewall every 5 min, updates hourly)
RUNBOOKS = frozenset({"RB-WIN-FIREWALL-001", "RB-WIN-SEC-001", "RB-WIN-PATCH-001"})


class Sink:
    def __init__(self) -> None:
        self.chain = Chain("app-1")
        self.bundles: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        b = self.chain.next(site_id="site-1", **fields)
        self.bundles.append(b)
        return self.chain.advance(b)

    def raise_incident(self, **kw: Any) -> None:
        pass


@pytest.fixture()
def lab() -> Iterator[tuple[WindowsLabHost, Target, WinrmTransport]]:
    host = WindowsLabHost(CAT)
    with WsmanLabServer(handler=host) as server:
        target = Target(
            host_id="dc01", kind="winrm", address="127.0.0.1", port=server.port,
            username="Administrator", password=server.password, lab=True, use_tls=False,
            auth="basic",
        )  # fmt: skip
        tr = WinrmTransport(target, backoff_s=0.01)
        yield host, target, tr
        tr.close()


def test_cadence_change_evidence_and_snapshot(lab, tmp_path) -> None:
    host, target, tr = lab
    sink = Sink()
    policy = Policy(enabled_runbooks=RUNBOOKS)
    db = str(tmp_path / "state.db")
    sc = Scanner(CAT, lambda h: tr, sink, db)
    assert sorted(sc.due(T0, [target], policy)) == [
        ("dc01", "windows_firewall"),
        ("dc01", "windows_updates"),
    ]
    findings = sc.run([target], T0, policy)
    assert sorted(f.runbook_id for f in findings) == sorted(RUNBOOKS)
    assert all(f.status == "compliant" for f in findings)
    # 3 first observations + 1 snapshot
    assert [b["check"] for b in sink.bundles].count("evidence_pipeline") == 1
    assert len(sink.bundles) == 4
    snap = sink.bundles[-1]
    assert snap["outcome"] == "compliant" and set(snap["post_state"]["runbooks"]) == RUNBOOKS

    t1 = T0 + timedelta(minutes=5)
    assert sc.due(t1, [target], policy) == [("dc01", "windows_firewall")]
    findings = sc.run([target], t1, policy)
    assert {f.runbook_id for f in findings} == {"RB-WIN-FIREWALL-001", "RB-WIN-SEC-001"}
    assert len(sink.bundles) == 4  # nothing changed, no snapshot due: no new bundle

    host.inject("firewall_off")
    t2 = T0 + timedelta(minutes=10)
    findings = sc.run([target], t2, policy)
    fw = next(f for f in findings if f.runbook_id == "RB-WIN-FIREWALL-001")
    assert fw.status == "drift" and fw.since == "2025-04-15T14:10:00.000Z"
    change = sink.bundles[-1]
    assert (change["outcome"], change["tier"]) == ("alert", "monitor")
    assert change["pre_state"]["status"] == "compliant"
    assert change["post_state"]["observed"]["public"] is False
    assert len(sink.bundles) == 5

    # the engine heals; the next scan records the change back to compliant
    engine = HealingEngine(CAT, lambda h: tr, sink, sink, lambda: t2)
    engine.handle(fw, policy)
    assert sink.bundles[-1]["outcome"] == "healed"
    sc.run([target], t2 + timedelta(minutes=5), policy)
    assert sink.bundles[-1]["outcome"] == "compliant"
    assert sink.bundles[-1]["pre_state"]["status"] == "drift"
    n = len(sink.bundles)

    # an hour later: updates are due again and one snapshot per host is emitted
    t3 = T0 + timedelta(hours=1)
    sc.run([target], t3, policy)
    assert len(sink.bundles) == n + 1 and sink.bundles[-1]["check"] == "evidence_pipeline"
    sc.close()

    # durable: a new scanner on the same db knows the state and schedule
    sc2 = Scanner(CAT, lambda h: tr, sink, db)
    assert sc2.due(t3 + timedelta(minutes=1), [target], policy) == []
    assert sc2.states("dc01")["RB-WIN-FIREWALL-001"]["status"] == "compliant"
    sc2.run([target], t3 + timedelta(minutes=6), policy)
    assert len(sink.bundles) == n + 1  # same states, no snapshot: silence
    sc2.close()


def test_disabled_runbook_is_still_watched_and_unreachable_is_failed(lab) -> None:
    host, target, tr = lab
    sink = Sink()
    policy = Policy(
        enabled_runbooks=frozenset({"RB-WIN-SEC-001"}),
        disabled_runbooks=frozenset({"RB-WIN-FIREWALL-001"}),
    )
    sc = Scanner(CAT, lambda h: tr, sink)
    assert {f.runbook_id for f in sc.run([target], T0, policy)} == {
        "RB-WIN-FIREWALL-001",
        "RB-WIN-SEC-001",
    }
    down = Target(
        host_id="dc02", kind="winrm", address="127.0.0.1", port=1, username="x", password="y",
        lab=True, use_tls=False, auth="basic",
    )  # fmt: skip
    tr2 = WinrmTransport(down, backoff_s=0.01, retries=1)
    sc2 = Scanner(CAT, lambda h: tr2, sink)
    before = len(sink.bundles)
    findings = sc2.run([down], T0, policy)
    # Unreachable: ONE error finding and one failed bundle for the host (not one per runbook),
    # no snapshot, and its checks stay due so the next cycle tries again.
    assert len(findings) == 1 and findings[0].status == "error"
    # issue 13: the error says why in one word, the bundle records it (outcome stays "failed",
    # the catalogue's word) and names every check it stands for; the host's other runbook is an
    # error too, not left at whatever it last was
    assert findings[0].error and findings[0].error.startswith("unreachable:")
    assert [b["outcome"] for b in sink.bundles[before:]] == ["failed"]
    err = sink.bundles[-1]["post_state"]["error"]
    assert err["kind"] == "unreachable" and "dc02" in err["detail"]
    named = ("RB-WIN-FIREWALL-001", "RB-WIN-SEC-001")
    assert err["checks"] == sorted({CAT.runbook(r).check for r in named})
    assert {s["status"] for s in sc2.states("dc02").values()} == {"error"}
    assert set(sc2.host_errors) == {"dc02"}
    assert len(sc2.due(T0, [down], policy)) == 1  # windows_firewall: still due
