"""Where the healing engine writes: the agent's evidence and incident sinks, as protocols.

Why apart from the engine: the scanner writes evidence through the same sink, and the agent
implements both (``osiris_agent/recorder.py``) without importing the engine's tiers.
"""

from __future__ import annotations

from typing import Any, Protocol


class EvidenceSink(Protocol):
    """The agent signs, chains and queues; returns the bundle hash.

    Fields as in :mod:`osiris_core.evidence`: check, host_id, controls, outcome, tier, runbook_id,
    order_id, action_taken, pre_state, post_state, rollback_available, started_at, finished_at.
    """

    def emit(self, **bundle_fields: Any) -> str: ...


class IncidentSink(Protocol):
    """The agent queues the incident durably (outbox) and delivers it to the server."""

    def raise_incident(
        self,
        *,
        kind: str,
        severity: str,
        host_id: str | None,
        check: str | None,
        summary: str,
        details: dict[str, Any],
    ) -> None: ...
