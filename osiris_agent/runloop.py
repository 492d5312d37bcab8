"""The cycle and the run loop: check in → apply → run checks → heal → flush (DESIGN §2).

The ``run`` loop sleeps on a :class:`threading.Event`, so SIGTERM (which sets it) ends the loop
promptly between steps, and it polls for the ``run-request`` file a technician's console may
create to ask for a cycle now: there is no socket to ask through, because the appliance never
listens on a port.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from osiris_core import canonical

from . import client_cert, status_snapshot
from .context import CycleReport
from .egress_refresh import EgressRefresher

if TYPE_CHECKING:
    from .checkin import CheckIn
    from .context import AgentContext
    from .flush import Flusher
    from .heal import Healer
    from .order_actions import OrderActions

log = logging.getLogger("osiris.agent")

RUN_REQUEST = "run-request"


class RunLoop:
    """Sequences the parts into one cycle, and cycles until told to stop."""

    def __init__(
        self,
        ctx: AgentContext,
        *,
        checkin: CheckIn,
        healer: Healer,
        orders: OrderActions,
        flusher: Flusher,
    ) -> None:
        self.ctx = ctx
        self.checkin = checkin
        self.healer = healer
        self.orders = orders
        self.flusher = flusher
        self.egress = EgressRefresher(ctx)  # a no-op unless egress.hosts is set
        self.cert_renewal = client_cert.Renewal(ctx)  # a no-op without an enrolment-issued cert

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        """One cycle; checks ``stop`` between steps so SIGTERM never waits for a full cycle."""
        ctx = self.ctx
        report = CycleReport()
        stopped = stop.is_set if stop is not None else (lambda: False)
        ctx.report = report
        if ctx.decommissioned is not None:
            report.errors.append(f"decommissioned (chain closed at seq {ctx.decommissioned})")
            return report
        ctx.evidence_sink.emitted = []
        ctx.clock = ctx.measure_clock()
        clock = ctx.clock_field()
        with ctx.db.tx():
            ctx.db.set_json("last_clock", {"at": canonical.utc_now(), **clock})
            ctx.db.set_json("clock", {k: clock[k] for k in ("ntp_ok", "offset_ms", "source")})
        if stopped():
            return report
        ctx.updater.resume(report)  # an update step a restart (the switch) interrupted
        self.checkin.checkin(report)
        if stopped():
            return report
        self.healer.run_checks(report)
        self.orders.due(report)
        if stopped():
            return report
        self.healer.heal(report)
        ctx.updater.health_check(report, report.reachable)  # after a switch: keep or roll back
        if stopped():
            return report
        self.egress.due(report)  # every egress.refresh_interval_s; bounded by the DNS timeouts
        if stopped():
            return report
        drained = self.flusher.flush(report)
        self.cert_renewal.due(report)  # once a day; renews 30 days before expiry
        if drained and report.reachable:
            ctx.backoff.success()
        ctx.outbox.prune(ctx.cfg.evidence.keep_last, ctx.cfg.evidence.min_age_days, ctx.now())
        ctx.orders.guard.purge(ctx.now())
        with ctx.db.tx():
            ctx.db.set_json(
                "last_cycle",
                {"at": canonical.utc_now(), "reachable": report.reachable,
                 "recorded": report.recorded, "acked": report.acked},
            )  # fmt: skip
        status_snapshot.refresh(ctx)  # what the technician's console shows (no secrets)
        return report

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``: a cycle every interval ± jitter; between cycles, retry the flush
        with exponential backoff while the server is unreachable; a ``run-request`` file asks
        for a cycle now."""
        ctx = self.ctx
        next_cycle = 0.0
        next_flush: float | None = None
        request = ctx.state_dir / RUN_REQUEST
        status_snapshot.refresh(ctx)  # at start: the console shows the agent is up
        while not stop.is_set():
            if ctx.decommissioned is not None:  # closed by `osiris-agent decommission`
                log.error("this appliance was decommissioned (chain closed at seq %s); stopping",
                          ctx.decommissioned)  # fmt: skip
                return
            now = time.monotonic()
            if request.exists():
                try:
                    request.unlink()
                except OSError:
                    pass
                next_cycle = now
            if now >= next_cycle:
                report = self.cycle(stop)
                interval = ctx.cfg.jittered_interval(base=ctx.next_checkin_s)
                next_cycle = time.monotonic() + max(1.0, interval)
                next_flush = None
                if not report.reachable:
                    next_flush = time.monotonic() + ctx.backoff.failure()
                log.info("cycle: reachable=%s recorded=%d acked=%d queue=%d",
                         report.reachable, report.recorded, report.acked,
                         ctx.outbox.depth())  # fmt: skip
            elif next_flush is not None and now >= next_flush:
                report = CycleReport()
                if self.flusher.flush(report) and (report.reachable or ctx.outbox.depth() == 0):
                    ctx.backoff.success()
                    next_flush = None
                else:
                    next_flush = time.monotonic() + ctx.backoff.failure()
            wake = min(next_cycle, next_flush if next_flush is not None else next_cycle)
            stop.wait(max(0.0, min(1.0, wake - time.monotonic())))


def request_cycle(state_dir: str | os.PathLike[str]) -> None:
    """What the console does to ask a running agent for a cycle now (a file, never a socket)."""
    p = Path(state_dir) / RUN_REQUEST
    p.touch(mode=0o600, exist_ok=True)
