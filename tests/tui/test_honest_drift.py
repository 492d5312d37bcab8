"""Issue 13 item 1, headless: the replay and the score never read missing data as a pass.

Bundles here are shaped exactly as the agent signs them (``osiris_agent/scanner.py``: one
``failed`` monitor bundle for a host that cannot be worked with, naming every check it stands
for; then the engine's L3 ``escalated`` bundle with the error as its pre_state). The real
end-to-end path (lab host, agent, server, CLI, console) is ``tests/e2e/test_honest_status.py``.
"""

from __future__ import annotations

from osiris_tui.drift import drift_rows
from osiris_tui.records import STALE_INTERVALS, Appliance, CheckStatus, score

T = "2026-01-01T00:%02d:00.000Z"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


def row(seq: int, **bundle) -> dict:
    return {"seq": seq, "envelope": {"bundle": {"seq": seq, "finished_at": T % seq, **bundle}}}


AUTH = {"kind": "auth", "detail": "WinRM credentials for dc01 were refused",
        "checks": ["backup", "windows_firewall"]}  # fmt: skip
ERR_STATE = {"status": "error", "observed": {}, "expected": {}, "error": AUTH}


def test_host_failure_is_error_with_reason_for_every_check_never_drift() -> None:
    ev = [
        row(1, host_id="dc01", check="windows_firewall", outcome="compliant", tier="monitor"),
        row(2, host_id="dc01", check="backup", outcome="compliant", tier="monitor"),
        row(3, host_id="dc01", check="windows_firewall", outcome="failed", tier="monitor",
            post_state=ERR_STATE),
        row(4, host_id="dc01", check="windows_firewall", outcome="escalated", tier="L3",
            pre_state=ERR_STATE, post_state={"incident": {"kind": "check_error"}}),
    ]  # fmt: skip
    rows = {(r.host_id, r.check): r for r in drift_rows(ev, aliases={})}
    for check in ("windows_firewall", "backup"):
        r = rows[("dc01", check)]
        assert (r.state, r.reason, r.status_text) == ("error", "auth", "error auth refused")
        assert r.as_json()["status"] == "error" and r.as_json()["reason_text"] == "auth refused"
    assert rows[("dc01", "windows_firewall")].detail == AUTH["detail"]
    # recovery of one check: it alone is compliant again
    ev.append(row(5, host_id="dc01", check="backup", outcome="compliant", tier="monitor"))
    rows = {(r.host_id, r.check): r for r in drift_rows(ev, aliases={})}
    assert rows[("dc01", "backup")].state == "compliant" and rows[("dc01", "backup")].reason is None
    assert rows[("dc01", "windows_firewall")].state == "error"


def test_an_older_agents_transport_text_reads_unreachable() -> None:
    old = {"status": "error", "observed": {}, "expected": {}, "error": "transport: no route"}
    ev = [row(1, host_id="fs01", check="backup", outcome="failed", tier="monitor",
              post_state=old)]  # fmt: skip
    (r,) = drift_rows(ev, aliases={})
    assert (r.state, r.reason, r.detail) == ("error", "unreachable", "no route")


def test_checkin_error_stale_and_deleted_hosts() -> None:
    fresh = "2025-12-31T23:59:00.000Z"
    old = "2025-12-31T23:00:00.000Z"  # 60 min ago: more than 3 × 300 s
    checks = [
        CheckStatus("dc01", "backup", "compliant", old, None, old, 300),
        CheckStatus("dc01", "windows_firewall", "error", old, "timeout", old, 300),
        CheckStatus("ws01", "backup", "compliant", fresh, None, fresh, 300),
        CheckStatus("gone", "backup", "drift", fresh, None, fresh, 300),
    ]
    assert checks[0].is_stale(NOW) and not checks[2].is_stale(NOW)
    assert 3600 > STALE_INTERVALS * 300
    rows = {(r.host_id, r.check): r for r in drift_rows([], checks, hosts={"dc01", "ws01"},
                                                        now=NOW, aliases={})}  # fmt: skip
    assert ("gone", "backup") not in rows  # its credential was deleted
    assert rows[("dc01", "backup")].state == "stale" and rows[("dc01", "backup")].stale
    fw = rows[("dc01", "windows_firewall")]
    assert (fw.state, fw.reason) == ("error", "timeout")  # an error stays an error, however old
    assert rows[("ws01", "backup")].state == "compliant"
    # errors first after drift, then stale, then compliant
    assert [r.state for r in drift_rows([], checks, now=NOW, aliases={})] == [
        "drift", "error", "stale", "compliant",
    ]  # fmt: skip


def test_score_counts_errors_and_stale_against() -> None:
    fresh = "2025-12-31T23:59:00.000Z"
    old = "2025-12-31T22:00:00.000Z"
    checks = [
        {"host_id": "h", "check": "windows_firewall", "status": "compliant", "since": fresh,
         "checked_at": fresh, "interval_s": 300},
        {"host_id": "h", "check": "backup", "status": "compliant", "since": old,
         "checked_at": old, "interval_s": 300},
        {"host_id": "h", "check": "accounts", "status": "error", "since": fresh, "reason": "auth"},
        {"host_id": "h", "check": "disk_space", "status": "drift", "since": fresh},
        # an older agent: no checked_at, never stale by age
        {"host_id": "h", "check": "windows_defender", "status": "compliant", "since": old},
    ]  # fmt: skip
    a = Appliance.from_json({"id": "a1", "status": {"checks": checks}})
    s = a.score(NOW)
    assert (s.compliant, s.stale, s.error, s.drift, s.total) == (2, 1, 1, 1, 5)
    assert s.percent == "40%" and a.error_count == 1 and a.drift_count == 1
    assert score([], NOW).percent == "-"  # nothing known: no score, not 100%
