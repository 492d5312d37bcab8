"""Read-only view of an agent's state directory, for `osiris tui --local` on the appliance.

Why read the SQLite file directly (and not import osiris_agent): the technician's console must
work when the agent is wedged or the server is down, must never take the agent's write lock, and
must not drag the agent's transports into the console. It reads through the one read-only view
with named keys, ``osiris_core.agent_state`` (the same one ``osiris-agent status`` reads), so a
bug here cannot change the agent's evidence and no key name is guessed here.

The one write the console may do — "run a cycle now" — creates a file named ``run-request`` in
the state directory, which the agent polls; the agent never listens on a socket (DESIGN §6).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris_core.agent_state import AgentState, AgentStateError, connect_readonly, read_agent_state
from osiris_core.agent_state import read_envelope as _read_envelope
from osiris_core.files import write_atomic

RUN_REQUEST = "run-request"
PINS = "pins.json"
SNAPSHOT = "status.json"  # osiris_agent/status_snapshot.py writes it (named here, not imported)
SNAPSHOT_SCHEMA = "osiris.status/1"
# The state directory or its database cannot be read (exit 2 in the CLI): the view's error.
LocalStateError = AgentStateError


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
    # read from the agent's published snapshot (a status dir) rather than its state dir
    snapshot: bool = False
    written_at: str | None = None
    interval_s: int | None = None

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


_connect_ro = connect_readonly  # tests open the view's connection to show it cannot write


def _read_checkin(st: LocalState, v: AgentState) -> None:
    """The agent's own record of its check-ins: last success, latest attempt, its error."""
    st.last_checkin = v.last_checkin_ok_at
    last = v.last_checkin or {}
    st.last_attempt = last.get("at")
    if "ok" in last:
        st.server_reachable = bool(last["ok"])
    contact = v.last_contact or {}
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


def is_snapshot(state_dir: str | os.PathLike[str]) -> bool:
    """A status dir (the agent's published ``status.json``), not the agent's state dir."""
    d = Path(state_dir)
    return (d / SNAPSHOT).exists() and not (d / "state.db").exists()


def read_snapshot(status_dir: str | os.PathLike[str]) -> LocalState:
    """The appliance's status from ``status.json`` alone: on the box the technician may read
    nothing else (the state dir holds the keys and the token). A file that is not a snapshot
    is an error, never a guess."""
    d = Path(status_dir)
    try:
        doc = json.loads((d / SNAPSHOT).read_text(encoding="utf-8"))
    except OSError as e:
        raise LocalStateError(f"{d / SNAPSHOT}: cannot read: {e.strerror or e}") from None
    except ValueError:
        raise LocalStateError(f"{d / SNAPSHOT}: not JSON (a snapshot being written?)") from None
    if not isinstance(doc, dict) or doc.get("schema") != SNAPSHOT_SCHEMA:
        raise LocalStateError(f"{d / SNAPSHOT}: not an Osiris status snapshot")

    def text(key: str) -> str | None:
        v = doc.get(key)
        return str(v) if v is not None else None

    def num(key: str) -> int:
        v = doc.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    st = LocalState(state_dir=str(d), read_at=time.time(), snapshot=True)
    st.written_at = text("written_at")
    st.appliance_id, st.site_id = text("appliance_id"), text("site_id")
    st.server_url = text("server_url")
    st.last_checkin, st.last_attempt = text("last_reached_at"), text("last_attempt_at")
    st.last_error = text("last_error")
    ok = doc.get("last_attempt_ok")
    st.server_reachable = ok if isinstance(ok, bool) else None
    st.clock = doc.get("clock") if isinstance(doc.get("clock"), dict) else None
    st.interval_s = num("checkin_interval_s") or None
    st.outbox_depth, st.outbox_rejected = num("outbox_depth"), num("outbox_rejected")
    st.chain_seq, st.chain_head = num("chain_seq"), text("chain_head")
    st.last_receipt = doc.get("last_receipt") if isinstance(doc.get("last_receipt"), dict) else None
    st.witness_size = num("witness_size") if doc.get("witness_size") is not None else None
    if doc.get("witness_cosigned"):
        st.meta["witness_checkpoint"] = "(in the snapshot)"
    st.witness_distrust = text("witness_distrust")
    st.signing_vkey, st.cosign_vkey = text("signing_vkey"), text("cosign_vkey")
    st.log_vkey, st.order_vkey = text("log_vkey"), text("order_vkey")
    st.key_rotations = num("key_rotations")
    dec = doc.get("decommissioned")
    st.decommissioned = dec if isinstance(dec, int) and not isinstance(dec, bool) else None
    st.policy_version, st.ruleset_hash = text("policy_version"), text("ruleset_hash")
    for row in doc.get("results") or []:
        if isinstance(row, dict):
            st.results.append(LocalResult(**{k: row.get(k) for k in _RESULT_KEYS}))
    for row in doc.get("evidence") or []:
        if isinstance(row, dict):
            st.evidence.append(LocalEvidence(**{k: row.get(k) for k in _EVIDENCE_KEYS}))
    return st


