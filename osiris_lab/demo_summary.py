"""The headless demo's summary: counted from the server's API, verified offline like an auditor.

Kept apart from the orchestration (``demo.py``): this part only reads (the API, the pulled
exports, the clinics' attestations) and turns what it read into numbers and lines.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from osiris_tui.client import Client

from .demo_state import DemoError, DemoState

OUTCOMES = ("healed", "deferred", "escalated", "failed", "reverted")


def all_evidence(c: Client, site: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for app in [a.id for a in c.appliances(site)]:
        after = 0
        while True:
            page = c.evidence(site, app, after_seq=after, limit=1000).get("evidence", [])
            rows += page
            if len(page) < 1000:
                break
            after = page[-1]["seq"]
    return rows


def _wait_checkpoint_covers(c: Client, index: int, timeout: float = 15.0) -> None:
    """The published checkpoint may trail the last batch briefly: wait until it covers
    ``index``, so the pulled export holds every bundle (else the counts could never match)."""
    deadline = time.monotonic() + timeout
    while int(c.get("/log/checkpoint")["size"]) <= index and time.monotonic() < deadline:
        time.sleep(0.2)


def escalations(rows: list[dict[str, Any]]) -> list[str]:
    """Why each escalation happened (host, runbook, the bundle's own words), for the summary."""
    out = []
    for r in rows:
        b = (r.get("envelope") or {}).get("bundle") or {}
        if r.get("outcome") == "escalated":
            why = " ".join(str(b.get("action_taken") or "").split())[:110]
            out.append(f"{b.get('site_id')}/{r.get('host_id')} {b.get('runbook_id') or '-'}: {why}")
    return out


def count_outcomes(rows: list[dict[str, Any]], appliance_ids: set[str]) -> dict[str, int]:
    """The summary's counts from evidence rows (shared with the tests' independent check)."""
    out = {"bundles": len(rows), "drifts_found": 0, "self_checks": 0}
    out.update(dict.fromkeys(OUTCOMES, 0))
    for r in rows:
        env = r.get("envelope") or {}
        b = env.get("bundle") or {}
        outcome = r.get("outcome") or b.get("outcome")
        tier = b.get("tier")
        check = r.get("check") or b.get("check")
        if outcome in OUTCOMES:
            out[outcome] += 1
        if tier == "monitor" and outcome == "alert" and check != "evidence_pipeline":
            out["drifts_found"] += 1
        if tier == "monitor" and r.get("host_id") in appliance_ids:
            out["self_checks"] += 1
    return out


def build_summary(
    c: Client,
    st: DemoState,
    agents: dict[str, dict[str, Any]],
    hosts: list[dict[str, Any]],
    injected: list[dict[str, Any]],
    data: Path,
    period: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """Numbers from the server's API, the agents' own status and an offline verification
    against the clinics' own attestations; ends with one site's packet verified the same way."""
    from osiris_core.trust import TrustFileError, TrustRoots, load_trust_file
    from osiris_core.verify import verify_export
    from osiris_tui.pull import pull_export

    trust = TrustRoots()
    for sid in st.sites:
        att = data / "attestations" / f"{sid}.json"
        try:
            trust.merge(load_trust_file(att))
        except TrustFileError as e:
            raise DemoError(f"attestation of {sid}: {e}") from None

    apps = [a for a in c.appliances() if a.site_id in st.sites]
    ids = {a.id for a in apps}
    rows: list[dict[str, Any]] = []
    per_app: dict[str, int] = {}
    for sid in st.sites:
        site_rows = all_evidence(c, sid)
        rows += site_rows
        for r in site_rows:
            per_app[r["appliance_id"]] = per_app.get(r["appliance_id"], 0) + 1
    counts = count_outcomes(rows, ids)
    _wait_checkpoint_covers(c, max((int(r["index"]) for r in rows), default=-1))
    lost = 0
    queued = 0
    for sid, a in agents.items():
        app_id = st.appliances.get(sid, "")
        lost += max(0, int(a["seq"]) - per_app.get(app_id, 0))
        queued += int(a["queued"])
    verified = 0
    pulled = 0
    findings: list[str] = []
    verify_ok = True
    for sid in st.sites:
        out = data / "exports" / sid
        # latest: the agents are stopped, so the newest bundles will never be cosigned; take
        # them all (the verifier warns W_NO_COSIG for that tail, it does not fail).
        pulled += pull_export(c, sid, out, overwrite=True, latest=True)
        report = verify_export(out, trust=trust)
        verified += report.passed.get("E_INCLUSION", 0)
        unpinned = [f.line() for f in report.warnings if f.code == "W_UNPINNED"]
        verify_ok = verify_ok and report.ok() and not unpinned
        findings += ([f.line() for f in report.failures] + unpinned)[:10]
    packet = _demo_packet(c, st.sites[0], data, period, trust) if period[1] else None
    detects = sum(int(h["phases_run"].get("detect", 0)) for h in hosts)
    summary = {
        "demo": "LAB DEMO: every clinic host is a simulator",
        "data_dir": str(data),
        "server": st.server_url,
        "sites": len(st.sites),
        "appliances": len(apps),
        "lab_hosts": len(hosts),
        "chaos_injected": len(injected),
        "checks_run": detects + counts["self_checks"],
        "lab_detects": detects,
        "self_checks": counts["self_checks"],
        "drifts_found": counts["drifts_found"],
        "healed": counts["healed"],
        "deferred": counts["deferred"],
        "escalated": counts["escalated"],
        "failed": counts["failed"] + counts["reverted"],
        "bundles": counts["bundles"],
        "bundles_pulled": pulled,
        "receipts_verified": verified,
        "verify_ok": verify_ok,
        "verify_failures": findings,
        "packet": packet,
        "lost": lost,
        "queued": queued,
        "escalations": escalations(rows),
        "still_drifting": {
            f"{h['site']}/{h['host']}": h["drifting"] for h in hosts if h["drifting"]
        },  # fmt: skip
    }
    summary["ok"] = bool(
        verify_ok
        and (packet is None or packet["ok"])
        and lost == 0
        and queued == 0
        and pulled == counts["bundles"]
        and verified == counts["bundles"]
        and len(apps) == len(st.sites)
    )
    return summary


def _demo_packet(
    c: Client, site: str, data: Path, period: tuple[str, str], trust: Any
) -> dict[str, Any]:
    """Build one site's packet for the run's period and verify it, strictly, against the
    site's attestation — what an auditor does with what the clinic gave them."""
    from osiris_core.packet import build_packet, verify_packet
    from osiris_tui.pull import pull_export

    out = data / "packets" / f"{site}.zip"
    export = data / "packets" / f"{site}-export"
    pull_export(c, site, export, period=period, overwrite=True)
    manifest = build_packet(export, out, site_id=site, period=period)
    report = verify_packet(out, trust=trust)
    return {
        "site": site,
        "path": str(out),
        "period": list(period),
        "bundles": manifest["bundles"],
        "appliances": len(manifest["appliances"]),
        "ok": report.ok(strict=True),
        "findings": [f.line() for f in report.findings if f.level != "PASS"][:10],
        "trusted": sorted({k["source"] for k in report.keys_used}),
    }


def render_summary(s: dict[str, Any]) -> str:
    lines = [
        "osiris demo summary (LAB DEMO: the clinic hosts are simulators)",
        f"  appliances         {s['appliances']} (sites {s['sites']}, lab hosts {s['lab_hosts']})",
        f"  chaos injected     {s['chaos_injected']}",
        f"  checks run         {s['checks_run']} ({s['lab_detects']} on lab hosts, "
        f"{s['self_checks']} appliance self-checks)",
        f"  drifts found       {s['drifts_found']}",
        f"  healed             {s['healed']}",
        f"  deferred           {s['deferred']}",
        f"  escalated          {s['escalated']}",
        f"  failed             {s['failed']}",
        f"  bundles            {s['bundles']} on the server, {s['bundles_pulled']} pulled",
        f"  receipts verified  {s['receipts_verified']} (offline: "
        f"{'PASS' if s['verify_ok'] else 'FAIL'})",
        f"  lost               {s['lost']} (still queued {s['queued']})",
    ]
    pk = s.get("packet")
    if pk:
        lines.append(
            f"  packet             {pk['site']}: {pk['bundles']} bundles of "
            f"{pk['appliances']} appliance(s) verified against the clinic's attestation: "
            f"{'PASS' if pk['ok'] else 'FAIL'} ({pk['path']})"
        )
        for f in pk.get("findings", []):
            lines.append(f"  packet: {f}")
    for name, rbs in sorted(s.get("still_drifting", {}).items()):
        lines.append(f"  still drifting     {name}: {', '.join(rbs)}")
    for e in s.get("escalations", [])[:12]:
        lines.append(f"  escalated: {e}")
    for f in s.get("verify_failures", []):
        lines.append(f"  verify: {f}")
    if s.get("children_crashed"):
        lines.append(f"  crashed            {', '.join(s['children_crashed'])}")
    lines.append(f"  result             {'OK' if s['ok'] else 'NOT OK'}")
    return "\n".join(lines)
