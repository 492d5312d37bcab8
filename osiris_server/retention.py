"""Evidence retention: when the server may drop an evidence body, and the record of each drop.

Where a body lives: the signed envelope is stored once, as the entry bytes of its leaf in the
transparency log (``leaves.entry``); the evidence index row (``evidence``) holds only the facts
to find it (hash, site, appliance, seq, check, outcome, times). A prune therefore blanks the
log's entry bytes (``PRUNED``: empty bytes under a leaf hash that is not the empty entry's —
evidence is never an empty entry, so the two cannot be confused) and keeps
everything a proof is made of: the leaf hash, every interior hash, every checkpoint, and the
index row. Roots, inclusion and consistency proofs are unchanged; the tree still verifies.
What an auditor can no longer do on this server is re-hash a pruned entry: ``log_audit``
accepts a blank entry only where a recorded prune says so, and the body is in WORM.

A leaf is pruned only when ALL hold (re-checked inside the index's write transaction):

* it is older than ``retention_years`` (≥ 6, 45 CFR 164.316(b)(2)(i); config refuses less):
  both the server's ``received_at`` and the signed ``finished_at`` are before the cutoff;
* its index lies inside a WORM object the server uploaded (``worm_objects`` kind ``leaves``,
  state ``uploaded``, ``first_index``..``last_index``): the part of a range that no such object
  covers is refused, leaf by leaf;
* its site is not under legal hold (``db/legal_holds``).

Each prune batch is logged twice in the same index transaction that marks its rows: a
``retention_prunes`` row (index range, count, sha256 over the pruned leaves, the WORM keys, the
retention in force, the clock used, who, when) and an audit row per site (``retention.prune``).
The log's entries are blanked after that commit, in the log's own transaction, and the row gets
``log_done_at``; a crash in between leaves a pending prune that the next run finishes (same
leaves, same digest), so the index never claims less than the log holds.

A hostile operator with shell access can set the clock forward; that prunes early but loses
nothing: a leaf is pruned only once it is in Object Lock storage, which the MSP cannot shorten.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from osiris_core import canonical
from osiris_server.db import audit as db_audit
from osiris_server.db import legal_holds
from osiris_server.db.engine import Database, Writer
from osiris_server.log_audit import prune_digest as digest
from osiris_server.logstore import LogError, LogStore
from osiris_server.storage.base import Tx

PRUNED = b""  # a pruned leaf's entry bytes (its leaf hash is not the empty entry's)
BATCH = 5000  # leaves per prune record: bounded transactions and memory
_IN = 500  # values per IN (...) list
_SHOWN = ("id", "first_index", "last_index", "count", "hashes_sha256", "worm_keys", "by_site")
WORM_NOTE = (
    "the body of this bundle was pruned from the server after its retention period; the signed "
    "envelope is in WORM (S3 Object Lock) storage under these keys, and its leaf hash is still "
    "in the log, so its inclusion proof verifies"
)


def cutoff(now: dt.datetime, years: int) -> str:
    """``now`` minus ``years`` calendar years (29 February → 28 February), canonical UTC."""
    try:
        then = now.replace(year=now.year - years)
    except ValueError:
        then = now.replace(year=now.year - years, day=28)
    return canonical.format_time(then)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), _IN):
        yield values[i : i + _IN]


def worm_rows(db: Database | Writer) -> list[dict[str, Any]]:
    """The index's rows for uploaded WORM objects holding leaves (what the bucket must confirm)."""
    return db.query(
        "SELECT key, sha256, bytes, version_id, first_index, last_index FROM worm_objects"
        " WHERE kind = 'leaves' AND state = 'uploaded' AND first_index IS NOT NULL"
        " AND last_index IS NOT NULL AND first_index <= last_index ORDER BY key"
    )


