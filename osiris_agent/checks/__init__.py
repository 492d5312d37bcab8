"""Drift checks: each one looks at one host and says compliant, drift or error.

A check has an ``id`` from the catalogue (``osiris_core/catalog/checks.toml``), the HIPAA controls
it supports (from ``osiris_core.controls`` — one table, so names cannot drift between layers,
lessons A5), and ``run(host) -> CheckResult``. The engine (``cycle.py``) turns every result into
a signed evidence bundle; a check never writes evidence itself.
"""

from __future__ import annotations

from .base import Check, CheckResult, HostHandle, result_outcome
from .timesync import TimesyncCheck

__all__ = ["Check", "CheckResult", "HostHandle", "TimesyncCheck", "result_outcome", "registry"]


def registry() -> dict[str, type[Check]]:
    """Checks this build implements, by id."""
    return {TimesyncCheck.id: TimesyncCheck}
