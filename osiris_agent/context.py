"""The one shared context every part of the agent works on (DESIGN §2).

Why one object: check-in handling, healing, flushing and the run loop all need the same few
things — the config, the pins, ``state.db``, the signing keys, the outbox and witness, the
server connection, the memory-only targets and their transports, the catalogue, scanner and
healing engine, the policy in force and this cycle's clock verdict. Each part
(``checkin.py``, ``signed_policy.py``, ``order_actions.py``, ``heal.py``, ``flush.py``,
``runloop.py``) holds this context and nothing else of the others' state, so a part's job can
be read (and tested) on its own. :class:`~osiris_agent.cycle.Agent` is this context with the
parts wired to it.

What the server sends at check-in is applied to memory only: targets and their credentials are
*never* written anywhere (not ``state.db``, not a log line, not evidence). Everything the agent
must not forget — the chain, the outbox, receipts, the witness checkpoint, seen and deferred
orders, last results, scan state, heal memory — is in ``state.db`` (see ``state.py``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osiris_core.catalog import Rule, load_catalog
from osiris_core.errors import OsirisError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Verifier, load_private_key
from osiris_core.policy import AcceptedPolicy
from osiris_core.release import release_pin

from . import client_cert, keyring, ntp
from .client import ServerClient
from .config import AgentConfig
from .enroll import read_pins
from .healing.engine import HealingEngine, Policy
from .healing.l2 import OpenAIChatPlanner
from .migrations import LEGACY_FILES
from .orders import OrderBook
from .outbox import Backoff, Outbox
from .recorder import AgentEvidence, AgentIncidents, Recorder
from .scanner import Scanner
from .state import StateDB
from .transports import TargetTransports
from .update import Updater
from .witness import Witness

# The files scan state and heal memory lived in before they joined state.db (migration 2 of
# migrations.py merges them in place and renames them *.migrated).
SCAN_DB, HEAL_DB = LEGACY_FILES


@dataclass
class CycleReport:
    """What one cycle did; ``once`` exits 1 unless ``reachable``."""

    reachable: bool = False
    checked_in: bool = False
    recorded: int = 0
    acked: int = 0
    refused_full: int = 0
    errors: list[str] = field(default_factory=list)


def clock_from_config(cfg: AgentConfig) -> Callable[[], ntp.ClockVerdict]:
    """The cycle's clock measurement: SNTP against the configured servers."""

    def measure() -> ntp.ClockVerdict:
        return ntp.check_clock(
            list(cfg.ntp.servers),
            max_skew_ms=cfg.ntp.max_skew_ms,
            timeout=cfg.ntp.timeout_ms / 1000.0,
            min_good=cfg.ntp.min_good,
        )

    return measure


