"""Read-only view of an agent's state directory, for `osiris tui --local` on the appliance.

Why read the SQLite file directly (and not import osiris_agent): the technician's console must
work when the agent is wedged or the server is down, must never take the agent's write lock, and
must not drag the agent's transports into the console. The database is opened with a
``file:…?mode=ro`` URI, so a bug here cannot change the agent's evidence.

The one write the console may do — "run a cycle now" — creates a file named ``run-request`` in
the state directory, which the agent polls; the agent never listens on a socket (DESIGN §6).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris_core import sqlite
from osiris_core.errors import ExitCode, OsirisError
from osiris_core.files import write_atomic

RUN_REQUEST = "run-request"
STATE_DB = "state.db"
PINS = "pins.json"
# Meta keys the agent's cycle writes (osiris_agent/checkin.py ``_note_checkin``):
# ``last_checkin_ok_at`` is the time of the last SUCCESSFUL check-in — the only time the server
# was last reached; ``last_checkin`` is ``{"at", "ok"}`` of the latest attempt (it moves on every
# cycle, also while the server is dead, so it is never shown as "last check-in");
# ``last_contact`` carries that attempt's error. Older spellings are still read.
CHECKIN_OK_AT_KEYS = ("last_checkin_ok_at",)
ATTEMPT_KEYS = ("last_checkin", "last_checkin_at", "checkin_last")
CHECKIN_OK_KEYS = ("last_checkin_ok", "server_reachable")
CONTACT_KEY = "last_contact"
CLOCK_KEYS = ("clock", "last_clock", "ntp")


class LocalStateError(OsirisError):
    """The state directory or its database cannot be read (exit 2 in the CLI)."""

    code = "E_LOCAL_STATE"
    exit_code = ExitCode.USAGE


@dataclass
class LocalResult:
    host_id: str
    check: str
    status: str
    since: str
    observed: Any
    expected: Any
    updated_at: str


@dataclass
class LocalEvidence:
    seq: int
    bundle_hash: str
    host_id: str
    check: str
    outcome: str
    created_at: str
    log_index: int | None
    acked: bool


@dataclass
class LocalState:
    """A snapshot of what the agent knows; every field may be missing on a fresh appliance."""

    state_dir: str
    appliance_id: str | None = None
    site_id: str | None = None
    server_url: str | None = None
    last_checkin: str | None = None  # the last successful check-in: server last reached
    last_attempt: str | None = None  # the latest check-in attempt, successful or not
    last_error: str | None = None  # why the latest attempt failed (None when it did not)
    server_reachable: bool | None = None  # the latest attempt succeeded
    clock: dict[str, Any] | None = None
    outbox_depth: int = 0
    outbox_rejected: int = 0
    chain_seq: int = 0
    chain_head: str | None = None
    last_receipt: dict[str, Any] | None = None
    witness_size: int | None = None
    witness_distrust: str | None = None
    results: list[LocalResult] = field(default_factory=list)
    evidence: list[LocalEvidence] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    run_requested: bool = False
    read_at: float = 0.0
    # The facts of the clinic's attestation (`osiris-agent attest`), for the phone: public keys
    # only — the appliance's from state.db (the agent records them), the server's from pins.json.
    signing_vkey: str | None = None
    cosign_vkey: str | None = None
    log_vkey: str | None = None
    order_vkey: str | None = None
    key_rotations: int = 0
    decommissioned: int | None = None
    policy_version: str | None = None
    ruleset_hash: str | None = None

    @property
    def drift_count(self) -> int:
        return sum(1 for r in self.results if r.status == "drift")

    @property
    def cosigned_size(self) -> int | None:
        """Size of the newest checkpoint the appliance verified (and cosigns); None if none."""
        if not self.witness_size or "witness_checkpoint" not in self.meta:
            return None
        return self.witness_size

    def identity(self) -> list[tuple[str, str]]:
        """(label, value) rows a technician reads over the phone: the same facts as the
        attestation, keys as fingerprints (``osiris_core.trust.fingerprint``)."""
        head = self.chain_head if self.chain_seq else None
        cp = self.cosigned_size
        rows = [
            ("appliance", self.appliance_id or "?"),
            ("site", self.site_id or "?"),
            ("signing key", _fp(self.signing_vkey)),
            ("cosigning key", _fp(self.cosign_vkey)),
            ("log key", _fp(self.log_vkey)),
            ("order key", _fp(self.order_vkey)),
            ("key history", f"{self.key_rotations} rotation(s)"),
            ("chain head", f"seq {self.chain_seq} " + (f"{head[:23]}…" if head else "(genesis)")),
            ("cosigned checkpoint", f"size {cp}" if cp is not None else "none verified yet"),
            ("policy", f"version {self.policy_version or 'default'}, ruleset "
                       + (f"{self.ruleset_hash[:23]}…" if self.ruleset_hash else "none")),
        ]  # fmt: skip
        if self.decommissioned is not None:
            rows.append(("DECOMMISSIONED", f"chain closed at seq {self.decommissioned}"))
        return rows


def _fp(vkey: str | None) -> str:
    if not vkey:
        return "? (not recorded yet: the agent has not run)"
    from osiris_core.trust import fingerprint

    return fingerprint(vkey)


def _connect_ro(db: Path) -> sqlite3.Connection:
    # a short timeout: the console refreshes often and must not hang behind the agent's writer
    return sqlite.connect(db, readonly=True, timeout_s=2.0)


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _first(meta: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if k in meta:
            return meta[k]
    return None


def _read_checkin(st: LocalState, meta: dict[str, str]) -> None:
    """The agent's own record of its check-ins: last success, latest attempt, its error."""
    st.last_checkin = _first(meta, CHECKIN_OK_AT_KEYS)
    last = _json(_first(meta, ATTEMPT_KEYS))
    if isinstance(last, dict):
        st.last_attempt = last.get("at") or last.get("time")
        if "ok" in last:
            st.server_reachable = bool(last["ok"])
            if last["ok"] and st.last_checkin is None:  # a build that kept no success time
                st.last_checkin = st.last_attempt
    elif last is not None and st.last_checkin is None:
        st.last_checkin = str(last)  # an older build: the key held the check-in's time
    ok = _first(meta, CHECKIN_OK_KEYS)
    if ok is not None:
        st.server_reachable = ok.lower() in ("1", "true", "yes", "ok")
    contact = _json(meta.get(CONTACT_KEY))
    if isinstance(contact, dict):
        if st.last_attempt is None:
            st.last_attempt = contact.get("at")
        if st.server_reachable is None and "reachable" in contact and not contact.get("error"):
            st.server_reachable = bool(contact["reachable"])
        if st.server_reachable is False or contact.get("error"):
            err = contact.get("error")
            st.last_error = str(err) if err else None
            if st.server_reachable is None:
                st.server_reachable = False


