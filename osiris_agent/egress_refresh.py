"""The run loop's egress step: refresh the allowlist every ``egress.refresh_interval_s``, and
leave evidence of it.

Why its own module: :mod:`osiris_agent.egress` is the DNS + nft mechanics (testable without an
agent); this part turns a result into a signed bundle (``egress_allowlist``: ``alert`` on any
failure, ``compliant`` on a full success after a failure) and, on the first failure of an outage,
an incident through the durable incident queue (the flush delivers it; the server dedups repeats).
A recovery records a ``compliant`` bundle; the incident is resolved by a person on the server,
like every other incident. Nothing secret is in them: host names and resolver IPs are config.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.controls import controls_for

from . import egress

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

CHECK = "egress_allowlist"
STATE_KEY = "egress_failing"


class EgressRefresher:
    """Runs :func:`egress.refresh` when due; ``port``/``nft`` are for tests (a loopback
    responder, an nft inside a private namespace)."""

    def __init__(self, ctx: AgentContext, *, port: int = 53, nft: str = "nft") -> None:
        self.ctx = ctx
        self.port = port
        self.nft = nft
        self.next_at = 0.0

    def due(self, report: CycleReport) -> egress.RefreshResult | None:
        cfg = self.ctx.cfg.egress
        if not cfg.hosts or time.monotonic() < self.next_at:
            return None
        self.next_at = time.monotonic() + cfg.refresh_interval_s
        return self.run(report)

    def run(self, report: CycleReport) -> egress.RefreshResult:
        ctx, cfg = self.ctx, self.ctx.cfg.egress
        started = canonical.utc_now()
        result = egress.refresh(cfg.hosts, cfg.resolvers, cfg.entry_timeout_s, port=self.port,
                                nft=self.nft)  # fmt: skip
        failing = ctx.db.get(STATE_KEY) == "1"
        observed: dict[str, Any] = {
            "resolvers": list(cfg.resolvers),
            "hosts": {
                h.host: (
                    {"ok": True, "v4": h.v4, "v6": h.v6}
                    if h.ok
                    else {"ok": False, "reason": h.reason}
                )
                for h in result.hosts
            },  # fmt: skip
            "refused_answers": {h.host: h.refused[:10] for h in result.hosts if h.refused},
            "nft_error": result.nft_error,
        }
        if result.ok and not failing:
            return result  # routine success: no bundle every 15 minutes
        fails = result.failures()
        if result.ok:
            action = "egress allowlist refreshed again: every host resolved"
        else:
            action = f"egress allowlist refresh failed for {len(fails)} host(s): " + "; ".join(
                f"{h}: {why}" for h, why in sorted(fails.items())
            )
            report.errors.append(action[:300])
        ctx.record(
            report, host_id=ctx.appliance_id, check=CHECK, controls=list(controls_for(CHECK)),
            outcome="compliant" if result.ok else "alert", tier="monitor", runbook_id=None,
            action_taken=action[:1000], pre_state={"observed": {"failing": failing}},
            post_state={"observed": observed}, started_at=started,
            finished_at=canonical.utc_now(),
        )  # fmt: skip
        with ctx.db.tx():
            if not result.ok and not failing:
                ctx.db.add_incident(
                    "egress_refresh_failed", "high",
                    "the appliance could not refresh its egress allowlist; hosts that stay "
                    f"unresolved close after {cfg.entry_timeout_s}s: {action}"[:1000],
                    {"failures": dict(list(sorted(fails.items()))[:50]),
                     "host_id": ctx.appliance_id, "check": CHECK},
                )  # fmt: skip
            ctx.db.set(STATE_KEY, "0" if result.ok else "1")
        log.warning("%s", action[:300])
        return result
