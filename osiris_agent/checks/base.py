"""The check interface and the host handle a check runs against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from osiris_core.controls import controls_for

Status = Literal["compliant", "drift", "error"]
STATUSES = ("compliant", "drift", "error")


@dataclass
class CheckResult:
    """What a check saw: ``observed`` and ``expected`` become the bundle's pre/post state.

    ``status`` is ``compliant`` (matches), ``drift`` (does not match) or ``error`` (could not
    tell — never reported as a pass, lessons A8). ``detail`` is a short human sentence.
    """

    status: Status
    observed: dict[str, Any]
    expected: dict[str, Any]
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class HostHandle:
    """A host as a check sees it: its id, its kind, and (for remote hosts) a lazily opened
    transport. ``clock`` is this cycle's NTP verdict, measured once on the appliance."""

    host_id: str
    kind: str = "local"
    target: Any = None  # osiris_agent.hosts.base.Target, credentials in memory only
    clock: Any = None  # osiris_agent.ntp.ClockVerdict
    extras: dict[str, Any] = field(default_factory=dict)
    _transport: Any = None

    def transport(self) -> Any:
        """Open the transport on first use (imports paramiko/pywinrm only then)."""
        if self._transport is None:
            from osiris_agent.hosts.base import open_transport

            self._transport = open_transport(self.target)
        return self._transport


class Check:
    """Base class: subclasses set ``id`` and ``kinds`` and implement :meth:`run`."""

    id: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("local",)

    @property
    def controls(self) -> tuple[str, ...]:
        return controls_for(self.id)

    def applies_to(self, host: HostHandle) -> bool:
        return host.kind in self.kinds

    def run(self, host: HostHandle) -> CheckResult:  # pragma: no cover - interface
        raise NotImplementedError


def result_outcome(result: CheckResult) -> str:
    """Evidence outcome for a check result before healing: compliant, or an alert.

    Drift is an ``alert`` until the healing engine (next issue) turns it into healed/failed/
    escalated; a check that could not run is ``failed`` — never a silent pass.
    """
    return {"compliant": "compliant", "drift": "alert", "error": "failed"}[result.status]
