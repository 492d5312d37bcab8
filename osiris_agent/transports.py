"""Open connections to the site's hosts, in memory only (credentials never leave it).

Why its own module: the scanner, the healing engine and signed orders all reach hosts through
one ``transport_for(host_id)``; which host a transport belongs to, when it must be reopened (a
target's address or credential changed) and which SSH host keys were accepted on first use are
one concern, kept apart from the check-in that delivers the targets.

A key or certificate accepted on first use is pinned in ``state.db`` (meta ``tofu_pins``), in
the transaction that records its evidence, for that host *at that destination* (kind, address,
port): a restart must not re-open the window an attacker needs (a man in the middle after a
power cut would otherwise be trusted anew), and a host moved to a new address is a new first
use, recorded again. The credential's own pin always wins, so an operator confirms or replaces a
first-use pin by setting it there.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.controls import controls_for

if TYPE_CHECKING:
    from .context import AgentContext

log = logging.getLogger("osiris.agent")


_PINS_KEY = "tofu_pins"


def _dest(kind: str, address: str, port: int | None) -> str:
    return f"{kind}:{address}:{port or ''}"


class TargetTransports:
    """Transports by host id, opened on first use from the last check-in's targets."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.open: dict[str, Any] = {}
        self._pins: dict[str, dict[str, str]] | None = None  # host_id -> {fp, dest}

    def transport_for(self, host_id: str) -> Any:
        """The open transport to ``host_id``, opened on first use from the last check-in's
        target (credentials never leave memory)."""
        from .hosts.base import Target, TransportError, open_transport

        t = self.open.get(host_id)
        if t is not None:
            return t
        if host_id == self.ctx.appliance_id:
            target = Target(host_id=host_id, kind="local", address="localhost")
        else:
            target = next((x for x in self.ctx.targets if x.host_id == host_id), None)
            if target is None:
                raise TransportError(f"host {host_id} is not a target of this site")
            pin = self.pin_for(host_id, target.kind, target.address, target.port)
            if target.kind == "winrm" and pin and not (target.cert_thumbprint or target.ca_bundle):
                # a certificate accepted on first use stays the one trusted until the operator
                # confirms it in the credential: a reopened transport never probes again
                target = dataclasses.replace(target, cert_thumbprint=pin)
        t = open_transport(target, on_tofu=self.on_tofu)
        self.open[host_id] = t
        return t

    def close(self, host_ids: set[str]) -> None:
        for h in host_ids:
            t = self.open.pop(h, None)
            if t is None:
                continue
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not stop a cycle
                log.debug("closing transport to %s failed", h)

    def _stored(self) -> dict[str, dict[str, str]]:
        if self._pins is None:
            raw = self.ctx.db.get_json(_PINS_KEY, {})
            self._pins = {
                h: {"fp": r["fp"], "dest": r["dest"]}
                for h, r in (raw.items() if isinstance(raw, dict) else ())
                if isinstance(r, dict) and isinstance(r.get("fp"), str)
                and isinstance(r.get("dest"), str)
            }  # fmt: skip
        return self._pins

    @property
    def tofu_pins(self) -> dict[str, str]:
        """Every first-use pin by host id (whatever destination it was taken at)."""
        return {h: r["fp"] for h, r in self._stored().items()}

    def pin_for(self, host_id: str, kind: str, address: str, port: int | None) -> str | None:
        """The first-use pin for ``host_id`` if it was taken at this destination, else None."""
        r = self._stored().get(host_id)
        return r["fp"] if r is not None and r["dest"] == _dest(kind, address, port) else None

    def on_tofu(self, host_id: str, fingerprint: str) -> None:
        """An SSH host key or a WinRM listener certificate accepted on first use (the
        credential carried no pin): evidence, and pinned in state.db — in the same transaction
        — so a different one later, or after a restart, is refused."""
        target = next((t for t in self.ctx.targets if t.host_id == host_id), None)
        kind = target.kind if target is not None else "ssh"
        dest = _dest(kind, target.address, target.port) if target is not None else ""
        pins = dict(self._stored())
        pins[host_id] = {"fp": fingerprint, "dest": dest}
        with self.ctx.db.tx():
            self.ctx.db.set_json(_PINS_KEY, pins)
            self._record_tofu(host_id, kind, fingerprint)
        self._pins = pins

    def _record_tofu(self, host_id: str, kind: str, fingerprint: str) -> None:
        now = canonical.utc_now()
        if kind == "winrm":
            self.ctx.record(
                self.ctx.report, host_id=host_id, check="windows_network",
                controls=list(controls_for("windows_network")), outcome="alert", tier="monitor",
                action_taken=f"WinRM certificate accepted on first use (no CA bundle or "
                f"thumbprint in the credential): SHA-256 {fingerprint}; pinned for this address. "
                "Confirm it by setting cert_thumbprint on the credential",
                pre_state={"observed": {"cert_thumbprint": fingerprint},
                           "expected": {"pinned": True}},
                started_at=now, finished_at=now,
            )  # fmt: skip
            return
        self.ctx.record(
            self.ctx.report, host_id=host_id, check="linux_ssh",
            controls=list(controls_for("linux_ssh")), outcome="alert", tier="monitor",
            action_taken=f"SSH host key accepted on first use (no pin in the credential): "
            f"{fingerprint}; pinned for this address",
            pre_state={"observed": {"host_key": fingerprint}, "expected": {"pinned": True}},
            started_at=now, finished_at=now,
        )  # fmt: skip
