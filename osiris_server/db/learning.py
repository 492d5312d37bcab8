"""The learning loop's rows: patterns (candidates and promoted rules) and their outcomes.

The decisions (when a pattern is a candidate, when a canary goes fleet-wide, when a rule is
disabled) live in ``osiris_server/learning.py``; this module only reads and writes rows. Every
status change bumps the ``learning`` generation in the same transaction, so every server process
rebuilds its per-site rule sets at its next look (``gen.bump``).
"""

from __future__ import annotations

from typing import Any

from osiris_server.db import gen
from osiris_server.db.engine import Database, Writer
from osiris_server.db.util import jdump, jload, now

SCOPE = "learning"
PROMOTED = ("canary", "fleet")


def generation(db: Database) -> int:
    """The learning generation (one primary-key read)."""
    return int(db.scalar("SELECT gen FROM cache_gen WHERE scope = ?", [SCOPE]) or 0)


def ensure_pattern(w: Writer, pid: str, sig: dict[str, Any]) -> None:
    """Create the pattern row on its first outcome (a second ingest of it does nothing)."""
    at = now()
    w.execute(
        "INSERT INTO learning_patterns (id, sha256, check_id, detect_runbook_id, runbook_id,"
        " params_json, shape_json, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'observing', ?, ?) ON CONFLICT (id) DO NOTHING",
        [pid, sig["sha256"], sig["check"], sig["detect_runbook_id"], sig["runbook_id"],
         jdump(sig["params"]), jdump(sig["shape"]), at, at],
    )  # fmt: skip


def add_outcome(
    w: Writer, bundle_hash: str, pid: str, bundle: dict[str, Any], tier: str, success: bool
) -> bool:
    """One outcome per bundle; False when this bundle was already counted."""
    n = w.execute(
        "INSERT INTO learning_outcomes (bundle_hash, pattern_id, site_id, appliance_id, tier,"
        " success, outcome, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (bundle_hash) DO NOTHING",
        [bundle_hash, pid, bundle["site_id"], bundle["appliance_id"], tier, 1 if success else 0,
         bundle["outcome"], bundle["finished_at"]],
    )  # fmt: skip
    return bool(n)


def tally(db: Database | Writer, pid: str, tier: str, since: str | None = None) -> dict[str, int]:
    """``{n, ok, sites, appliances}`` of one pattern's outcomes at ``tier`` (from ``since``)."""
    sql = (
        "SELECT COUNT(*) AS n, COALESCE(SUM(success), 0) AS ok,"
        " COUNT(DISTINCT site_id) AS sites, COUNT(DISTINCT appliance_id) AS appliances"
        " FROM learning_outcomes WHERE pattern_id = ? AND tier = ?"
    )
    args: list[Any] = [pid, tier]
    if since is not None:
        sql += " AND at >= ?"
        args.append(since)
    row = db.one(sql, args) or {}
    return {k: int(row.get(k) or 0) for k in ("n", "ok", "sites", "appliances")}


def pattern(db: Database | Writer, pid: str) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM learning_patterns WHERE id = ?", [pid])
    return _row(row) if row is not None else None


def patterns(db: Database, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Patterns, most recently updated first (``statuses``: only these)."""
    if statuses:
        marks = ", ".join("?" for _ in statuses)
        rows = db.query(
            f"SELECT * FROM learning_patterns WHERE status IN ({marks})"
            " ORDER BY updated_at DESC, id",
            list(statuses),
        )
    else:
        rows = db.query("SELECT * FROM learning_patterns ORDER BY updated_at DESC, id")
    return [_row(r) for r in rows]


def tallies(db: Database) -> dict[tuple[str, str], dict[str, int]]:
    """Every pattern's tally per tier in one statement (the listing)."""
    rows = db.query(
        "SELECT pattern_id, tier, COUNT(*) AS n, COALESCE(SUM(success), 0) AS ok,"
        " COUNT(DISTINCT site_id) AS sites, COUNT(DISTINCT appliance_id) AS appliances"
        " FROM learning_outcomes GROUP BY pattern_id, tier"
    )
    return {
        (r["pattern_id"], r["tier"]): {
            k: int(r[k] or 0) for k in ("n", "ok", "sites", "appliances")
        }
        for r in rows
    }


def outcomes(db: Database, pid: str, limit: int = 200) -> list[dict[str, Any]]:
    """The evidence behind a pattern: one row per bundle, newest first."""
    rows = db.query(
        "SELECT bundle_hash, site_id, appliance_id, tier, success, outcome, at"
        " FROM learning_outcomes WHERE pattern_id = ? ORDER BY at DESC, bundle_hash LIMIT ?",
        [pid, limit],
    )
    return [{**r, "success": bool(r["success"])} for r in rows]


def set_status(w: Writer, pid: str, status: str, expect: tuple[str, ...], **cols: Any) -> bool:
    """Move a pattern to ``status`` only from one of ``expect`` (re-read under the writer lock:
    two servers deciding together change it once); bumps the generation. False: not moved."""
    allowed = ("decided_by", "decided_at", "reason", "canary_json", "soak_s", "promoted_at",
               "fleet_at", "disabled_at")  # fmt: skip
    sets = ["status = ?", "updated_at = ?"]
    args: list[Any] = [status, now()]
    for k, v in cols.items():
        if k not in allowed:
            raise ValueError(f"not a learning_patterns column: {k}")
        sets.append(f"{k} = ?")
        args.append(v)
    marks = ", ".join("?" for _ in expect)
    n = w.execute(
        f"UPDATE learning_patterns SET {', '.join(sets)} WHERE id = ? AND status IN ({marks})",
        [*args, pid, *expect],
    )
    if n:
        gen.bump(w, SCOPE)
    return bool(n)


def touch(w: Writer, pid: str) -> None:
    w.execute("UPDATE learning_patterns SET updated_at = ? WHERE id = ?", [now(), pid])


def _row(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["params"] = jload(out.pop("params_json"), {})
    out["shape"] = jload(out.pop("shape_json"), {})
    out["canary_sites"] = jload(out.pop("canary_json"), [])
    return out


def pattern_sites(db: Database) -> dict[str, set[str]]:
    """Which sites each pattern has evidence from (visibility for partner and client roles)."""
    out: dict[str, set[str]] = {}
    for r in db.query("SELECT DISTINCT pattern_id, site_id FROM learning_outcomes"):
        out.setdefault(r["pattern_id"], set()).add(r["site_id"])
    return out
