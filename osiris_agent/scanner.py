"""Drift scanning on each check's own cadence, with evidence on change and an hourly snapshot.

Why not one bundle per detect: a clinic with 20 hosts × 40 runbooks every 5 minutes would sign
230,000 identical bundles a day. Instead the scanner remembers the last status per (host,
runbook) in SQLite (durable across restarts) and emits a bundle only when it *changes*
(compliant ↔ drift ↔ error; the first observation counts as a change), plus one signed snapshot
per host per hour listing every runbook's current state — so the evidence still proves
continuous monitoring (§164.316(b)(1)(ii): a record of each assessment), without a flood.

Cadence is per (host, check): Windows and Linux checks every 5 minutes by default, patch state
hourly (``DEFAULT_INTERVALS``); the agent may override per check id. Which runbooks are scanned:
every runbook for the host's platform that the policy names (enabled *or* disabled — a disabled
runbook is still watched, so its drift is reported as an ``alert``).

A ``Finding`` goes to :meth:`HealingEngine.handle` for every runbook scanned; the engine ignores
compliant ones (apart from clearing attempt counters).

A check that could not run is status ``error`` with a reason (``healing/executor.py``: ``auth``,
``unreachable``, ``timeout``, …); its bundle's outcome is ``failed`` (the catalogue's word) and
its ``post_state.error`` is ``{"kind", "detail"}``. When the *host* fails (``HOST_REASONS``: a
refused credential, no connection, a host key or certificate mismatch), the one finding that hit
it is signed as before and every other runbook of that host is set to ``error`` too, in the
scanner's memory and (through ``host_errors``) the agent's last results — so no check of an
unreachable host keeps reading compliant from its last good run. Why one bundle per host, not
one per runbook: 40 identical failures say nothing the first does not; that bundle's
``post_state.error.checks`` lists every check it stands for, and each check's recovery is
signed on its own (its status changes from ``error``).

A check the catalogue judges from an agent-provided fact (``fact = "appliance.clock"`` for
``timesync``) is detected differently on the appliance, and only there: :meth:`Scanner.judge_facts`
judges the fact (``osiris_agent/facts.py``) every cycle — the fact is measured every cycle, and
its verdict is signed every cycle, as before the catalogue held it — and the check's detect
scripts are not also run on the appliance (``runbooks_for``), so nothing is judged twice.

Why this file is long: planning, scanning, the host-failure rule and the writes of the scan
state (each change in one transaction with its bundle) are one state machine over ``scan_state``;
split apart, the rule "a state moves only with its bundle" would live in two places.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Catalog, Runbook
from osiris_core.controls import controls_for

from .facts import JUDGES, FactVerdict
from .healing.engine import EvidenceSink, Finding, Policy
from .healing.executor import HOST_REASONS, Executor, capped, split_error
from .state import StateDB

log = logging.getLogger("osiris.agent")

DEFAULT_INTERVAL_S = 300
DEFAULT_INTERVALS: dict[str, int] = {
    "windows_updates": 3600,
    "linux_patching": 3600,
    "patching": 3600,
}
SNAPSHOT_INTERVAL_S = 3600
SNAPSHOT_CHECK = "evidence_pipeline"
PLATFORM_OF_KIND = {"winrm": "windows", "ssh": "linux", "local": "nixos"}
APPLIANCE_PLATFORM = "nixos"  # the appliance itself (kind "local"), where facts are measured
OUTCOME_OF_STATUS = {"compliant": "compliant", "drift": "alert", "error": "failed"}


def is_transport_error(error: str | None) -> bool:
    """Did a phase fail because of the host (credential refused, unreachable, key or certificate
    mismatch), not because of the check's script?"""
    split = split_error(error)
    return split is not None and split[0] in HOST_REASONS