def worm_ranges(
    db: Database | Writer, confirmed: frozenset[str] | None = None
) -> list[tuple[int, int, str]]:
    """The uploaded WORM objects holding leaves, (first, last, key), sorted. ``confirmed``: the
    keys the bucket itself showed locked with the right bytes (osiris_server.worm
    ``worm_confirm.confirm_locked``); an index row the bucket did not confirm covers nothing."""
    rows = worm_rows(db)
    if confirmed is not None:
        rows = [r for r in rows if r["key"] in confirmed]
    return sorted((int(r["first_index"]), int(r["last_index"]), r["key"]) for r in rows)


class _Coverage:
    """Which leaf indices the WORM objects cover (merged intervals, binary search)."""

    def __init__(self, ranges: list[tuple[int, int, str]]) -> None:
        self.ranges = ranges
        merged: list[list[int]] = []
        for first, last, _key in ranges:
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self._starts = [m[0] for m in merged]
        self._merged = merged

    def covers(self, idx: int) -> bool:
        i = bisect.bisect_right(self._starts, idx) - 1
        return i >= 0 and self._merged[i][1] >= idx

    def keys_for(self, indices: list[int]) -> list[str]:
        """The keys of the objects holding at least one of ``indices`` (sorted)."""
        out = set()
        for first, last, key in self.ranges:
            j = bisect.bisect_left(indices, first)
            if j < len(indices) and indices[j] <= last:
                out.add(key)
        return sorted(out)


@dataclass
class Plan:
    """What a prune would do now, and why each other old leaf is refused."""

    now: str
    cutoff: str
    years: int
    prunable: list[tuple[int, str, str]] = field(default_factory=list)  # (index, hash, site)
    held: dict[str, int] = field(default_factory=dict)  # site -> old leaves kept by a hold
    not_in_worm: int = 0
    first_not_in_worm: int | None = None
    confirmed: frozenset[str] | None = None  # keys the bucket confirmed (None: the index's word)

    def as_dict(self) -> dict[str, Any]:
        idx = [p[0] for p in self.prunable]
        sites: dict[str, int] = {}
        for p in self.prunable:
            sites[p[2]] = sites.get(p[2], 0) + 1
        return {
            "now": self.now,
            "cutoff": self.cutoff,
            "retention_years": self.years,
            "prunable": len(idx),
            "first_index": idx[0] if idx else None,
            "last_index": idx[-1] if idx else None,
            "prunable_by_site": sites,
            "refused_held": self.held,
            "refused_not_in_worm": self.not_in_worm,
            "first_not_in_worm": self.first_not_in_worm,
        }


def _candidates(db: Database | Writer, cut: str, only: list[int] | None = None) -> list[dict]:
    sql = (
        "SELECT log_index, bundle_hash, site_id FROM evidence WHERE pruned_id IS NULL"
        " AND received_at < ? AND finished_at < ?"
    )
    if only is None:
        return db.query(sql + " ORDER BY log_index", [cut, cut])
    out: list[dict] = []
    for part in _chunks(only):
        marks = ",".join("?" for _ in part)
        out += db.query(sql + f" AND log_index IN ({marks})", [cut, cut, *part])
    return sorted(out, key=lambda r: int(r["log_index"]))


def _plan_rows(
    rows: list[dict], held: set[str], cov: _Coverage, plan: Plan
) -> list[tuple[int, str, str]]:
    out = []
    for r in rows:
        idx, site = int(r["log_index"]), r["site_id"]
        if site in held:
            plan.held[site] = plan.held.get(site, 0) + 1
        elif not cov.covers(idx):
            plan.not_in_worm += 1
            if plan.first_not_in_worm is None:
                plan.first_not_in_worm = idx
        else:
            out.append((idx, r["bundle_hash"], site))
    return out


