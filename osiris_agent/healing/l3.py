"""L3: hand the issue to a person — an incident to the server with what was tried.

Why a separate module: the incident's shape is what the operator sees in the console, so it is
built in one place. Delivery is the agent's job (:class:`IncidentSink`, backed by the durable
outbox), so an incident raised while the server is down is delivered later, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from osiris_core import phi, severity

SEVERITY_ORDER = severity.SEVERITIES


def severity_for(escalation_severity: str, status: str) -> str:
    """Incident severity: the runbook manifest's ``escalation_severity`` (the one scale,
    osiris_core/severity.py), lowered to ``high`` for errors.

    A check that could not run (``error``) is at most ``high``: it needs a person, but it is not
    proven drift. The check's name no longer raises anything: an encryption runbook states
    ``critical`` in its manifest, where a reviewer can see it.
    """
    sev = escalation_severity if severity.is_severity(escalation_severity) else "high"
    if status == "error":
        sev = severity.lower_to(sev, "high")
    return sev


def build_incident(
    *,
    host_id: str,
    check: str,
    runbook_id: str,
    escalation_severity: str,
    status: str,
    observed: Mapping[str, Any],
    tried: Sequence[Mapping[str, Any]],
    reason: str,
) -> dict[str, Any]:
    """Keyword arguments for ``IncidentSink.raise_incident`` (all text PHI-scrubbed)."""
    kind = "check_error" if status == "error" else "drift_unresolved"
    summary = phi.scrub(f"{check} on {host_id}: {runbook_id} {status}; {reason}")[:500]
    return {
        "kind": kind,
        "severity": severity_for(escalation_severity, status),
        "host_id": host_id,
        "check": check,
        "summary": summary,
        "details": phi.scrub_obj(
            {
                "runbook_id": runbook_id,
                "status": status,
                "observed": dict(observed),
                "tried": [dict(t) for t in tried],
                "reason": reason,
            }
        ),
    }
