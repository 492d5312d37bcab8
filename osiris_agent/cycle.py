"""One agent cycle: check in → apply → run checks → sign evidence → flush (DESIGN §2).

The :class:`Agent` owns the appliance's keys, its ``state.db`` and one HTTP connection. What the
server sends at check-in is applied to memory only: targets and their credentials are *never*
written anywhere (not ``state.db``, not a log line, not evidence). Everything the agent must not
forget — the chain, the outbox, receipts, the witness checkpoint, seen and deferred orders, last
results — is in ``state.db`` (see ``state.py``).

The ``run`` loop sleeps on an :class:`threading.Event`, so SIGTERM (which sets it) ends the loop
promptly between steps, and it polls for the ``run-request`` file a technician's console may
create to ask for a cycle now: there is no socket to ask through, because the appliance never
listens on a port.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.errors import OsirisError, SchemaError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Verifier, load_private_key
from osiris_core.protocol import (
    rules_message,
    validate_checkin_request,
    validate_checkin_response,
)

from . import ntp
from .checks import Check, CheckResult, HostHandle, TimesyncCheck, result_outcome
from .client import AuthRefused, ClientError, ServerClient, ServerRefused, ServerUnreachable
from .config import AgentConfig, WindowConfig
from .enroll import read_pins
from .orders import OrderBook, OrderOutcome
from .outbox import Backoff, Outbox, OutboxFull
from .state import StateDB
from .witness import LogInconsistent, Witness

log = logging.getLogger("osiris.agent")

AGENT_VERSION = "0.1.0"
BATCH = 100
RUN_REQUEST = "run-request"


@dataclass
class CycleReport:
    """What one cycle did; ``once`` exits 1 unless ``reachable``."""

    reachable: bool = False
    checked_in: bool = False
    recorded: int = 0
    acked: int = 0
    refused_full: int = 0
    errors: list[str] = field(default_factory=list)


def clock_from_config(cfg: AgentConfig) -> Callable[[], ntp.ClockVerdict]:
    def measure() -> ntp.ClockVerdict:
        return ntp.check_clock(
            list(cfg.ntp.servers),
            max_skew_ms=cfg.ntp.max_skew_ms,
            timeout=cfg.ntp.timeout_ms / 1000.0,
            min_good=cfg.ntp.min_good,
        )

    return measure


class Agent:
    """The appliance agent: state, keys, server connection, and the cycle."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        measure_clock: Callable[[], ntp.ClockVerdict] | None = None,
        now: Callable[[], datetime] | None = None,
        checks: list[Check] | None = None,
    ) -> None:
        self.cfg = cfg
        self.state_dir = Path(cfg.agent.state_dir)
        self.pins = read_pins(self.state_dir)
        self.appliance_id: str = self.pins["appliance_id"]
        self.site_id: str = self.pins["site_id"]
        self.signer = load_private_key(cfg.agent.key_file)
        self.cosigner = load_private_key(cfg.agent.cosign_key_file)
        if self.cosigner.key_type != KEY_TYPE_COSIGNATURE:
            raise OsirisError(f"{cfg.agent.cosign_key_file} is not a cosignature key")
        token = Path(cfg.agent.token_file).read_text().strip()
        self.client = ServerClient(cfg.server.url, token, cfg.server.ca_file)
        self.db = StateDB.open_dir(self.state_dir)
        self.outbox = Outbox(self.db, cfg.outbox.max_entries, cfg.outbox.max_bytes)
        self.witness = Witness(
            self.db, Verifier.from_vkey(self.pins["log_vkey"]), self.pins.get("server_origin")
        )
        self.order_verifier = Verifier.from_vkey(self.pins["order_vkey"])
        self.orders = OrderBook(self.db, self.order_verifier, self.appliance_id)
        self.measure_clock = measure_clock or clock_from_config(cfg)
        self.now = now or (lambda: datetime.now(UTC))
        self.checks: list[Check] = checks if checks is not None else [TimesyncCheck()]
        self.backoff = Backoff(base=2.0, cap=300.0)
        self.started = time.monotonic()
        self.clock: ntp.ClockVerdict | None = None
        # Memory only: what the last check-in delivered (credentials included).
        self.targets: list[Any] = []
        self.runbooks: dict[str, list[str]] = {"enabled": [], "disabled": []}
        self.rules: dict[str, Any] | None = None
        self.window = cfg.window
        self.next_checkin_s: int = cfg.agent.checkin_interval_s
        self.reseller = None
        r = cfg.reseller
        if cfg.deployment.mode == "reseller" and (r.syslog_target or r.webhook_url):
            from .reseller import ResellerSink

            self.reseller = ResellerSink(
                self.signer, r.syslog_target, r.webhook_url, cfg.server.ca_file
            )

    def close(self) -> None:
        self.client.close()
        self.db.close()

    # -- evidence -----------------------------------------------------------------------------

    def _clock_field(self) -> dict[str, Any]:
        if self.clock is None:
            return {"ntp_ok": False, "offset_ms": None, "source": "unchecked"}
        return self.clock.to_evidence()

    def record(self, report: CycleReport | None = None, **fields: Any) -> dict[str, Any] | None:
        """Sign one bundle into the chain and the outbox; ``None`` if the outbox is full."""
        fields.setdefault("site_id", self.site_id)
        fields.setdefault("controls", [])
        fields.setdefault("clock", self._clock_field())
        fields.setdefault("agent_version", AGENT_VERSION)
        fields.setdefault("deployment_mode", self.cfg.deployment.mode)
        fields.setdefault("reseller_id", self.cfg.deployment.reseller_id)
        try:
            env = self.outbox.record(self.signer, self.appliance_id, **fields)
        except OutboxFull as e:
            if report is not None:
                report.refused_full += 1
            self._outbox_full(str(e), fields)
            return None
        if report is not None:
            report.recorded += 1
        if self.reseller is not None:
            self.reseller.emit(env)
        return env

    def _outbox_full(self, why: str, fields: dict[str, Any]) -> None:
        log.error("outbox full, evidence NOT recorded: %s (%s on %s)", why,
                  fields.get("check"), fields.get("host_id"))  # fmt: skip
        with self.db.tx():
            n = int(self.db.get("refused_full", "0") or 0) + 1
            self.db.set("refused_full", str(n))
            pending = [i for i in self.db.unsent_incidents() if i["kind"] == "outbox_full"]
            if not pending:
                self.db.add_incident(
                    "outbox_full",
                    "critical",
                    "the evidence outbox is full; new evidence is being refused",
                    {"reason": why, "refused_total": n, "depth": self.outbox.depth()},
                )

    # -- check-in -----------------------------------------------------------------------------

    def status_block(self) -> dict[str, Any]:
        seq, head = self.outbox.head()
        clock = self._clock_field()
        return {
            "uptime_s": int(time.monotonic() - self.started),
            "outbox_depth": self.outbox.depth(),
            "chain_head": head,
            "seq": seq,
            "clock": {
                "ntp_ok": clock["ntp_ok"],
                "offset_ms": clock["offset_ms"] if clock["offset_ms"] is not None else 0,
                "source": clock["source"][:128],
            },
            "checks": [
                {
                    "host_id": r["host_id"],
                    "check": r["check"],
                    "status": r["status"],
                    "since": r["since"],
                }  # fmt: skip
                for r in self.db.results()
            ],
        }

    def checkin(self, report: CycleReport) -> dict[str, Any] | None:
        """POST /checkin and apply the answer; ``None`` when the server is unreachable."""
        req = {
            "appliance_id": self.appliance_id,
            "agent_version": AGENT_VERSION,
            "status": self.status_block(),
            "log_size_seen": self.witness.size,
            "cosignatures": self.witness.cosignatures(self.cosigner),
        }
        validate_checkin_request(req)
        at = canonical.utc_now()
        try:
            resp = self.client.post("/checkin", req)
            validate_checkin_response(resp)
        except ServerUnreachable as e:
            self._note_checkin(at, False, str(e))
            report.errors.append(str(e))
            return None
        except SchemaError as e:
            self._note_checkin(at, True, f"bad check-in answer: {e}")
            report.errors.append(f"bad check-in answer: {e}")
            report.reachable = True
            return None
        report.reachable = report.checked_in = True
        self._note_checkin(at, True, None)
        self.apply(resp, report)
        return resp

    def _note_checkin(self, at: str, reachable: bool, error: str | None) -> None:
        with self.db.tx():
            self.db.set_json("last_contact", {"at": at, "reachable": reachable, "error": error})
            if reachable and error is None:
                self.db.set("last_checkin", at)

    def apply(self, resp: dict[str, Any], report: CycleReport) -> None:
        """Apply a validated check-in answer; targets and credentials stay in memory."""
        from .hosts.base import Target

        targets = []
        for t in resp["targets"]:
            targets.append(
                Target(
                    host_id=t["host_id"],
                    kind=t["kind"],
                    address=t["address"],
                    port=t["port"] or None,
                    username=t["username"] or None,
                    password=t.get("password"),
                    private_key=t.get("private_key"),
                    host_key_fingerprints=tuple(t["host_key_fingerprints"]),
                    lab=t["lab"],
                    use_tls=t["use_tls"],
                    verify_tls=t["verify_tls"],
                )
            )
        self.targets = targets
        self.runbooks = {k: list(v) for k, v in resp["runbooks"].items()}
        self._apply_rules(resp["rules"])
        self._apply_window(resp["window"])
        self.next_checkin_s = resp["next_checkin_s"]
        now = self.now()
        in_window = self.in_window(now)
        for env in resp["orders"]:
            with self.db.tx():
                outcome = self.orders.receive(
                    env, now, in_window, self.window.allow_disruptive_outside
                )
                self.record(report, **outcome.bundle_fields(self.appliance_id))
            self._act(outcome, report)

    def _apply_rules(self, rules: dict[str, Any]) -> None:
        import base64

        signed = rules["signed"]
        sig = signed["sig"]
        try:
            raw = base64.b64decode(sig["value"], validate=True)
            msg = canonical.dumps(rules_message(signed["rules"], signed["version"]))
            ok = sig["key_id"] == self.order_verifier.key_id_hex and self.order_verifier.verify(
                msg, raw
            )
        except (ValueError, OsirisError):
            ok = False
        if not ok:
            log.error("rules version %s: signature by the pinned order key fails; kept old rules",
                      rules["version"][:64])  # fmt: skip
            with self.db.tx():
                self.db.add_incident(
                    "rules_signature",
                    "high",
                    "received rules whose signature does not verify; they were ignored",
                    {"version": rules["version"][:128]},
                )
            return
        self.rules = {"version": signed["version"], "rules": signed["rules"]}
        with self.db.tx():
            self.db.set("rules_version", signed["version"])

    def _apply_window(self, w: dict[str, Any]) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(w["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("server sent unknown time zone %r; keeping the configured window",
                        w["timezone"][:64])  # fmt: skip
            return
        self.window = WindowConfig(
            days=tuple(w["days"]),
            start=w["start"],
            duration_min=max(1, min(1440, w["duration_min"])),
            timezone=w["timezone"],
            allow_disruptive_outside=self.cfg.window.allow_disruptive_outside,
        )

    def in_window(self, now: datetime) -> bool:
        return dataclasses.replace(self.cfg, window=self.window).in_maintenance_window(now)

    def _act(self, outcome: OrderOutcome, report: CycleReport) -> None:
        if outcome.action == "collect_evidence":
            params = (outcome.order or {}).get("params") or {}
            self.run_checks(report, host_id=params.get("host_id"), only=params.get("checks"))
        elif outcome.action == "refresh_rules":
            self.checkin_no_orders(report)

    def checkin_no_orders(self, report: CycleReport) -> None:
        """A second check-in on request; its own orders are handled (no recursion loop)."""
        sub = CycleReport()
        self.checkin(sub)
        report.recorded += sub.recorded

    # -- checks -------------------------------------------------------------------------------

    def hosts(self) -> list[HostHandle]:
        own = HostHandle(self.appliance_id, "local", clock=self.clock)
        return [own] + [HostHandle(t.host_id, t.kind, target=t, clock=self.clock)
                        for t in self.targets]  # fmt: skip

    def run_checks(
        self, report: CycleReport, host_id: str | None = None, only: list[str] | None = None
    ) -> None:
        for host in self.hosts():
            if host_id is not None and host.host_id != host_id:
                continue
            for check in self.checks:
                if only is not None and check.id not in only:
                    continue
                if not check.applies_to(host):
                    continue
                started = canonical.utc_now()
                try:
                    result = check.run(host)
                except Exception as e:  # a check's bug must not stop the cycle; it is evidence
                    log.exception("check %s on %s crashed", check.id, host.host_id)
                    result = CheckResult("error", {"error": type(e).__name__}, {}, "check crashed")
                finished = canonical.utc_now()
                with self.db.tx():
                    self.db.set_result(
                        host.host_id, check.id, result.status, result.observed, result.expected,
                        finished,
                    )  # fmt: skip
                    self.record(
                        report,
                        host_id=host.host_id,
                        check=check.id,
                        controls=list(check.controls),
                        outcome=result_outcome(result),
                        tier="monitor",
                        pre_state={"observed": result.observed, "expected": result.expected},
                        action_taken=result.detail[:4000] or None,
                        started_at=started,
                        finished_at=finished,
                    )

    # -- flush --------------------------------------------------------------------------------

    def flush(self, report: CycleReport, max_batches: int | None = None) -> bool:
        """Send queued bundles in batches of ≤ 100 and acknowledge verified receipts.

        Returns True when the queue was drained (or nothing could be sent for a reason that
        retrying will not fix), False when the server was unreachable.
        """
        self.send_incidents(report)
        if not self.witness.trusted:
            report.errors.append(f"not trusting the server's log: {self.witness.distrust_reason}")
            return True
        batches = 0
        while max_batches is None or batches < max_batches:
            batch = self.outbox.pending(BATCH)
            if not batch:
                return True
            batches += 1
            body = {
                "envelopes": [p.envelope for p in batch],
                "log_size_seen": self.witness.size,
            }
            try:
                resp = self.client.post("/evidence", body)
            except ServerUnreachable as e:
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return False
            except ServerRefused as e:
                report.reachable = True
                if e.error_code == "E_LOG_SIZE":
                    # The server no longer has the tree we verified: a rolled-back log.
                    why = f"log rolled back: server says our verified size is beyond its log ({e})"
                    self.witness.distrust(why, {"log_size_seen": self.witness.size})
                    report.errors.append(f"log_inconsistent: {why}")
                    self.send_incidents(report)
                    return True
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return True
            except AuthRefused as e:
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                report.reachable = True
                return True
            report.reachable = True
            try:
                verdict = self.witness.verify_batch(resp, batch)
            except LogInconsistent as e:
                log.error("log_inconsistent: %s", e)
                self.witness.distrust(str(e), {"batch_first_seq": batch[0].seq})
                report.errors.append(f"log_inconsistent: {e}")
                self.send_incidents(report)
                return True
            self.witness.commit(verdict, self.outbox.ack)
            report.acked += len(verdict.acks)
            for seq, err in verdict.rejected:
                self.outbox.mark_rejected(seq, err)
                with self.db.tx():
                    self.db.add_incident(
                        "evidence_rejected", "high", f"server rejected bundle seq {seq}",
                        {"seq": seq, "error": err},
                    )  # fmt: skip
        return True

    def send_incidents(self, report: CycleReport) -> None:
        for inc in self.db.unsent_incidents():
            body = {
                "kind": inc["kind"],
                "severity": inc["severity"],
                "summary": inc["summary"],
                "details": inc["details"],
            }
            try:
                self.client.post("/incidents", body)
            except ServerRefused as e:
                log.warning("server refused incident %s: %s", inc["kind"], e)
                report.errors.append(str(e))
            except ClientError:
                return
            with self.db.tx():
                self.db.mark_incident_sent(inc["id"])

    # -- the cycle ----------------------------------------------------------------------------

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        """One cycle; checks ``stop`` between steps so SIGTERM never waits for a full cycle."""
        report = CycleReport()
        stopped = stop.is_set if stop is not None else (lambda: False)
        self.clock = self.measure_clock()
        with self.db.tx():
            self.db.set_json("last_clock", {"at": canonical.utc_now(), **self._clock_field()})
        if stopped():
            return report
        self.checkin(report)
        if stopped():
            return report
        self.run_checks(report)
        self._due_orders(report)
        if stopped():
            return report
        drained = self.flush(report)
        if drained and report.reachable:
            self.backoff.success()
        self.outbox.prune(self.cfg.evidence.keep_last, self.cfg.evidence.min_age_days, self.now())
        self.orders.guard.purge(self.now())
        with self.db.tx():
            self.db.set_json(
                "last_cycle",
                {"at": canonical.utc_now(), "reachable": report.reachable,
                 "recorded": report.recorded, "acked": report.acked},
            )  # fmt: skip
        return report

    def _due_orders(self, report: CycleReport) -> None:
        now = self.now()
        for outcome in self.orders.due(
            now, self.in_window(now), self.window.allow_disruptive_outside
        ):
            with self.db.tx():
                self.record(report, **outcome.bundle_fields(self.appliance_id))
                if outcome.order_id:
                    self.orders.forget_deferred(outcome.order_id)
            self._act(outcome, report)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``: a cycle every interval ± jitter; between cycles, retry the flush
        with exponential backoff while the server is unreachable; a ``run-request`` file asks
        for a cycle now."""
        next_cycle = 0.0
        next_flush: float | None = None
        request = self.state_dir / RUN_REQUEST
        while not stop.is_set():
            now = time.monotonic()
            if request.exists():
                try:
                    request.unlink()
                except OSError:
                    pass
                next_cycle = now
            if now >= next_cycle:
                report = self.cycle(stop)
                interval = self.cfg.jittered_interval(base=self.next_checkin_s)
                next_cycle = time.monotonic() + max(1.0, interval)
                next_flush = None
                if not report.reachable:
                    next_flush = time.monotonic() + self.backoff.failure()
                log.info("cycle: reachable=%s recorded=%d acked=%d queue=%d",
                         report.reachable, report.recorded, report.acked,
                         self.outbox.depth())  # fmt: skip
            elif next_flush is not None and now >= next_flush:
                report = CycleReport()
                if self.flush(report) and (report.reachable or self.outbox.depth() == 0):
                    self.backoff.success()
                    next_flush = None
                else:
                    next_flush = time.monotonic() + self.backoff.failure()
            wake = min(next_cycle, next_flush if next_flush is not None else next_cycle)
            stop.wait(max(0.0, min(1.0, wake - time.monotonic())))


def request_cycle(state_dir: str | os.PathLike[str]) -> None:
    """What the console does to ask a running agent for a cycle now (a file, never a socket)."""
    p = Path(state_dir) / RUN_REQUEST
    p.touch(mode=0o600, exist_ok=True)