def plan(
    db: Database,
    years: int,
    now: dt.datetime | None = None,
    confirmed: frozenset[str] | None = None,
) -> Plan:
    """What may be pruned at ``now`` (default: the clock) under ``years`` of retention; with
    ``confirmed``, only leaves in WORM objects the bucket confirmed count as in WORM."""
    when = now or dt.datetime.now(dt.UTC)
    p = Plan(canonical.format_time(when), cutoff(when, years), years, confirmed=confirmed)
    held = legal_holds.held_sites(db)
    cov = _Coverage(worm_ranges(db, confirmed))
    p.prunable = _plan_rows(_candidates(db, p.cutoff), held, cov, p)
    return p


def _leaf_hashes(store: LogStore, indices: list[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    with store.reading() as r:
        for part in _chunks(indices):
            marks = ",".join("?" for _ in part)
            for row in r.query(f"SELECT idx, leaf_hash FROM leaves WHERE idx IN ({marks})", part):
                out[int(row["idx"])] = bytes(row["leaf_hash"])
    return out


def _record(
    w: Writer, batch: list[tuple[int, str, str]], leaves: dict[int, bytes], p: Plan, actor: str
) -> dict[str, Any] | None:
    """Inside the index transaction: re-check the batch (a hold or a WORM change committed
    since the plan wins), then write the prune row, mark the rows and audit per site."""
    recheck = Plan(p.now, p.cutoff, p.years)
    rows = _candidates(w, p.cutoff, [b[0] for b in batch])
    cov = _Coverage(worm_ranges(w, p.confirmed))
    keep = _plan_rows(rows, legal_holds.held_sites(w), cov, recheck)
    keep = [k for k in keep if k[0] in leaves]
    if not keep:
        return None
    indices = [k[0] for k in keep]
    prune_id = int(w.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM retention_prunes"))
    keys = cov.keys_for(indices)
    row = {
        "id": prune_id,
        "first_index": indices[0],
        "last_index": indices[-1],
        "count": len(indices),
        "hashes_sha256": digest([(i, leaves[i], bh) for i, bh, _s in keep]),
        "worm_keys": json.dumps(keys),
        "retention_years": p.years,
        "now_at": p.now,
        "pruned_by": actor,
        "pruned_at": canonical.utc_now(),
    }
    w.insert("retention_prunes", row)
    for part in _chunks(indices):
        marks = ",".join("?" for _ in part)
        w.execute(
            f"UPDATE evidence SET pruned_id = ? WHERE pruned_id IS NULL AND log_index IN ({marks})",
            [prune_id, *part],
        )
    sites: dict[str, int] = {}
    for _i, _bh, s in keep:
        sites[s] = sites.get(s, 0) + 1
    for site, n in sorted(sites.items()):
        detail = {"prune_id": prune_id, "count": n, "first_index": indices[0],
                  "last_index": indices[-1], "hashes_sha256": row["hashes_sha256"],
                  "worm_keys": keys, "retention_years": p.years, "cutoff": p.cutoff}  # fmt: skip
        db_audit.record(w, actor, "retention.prune", f"prune:{prune_id}", site, None, detail)
    return {**row, "worm_keys": keys, "by_site": sites}


def _blank(store: LogStore, db: Database, prune: dict[str, Any]) -> None:
    """Blank the log entries of a recorded prune (idempotent), then stamp ``log_done_at``.
    Refuses (``LogError``) when the stored leaves no longer hash to the prune's digest."""
    rows = db.query(
        "SELECT log_index, bundle_hash FROM evidence WHERE pruned_id = ? ORDER BY log_index",
        [prune["id"]],
    )
    indices = [int(r["log_index"]) for r in rows]

    def blank(tx: Tx) -> None:
        got: dict[int, bytes] = {}
        for part in _chunks(indices):
            marks = ",".join("?" for _ in part)
            for r in tx.query(f"SELECT idx, leaf_hash FROM leaves WHERE idx IN ({marks})", part):
                got[int(r["idx"])] = bytes(r["leaf_hash"])
        pairs = [(int(r["log_index"]), got.get(int(r["log_index"]), b""), r["bundle_hash"])
                 for r in rows]  # fmt: skip
        if len(got) != len(indices) or digest(pairs) != prune["hashes_sha256"]:
            raise LogError(
                f"prune {prune['id']}: the log's leaves no longer match the prune record; "
                "nothing blanked (run `osiris-server log verify`)"
            )
        tx.executemany("UPDATE leaves SET entry = ? WHERE idx = ?", [[PRUNED, i] for i in indices])

    store.transact(blank)
    with db.write() as w:
        w.execute(
            "UPDATE retention_prunes SET log_done_at = ? WHERE id = ? AND log_done_at IS NULL",
            [canonical.utc_now(), prune["id"]],
        )


def pending(db: Database) -> list[dict[str, Any]]:
    """Prunes recorded in the index whose log entries are not blanked yet (a crash between)."""
    return db.query("SELECT * FROM retention_prunes WHERE log_done_at IS NULL ORDER BY id")


def prune(
    db: Database,
    store: LogStore,
    years: int,
    actor: str,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    confirmed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Prune what ``plan`` allows (in batches of ``BATCH``), first finishing any pending prune.
    ``dry_run``: the plan only, nothing written. ``now`` is for tests (the CLI never sets it).
    ``confirmed``: the WORM keys the bucket confirmed (the CLI always passes them)."""
    p = plan(db, years, now, confirmed)
    out: dict[str, Any] = {"dry_run": dry_run, **p.as_dict(), "prunes": [], "finished": []}
    if dry_run:
        out["pending"] = [r["id"] for r in pending(db)]
        return out
    for row in pending(db):
        _blank(store, db, row)
        out["finished"].append(row["id"])
    for i in range(0, len(p.prunable), BATCH):
        batch = p.prunable[i : i + BATCH]
        leaves = _leaf_hashes(store, [b[0] for b in batch])
        with db.write() as w:
            rec = _record(w, batch, leaves, p, actor)
        if rec is None:
            continue
        _blank(store, db, rec)
        out["prunes"].append({k: rec[k] for k in _SHOWN})
    out["pruned"] = sum(r["count"] for r in out["prunes"])
    return out


def status(
    db: Database,
    years: int,
    now: dt.datetime | None = None,
    confirmed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The retention policy in force and what it would do now (a dry run), the holds, and the
    prunes done so far (newest 20)."""
    p = plan(db, years, now, confirmed)
    totals = db.one("SELECT COUNT(*) AS n, COUNT(pruned_id) AS pruned FROM evidence") or {
        "n": 0,
        "pruned": 0,
    }
    recent = db.query("SELECT * FROM retention_prunes ORDER BY id DESC LIMIT 20")
    for r in recent:
        r["worm_keys"] = json.loads(r["worm_keys"])
    return {
        **p.as_dict(),
        "evidence": int(totals["n"]),
        "pruned": int(totals["pruned"]),
        "holds": legal_holds.all_rows(db),
        "recent_prunes": recent,
        "pending": [r["id"] for r in pending(db)],
    }


def pruned_notes(db: Database, rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """For the evidence rows among ``rows`` that were pruned: {log_index: what an export says
    instead of the envelope} (the prune, when, the WORM keys holding that leaf)."""
    gone = [r for r in rows if r.get("pruned_id") is not None]
    if not gone:
        return {}
    ids = sorted({int(r["pruned_id"]) for r in gone})
    prunes = {}
    for part in _chunks(ids):
        marks = ",".join("?" for _ in part)
        for p in db.query(f"SELECT * FROM retention_prunes WHERE id IN ({marks})", part):
            prunes[int(p["id"])] = p
    cov = _Coverage(worm_ranges(db))
    out = {}
    for r in gone:
        idx, p = int(r["log_index"]), prunes.get(int(r["pruned_id"]), {})
        out[idx] = {
            "prune_id": int(r["pruned_id"]),
            "pruned_at": p.get("pruned_at"),
            "retention_years": p.get("retention_years"),
            "worm_keys": cov.keys_for([idx]),
            "note": WORM_NOTE,
        }
    return out
