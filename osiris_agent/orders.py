"""Signed orders on the appliance: verify, decide, remember — and make every outcome evidence.

``osiris_core.orders.check_order`` does the cryptography and the clock (bad signature, schema,
other appliance, expiry, replay). This module adds what only the appliance knows: its replay
memory survives restarts (:class:`SqliteReplayGuard` in ``state.db``), disruptive orders wait
for the maintenance window (kept in ``deferred_orders`` until it opens or they expire), and each
accepted kind maps to an honest outcome. An order kind this build cannot execute yet is recorded
as ``failed`` with the reason — never as a pretended success (lessons B3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from osiris_core import canonical, ids
from osiris_core.keys import Verifier
from osiris_core.orders import ACCEPTED, EXPIRED, check_order

from .state import StateDB


class SqliteReplayGuard:
    """``osiris_core.orders.ReplayGuard`` over ``state.db``: accepted ids survive a restart."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def seen(self, order_id: str) -> bool:
        row = self.db.conn.execute(
            "SELECT 1 FROM seen_orders WHERE order_id = ?", (order_id,)
        ).fetchone()
        return row is not None

    def remember(self, order_id: str, expires_at: str) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO seen_orders(order_id, expires_at) VALUES(?, ?)",
                (order_id, expires_at),
            )

    def purge(self, now: datetime) -> int:
        """Forget ids of orders that expired a day ago (they can only be ``expired`` now)."""
        cutoff = canonical.format_time(now.replace(microsecond=0))
        with self.db.tx() as conn:
            rows = conn.execute(
                "SELECT order_id, expires_at FROM seen_orders WHERE expires_at < ?", (cutoff,)
            ).fetchall()
            old = [r[0] for r in rows if canonical.parse_time(r[1]) < now]
            conn.executemany("DELETE FROM seen_orders WHERE order_id = ?", [(o,) for o in old])
        return len(old)


@dataclass
class OrderOutcome:
    """One order's fate: the evidence ``outcome`` and what the cycle must do next."""

    outcome: str  # evidence outcome
    reason: str
    order: dict[str, Any] | None
    # "collect_evidence" | "refresh_rules" | "update_agent" | "record_attestation" | None
    action: str | None = None

    @property
    def order_id(self) -> str | None:
        oid = self.order.get("order_id") if isinstance(self.order, dict) else None
        return oid if ids.ORDER_REF.match(oid) else None

    @property
    def kind(self) -> str:
        k = self.order.get("kind") if isinstance(self.order, dict) else None
        return k if isinstance(k, str) and re.fullmatch(r"[a-z_]{1,32}", k) else "unknown"

    def bundle_fields(self, appliance_id: str) -> dict[str, Any]:
        """Evidence fields for this outcome (tier ``order``). The check is a catalogue id: the
        agent's own ``evidence_pipeline``; the cycle names the runbook's check when the order
        names a catalogue runbook (``OrderActions.order_fields``)."""
        params = self.order.get("params") if isinstance(self.order, dict) else None
        params = params if isinstance(params, dict) else {}
        host = params.get("host_id")
        runbook = params.get("runbook_id")
        return {
            "host_id": host if ids.HOST_ID.match(host) else appliance_id,
            "check": "evidence_pipeline",
            "tier": "order",
            "outcome": self.outcome,
            "order_id": self.order_id,
            "runbook_id": runbook if ids.RUNBOOK_ID.match(runbook) else None,
            "action_taken": f"order {self.kind}: {self.outcome}: {self.reason}"[:4000],
        }


def decide(verdict_order: dict[str, Any]) -> OrderOutcome:
    """What an accepted order does on this build (executed now, inside or without a window)."""
    kind = verdict_order["kind"]
    if kind == "collect_evidence":
        return OrderOutcome("compliant", "checks run on request", verdict_order, "collect_evidence")
    if kind == "refresh_rules":
        return OrderOutcome("compliant", "checked in again on request", verdict_order,
                            "refresh_rules")  # fmt: skip
    if kind == "run_runbook":
        return OrderOutcome("failed", "executor not available on this build", verdict_order)
    if kind == "update_agent":  # vetted against the pinned release keys by osiris_agent.update
        return OrderOutcome("compliant", "requested", verdict_order, "update_agent")
    if kind == "record_attestation":  # a person's statement, signed as one bundle (no action)
        return OrderOutcome("compliant", "statement recorded", verdict_order, "record_attestation")
    return OrderOutcome("rejected", f"unknown kind {kind!r}", verdict_order)


class OrderBook:
    """Checks incoming orders and keeps deferred ones in ``state.db``."""

    def __init__(self, db: StateDB, verifier: Verifier, appliance_id: str) -> None:
        self.db = db
        self.verifier = verifier
        self.appliance_id = appliance_id
        self.guard = SqliteReplayGuard(db)

    def receive(
        self, envelope: Any, now: datetime, in_window: bool, allow_outside: bool
    ) -> OrderOutcome:
        """Verify one order envelope and decide; a deferred order is stored for later."""
        v = check_order(envelope, self.verifier, now, self.guard, self.appliance_id)
        if v.status == EXPIRED:
            return OrderOutcome("expired", v.reason, v.order)
        if v.status != ACCEPTED or v.order is None:
            return OrderOutcome("rejected", v.reason, v.order)
        order = v.order
        if order["disruptive"] and not in_window and not allow_outside:
            with self.db.tx() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO deferred_orders(order_id, envelope, expires_at, "
                    "deferred_at) VALUES(?, ?, ?, ?)",
                    (
                        order["order_id"],
                        json.dumps(envelope, sort_keys=True),
                        order["expires_at"],
                        canonical.format_time(now),
                    ),
                )
            return OrderOutcome("deferred", "disruptive order outside the maintenance window",
                                order)  # fmt: skip
        return decide(order)

    def due(self, now: datetime, in_window: bool, allow_outside: bool) -> list[OrderOutcome]:
        """Deferred orders that expired (→ ``expired``) or whose window opened (→ run now).

        They stay stored until the caller records their evidence and calls
        :meth:`forget_deferred` in the same transaction, so a crash cannot lose an outcome.
        """
        out: list[OrderOutcome] = []
        rows = self.db.conn.execute(
            "SELECT order_id, envelope, expires_at FROM deferred_orders ORDER BY deferred_at"
        ).fetchall()
        for _order_id, env_text, expires_at in rows:
            order = json.loads(env_text)["order"]
            if now > canonical.parse_time(expires_at):
                out.append(OrderOutcome("expired", f"expired at {expires_at} while deferred",
                                        order))  # fmt: skip
            elif in_window or allow_outside:
                out.append(decide(order))
        return out

    def forget_deferred(self, order_id: str) -> None:
        """Drop a deferred order once its outcome is recorded (call inside the same tx)."""
        with self.db.tx() as conn:
            conn.execute("DELETE FROM deferred_orders WHERE order_id = ?", (order_id,))

    def deferred_count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM deferred_orders").fetchone()[0])
