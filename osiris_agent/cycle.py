"""The appliance agent: the shared context with its parts wired to it (DESIGN §2).

One cycle is check in → apply → run checks → heal → flush. Each step is a part with one job
around the one :class:`~osiris_agent.context.AgentContext`:

* :mod:`~osiris_agent.checkin` — the status block, ``POST /checkin``, applying the answer;
* :mod:`~osiris_agent.signed_policy` — the signed policy and rules in force (or refused);
* :mod:`~osiris_agent.order_actions` — what accepted signed orders ask for;
* :mod:`~osiris_agent.heal` — running the checks, healing drift, the last results;
* :mod:`~osiris_agent.flush` — delivering evidence and incidents, verifying receipts;
* :mod:`~osiris_agent.runloop` — the cycle and the loop around it;
* :mod:`~osiris_agent.recorder` and :mod:`~osiris_agent.transports` — signing evidence and
  reaching hosts, which every part needs and the context therefore holds.

Why :class:`Agent` *is* the context (a subclass) rather than holding one: the CLI, the lab and
the tests read and set the agent's state directly (``agent.now = …``, ``agent.signer = …``,
``agent.targets``); being the context, those reads and writes reach the very object the parts
use, with no forwarding layer to keep in step. Its methods are one-line delegations to the
parts, kept so the public surface (``cycle``, ``checkin``, ``flush``, ``record`` …) stays as it
was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import ntp
from .checkin import CheckIn
from .config import AgentConfig
from .context import (
    HEAL_DB,
    SCAN_DB,
    AgentContext,
    CycleReport,
    clock_from_config,
)
from .flush import BATCH, CATCHUP_BATCH, CATCHUP_BYTES, Flusher
from .heal import Healer
from .order_actions import ORDER_CHECK, OrderActions, executes
from .orders import OrderOutcome
from .recorder import DECOMMISSION_CHECK, AgentEvidence, AgentIncidents
from .runloop import RUN_REQUEST, RunLoop, request_cycle
from .signed_policy import (
    POLICY_CHANGE_CHECK,
    POLICY_CHECK,
    POLICY_DOC,
    POLICY_REJECTED,
    PolicyKeeper,
    ruleset_hash,
)

__all__ = [
    "BATCH",
    "CATCHUP_BATCH",
    "CATCHUP_BYTES",
    "DECOMMISSION_CHECK",
    "HEAL_DB",
    "ORDER_CHECK",
    "POLICY_CHANGE_CHECK",
    "POLICY_CHECK",
    "POLICY_DOC",
    "POLICY_REJECTED",
    "RUN_REQUEST",
    "SCAN_DB",
    "Agent",
    "AgentEvidence",
    "AgentIncidents",
    "CycleReport",
    "clock_from_config",
    "request_cycle",
    "ruleset_hash",
]


class Agent(AgentContext):
    """The appliance agent: state, keys, server connection, and the cycle."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        measure_clock: Callable[[], ntp.ClockVerdict] | None = None,
        now: Callable[[], datetime] | None = None,
        scan_self: bool | None = None,
        scan_interval_s: int | None = None,
    ) -> None:
        """See :class:`AgentContext` for ``scan_self`` and ``scan_interval_s``."""
        super().__init__(
            cfg, measure_clock=measure_clock, now=now, scan_self=scan_self,
            scan_interval_s=scan_interval_s,
        )  # fmt: skip
        self.keeper = PolicyKeeper(self)
        self.healer = Healer(self)
        self.flusher = Flusher(self)
        self.order_actions = OrderActions(
            self, collect=self._collect, refresh=lambda r: self.checkin_no_orders(r)
        )
        self.checkin_part = CheckIn(self, self.keeper, self.order_actions)
        self.loop = RunLoop(
            self, checkin=self.checkin_part, healer=self.healer, orders=self.order_actions,
            flusher=self.flusher,
        )  # fmt: skip
        self.keeper.load()
        self._finish_init()

    def _collect(self, report: CycleReport, host_id: str | None, only: list[str] | None) -> None:
        self.run_checks(report, host_id=host_id, only=only)

    # -- memory-only transports (tests look at them) -----------------------------------------

    @property
    def _transports(self) -> dict[str, Any]:
        return self.transports.open

    @property
    def _tofu_pins(self) -> dict[str, str]:
        return self.transports.tofu_pins

    # -- evidence -----------------------------------------------------------------------------

    def reload_signer(self) -> None:
        self.recorder.reload_signer()

    def decommission(self) -> dict[str, Any]:
        return self.recorder.decommission()

    # -- check-in -----------------------------------------------------------------------------

    def status_block(self) -> dict[str, Any]:
        return self.checkin_part.status_block()

    def checkin(self, report: CycleReport) -> dict[str, Any] | None:
        return self.checkin_part.checkin(report)

    def apply(self, resp: dict[str, Any], report: CycleReport) -> None:
        self.checkin_part.apply(resp, report)

    def checkin_no_orders(self, report: CycleReport) -> None:
        self.checkin_part.checkin_no_orders(report)

    def _apply_targets(self, raw: list[dict[str, Any]]) -> None:
        self.checkin_part.apply_targets(raw)

    # -- orders -------------------------------------------------------------------------------

    @staticmethod
    def _executes(outcome: OrderOutcome) -> bool:
        return executes(outcome)

    def _due_orders(self, report: CycleReport) -> None:
        self.order_actions.due(report)

    # -- checks and healing -------------------------------------------------------------------

    def run_checks(
        self, report: CycleReport, host_id: str | None = None, only: list[str] | None = None
    ) -> None:
        self.healer.run_checks(report, host_id=host_id, only=only)

    def scan_targets(self) -> list[Any]:
        return self.healer.scan_targets()

    def heal(self, report: CycleReport) -> None:
        self.healer.heal(report)

    # -- flush and the loop -------------------------------------------------------------------

    def flush(self, report: CycleReport, max_batches: int | None = None) -> bool:
        return self.flusher.flush(report, max_batches)

    def send_incidents(self, report: CycleReport) -> None:
        self.flusher.send_incidents(report)

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        return self.loop.cycle(stop)

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
