"""Acting on signed orders the order book accepted: run a runbook, collect evidence, refresh,
update the agent (``osiris_agent.update``), sign a person's statement (``record_attestation``:
exactly one ``activity_review`` or ``risk_acceptance`` bundle, nothing run).

Why its own module: ``orders.py`` decides an order's *fate* (verified, fresh, not replayed, in
the window or deferred); this module does what an accepted order asks and makes sure its fate is
always evidence — an order is never dropped silently. It also runs deferred orders whose window
has opened (once per cycle).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from osiris_core.controls import controls_for
from osiris_core.ids import HOST_ID

from .orders import OrderOutcome

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

# Evidence about an order that names no catalogue runbook (a forged order, collect_evidence,
# refresh_rules …) is about the agent's own evidence pipeline.
ORDER_CHECK = "evidence_pipeline"


def executes(outcome: OrderOutcome) -> bool:
    """An accepted ``run_runbook`` order: the healing executor runs it and its evidence is
    the record (no separate acknowledgement bundle)."""
    refused = outcome.outcome in ("rejected", "expired", "deferred")
    return not refused and outcome.kind == "run_runbook" and outcome.order is not None


def statement_fields(ctx: AgentContext, outcome: OrderOutcome) -> dict[str, Any]:
    """The one bundle an accepted ``record_attestation`` order becomes: check ``activity_review``
    or ``risk_acceptance``, tier ``order``, outcome ``compliant``, the statement as post_state
    (docs/evidence-format.md, "Signed statements"). The params were checked closed and exact by
    ``osiris_core.orders`` under the server's signature; nothing else is taken from the order."""
    order = outcome.order or {}
    params = dict(order["params"])
    check = params.pop("kind")
    if check == "activity_review":
        summary = f"activity review of {params['month']} by {params['reviewer']}"
    else:
        summary = (
            f"risk accepted by {params['by']} for {params['check']} on {params['host_id']}"
            f" until {params['until']}"
        )
    return {
        "host_id": ctx.appliance_id,
        "check": check,
        "controls": list(controls_for(check)),
        "tier": "order",
        "outcome": "compliant",
        "order_id": outcome.order_id,
        "runbook_id": None,
        "action_taken": f"order record_attestation: {summary}"[:4000],
        "pre_state": None,
        "post_state": params,
    }


def order_fields(ctx: AgentContext, outcome: OrderOutcome) -> dict[str, Any]:
    """Evidence for an order's fate, under a catalogue check id: the named runbook's check,
    else the agent's own evidence pipeline; an accepted statement is its own bundle."""
    if outcome.action == "record_attestation" and outcome.outcome == "compliant":
        return statement_fields(ctx, outcome)
    catalog = ctx.catalog
    fields = outcome.bundle_fields(ctx.appliance_id)
    check = ORDER_CHECK
    if fields.get("runbook_id") in catalog.runbooks:
        check = catalog.runbooks[fields["runbook_id"]].check
    else:
        fields["runbook_id"] = None
    fields["check"] = check
    fields["controls"] = list(controls_for(check))
    return fields


class OrderActions:
    """Carries out accepted orders on the context. ``collect`` runs the appliance's checks now
    (``collect_evidence``); ``refresh`` is a second check-in (``refresh_rules``)."""

    def __init__(
        self,
        ctx: AgentContext,
        *,
        collect: Callable[[CycleReport, str | None, list[str] | None], None],
        refresh: Callable[[CycleReport], None],
    ) -> None:
        self.ctx = ctx
        self.collect = collect
        self.refresh = refresh

    def order_fields(self, outcome: OrderOutcome) -> dict[str, Any]:
        return order_fields(self.ctx, outcome)

    def receive(self, envs: list[Any], report: CycleReport) -> None:
        """The orders a check-in delivered: judged by the order book, then acted on."""
        ctx = self.ctx
        now = ctx.now()
        in_window = ctx.in_window(now)
        for env in envs:
            with ctx.db.tx():
                outcome = ctx.orders.receive(
                    env, now, in_window, ctx.window.allow_disruptive_outside
                )
                outcome = ctx.updater.vet(outcome)  # an update's release, before "requested"
                if not executes(outcome):
                    ctx.record(report, **self.order_fields(outcome))
            self.act(outcome, report)

    def due(self, report: CycleReport) -> None:
        """Deferred orders whose window has opened (or that expired meanwhile)."""
        ctx = self.ctx
        now = ctx.now()
        for outcome in ctx.orders.due(now, ctx.in_window(now), ctx.window.allow_disruptive_outside):
            outcome = ctx.updater.vet(outcome)
            if executes(outcome):
                # its evidence is the run's own bundle: forgotten only once that is committed
                # (a crash in between runs it again next cycle — never a deferred order that
                # vanished without its outcome)
                self.act(outcome, report)
                if outcome.order_id:
                    ctx.orders.forget_deferred(outcome.order_id)
                continue
            with ctx.db.tx():
                ctx.record(report, **self.order_fields(outcome))
                if outcome.order_id:
                    ctx.orders.forget_deferred(outcome.order_id)
            self.act(outcome, report)

    def act(self, outcome: OrderOutcome, report: CycleReport) -> None:
        ctx = self.ctx
        order = outcome.order or {}
        params = order.get("params") if isinstance(order.get("params"), dict) else {}
        if executes(outcome):
            host = params.get("host_id")
            host = host if HOST_ID.match(host) else None
            try:
                emitted = ctx.engine.run_order(order, host or ctx.appliance_id, ctx.policy)
            except Exception as e:  # noqa: BLE001 - a bug here is an error, not a dead agent
                log.exception("order %s crashed", outcome.order_id)
                report.errors.append(f"order {outcome.order_id}: {type(e).__name__}")
                emitted = []
            if not emitted:  # never a silent drop: the order's fate is evidence
                why = f"runbook {str(params.get('runbook_id'))[:64]!r} could not be run here"
                refused = OrderOutcome("rejected", why, outcome.order)
                ctx.record(report, **self.order_fields(refused))
        elif outcome.action == "collect_evidence":
            host = params.get("host_id")
            self.collect(report, host, params.get("checks"))
            remote = [t.host_id for t in ctx.targets if host in (None, t.host_id)]
            for h in remote:
                try:
                    ctx.engine.run_order(order, h, ctx.policy)
                except Exception as e:  # noqa: BLE001
                    log.exception("order %s crashed on %s", outcome.order_id, h)
                    report.errors.append(f"order {outcome.order_id}: {type(e).__name__}")
        elif outcome.action == "refresh_rules":
            self.refresh(report)
        elif outcome.action == "update_agent":
            ctx.updater.start(outcome, report)  # switched, then healthy | rolled_back
