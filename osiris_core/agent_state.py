"""A read-only view of an agent's ``state.db`` with named fields: the one definition of what the
agent's state is called, for ``osiris-agent status`` and ``osiris tui --local`` alike.

Why in ``osiris_core``: the console may not import the agent (import contracts), yet both must
read the same keys — before this module the console guessed (``last_checkin`` or
``last_checkin_at`` or ``checkin_last`` …). The meta keys the agent writes are named once here
(:data:`META`), each with what it holds; a test runs a real cycle and checks that every one the
view names exists, so a renamed key fails a test instead of showing "never" on an appliance.

Why read-only: the view is opened with ``osiris_core.sqlite.connect(readonly=True)``
(``file:…?mode=ro`` + ``query_only``) inside one read transaction — a consistent snapshot that
cannot take the agent's write lock or change its evidence. A state dir a newer agent migrated
(``schema_migrations`` beyond :data:`KNOWN_SCHEMA`) is refused with one line (exit 2); one an
older agent wrote (no scan tables yet) reads with those parts empty.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris_core import sqlite
from osiris_core.errors import ExitCode, OsirisError

STATE_DB = "state.db"
KNOWN_SCHEMA = 2  # osiris_agent/migrations.py LATEST (a test keeps them equal)

# meta key -> what the agent keeps under it (the one list of names). META: written by every
# cycle (a test checks each exists after a real one); META_IF: only once that thing happened.
META: dict[str, str] = {
    "appliance_id": "this appliance's id (also in pins.json)",
    "site_id": "its site's id (also in pins.json)",
    "schema_version": "the store's newest migration (schema_migrations is the record)",
    "last_checkin_ok_at": "time of the last SUCCESSFUL check-in: when the server was last reached",
    "last_checkin": '{"at", "ok"} of the latest check-in attempt (moves while the server is down)',
    "last_contact": '{"at", "reachable", "error"} of the latest attempt',
    "clock": '{"ntp_ok", "offset_ms", "source"}: the last clock verdict',
    "last_clock": "the last clock verdict with its time and samples",
    "last_cycle": '{"at", "reachable", "recorded", "acked"} of the last cycle',
    "chain_seq": "seq of the newest bundle signed (0: none yet)",
    "chain_head": "hash of that bundle",
    "outbox_entries": "bundles queued (the O(1) counter, changed with the rows)",
    "outbox_bytes": "bytes queued (the same)",
    "witness_size": "size of the newest log checkpoint verified",
    "witness_checkpoint": "that signed checkpoint (what the appliance cosigns)",
    "witness_root": "that checkpoint's root hash (base64)",
    "policy": '{"policy_version", "ruleset_hash", …}: the signed policy in force',
    "policy_doc": "the signed policy envelope in force",
    "rules_version": "version of the signed L1 rule set in force",
    "signing_vkey": "the evidence signing key in force",
    "cosign_vkey": "the checkpoint cosigning key",
}
META_IF: dict[str, str] = {
    "refused_full": "bundles refused because the outbox was full",
    "witness_distrust": "why the log is no longer trusted (absent while trusted)",
    "key_history": "the signing-key rotations, oldest first",
    "decommissioned": "seq of the bundle that closed the chain (absent while open)",
    "policy_rejected": "sha256 of the last signed policy envelope refused",
    "learned_rules": "the learned L1 rules in force, by id (present once one has been)",
}


class AgentStateError(OsirisError):
    """The state directory cannot be read, or a newer agent wrote it (exit 2)."""

    code = "E_LOCAL_STATE"
    exit_code = ExitCode.USAGE


@dataclass
class AgentState:
    """One consistent snapshot of ``state.db``; every field may be empty on a fresh appliance.

    ``meta`` is the raw key/value table; the named fields below are read from the keys in
    :data:`META` and from the tables: ``results`` (last result per host and check),
    ``scan_states`` (the scanner's status per host and runbook), ``heal_memory`` (cooldowns and
    failed attempts per tier or rule, host and runbook), ``evidence`` (newest first, up to the
    limit asked), the outbox's depth/bytes/rejected entries, orders deferred and remembered,
    incidents not yet delivered.
    """

    path: str
    schema_version: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    appliance_id: str | None = None
    site_id: str | None = None
    last_checkin_ok_at: str | None = None
    last_checkin: dict[str, Any] | None = None
    last_contact: dict[str, Any] | None = None
    clock: dict[str, Any] | None = None
    last_cycle: dict[str, Any] | None = None
    chain_seq: int = 0
    chain_head: str | None = None
    outbox_depth: int = 0
    outbox_bytes: int = 0
    outbox_rejected: int = 0
    refused_full: int = 0
    last_receipt: dict[str, Any] | None = None
    witness_size: int | None = None
    witness_checkpoint: str | None = None
    witness_distrust: str | None = None
    policy: dict[str, Any] | None = None
    rules_version: str | None = None
    signing_vkey: str | None = None
    cosign_vkey: str | None = None
    key_history: list[Any] = field(default_factory=list)
    decommissioned: int | None = None
    deferred_orders: int = 0
    seen_orders: int = 0
    unsent_incidents: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    scan_states: list[dict[str, Any]] = field(default_factory=list)
    heal_memory: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def policy_version(self) -> str | None:
        return (self.policy or {}).get("policy_version")

    @property
    def ruleset_hash(self) -> str | None:
        return (self.policy or {}).get("ruleset_hash")


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dict(text: str | None) -> dict[str, Any] | None:
    v = _json(text)
    return v if isinstance(v, dict) else None


def connect_readonly(db: str | os.PathLike[str], timeout_s: float = 2.0) -> sqlite3.Connection:
    """The view's connection: read-only, and a short timeout (a console refreshes often and
    must not hang behind the agent's writer)."""
    return sqlite.connect(db, readonly=True, timeout_s=timeout_s)