def epoch_of(when: str | None) -> float | None:
    """Seconds since the epoch of an agent-written time; None if absent or unreadable."""
    if not when:
        return None
    from osiris_core.canonical import parse_time

    try:
        return parse_time(when).timestamp()
    except Exception:  # noqa: BLE001 - an odd value from an older agent is shown raw instead
        return None


def read_state(state_dir: str | os.PathLike[str], evidence_limit: int = 200) -> LocalState:
    """One consistent read of the agent's state (a single read transaction)."""
    d = Path(state_dir)
    db = d / STATE_DB
    if not d.is_dir():
        raise LocalStateError(f"{d}: not a directory")
    if not db.exists():
        raise LocalStateError(f"{db}: no agent state here (has the agent enrolled?)")
    st = LocalState(state_dir=str(d), read_at=time.time())
    st.run_requested = (d / RUN_REQUEST).exists()
    pins = d / PINS
    if pins.exists():
        try:
            p = json.loads(pins.read_text())
            if isinstance(p, dict):
                st.appliance_id = p.get("appliance_id")
                st.site_id = p.get("site_id")
                st.server_url = p.get("server") or p.get("server_url")
                st.log_vkey = p.get("log_vkey")
                st.order_vkey = p.get("order_vkey")
        except (OSError, ValueError):
            pass
    try:
        conn = _connect_ro(db)
    except sqlite3.Error as e:
        raise LocalStateError(f"{db}: {e}") from None
    try:
        conn.execute("BEGIN")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        st.meta = meta
        st.appliance_id = st.appliance_id or meta.get("appliance_id")
        st.site_id = st.site_id or meta.get("site_id")
        _read_checkin(st, meta)
        clock = _json(_first(meta, CLOCK_KEYS))
        st.clock = clock if isinstance(clock, dict) else None
        st.chain_seq = int(meta.get("chain_seq", "0") or 0)
        st.chain_head = meta.get("chain_head")
        if "witness_size" in meta:
            st.witness_size = int(meta["witness_size"] or 0)
        st.witness_distrust = meta.get("witness_distrust")
        st.signing_vkey = meta.get("signing_vkey")
        st.cosign_vkey = meta.get("cosign_vkey")
        history = _json(meta.get("key_history"))
        st.key_rotations = len(history) if isinstance(history, list) else 0
        if (meta.get("decommissioned") or "").isdigit():
            st.decommissioned = int(meta["decommissioned"])
        policy = _json(meta.get("policy"))
        if isinstance(policy, dict):
            st.policy_version = policy.get("policy_version")
            st.ruleset_hash = policy.get("ruleset_hash")
        st.outbox_depth = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        st.outbox_rejected = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'rejected'"
        ).fetchone()[0]
        row = conn.execute(
            "SELECT seq, bundle_hash, log_index, acked_at FROM evidence "
            "WHERE receipt IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            st.last_receipt = {
                "seq": row[0],
                "bundle_hash": row[1],
                "log_index": row[2],
                "acked_at": row[3],
            }
        for r in conn.execute(
            "SELECT host_id, check_id, status, since, observed, expected, updated_at "
            "FROM results ORDER BY host_id, check_id"
        ):
            st.results.append(LocalResult(r[0], r[1], r[2], r[3], _json(r[4]), _json(r[5]), r[6]))
        for r in conn.execute(
            "SELECT seq, bundle_hash, host_id, check_id, outcome, created_at, log_index, "
            "receipt IS NOT NULL FROM evidence ORDER BY seq DESC LIMIT ?",
            (evidence_limit,),
        ):
            st.evidence.append(LocalEvidence(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])))
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        raise LocalStateError(f"{db}: {e}") from None
    finally:
        conn.close()
    return st


def envelope(state_dir: str | os.PathLike[str], seq: int) -> dict[str, Any] | None:
    """The full signed envelope of one local bundle (for the detail pane)."""
    conn = _connect_ro(Path(state_dir) / STATE_DB)
    try:
        row = conn.execute("SELECT envelope FROM evidence WHERE seq = ?", (seq,)).fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    data = row[0]
    return json.loads(data.decode() if isinstance(data, bytes) else data)


def request_run(state_dir: str | os.PathLike[str]) -> Path:
    """Ask the agent to run a cycle now: an atomically created ``run-request`` file.

    The agent polls for it and deletes it when the cycle starts. Creating it twice is harmless.
    """
    d = Path(state_dir)
    if not d.is_dir():
        raise LocalStateError(f"{d}: not a directory")
    target = d / RUN_REQUEST
    body = json.dumps({"requested_at": int(time.time()), "by": "osiris tui --local"})
    write_atomic(target, body.encode("utf-8"), mode=0o644)  # not a secret: the agent reads it
    return target