class AgentContext:
    """The appliance's state, keys, server connection and shared components."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        measure_clock: Callable[[], ntp.ClockVerdict] | None = None,
        now: Callable[[], datetime] | None = None,
        scan_self: bool | None = None,
        scan_interval_s: int | None = None,
    ) -> None:
        """``scan_self``: also scan the appliance's own NixOS runbooks over the local
        transport (default: only when running on NixOS, i.e. ``/etc/NIXOS`` exists — on any
        other machine they would inspect and change the wrong host). ``scan_interval_s``
        overrides the drift-scan cadence of every check; by default it is the config's
        ``agent.scan_interval_s``, and when that is unset the catalogue's per-check cadence
        applies (300 s, patching 3600 s). Tests pass 0: scan every cycle."""
        self.cfg = cfg
        self.state_dir = Path(cfg.agent.state_dir)
        self.pins = read_pins(self.state_dir)
        self.appliance_id: str = self.pins["appliance_id"]
        self.site_id: str = self.pins["site_id"]
        self.db = StateDB.open_dir(self.state_dir)
        try:
            # The key state.db names signs (a rotation's file move is finished here if a crash
            # interrupted it); a running agent reloads it when another process rotates.
            self.signer = keyring.signer_for(cfg.agent.key_file, self.db)
            self.cosigner = load_private_key(cfg.agent.cosign_key_file)
            if self.cosigner.key_type != KEY_TYPE_COSIGNATURE:
                raise OsirisError(f"{cfg.agent.cosign_key_file} is not a cosignature key")
            token = Path(cfg.agent.token_file).read_text().strip()
            # mTLS: a client key looser than 0600 is refused here, before any request
            self.client = ServerClient(
                cfg.server.url, token, cfg.server.ca_file, client_cert=client_cert.paths(cfg)
            )
        except BaseException:
            self.db.close()
            raise
        self.outbox = Outbox(self.db, cfg.outbox.max_entries, cfg.outbox.max_bytes)
        self.witness = Witness(
            self.db, Verifier.from_vkey(self.pins["log_vkey"]), self.pins.get("server_origin")
        )
        self.order_verifier = Verifier.from_vkey(self.pins["order_vkey"])
        self.orders = OrderBook(self.db, self.order_verifier, self.appliance_id)
        self.measure_clock = measure_clock or clock_from_config(cfg)
        self.now = now or (lambda: datetime.now(UTC))
        self.backoff = Backoff(base=2.0, cap=300.0)
        self.started = time.monotonic()
        self.clock: ntp.ClockVerdict | None = None
        # Memory only: what the last check-in delivered (credentials included).
        self.targets: list[Any] = []
        self.rules: dict[str, Any] | None = None
        # The signed policy in force (DESIGN §3.6), kept in state.db so a restart keeps it: the
        # only source of runbook toggles, parameters, the window, cadence and L2 limits. Every
        # bundle records its version ("default" before any policy was accepted) and its
        # ruleset_hash, the hash of the signed rules it names (and that the agent applied).
        # Who may name a system to switch to (osiris_core.release.release_pin): the pinned
        # release key alone when enrolment pinned one, else (older enrolment) the order key.
        self.release_verifiers = [Verifier.from_vkey(v) for v in release_pin(self.pins)]
        self.policy_in_force: AcceptedPolicy | None = None
        self.window = cfg.window
        self.next_checkin_s: int = cfg.agent.checkin_interval_s
        self.report = CycleReport()
        self.reseller: Any = None
        self.recorder = Recorder(self)
        self.transports = TargetTransports(self)
        # Healing: the catalogue, the scanner and the engine; their memory (scan status,
        # cooldowns, attempts) lives in state.db, so a restart does not re-run a failed fix and
        # each change commits with the bundle that records it.
        self.catalog = load_catalog()
        self.scan_self = os.path.exists("/etc/NIXOS") if scan_self is None else scan_self
        self.evidence_sink = AgentEvidence(self)
        self.incident_sink = AgentIncidents(self)
        self.updater = Updater(self)  # update_agent orders: switch, health check, rollback
        scan_kw: dict[str, Any] = {}
        if scan_interval_s is None:
            scan_interval_s = cfg.agent.scan_interval_s
        if scan_interval_s is not None:
            every = dict.fromkeys(self.catalog.checks, scan_interval_s)
            scan_kw = {"default_interval_s": scan_interval_s, "intervals": every}
        self.scanner = Scanner(
            self.catalog, self.transport_for, self.evidence_sink,
            db_path=self.db, **scan_kw,
        )  # fmt: skip
        self.engine = HealingEngine(
            self.catalog, self.transport_for, self.evidence_sink, self.incident_sink,
            clock=lambda: self.now(), db_path=self.db,
        )  # fmt: skip
        from .escrow_upload import ServerEscrow

        self.engine.executor.escrow = ServerEscrow(self)  # recovery keys go to the vault first
        self.l2 = OpenAIChatPlanner.from_config(cfg.healing)
        self.server_rules: list[Rule] = []
        self.policy = Policy.default(
            self.catalog, in_window=self.in_window,
            allow_disruptive_outside_window=cfg.window.allow_disruptive_outside, l2=self.l2,
            policy_version="default",
        )  # fmt: skip

    def _finish_init(self) -> None:
        """The part of start-up that follows loading the stored policy (kept in its order)."""
        with self.db.tx():
            self.db.set("appliance_id", self.appliance_id)
            self.db.set("site_id", self.site_id)
            self.db.set(keyring.COSIGN_KEY, self.cosigner.vkey)  # for the console and attest
        r = self.cfg.reseller
        if self.cfg.deployment.mode == "reseller" and (r.syslog_target or r.webhook_url):
            from .reseller import ResellerSink

            self.reseller = ResellerSink(
                self.signer, r.syslog_target, r.webhook_url, self.cfg.server.ca_file
            )

    def close(self) -> None:
        self.transports.close(set(self.transports.open))
        self.scanner.close()
        self.engine.memory.close()
        self.client.close()
        self.db.close()

    # -- what every part asks -----------------------------------------------------------------

    def transport_for(self, host_id: str) -> Any:
        """The open transport to ``host_id`` (see :class:`TargetTransports`)."""
        return self.transports.transport_for(host_id)

    def record(self, report: CycleReport | None = None, **fields: Any) -> dict[str, Any] | None:
        """Sign one bundle into the chain and the outbox (see :class:`Recorder`)."""
        return self.recorder.record(report, **fields)

    def clock_field(self) -> dict[str, Any]:
        """This cycle's clock verdict as evidence's ``clock`` field."""
        if self.clock is None:
            return {"ntp_ok": False, "offset_ms": None, "source": "unchecked"}
        return self.clock.to_evidence()

    _clock_field = clock_field

    @property
    def decommissioned(self) -> int | None:
        """The seq of the bundle that closed this appliance's chain, or None."""
        return self.outbox.decommissioned

    def in_window(self, now: datetime) -> bool:
        return dataclasses.replace(self.cfg, window=self.window).in_maintenance_window(now)

    @property
    def site_params(self) -> dict[str, dict[str, Any]]:
        """The policy's parameter values in force, ``{runbook_id: {name: value}}``."""
        return {rb: dict(v) for rb, v in self.policy.params.items()}
