"""Deterministic data for snapshots and the benchmark: a Client whose transport answers from
fixed JSON shaped exactly like the server's answers (same parsing code path as production).

Behaviour tests never use this; they run against the real server (see conftest.py).
"""

from __future__ import annotations

from typing import Any

from osiris_tui.client import API, Client, NotFound

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, the frozen clock


def iso(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def fleet(n: int = 12, sites: int = 3) -> dict[str, Any]:
    site_rows = [
        {"id": f"site-{i:02d}", "name": name, "partner_id": None, "checkin_interval_s": 60,
         "created_at": iso(NOW - 86400), "window": None}
        for i, name in enumerate(
            (["Riverside Family Practice", "[bold red]x[/]", "Oak Dental"]
             + [f"Clinic {k}" for k in range(3, sites)])[:sites]
        )
    ]  # fmt: skip
    apps = []
    checks_all = ["firewall", "bitlocker", "audit_policy", "av_edr", "backup"]
    for i in range(n):
        s = site_rows[i % sites]["id"]
        seen = None if i % 11 == 7 else NOW - (i * 37) % 400
        checks = [
            {"host_id": f"host{j}", "check": c, "status": "drift" if (i + j + k) % 5 == 0
             else "compliant", "since": iso(NOW - 3600 * (j + 1))}
            for j in range(2) for k, c in enumerate(checks_all[: 2 + i % 3])
        ]  # fmt: skip
        apps.append(
            {"id": f"app_{i:020x}", "site_id": s, "hostname": f"appliance-{i:03d}", "mac": None,
             "agent_version": "0.1.0", "created_at": iso(NOW - 86400), "revoked_at": None,
             "last_seen_at": iso(seen) if seen else None, "last_seen_epoch": seen,
             "online": seen is not None and seen >= NOW - 180,
             "status": {"checks": checks, "outbox_depth": 0, "seq": 3}}
        )  # fmt: skip
    incidents = [
        {"id": "inc_0001", "site_id": "site-00", "appliance_id": apps[0]["id"], "host_id": "host0",
         "kind": "chain_gap", "severity": "critical", "summary": "evidence gap \x1b[31m seq 4..5",
         "status": "open", "count": 2, "first_seen": iso(NOW - 900), "last_seen": iso(NOW - 60)}
    ]  # fmt: skip
    return {"sites": site_rows, "appliances": apps, "incidents": incidents}


def evidence_rows(app_id: str, site_id: str) -> list[dict[str, Any]]:
    out = []
    for seq in range(1, 5):
        b = {"seq": seq, "outcome": ["compliant", "healed", "compliant", "failed"][seq - 1],
             "tier": ["monitor", "L1", "monitor", "order"][seq - 1], "check": "firewall",
             "host_id": "host0",
             "runbook_id": None if seq % 2 else "RB-WIN-FW-001",
             "controls": ["164.312(c)(1)"], "appliance_id": app_id, "site_id": site_id,
             "pre_state": {"enabled": False}, "post_state": {"enabled": seq != 4}}  # fmt: skip
        out.append(
            {"bundle_hash": f"sha256:{seq:064x}", "index": seq, "appliance_id": app_id,
             "seq": seq, "host_id": "host0", "check": "firewall", "outcome": b["outcome"],
             "order_id": None, "finished_at": iso(NOW - 600 + seq),
             "envelope": {"bundle": b, "sig": {"alg": "ed25519", "key_id": "0000abcd",
                                               "value": "AAAA"}}}
        )  # fmt: skip
    return out


class RecordedClient(Client):
    """Answers GETs from fixed data; refuses writes (snapshots never mutate)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        super().__init__("http://fixture.invalid", "osk_fixture")
        self.data = data or fleet()

    def request(self, method: str, path: str, *, json=None, params=None, raw=False) -> Any:  # noqa: ANN001
        p = path.removeprefix(API)
        d = self.data
        if method != "GET":
            raise NotFound("fixture is read-only")
        if p == "/sites":
            return {"sites": d["sites"]}
        if p == "/appliances":
            return {"appliances": d["appliances"]}
        if p.startswith("/appliances/") and p.count("/") == 2:
            return next(a for a in d["appliances"] if a["id"] == p.split("/")[2])
        if p.endswith("/runbooks"):
            ids = ["LIN-FW-001", "RB-WIN-FW-001", "RB-WIN-PATCH-001", "LIN-SSH-001"]
            return {"enabled": ids[:3], "disabled": ids[3:], "defaults": dict.fromkeys(ids, True),
                    "site": {"LIN-SSH-001": False}, "appliance": {}}  # fmt: skip
        if p.endswith("/credentials"):
            return {"credentials": [
                {"id": "cred_01", "site_id": "site-00", "host_id": "host0", "kind": "winrm",
                 "address": "10.0.0.10", "port": 5986, "username": "svc-osiris", "lab": False,
                 "version": 3, "secret": "********"}]}  # fmt: skip
        if p.endswith("/orders"):
            return {"orders": [
                {"id": "ord_01", "appliance_id": d["appliances"][0]["id"], "kind": "run_runbook",
                 "params": {"runbook_id": "RB-WIN-FW-001", "host_id": "host0"}, "status": "done",
                 "created_at": iso(NOW - 300), "result_outcome": "healed",
                 "result_bundle_hash": "sha256:" + "2" * 64}]}  # fmt: skip
        if p == "/incidents":
            return {"incidents": d["incidents"]}
        if p == "/evidence":
            a = (params or {}).get("appliance") or d["appliances"][0]["id"]
            return {"evidence": evidence_rows(a, (params or {}).get("site", "site-00"))}
        if p == "/stats":
            return {}
        if p == "/events":  # the history page of GET /events: a drift, then its L1 heal
            a = d["appliances"][0]
            evs = [
                {"id": f"ev:{i}", "kind": kind, "at": iso(NOW - 90 + 30 * i),
                 "site_id": a["site_id"], "appliance_id": a["id"], "host_id": "host0",
                 "check": "firewall", "outcome": outcome, "tier": tier,
                 "runbook_id": rb, "order_id": None, "incident_id": None, "severity": None}
                for i, (kind, outcome, tier, rb) in enumerate(
                    [("drift", "alert", "monitor", None),
                     ("healed", "healed", "L1", "RB-WIN-FW-001")]
                )
            ]  # fmt: skip
            return {"events": evs, "cursor": "2.0.0.0", "more": False}
        if p == "/provisions":
            return {"provisions": [
                {"id": "prv_01", "site_id": "site-00", "created_by": "admin",
                 "created_at": iso(NOW - 500), "expires_at": iso(NOW + 86000), "used_at": None},
                {"id": "prv_02", "site_id": "site-02", "created_by": "admin",
                 "created_at": iso(NOW - 9000), "expires_at": iso(NOW + 70000),
                 "used_at": iso(NOW - 8000),
                 "appliance_id": d["appliances"][2]["id"]}]}  # fmt: skip
        if p in ("/learning/candidates", "/learning/candidates/L1-LRN-0A1B2C3D4E5F"):
            row = {"id": "L1-LRN-0A1B2C3D4E5F", "status": "candidate",
                   "check_id": "windows_firewall", "detect_runbook_id": "RB-WIN-FW-001",
                   "runbook_id": "RB-WIN-FW-001", "params": {},
                   "l2": {"n": 43, "ok": 41, "sites": 3, "appliances": 3, "fraction": "41/43"},
                   "after_promotion": {"n": 0, "ok": 0, "sites": 0, "appliances": 0,
                                       "fraction": "0/0"},
                   "approvable": True, "refusal": None, "canary_sites": [],
                   "updated_at": iso(NOW - 120)}  # fmt: skip
            if p == "/learning/candidates":
                return {"candidates": [row]}
            return {**row, "rule": {"id": row["id"]}, "evidence": [
                {"bundle_hash": "sha256:" + "ab" * 32, "site_id": "site-00",
                 "appliance_id": d["appliances"][0]["id"], "tier": "L2", "success": True,
                 "outcome": "healed", "at": iso(NOW - 300)}]}  # fmt: skip
        if p == "/audit":
            return {"audit": [
                {"id": 3, "at": iso(NOW - 30), "actor": "token:admin",
                 "action": "credential.reveal",
                 "target": "cred_01", "site_id": "site-00", "detail": {"host_id": "host0"}},
                {"id": 2, "at": iso(NOW - 90), "actor": "token:admin", "action": "runbooks.site",
                 "target": "site-00", "site_id": "site-00", "detail": {"LIN-SSH-001": False}},
                {"id": 1, "at": iso(NOW - 4000), "actor": "token:admin", "action": "site.create",
                 "target": "site-00", "site_id": "site-00", "detail": {}}]}  # fmt: skip
        raise NotFound(f"fixture has no {p}")