class Scanner:
    """Runs detect scripts when due; remembers status; emits change + snapshot evidence."""

    def __init__(
        self,
        catalog: Catalog,
        transports: Callable[[str], Any],
        evidence: EvidenceSink,
        db_path: str | StateDB = ":memory:",
        *,
        intervals: Mapping[str, int] | None = None,
        default_interval_s: int = DEFAULT_INTERVAL_S,
        snapshot_interval_s: int = SNAPSHOT_INTERVAL_S,
        timeout_s: float = 120.0,
    ) -> None:
        self.catalog = catalog
        self.evidence = evidence
        self.intervals = {**DEFAULT_INTERVALS, **(intervals or {})}
        self.default_interval_s = default_interval_s
        self.snapshot_interval_s = snapshot_interval_s
        self.executor = Executor(catalog, transports, timeout_s=timeout_s)
        # The agent's one store (its scan_* tables): a scan-state change commits in the same
        # transaction as the bundle that records it. A path opens a store of its own (tests).
        self._owned = not isinstance(db_path, StateDB)
        self.db = StateDB(db_path) if not isinstance(db_path, StateDB) else db_path
        self._targets: list[Any] = []
        # host id -> (error text, every check id of that host): the hosts the last run found
        # unworkable, for the agent's last results (heal.py)
        self.host_errors: dict[str, tuple[str, list[str]]] = {}
        self._later: list[tuple[str, tuple]] = []  # see _scan_host

    # -- planning ---------------------------------------------------------------------------
    def interval(self, check_id: str) -> int:
        return self.intervals.get(check_id, self.default_interval_s)

    def runbooks_for(self, target: Any, policy: Policy | None) -> dict[str, list[Runbook]]:
        """check id → runbooks to detect on this target (its platform, named by the policy)."""
        platform = PLATFORM_OF_KIND.get(target.kind)
        named = policy.enabled_runbooks | policy.disabled_runbooks if policy else None
        out: dict[str, list[Runbook]] = {}
        for rb in sorted(self.catalog.runbooks.values(), key=lambda r: r.id):
            if rb.platform != platform:
                continue
            if platform == APPLIANCE_PLATFORM and self.catalog.checks[rb.check].fact is not None:
                continue  # judged from the agent's own measurement (judge_facts)
            if named is None and not rb.default_enabled:
                continue
            if named is not None and rb.id not in named:
                continue
            out.setdefault(rb.check, []).append(rb)
        return out

    def due(
        self, now: datetime, targets: Iterable[Any] | None = None, policy: Policy | None = None
    ) -> list[tuple[str, str]]:
        """(host_id, check_id) pairs whose interval has passed (targets default to the last
        ones :meth:`run` saw)."""
        ts = now.timestamp()
        out: list[tuple[str, str]] = []
        for t in self._targets if targets is None else targets:
            for check in self.runbooks_for(t, policy):
                last = self._one(
                    "SELECT last_run FROM scan_check WHERE host_id = ? AND check_id = ?",
                    (t.host_id, check),
                )
                if last is None or ts - last[0] >= self.interval(check):
                    out.append((t.host_id, check))
        return out

    # -- scanning ---------------------------------------------------------------------------
    def run(
        self, targets: Iterable[Any], now: datetime | None = None, policy: Policy | None = None
    ) -> list[Finding]:
        """Detect everything due on ``targets``; returns a Finding per runbook scanned."""
        now = now or datetime.now(UTC)
        targets = list(targets)
        self._targets = targets
        due = set(self.due(now, targets, policy))
        findings: list[Finding] = []
        self.host_errors = {}
        for t in targets:
            self._later = []
            snapshot = self._scan_host(t, due, now, policy, findings)
            with self.db.tx() as conn:  # the host's bookkeeping: one commit, not one per check
                for sql, args in self._later:
                    conn.execute(sql, args)
            if snapshot:
                self._maybe_snapshot(t.host_id, now)
        return findings

    def _scan_host(
        self,
        t: Any,
        due: set[tuple[str, str]],
        now: datetime,
        policy: Policy | None,
        findings: list[Finding],
    ) -> bool:
        """One host's due checks. A status change commits at once with its bundle; what only
        moves the schedule (``last_run``, an unchanged ``last_seen``) waits in ``_later`` for
        the host's one bookkeeping commit (a crash before it only makes the checks due again).
        Returns whether the host's snapshot may be due."""
        done: set[str] = set()  # this host's checks judged this cycle
        plan = self.runbooks_for(t, policy)
        scanned = False
        unreachable = False
        for check, runbooks in plan.items():
            if (t.host_id, check) not in due:
                continue
            scanned = True
            refused = False
            for rb in runbooks:
                params = policy.params_for(rb.id) if policy else {}
                # what is left of the plan: checks already judged this cycle keep their
                # fresh verdict when the host fails halfway through
                rest = {c: rbs for c, rbs in plan.items() if c not in done or c == check}
                finding, recorded = self._detect(t.host_id, rb, params, now, rest)
                refused = refused or not recorded
                findings.append(finding)
                if is_transport_error(finding.error):
                    unreachable = True
                    break
            if unreachable:
                # The host cannot be worked with: one error finding says so, every other
                # runbook of it is an error too (no stale "compliant"), and all stay due
                # (retried next cycle) instead of 40 identical failures.
                assert finding.error is not None
                self.host_errors[t.host_id] = (finding.error, sorted(rest))
                break
            done.add(check)
            if refused:  # a bundle could not be queued: the check stays due, next cycle
                continue
            self._later.append((
                "INSERT INTO scan_check(host_id, check_id, last_run) VALUES (?, ?, ?)"
                " ON CONFLICT(host_id, check_id) DO UPDATE SET last_run = excluded.last_run",
                (t.host_id, check, now.timestamp()),
            ))  # fmt: skip
        return bool(scanned or plan) and not unreachable

    def judge_facts(
        self,
        host_id: str,
        facts: Mapping[str, Any],
        only: Iterable[str] | None = None,
        evidence: EvidenceSink | None = None,
    ) -> list[tuple[str, FactVerdict, str]]:
        """Judge every catalogue check that names a fact (``only``: these check ids), for the
        appliance ``host_id``; sign one ``monitor`` bundle per verdict (to ``evidence``, by
        default the scanner's sink). Returns ``(check id, verdict, finished_at)`` for the
        agent's last results."""
        sink = evidence if evidence is not None else self.evidence
        wanted = None if only is None else set(only)
        out: list[tuple[str, FactVerdict, str]] = []
        for check in sorted(self.catalog.checks.values(), key=lambda c: c.id):
            if check.fact is None or (wanted is not None and check.id not in wanted):
                continue
            started = canonical.utc_now()
            try:
                verdict = JUDGES[check.fact](facts.get(check.fact))
            except Exception as e:  # a judge's bug must not stop the cycle; it is evidence
                log.exception("check %s on %s crashed", check.id, host_id)
                verdict = FactVerdict("error", {"error": type(e).__name__}, {}, "check crashed")
            finished = canonical.utc_now()
            sink.emit(
                host_id=host_id,
                check=check.id,
                controls=list(controls_for(check.id)),
                outcome=OUTCOME_OF_STATUS[verdict.status],
                tier="monitor",
                pre_state={"observed": verdict.observed, "expected": verdict.expected},
                action_taken=verdict.detail[:4000] or None,
                started_at=started,
                finished_at=finished,
            )
            out.append((check.id, verdict, finished))
        return out

    def _mark_host_error(
        self, host_id: str, plan: Mapping[str, list[Runbook]], runbook_id: str, now: datetime
    ) -> None:
        """Every other runbook of an unworkable host → ``error`` in the scanner's memory (no
        bundle each: the finding's bundle lists them, in the same transaction)."""
        stamp = canonical.format_time(now)
        for _check, runbooks in plan.items():
            for rb in runbooks:
                if rb.id == runbook_id:
                    continue
                self._exec(
                    "INSERT INTO scan_state(host_id, runbook_id, check_id, status, since,"
                    " last_seen) VALUES (?, ?, ?, 'error', ?, ?) ON CONFLICT(host_id, runbook_id)"
                    " DO UPDATE SET since = CASE WHEN scan_state.status = 'error'"
                    " THEN scan_state.since ELSE excluded.since END, status = 'error',"
                    " last_seen = excluded.last_seen",
                    (host_id, rb.id, rb.check, stamp, stamp),
                )

    def _detect(
        self,
        host_id: str,
        rb: Runbook,
        params: dict,
        now: datetime,
        plan: Mapping[str, list[Runbook]] | None = None,
    ) -> tuple[Finding, bool]:
        """Detect one runbook; returns the finding and whether its fact was recorded — the
        scan-state change and its bundle commit together, or (outbox full: the sink signed
        nothing) neither does, so the drift is found again next cycle."""
        started = canonical.format_time(datetime.now(UTC))
        pr = self.executor.run_phase(host_id, rb, "detect", params)
        stamp = canonical.format_time(now)
        prev = self._one(
            "SELECT status, since FROM scan_state WHERE host_id = ? AND runbook_id = ?",
            (host_id, rb.id),
        )
        changed = prev is None or prev[0] != pr.status
        if not changed and plan and is_transport_error(pr.error):
            # this runbook was already an error, but the host just failed as a whole: the
            # bundle that says so must still be signed when any other check was not an error
            others = self._all(
                "SELECT status FROM scan_state WHERE host_id = ? AND runbook_id != ?",
                (host_id, rb.id),
            )
            changed = any(o[0] != "error" for o in others)
        since = stamp if prev is None or prev[0] != pr.status else prev[1]
        finding = Finding(
            host_id, rb.check, rb.id, pr.status, pr.observed, pr.expected, since, pr.error
        )
        upsert = (
            "INSERT INTO scan_state(host_id, runbook_id, check_id, status, since, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(host_id, runbook_id) DO UPDATE SET"
            " status = excluded.status, since = excluded.since, last_seen = excluded.last_seen",
            (host_id, rb.id, rb.check, pr.status, since, stamp),
        )
        if not changed and not (plan and is_transport_error(pr.error)):
            self._later.append(upsert)  # only last_seen moves: the host's bookkeeping commit
            return finding, True
        with self.db.tx():
            if changed and not self._emit_change(host_id, rb, pr, prev, plan, started):
                return finding, False  # nothing signed (outbox full): the state stays put
            self._exec(*upsert)
            if plan and is_transport_error(pr.error):
                self._mark_host_error(host_id, plan, rb.id, now)
        return finding, True

    def _emit_change(
        self,
        host_id: str,
        rb: Runbook,
        pr: Any,
        prev: Any,
        plan: Mapping[str, list[Runbook]] | None,
        started: str,
    ) -> str:
        """Sign the bundle for a status change; its hash, or "" when nothing was signed."""
        pre = {"status": prev[0], "since": prev[1]} if prev else {"status": "unknown"}
        post = pr.state()
        if is_transport_error(pr.error) and plan:
            # this one bundle stands for every check of the host (module docstring)
            post["error"]["checks"] = sorted(plan)
        return self.evidence.emit(
            check=rb.check,
            host_id=host_id,
            controls=list(controls_for(rb.check)),
            outcome=OUTCOME_OF_STATUS[pr.status],
            tier="monitor",
            runbook_id=rb.id,
            order_id=None,
            action_taken=f"{rb.id} detect: {pr.status}" + (f" ({pr.error})" if pr.error else ""),
            pre_state=pre,
            post_state=capped(post),
            rollback_available=False,
            started_at=started,
            finished_at=canonical.format_time(datetime.now(UTC)),
        )

    def states(self, host_id: str) -> dict[str, dict[str, str]]:
        rows = self._all(
            "SELECT runbook_id, check_id, status, since, last_seen FROM scan_state"
            " WHERE host_id = ? ORDER BY runbook_id",
            (host_id,),
        )
        return {
            r[0]: {"check": r[1], "status": r[2], "since": r[3], "last_seen": r[4]} for r in rows
        }

    def _maybe_snapshot(self, host_id: str, now: datetime) -> str | None:
        last = self._one("SELECT last FROM scan_snapshot WHERE host_id = ?", (host_id,))
        if last is not None and now.timestamp() - last[0] < self.snapshot_interval_s:
            return None
        states = self.states(host_id)
        if not states:
            return None
        counts: dict[str, int] = {}
        for s in states.values():
            counts[s["status"]] = counts.get(s["status"], 0) + 1
        stamp = canonical.format_time(now)
        with self.db.tx():  # the snapshot's bundle and "snapshot taken" commit together
            return self._snapshot(host_id, now, stamp, states, counts)

    def _snapshot(
        self, host_id: str, now: datetime, stamp: str, states: dict, counts: dict[str, int]
    ) -> str | None:
        h = self.evidence.emit(
            check=SNAPSHOT_CHECK,
            host_id=host_id,
            controls=list(controls_for(SNAPSHOT_CHECK)),
            outcome="compliant" if set(counts) == {"compliant"} else "alert",
            tier="monitor",
            runbook_id=None,
            order_id=None,
            action_taken=f"hourly monitoring snapshot: {len(states)} runbooks on {host_id}",
            pre_state=None,
            post_state=capped({"counts": counts, "runbooks": states}),
            rollback_available=False,
            started_at=stamp,
            finished_at=stamp,
        )
        if not h:
            return None  # not signed (outbox full): the snapshot stays due
        self._exec(
            "INSERT INTO scan_snapshot(host_id, last) VALUES (?, ?)"
            " ON CONFLICT(host_id) DO UPDATE SET last = excluded.last",
            (host_id, now.timestamp()),
        )
        return h

    # -- sqlite -----------------------------------------------------------------------------
    def _exec(self, sql: str, args: tuple) -> None:
        with self.db.tx() as conn:  # joins the caller's transaction when there is one
            conn.execute(sql, args)

    def _one(self, sql: str, args: tuple) -> Any:
        return self.db.conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple) -> list[Any]:
        return self.db.conn.execute(sql, args).fetchall()

    def close(self) -> None:
        if self._owned:
            self.db.close()
