"""A rich ``osiris.packet-report/1`` document for the renderer tests (test_report_render*.py).

Built by hand to the shared schema (docs/evidence-format.md, report.json) rather than through
the report model, so the renderers are tested on every shape the schema allows even before a
real packet holds them: several hosts and platforms, a host with no evidence at all, healed /
open / accepted exceptions, an incident, long missing lists (to see the PDF truncate them), a
review or none, and optionally a hostile host id (markup plus control characters).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

# markup, an ANSI colour sequence, BEL, NUL, a one-byte C1 CSI and a bidi override
HOSTILE = '<script>alert("x")</script>\x1b[31m\x07\x00\x9b2J\u202eevil&co<img src=http://x/>'

FAMILIES = ("Administrative", "Physical", "Technical", "Documentation")


def _days(month: str) -> list[str]:
    y, m = (int(x) for x in month.split("-"))
    d = date(y, m, 1)
    out: list[str] = []
    while d.month == m:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def rich_report(
    *, hostile: bool = False, review: bool = True, partner: bool = True, hosts: int = 6
) -> dict[str, Any]:
    """The report of a 30-day month, six hosts (one never reported), eight controls of every
    status and family. ``hostile`` renames one host to markup with control characters."""
    month = "2026-11"
    days = _days(month)
    names = [f"ws{i:02d}.clinic-a.local" for i in range(1, hosts)] + ["dc01.clinic-a.local"]
    if hostile:
        names[1] = HOSTILE
    missing_host = names[-2]
    platforms = ["windows", "windows", "linux", "nixos", "windows", "windows"]
    expected = [
        {"host_id": h, "platform": platforms[i % len(platforms)], "source": "site target"}
        for i, h in enumerate(names)
    ]
    with_evidence = [h for h in names if h != missing_host]

    def daily(evidenced_drop: int, findings_on: set[int], cells: int) -> list[dict[str, Any]]:
        return [
            {
                "date": d,
                "evidenced": max(0, cells - (evidenced_drop if i % 3 == 0 else 0)),
                "expected": cells,
                "findings": 1 if i in findings_on else 0,
            }
            for i, d in enumerate(days)
        ]

    def missing(checks: list[str], n_days: int) -> list[dict[str, Any]]:
        return [{"host_id": missing_host, "check": c, "days": days[:n_days]} for c in checks] + [
            {"host_id": names[0], "check": checks[0], "days": [days[4], days[17]]}
        ]

    long_missing = [
        {"host_id": f"kiosk{i:02d}.clinic-a.local", "check": "windows_bitlocker", "days": [d]}
        for i, d in enumerate(days)
    ]
    controls: list[dict[str, Any]] = [
        {
            "citation": "164.312(a)(2)(iv)",
            "title": "Encryption and decryption",
            "required": False,
            "family": "Technical",
            "status": "partially_met",
            "why": "12 host-days have no evidence and one exception is still open.",
            "checks": ["windows_bitlocker", "encryption"],
            "expected_cells": 180,
            "evidenced_cells": 150,
            "missing": missing(["windows_bitlocker"], 30) + long_missing,
            "unresolved": ["exc-0003"],
            "daily": daily(2, {3, 4, 12}, 6),
        },
        {
            "citation": "164.312(b)",
            "title": "Audit controls",
            "required": True,
            "family": "Technical",
            "status": "met",
            "why": "Every host-day has evidence and every exception healed.",
            "checks": ["windows_audit_policy", "linux_audit"],
            "expected_cells": 150,
            "evidenced_cells": 150,
            "missing": [],
            "unresolved": [],
            "daily": daily(0, {7}, 5),
        },
        {
            "citation": "164.312(a)(1)",
            "title": "Access control",
            "required": True,
            "family": "Technical",
            "status": "not_met",
            "why": "The latest state of windows_firewall on ws01 is non-compliant, not accepted.",
            "checks": ["windows_firewall"],
            "expected_cells": 120,
            "evidenced_cells": 118,
            "missing": missing(["windows_firewall"], 2)[:1],
            "unresolved": ["exc-0004"],
            "daily": daily(1, {20, 21, 22, 23}, 4),
        },
        {
            "citation": "164.308(a)(5)(ii)(B)",
            "title": "Protection from malicious software",
            "required": False,
            "family": "Administrative",
            "status": "met",
            "why": "Every host-day has evidence; one exception was accepted by the Security "
            "Official.",
            "checks": ["windows_defender"],
            "expected_cells": 120,
            "evidenced_cells": 120,
            "missing": [],
            "unresolved": [],
            "daily": daily(0, {9}, 4),
        },
        {
            "citation": "164.308(a)(1)(ii)(D)",
            "title": "Information system activity review",
            "required": True,
            "family": "Administrative",
            "status": "met" if review else "not_evidenced",
            "why": "A signed review covers the month."
            if review
            else "No signed activity review was logged in the period.",
            "checks": ["activity_review"],
            "expected_cells": 30,
            "evidenced_cells": 30 if review else 0,
            "missing": [],
            "unresolved": [],
            "daily": daily(0, set(), 1),
        },
        {
            "citation": "164.310(d)(2)(iv)",
            "title": "Data backup and storage",
            "required": False,
            "family": "Physical",
            "status": "not_evidenced",
            "why": "No check mapped to this control produced evidence in the period.",
            "checks": ["backup"],
            "expected_cells": 30,
            "evidenced_cells": 0,
            "missing": [{"host_id": names[2], "check": "backup", "days": days}],
            "unresolved": [],
            "daily": [{"date": d, "evidenced": 0, "expected": 1, "findings": 0} for d in days],
        },
        {
            "citation": "164.316(b)(2)(i)",
            "title": "Time limit (retention)",
            "required": True,
            "family": "Documentation",
            "status": "met",
            "why": "The appliance's evidence pipeline reported every day of the period.",
            "checks": ["evidence_pipeline"],
            "expected_cells": 30,
            "evidenced_cells": 30,
            "missing": [],
            "unresolved": [],
            "daily": daily(0, set(), 1),
        },
    ]
    by = {"appliance_id": "app-clinic-a-1", "outcome": "non_compliant", "tier": "L1"}
    exceptions: list[dict[str, Any]] = [
        {
            "id": "exc-0001",
            "host_id": names[0],
            "check": "windows_firewall",
            "opened_at": "2026-11-03T02:00:11Z",
            "closed_at": "2026-11-03T02:04:40Z",
            "time_to_fix_s": 269,
            "opened_by": {**by, "seq": 412},
            "closed_by": {
                "appliance_id": "app-clinic-a-1",
                "seq": 413,
                "outcome": "healed",
                "tier": "L1",
            },
            "status": "healed",
            "owner": "Osiris (L1)",
            "accepted": None,
            "incident_id": None,
        },
        {
            "id": "exc-0002",
            "host_id": names[1],
            "check": "windows_defender",
            "opened_at": "2026-11-09T02:00:00Z",
            "closed_at": "2026-11-12T15:00:00Z",
            "time_to_fix_s": None,
            "opened_by": {**by, "seq": 520},
            "closed_by": None,
            "status": "accepted",
            "owner": "J. Rivera (Security Official)",
            "accepted": {
                "by": "J. Rivera",
                "reason": "Vendor imaging software conflicts with real-time scanning until v12.",
                "until": "2027-01-31T00:00:00Z",
                "appliance_id": "app-clinic-a-1",
                "seq": 611,
            },
            "incident_id": None,
        },
        {
            "id": "exc-0003",
            "host_id": names[2],
            "check": "encryption",
            "opened_at": "2026-11-20T02:00:00Z",
            "closed_at": None,
            "time_to_fix_s": None,
            "opened_by": {**by, "seq": 700, "tier": "L2"},
            "closed_by": None,
            "status": "open",
            "owner": "Acme IT (MSP)",
            "accepted": None,
            "incident_id": "inc-0042",
        },
    ]
    for i in range(4, 30):  # a long list: the PDF truncates it
        exceptions.append(
            {
                **copy.deepcopy(exceptions[0]),
                "id": f"exc-{i:04d}",
                "opened_at": f"{days[i % 30]}T02:00:00Z",
                "closed_at": f"{days[i % 30]}T02:10:00Z",
                "time_to_fix_s": 600,
            }
        )
    exceptions[3]["status"] = "open"
    exceptions[3]["closed_at"] = None
    exceptions[3]["closed_by"] = None
    exceptions[3]["time_to_fix_s"] = None
    cells: list[list[str]] = []
    for h in names:
        row = []
        for i, _d in enumerate(days):
            if h == missing_host:
                row.append("missing")
            elif h == names[0] and i in (2, 20, 21):
                row.append("finding")
            elif h == names[0] and i == 3:
                row.append("healed")
            elif h == names[2] and i >= 19:
                row.append("finding")
            elif i in (4, 17) and h == names[0]:
                row.append("missing")
            else:
                row.append("ok")
        cells.append(row)
    report: dict[str, Any] = {
        "schema": "osiris.packet-report/1",
        "site_id": "clinic-a",
        "site_name": "Clinic A — Main Street Family Practice",
        "partner": {"name": "Acme IT", "colour": "#1f6feb"} if partner else None,
        "period": {
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-12-01T00:00:00Z",
            "month": month,
            "days": days,
        },
        "tool_version": "0.1.0",
        "checkpoint": {
            "size": 18342,
            "sha256": "9f2c" + "0" * 56 + "ab12",
            "tsa": {"gen_time": "2026-12-01T00:05:12Z", "tsa": "https://tsa.example.org/tsr"},
        },
        "population": {
            "expected": expected,
            "with_evidence": with_evidence,
            "missing": [missing_host],
            "note": "Expected hosts are the site's targets; one sent no evidence in the period.",
        },
        "controls": controls,
        "exceptions": exceptions,
        "healing": {
            "by_tier": {"L1": 27, "L2": 3, "L3": 1, "order": 2},
            "healed": 28,
            "failed": 2,
            "escalated": 1,
            "median_time_to_remediate_s": 285,
        },
        "incidents": [
            {
                "id": "inc-0042",
                "host_id": names[2],
                "check": "encryption",
                "severity": "high",
                "at": "2026-11-20T02:01:00Z",
                "appliance_id": "app-clinic-a-1",
                "seq": 701,
            }
        ],
        "heatmap": {"hosts": names, "days": days, "cells": cells},
        "reviews": [
            {
                "reviewer": "J. Rivera",
                "reviewed_at": "2026-12-02T14:30:00Z",
                "month": month,
                "note": "Reviewed exceptions; disk encryption on ws03 scheduled for 12-05.",
                "appliance_id": "app-clinic-a-1",
                "seq": 733,
            }
        ]
        if review
        else [],
        "policy": {
            "ruleset_hashes": ["sha256:" + "1" * 64],
            "policy_versions": ["clinic-a-policy-2026.3"],
        },
        "retention": "Evidence is kept 6 years in WORM storage (object lock, compliance mode).",
        "verify_command": "osiris evidence verify --packet clinic-a-2026-11.zip --tsa-ca ca.pem",
    }
    if hostile:  # a hostile reviewer note, acceptance reason and site name as well
        if report["reviews"]:
            report["reviews"][0]["note"] = HOSTILE
        report["exceptions"][1]["accepted"]["reason"] = HOSTILE
        report["site_name"] = HOSTILE
        report["partner"] = {"name": HOSTILE, "colour": "red;background:url(http://x/)"}
    return report


def empty_report() -> dict[str, Any]:
    """A site with no hosts, no controls evidenced, no exceptions, no incidents, no review."""
    r = rich_report(review=False, partner=False)
    days = r["period"]["days"]
    r["population"] = {"expected": [], "with_evidence": [], "missing": [], "note": ""}
    for c in r["controls"]:
        c.update(
            status="not_evidenced",
            expected_cells=0,
            evidenced_cells=0,
            missing=[],
            unresolved=[],
            daily=[{"date": d, "evidenced": 0, "expected": 0, "findings": 0} for d in days],
        )
    r.update(
        exceptions=[],
        incidents=[],
        reviews=[],
        heatmap={"hosts": [], "days": days, "cells": []},
        policy={"ruleset_hashes": [], "policy_versions": []},
    )
    r["healing"] = {
        "by_tier": {},
        "healed": 0,
        "failed": 0,
        "escalated": 0,
        "median_time_to_remediate_s": None,
    }
    r["checkpoint"]["tsa"] = None
    return r