def snapshot_age_s(st: LocalState, now: float | None = None) -> float | None:
    """How old the agent's snapshot is (None when the view is not a snapshot)."""
    at = epoch_of(st.written_at)
    return None if at is None else max(0.0, (now or time.time()) - at)


def is_stale(st: LocalState, now: float | None = None) -> bool:
    """Older than three check-in intervals (at least 5 min): the agent is not publishing."""
    age = snapshot_age_s(st, now)
    return age is not None and age > max(300, 3 * (st.interval_s or 60))


def read_state(state_dir: str | os.PathLike[str], evidence_limit: int = 200) -> LocalState:
    """One consistent read of the agent's state (a single read transaction); a status dir
    (the appliance's ``status.json``) is read from the snapshot alone."""
    d = Path(state_dir)
    if not d.is_dir():
        raise LocalStateError(f"{d}: not a directory")
    if is_snapshot(d):
        return read_snapshot(d)
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
    v = read_agent_state(d, evidence_limit)  # one read transaction, named fields
    st.meta = v.meta
    st.appliance_id = st.appliance_id or v.appliance_id
    st.site_id = st.site_id or v.site_id
    _read_checkin(st, v)
    st.clock = v.clock
    st.chain_seq, st.chain_head = v.chain_seq, v.chain_head
    st.witness_size, st.witness_distrust = v.witness_size, v.witness_distrust
    st.signing_vkey, st.cosign_vkey = v.signing_vkey, v.cosign_vkey
    st.key_rotations = len(v.key_history)
    st.decommissioned = v.decommissioned
    st.policy_version, st.ruleset_hash = v.policy_version, v.ruleset_hash
    st.outbox_depth, st.outbox_rejected = v.outbox_depth, v.outbox_rejected
    st.last_receipt = v.last_receipt
    st.results = [LocalResult(**r) for r in v.results]
    st.evidence = [LocalEvidence(**e) for e in v.evidence]
    return st


_RESULT_KEYS = ("host_id", "check", "status", "since", "observed", "expected", "updated_at")
_EVIDENCE_KEYS = (
    "seq", "bundle_hash", "host_id", "check", "outcome", "created_at", "log_index", "acked",
)  # fmt: skip


def envelope(state_dir: str | os.PathLike[str], seq: int) -> dict[str, Any] | None:
    """The full signed envelope of one local bundle (for the detail pane); a snapshot holds
    none (the envelopes live in the agent's private state.db)."""
    if is_snapshot(state_dir):
        return None
    return _read_envelope(state_dir, seq)


def request_run(state_dir: str | os.PathLike[str]) -> Path:
    """Ask the agent to run a cycle now: an atomically created ``run-request`` file.

    The agent polls for it and deletes it when the cycle starts. Creating it twice is harmless.
    """
    d = Path(state_dir)
    if not d.is_dir():
        raise LocalStateError(f"{d}: not a directory")
    if is_snapshot(d):
        raise LocalStateError(
            "this console reads the agent's published snapshot and cannot ask for a cycle; "
            "the agent runs one every check-in interval"
        )
    target = d / RUN_REQUEST
    body = json.dumps({"requested_at": int(time.time()), "by": "osiris tui --local"})
    write_atomic(target, body.encode("utf-8"), mode=0o644)  # not a secret: the agent reads it
    return target