def _version(conn: sqlite3.Connection, tables: set[str], meta: dict[str, str]) -> int:
    if "schema_migrations" in tables:
        v = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        if v is not None:
            return int(v)
    raw = meta.get("schema_version", "")
    return int(raw) if raw.isdigit() else (1 if "meta" in tables else 0)


def read_agent_state(state_dir: str | os.PathLike[str], evidence_limit: int = 200) -> AgentState:
    """One read transaction over ``state_dir/state.db``; :class:`AgentStateError` if absent,
    unreadable or newer than this build knows."""
    d = Path(state_dir)
    db = d / STATE_DB
    if not d.is_dir():
        raise AgentStateError(f"{d}: not a directory")
    if not db.exists():
        raise AgentStateError(f"{db}: no agent state here (has the agent enrolled?)")
    try:
        conn = connect_readonly(db)
    except sqlite3.Error as e:
        raise AgentStateError(f"{db}: {e}") from None
    try:
        conn.execute("BEGIN")
        st = _read(conn, str(db), evidence_limit)
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        raise AgentStateError(f"{db}: {e}") from None
    finally:
        conn.close()
    return st


def _read(conn: sqlite3.Connection, path: str, evidence_limit: int) -> AgentState:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    st = AgentState(path=path, meta=meta, schema_version=_version(conn, tables, meta))
    if st.schema_version > KNOWN_SCHEMA:
        raise AgentStateError(
            f"{path} has state schema version {st.schema_version}, newer than this build "
            f"knows ({KNOWN_SCHEMA}); upgrade it"
        )
    st.appliance_id, st.site_id = meta.get("appliance_id"), meta.get("site_id")
    st.last_checkin_ok_at = meta.get("last_checkin_ok_at")
    st.last_checkin = _dict(meta.get("last_checkin"))
    st.last_contact = _dict(meta.get("last_contact"))
    st.clock = _dict(meta.get("clock"))
    st.last_cycle = _dict(meta.get("last_cycle"))
    st.chain_seq = int(meta.get("chain_seq", "0") or 0)
    st.chain_head = meta.get("chain_head")
    st.refused_full = int(meta.get("refused_full", "0") or 0)
    if "witness_size" in meta:
        st.witness_size = int(meta["witness_size"] or 0)
    st.witness_checkpoint = meta.get("witness_checkpoint")
    st.witness_distrust = meta.get("witness_distrust")
    st.policy = _dict(meta.get("policy"))
    st.rules_version = meta.get("rules_version")
    st.signing_vkey, st.cosign_vkey = meta.get("signing_vkey"), meta.get("cosign_vkey")
    history = _json(meta.get("key_history"))
    st.key_history = history if isinstance(history, list) else []
    if (meta.get("decommissioned") or "").isdigit():
        st.decommissioned = int(meta["decommissioned"])

    def rows(table: str, sql: str, *args: Any) -> list[Any]:
        return conn.execute(sql, args).fetchall() if table in tables else []

    for n, b, r in rows("outbox", "SELECT COUNT(*), COALESCE(SUM(size), 0),"
                        " COALESCE(SUM(state = 'rejected'), 0) FROM outbox"):  # fmt: skip
        st.outbox_depth, st.outbox_bytes, st.outbox_rejected = int(n), int(b), int(r)
    for r in rows("evidence", "SELECT seq, bundle_hash, log_index, acked_at FROM evidence"
                  " WHERE receipt IS NOT NULL ORDER BY seq DESC LIMIT 1"):  # fmt: skip
        st.last_receipt = {"seq": r[0], "bundle_hash": r[1], "log_index": r[2], "acked_at": r[3]}
    st.deferred_orders = sum(
        r[0] for r in rows("deferred_orders", "SELECT COUNT(*) FROM deferred_orders")
    )
    st.seen_orders = sum(r[0] for r in rows("seen_orders", "SELECT COUNT(*) FROM seen_orders"))
    st.unsent_incidents = sum(
        r[0] for r in rows("incidents", "SELECT COUNT(*) FROM incidents WHERE sent_at IS NULL")
    )
    keys = ("host_id", "check", "status", "since", "observed", "expected", "updated_at")
    for r in rows("results", "SELECT host_id, check_id, status, since, observed, expected,"
                  " updated_at FROM results ORDER BY host_id, check_id"):  # fmt: skip
        st.results.append({**dict(zip(keys, r, strict=True)), "observed": _json(r[4]),
                           "expected": _json(r[5])})  # fmt: skip
    keys = ("host_id", "runbook_id", "check", "status", "since", "last_seen")
    for r in rows("scan_state", "SELECT host_id, runbook_id, check_id, status, since, last_seen"
                  " FROM scan_state ORDER BY host_id, runbook_id"):  # fmt: skip
        st.scan_states.append(dict(zip(keys, r, strict=True)))
    keys = ("name", "host_id", "runbook_id", "last_ts", "attempts")
    for r in rows("heal_memory", "SELECT name, host_id, runbook_id, last_ts, attempts"
                  " FROM heal_memory ORDER BY host_id, runbook_id, name"):  # fmt: skip
        st.heal_memory.append(dict(zip(keys, r, strict=True)))
    keys = ("seq", "bundle_hash", "host_id", "check", "outcome", "created_at", "log_index",
            "acked")  # fmt: skip
    for r in rows("evidence", "SELECT seq, bundle_hash, host_id, check_id, outcome, created_at,"
                  " log_index, receipt IS NOT NULL FROM evidence ORDER BY seq DESC LIMIT ?",
                  evidence_limit):  # fmt: skip
        st.evidence.append({**dict(zip(keys, r, strict=True)), "acked": bool(r[7])})
    return st


def read_envelope(state_dir: str | os.PathLike[str], seq: int) -> dict[str, Any] | None:
    """The full signed envelope of one local bundle (read-only)."""
    conn = connect_readonly(Path(state_dir) / STATE_DB)
    try:
        row = conn.execute("SELECT envelope FROM evidence WHERE seq = ?", (seq,)).fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    data = row[0]
    return json.loads(data.decode() if isinstance(data, bytes) else data)


__all__ = [
    "KNOWN_SCHEMA",
    "META",
    "META_IF",
    "STATE_DB",
    "AgentState",
    "AgentStateError",
    "connect_readonly",
    "read_agent_state",
    "read_envelope",
]
