"""LAB SIMULATOR ONLY — RB-WIN-EDR-001 (third-party EDR presence) on the Windows lab host.

A mixin of :class:`osiris_lab.windows.WindowsLabHost`: the host's EDR agents as the service
control manager and the MDE registry value show them, answered in the shape the real
``detect.ps1`` prints. Detect only, like the script: the lab has no remediate for it, so an
attempt to "fix" a missing EDR agent fails the way the catalogue says it must (no such phase).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

# vendor name in the runbook's `expected` choice -> its Windows service
EDR_SERVICES = {"falcon": "CSFalconService", "sentinelone": "SentinelAgent", "mde": "Sense"}


def default_edr() -> dict[str, Any]:
    """A clinic host onboarded to Microsoft Defender for Endpoint (Sense running)."""
    return {"services": {"Sense": "Running"}, "mde_onboarding_state": 1}


def _edr(s: dict[str, Any]) -> dict[str, Any]:
    return s.setdefault("edr", default_edr())


def _with_edr(f: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda s: f(_edr(s))


EDR_FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "edr_absent": _with_edr(lambda e: e.update(services={}, mde_onboarding_state=None)),
    "edr_stopped": _with_edr(lambda e: e.update(services=dict.fromkeys(e["services"], "Stopped"))),
    "mde_offboarded": _with_edr(lambda e: e.update(mde_onboarding_state=0)),
    "falcon_only": _with_edr(
        lambda e: e.update(services={"CSFalconService": "Running"}, mde_onboarding_state=None)
    ),
}  # fmt: skip


class WindowsEdrLab:
    """RB-WIN-EDR-001's behaviour over ``self.state['edr']`` (created on first use)."""

    state: dict[str, Any]

    def _edr_001_detect(self, p: dict[str, Any]) -> tuple[str, dict, dict]:
        e = copy.deepcopy(_edr(self.state))
        installed = [n for n, svc in EDR_SERVICES.items() if svc in e["services"]]
        running = [n for n in installed if e["services"][EDR_SERVICES[n]] == "Running"]
        onboarded = e["mde_onboarding_state"] == 1
        healthy = [n for n in running if n != "mde" or onboarded]
        want = p["expected"]
        ok = bool(healthy) if want == "any" else want in healthy
        observed = {
            "installed": installed,
            "running": running,
            "mde_onboarded": onboarded,
            "healthy": healthy,
        }
        return ("compliant" if ok else "drift", observed, {"expected": want})
