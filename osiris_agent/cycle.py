"""One agent cycle: check in → apply → run checks → sign evidence → flush (DESIGN §2).

The :class:`Agent` owns the appliance's keys, its ``state.db`` and one HTTP connection. What the
server sends at check-in is applied to memory only: targets and their credentials are *never*
written anywhere (not ``state.db``, not a log line, not evidence). Everything the agent must not
forget — the chain, the outbox, receipts, the witness checkpoint, seen and deferred orders, last
results — is in ``state.db`` (see ``state.py``).

The ``run`` loop sleeps on an :class:`threading.Event`, so SIGTERM (which sets it) ends the loop
promptly between steps, and it polls for the ``run-request`` file a technician's console may
create to ask for a cycle now: there is no socket to ask through, because the appliance never
listens on a port.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Rule, load_catalog
from osiris_core.controls import controls_for
from osiris_core.errors import OsirisError, SchemaError
from osiris_core.evidence import bundle_hash
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Verifier, load_private_key
from osiris_core.policy import AcceptedPolicy, PolicyRefused, envelope_sha256, verify_policy
from osiris_core.protocol import validate_checkin_request, validate_checkin_response
from osiris_core.seal import open_sealed

from . import AGENT_VERSION, keyring, ntp
from .checks import Check, CheckResult, HostHandle, TimesyncCheck, result_outcome
from .client import AuthRefused, ClientError, ServerClient, ServerRefused, ServerUnreachable
from .config import AgentConfig, WindowConfig
from .enroll import read_pins
from .healing.engine import Finding, HealingEngine, Policy
from .healing.l1 import RuleSetRefused, verify_signed_rules
from .healing.l2 import OpenAIChatPlanner
from .orders import OrderBook, OrderOutcome
from .outbox import Backoff, Decommissioned, Outbox, OutboxFull
from .scanner import PLATFORM_OF_KIND, Scanner
from .state import StateDB
from .witness import LogInconsistent, Witness

log = logging.getLogger("osiris.agent")

DECOMMISSION_CHECK = "appliance_decommission"
# Evidence about the signed policy itself: a refused document (outcome ``rejected``) and each
# change of a trust-redirecting value (outcome ``alert``, naming who changed what).
POLICY_CHECK = "policy"
POLICY_CHANGE_CHECK = "policy_change"
POLICY_DOC = "policy_doc"  # state.db: the envelope of the policy in force
POLICY_REJECTED = "policy_rejected"  # state.db: sha256 of the last refused envelope
BATCH = 100
# After an outage the queue drains in bigger batches: the server signs at most one checkpoint per
# interval, so a receipt costs up to that interval whatever the batch size. Capped by the
# server's 500 envelopes per request and well under its 8 MiB request body limit.
CATCHUP_BATCH = 500
CATCHUP_BYTES = 4 * 1024 * 1024
RUN_REQUEST = "run-request"
SCAN_DB = "scan.db"
HEAL_DB = "heal.db"
# The appliance's own clock is judged by the ``timesync`` check (checks/timesync.py) from the
# cycle's NTP measurement, so the scanner does not also run RB-NIX-TIME-001 on it.
SELF_COVERED_RUNBOOKS = frozenset({"RB-NIX-TIME-001"})
# Evidence about an order that names no catalogue runbook (a forged order, collect_evidence,
# refresh_rules …) is about the agent's own evidence pipeline.
ORDER_CHECK = "evidence_pipeline"
# The server's incident severities; the healing tiers speak low/medium/high/critical.
SERVER_SEVERITY = {"info": "info", "low": "info", "medium": "warning", "warning": "warning",
                   "high": "warning", "critical": "critical"}  # fmt: skip
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")


@dataclass
class CycleReport:
    """What one cycle did; ``once`` exits 1 unless ``reachable``."""

    reachable: bool = False
    checked_in: bool = False
    recorded: int = 0
    acked: int = 0
    refused_full: int = 0
    errors: list[str] = field(default_factory=list)


def ruleset_hash(signed: Any) -> str:
    """``sha256:`` + hex SHA-256 of the canonical signed rules document (rules, version, sig)."""
    return "sha256:" + hashlib.sha256(canonical.dumps(signed)).hexdigest()


class AgentEvidence:
    """The healing engine's and scanner's ``EvidenceSink``: the outbox's record (sign, chain,
    queue in one fsync'd transaction). Remembers what it emitted during the current cycle so the
    cycle can update the last results (a heal makes the host compliant now, not next scan)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.emitted: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        env = self.agent.record(self.agent.report, **fields)
        if env is None:  # outbox full: an incident is already queued; nothing was signed
            return ""
        self.emitted.append(env["bundle"])
        return bundle_hash(env["bundle"])


class AgentIncidents:
    """The engine's ``IncidentSink``: the durable incident queue in ``state.db``, delivered by
    :meth:`Agent.send_incidents` whenever the server is reachable (an L3 raised while the
    server is down waits there, it is not lost)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def raise_incident(
        self,
        *,
        kind: str,
        severity: str,
        host_id: str | None,
        check: str | None,
        summary: str,
        details: dict[str, Any],
    ) -> None:
        log.warning("incident %s (%s) on %s: %s", kind, severity, host_id, summary[:200])
        with self.agent.db.tx():
            self.agent.db.add_incident(
                kind, severity, summary, {**details, "host_id": host_id, "check": check}
            )


def clock_from_config(cfg: AgentConfig) -> Callable[[], ntp.ClockVerdict]:
    def measure() -> ntp.ClockVerdict:
        return ntp.check_clock(
            list(cfg.ntp.servers),
            max_skew_ms=cfg.ntp.max_skew_ms,
            timeout=cfg.ntp.timeout_ms / 1000.0,
            min_good=cfg.ntp.min_good,
        )

    return measure


class Agent:
    """The appliance agent: state, keys, server connection, and the cycle."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        measure_clock: Callable[[], ntp.ClockVerdict] | None = None,
        now: Callable[[], datetime] | None = None,
        checks: list[Check] | None = None,
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
        except BaseException:
            self.db.close()
            raise
        self.client = ServerClient(cfg.server.url, token, cfg.server.ca_file)
        self.outbox = Outbox(self.db, cfg.outbox.max_entries, cfg.outbox.max_bytes)
        self.witness = Witness(
            self.db, Verifier.from_vkey(self.pins["log_vkey"]), self.pins.get("server_origin")
        )
        self.order_verifier = Verifier.from_vkey(self.pins["order_vkey"])
        self.orders = OrderBook(self.db, self.order_verifier, self.appliance_id)
        self.measure_clock = measure_clock or clock_from_config(cfg)
        self.now = now or (lambda: datetime.now(UTC))
        self.checks: list[Check] = checks if checks is not None else [TimesyncCheck()]
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
        self.release_verifiers = [self.order_verifier] + (
            [Verifier.from_vkey(self.pins["release_vkey"])]
            if isinstance(self.pins.get("release_vkey"), str) else []
        )  # fmt: skip
        self.policy_in_force: AcceptedPolicy | None = None
        self.window = cfg.window
        self.next_checkin_s: int = cfg.agent.checkin_interval_s
        self.report = CycleReport()
        # Healing: the catalogue, the scanner and the engine; their memory (scan status,
        # cooldowns, attempts) lives beside state.db so a restart does not re-run a failed fix.
        self.catalog = load_catalog()
        self.scan_self = os.path.exists("/etc/NIXOS") if scan_self is None else scan_self
        self.evidence_sink = AgentEvidence(self)
        self.incident_sink = AgentIncidents(self)
        scan_kw: dict[str, Any] = {}
        if scan_interval_s is None:
            scan_interval_s = cfg.agent.scan_interval_s
        if scan_interval_s is not None:
            every = dict.fromkeys(self.catalog.checks, scan_interval_s)
            scan_kw = {"default_interval_s": scan_interval_s, "intervals": every}
        self.scanner = Scanner(
            self.catalog, self.transport_for, self.evidence_sink,
            db_path=self._private_db(SCAN_DB), skip_runbooks=SELF_COVERED_RUNBOOKS, **scan_kw,
        )  # fmt: skip
        self.engine = HealingEngine(
            self.catalog, self.transport_for, self.evidence_sink, self.incident_sink,
            clock=lambda: self.now(), db_path=self._private_db(HEAL_DB),
        )  # fmt: skip
        self.l2 = OpenAIChatPlanner.from_config(cfg.healing)
        self.server_rules: list[Rule] = []
        self.policy = Policy.default(
            self.catalog, in_window=self.in_window,
            allow_disruptive_outside_window=cfg.window.allow_disruptive_outside, l2=self.l2,
            policy_version="default",
        )  # fmt: skip
        self._load_policy()
        self._transports: dict[str, Any] = {}
        self._target_keys: dict[str, tuple[Any, ...]] = {}
        self._tofu_pins: dict[str, str] = {}  # memory only, like the credentials
        self._box: Any = None  # the box key credentials are sealed to (memory once loaded)
        self._targets_refused: list[str] = []
        with self.db.tx():
            self.db.set("appliance_id", self.appliance_id)
            self.db.set("site_id", self.site_id)
            self.db.set(keyring.COSIGN_KEY, self.cosigner.vkey)  # for the console and attest
        self.reseller = None
        r = cfg.reseller
        if cfg.deployment.mode == "reseller" and (r.syslog_target or r.webhook_url):
            from .reseller import ResellerSink

            self.reseller = ResellerSink(
                self.signer, r.syslog_target, r.webhook_url, cfg.server.ca_file
            )

    def _private_db(self, name: str) -> str:
        """A SQLite file in the state dir, created 0600 (it holds no secrets, but it is ours)."""
        p = self.state_dir / name
        if not p.exists():
            os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
        return str(p)

    def close(self) -> None:
        self._close_transports(set(self._transports))
        self.scanner.close()
        self.engine.memory.close()
        self.client.close()
        self.db.close()

    # -- transports (memory only) ---------------------------------------------------------------

    def transport_for(self, host_id: str) -> Any:
        """The open transport to ``host_id``, opened on first use from the last check-in's
        target (credentials never leave memory)."""
        from .hosts.base import Target, TransportError, open_transport

        t = self._transports.get(host_id)
        if t is not None:
            return t
        if host_id == self.appliance_id:
            target = Target(host_id=host_id, kind="local", address="localhost")
        else:
            target = next((x for x in self.targets if x.host_id == host_id), None)
            if target is None:
                raise TransportError(f"host {host_id} is not a target of this site")
        t = open_transport(target, on_tofu=self._on_tofu)
        self._transports[host_id] = t
        return t

    def _close_transports(self, host_ids: set[str]) -> None:
        for h in host_ids:
            t = self._transports.pop(h, None)
            if t is None:
                continue
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not stop a cycle
                log.debug("closing transport to %s failed", h)

    def _on_tofu(self, host_id: str, fingerprint: str) -> None:
        """An SSH host key accepted on first use (the credential carried no pin): evidence,
        and pinned in memory so a different key later is refused."""
        self._tofu_pins[host_id] = fingerprint
        now = canonical.utc_now()
        self.record(
            self.report, host_id=host_id, check="linux_ssh",
            controls=list(controls_for("linux_ssh")), outcome="alert", tier="monitor",
            action_taken=f"SSH host key accepted on first use (no pin in the credential): "
            f"{fingerprint}; pinned until the agent restarts",
            pre_state={"observed": {"host_key": fingerprint}, "expected": {"pinned": True}},
            started_at=now, finished_at=now,
        )  # fmt: skip

    # -- evidence -----------------------------------------------------------------------------

    def _clock_field(self) -> dict[str, Any]:
        if self.clock is None:
            return {"ntp_ok": False, "offset_ms": None, "source": "unchecked"}
        return self.clock.to_evidence()

    def record(self, report: CycleReport | None = None, **fields: Any) -> dict[str, Any] | None:
        """Sign one bundle into the chain and the outbox; ``None`` if the outbox is full or the
        appliance was decommissioned (nothing is signed after the chain was closed)."""
        fields.setdefault("site_id", self.site_id)
        fields.setdefault("controls", [])
        fields.setdefault("clock", self._clock_field())
        fields.setdefault("agent_version", AGENT_VERSION)
        fields.setdefault("deployment_mode", self.cfg.deployment.mode)
        fields.setdefault("reseller_id", self.cfg.deployment.reseller_id)
        for k, v in self.policy.evidence_fields().items():
            fields.setdefault(k, v)
        try:
            env = self._sign(fields)
        except OutboxFull as e:
            if report is not None:
                report.refused_full += 1
            self._outbox_full(str(e), fields)
            return None
        except Decommissioned as e:
            log.error("evidence NOT recorded: %s (%s on %s)", e, fields.get("check"),
                      fields.get("host_id"))  # fmt: skip
            if report is not None:
                report.errors.append(str(e))
            return None
        if report is not None:
            report.recorded += 1
        if self.reseller is not None:
            self.reseller.emit(env)
        return env

    def _sign(self, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.outbox.record(self.signer, self.appliance_id, **fields)
        except keyring.KeyRotated:
            # `osiris-agent rotate-key` committed a new key meanwhile: sign with it (the outbox
            # checks under its write lock, so the old key never signs at or past effective_seq).
            self.reload_signer()
            return self.outbox.record(self.signer, self.appliance_id, **fields)

    def reload_signer(self) -> None:
        """Load the signing key ``state.db`` now names (after another process rotated it)."""
        self.signer = keyring.load_signer(self.cfg.agent.key_file, self.db.get(keyring.SIGNING_KEY))
        if self.reseller is not None:
            self.reseller.signer = self.signer
        log.warning("signing key reloaded after a rotation: %s+%s", self.signer.name,
                    self.signer.key_id_hex)  # fmt: skip

    @property
    def decommissioned(self) -> int | None:
        """The seq of the bundle that closed this appliance's chain, or None."""
        return self.outbox.decommissioned

    def decommission(self) -> dict[str, Any]:
        """Sign the bundle that closes the chain and mark the state decommissioned, in one
        transaction: after it, :meth:`Outbox.record` refuses every bundle. Raises
        ``Decommissioned`` if that was already done, ``OutboxFull`` if it cannot be recorded."""
        now = canonical.utc_now()
        with self.db.tx():
            seq, _head = self.outbox.head()
            env = self._sign(dict(
                site_id=self.site_id, host_id=self.appliance_id, check=DECOMMISSION_CHECK,
                controls=list(controls_for(DECOMMISSION_CHECK)), outcome="compliant",
                tier="monitor", action_taken="appliance decommissioned: evidence chain closed",
                pre_state={"observed": {"chain_seq": seq, "queued": self.outbox.depth()}},
                started_at=now, finished_at=now, clock=self._clock_field(),
                agent_version=AGENT_VERSION, deployment_mode=self.cfg.deployment.mode,
                reseller_id=self.cfg.deployment.reseller_id, **self.policy.evidence_fields(),
            ))  # fmt: skip
            self.db.set("decommissioned", str(env["bundle"]["seq"]))
        if self.reseller is not None:
            self.reseller.emit(env)
        return env

    def _outbox_full(self, why: str, fields: dict[str, Any]) -> None:
        log.error("outbox full, evidence NOT recorded: %s (%s on %s)", why,
                  fields.get("check"), fields.get("host_id"))  # fmt: skip
        with self.db.tx():
            n = int(self.db.get("refused_full", "0") or 0) + 1
            self.db.set("refused_full", str(n))
            pending = [i for i in self.db.unsent_incidents() if i["kind"] == "outbox_full"]
            if not pending:
                self.db.add_incident(
                    "outbox_full",
                    "critical",
                    "the evidence outbox is full; new evidence is being refused",
                    {"reason": why, "refused_total": n, "depth": self.outbox.depth()},
                )

    # -- check-in -----------------------------------------------------------------------------

    def status_block(self) -> dict[str, Any]:
        seq, head = self.outbox.head()
        clock = self._clock_field()
        return {
            "uptime_s": int(time.monotonic() - self.started),
            "outbox_depth": self.outbox.depth(),
            "chain_head": head,
            "seq": seq,
            "clock": {
                "ntp_ok": clock["ntp_ok"],
                "offset_ms": clock["offset_ms"] if clock["offset_ms"] is not None else 0,
                "source": clock["source"][:128],
            },
            "checks": [
                {
                    "host_id": r["host_id"],
                    "check": r["check"],
                    "status": r["status"],
                    "since": r["since"],
                }  # fmt: skip
                for r in self.db.results()
            ],
        }

    def checkin(self, report: CycleReport) -> dict[str, Any] | None:
        """POST /checkin and apply the answer; ``None`` when the server is unreachable."""
        req = {
            "appliance_id": self.appliance_id,
            "agent_version": AGENT_VERSION,
            "status": self.status_block(),
            "log_size_seen": self.witness.size,
            "cosignatures": self.witness.cosignatures(self.cosigner),
        }
        if self.policy_in_force is not None:  # the server then sends a policy only when newer
            req["policy_version"] = self.policy_in_force.version
        validate_checkin_request(req)
        at = canonical.utc_now()
        try:
            resp = self.client.post("/checkin", req)
            validate_checkin_response(resp)
        except ServerUnreachable as e:
            self._note_checkin(at, False, str(e))
            report.errors.append(str(e))
            return None
        except SchemaError as e:
            self._note_checkin(at, True, f"bad check-in answer: {e}")
            report.errors.append(f"bad check-in answer: {e}")
            report.reachable = True
            return None
        report.reachable = report.checked_in = True
        self._note_checkin(at, True, None)
        self.apply(resp, report)
        return resp

    def _note_checkin(self, at: str, reachable: bool, error: str | None) -> None:
        """``last_contact`` (status CLI), ``last_checkin`` = ``{"at", "ok"}`` of the latest
        attempt (the technician's console) and ``last_checkin_ok_at`` (last success)."""
        ok = reachable and error is None
        with self.db.tx():
            self.db.set_json("last_contact", {"at": at, "reachable": reachable, "error": error})
            self.db.set_json("last_checkin", {"at": at, "ok": ok})
            if ok:
                self.db.set("last_checkin_ok_at", at)

    def apply(self, resp: dict[str, Any], report: CycleReport) -> None:
        """Apply a validated check-in answer; targets and credentials stay in memory.

        What the agent does comes only from the signed policy (and the signed rules it names):
        the answer's unsigned ``runbooks``, ``window`` and ``policy_version`` (an older server's)
        are ignored, and its ``next_checkin_s`` can only shorten the policy's cadence."""
        self._apply_targets(resp["targets"])
        self._apply_signed(resp.get("policy"), resp["rules"], report)
        self._apply_policy()
        self.next_checkin_s = resp["next_checkin_s"]
        if self.policy_in_force is not None:
            cadence = self.policy_in_force.doc["checkin_interval_s"]
            self.next_checkin_s = min(self.next_checkin_s, cadence)
        now = self.now()
        in_window = self.in_window(now)
        for env in resp["orders"]:
            with self.db.tx():
                outcome = self.orders.receive(
                    env, now, in_window, self.window.allow_disruptive_outside
                )
                if not self._executes(outcome):
                    self.record(report, **self._order_fields(outcome))
            self._act(outcome, report)

    def _apply_targets(self, raw: list[dict[str, Any]]) -> None:
        """Targets → memory; a transport whose target changed (or vanished) is closed so the
        next use opens it with the new address or rotated credential."""
        from .hosts.base import Target

        targets = []
        refused: list[str] = []
        for t in raw:
            if t["kind"] == "local" and t["host_id"] != self.appliance_id:
                # "local" is the appliance itself: evidence about this box must never be
                # signed under a clinic host's id
                refused.append(f"{t['host_id']}: a local target that is not this appliance")
                continue
            secret: dict[str, str] = {}
            if "sealed" in t:
                try:
                    secret = open_sealed(self._box_key(), t["sealed"])
                except OsirisError as e:
                    refused.append(f"{t['host_id']}: {e}")
                    continue
            # "lab" relaxes transport security (plain HTTP, Basic auth): the server may only ask
            # for it when this appliance itself is configured as a lab appliance, so whoever can
            # edit a credential on the server cannot downgrade a production host's transport.
            lab = bool(t["lab"]) and self.cfg.agent.lab
            if t["lab"] and not lab:
                log.warning("target %s is marked lab at the server; ignored (agent.lab = false)",
                            t["host_id"])  # fmt: skip
            pins = tuple(t["host_key_fingerprints"])
            if not pins and t["host_id"] in self._tofu_pins:
                pins = (self._tofu_pins[t["host_id"]],)
            targets.append(
                Target(
                    host_id=t["host_id"],
                    kind=t["kind"],
                    address=t["address"],
                    port=t["port"] or None,
                    username=t["username"] or None,
                    password=secret.get("password"),
                    private_key=secret.get("private_key"),
                    host_key_fingerprints=pins,
                    # No pin in the credential: accept the first key, as evidence (_on_tofu).
                    tofu=t["kind"] == "ssh" and not pins,
                    lab=lab,
                    use_tls=t["use_tls"],
                    verify_tls=t["verify_tls"],
                    # The lab WS-Man simulator speaks HTTP Basic only; real hosts use NTLM.
                    auth="basic" if lab else "ntlm",
                )
            )
        if refused and refused != self._targets_refused:
            log.error("targets refused: %s", "; ".join(refused))
            with self.db.tx():
                self.db.add_incident(
                    "targets_refused", "high",
                    f"credentials refused by the appliance: {'; '.join(refused)}"[:500],
                    {"refused": refused[:20]},
                )  # fmt: skip
        self._targets_refused = refused
        keys = {t.host_id: (t, t.password, t.private_key) for t in targets}
        changed = {h for h, k in self._target_keys.items() if keys.get(h) != k}
        self._close_transports(changed & set(self._transports))
        self._target_keys = keys
        self.targets = targets
        for t in targets:
            self.engine.set_platform(t.host_id, PLATFORM_OF_KIND.get(t.kind, t.kind))
        self.engine.set_platform(self.appliance_id, "nixos")

    def _box_key(self) -> Any:
        """The X25519 key credentials are sealed to (loaded on first use, kept in memory)."""
        if self._box is None:
            from . import boxkey

            self._box = boxkey.load(boxkey.path_in(self.state_dir))
        return self._box

    # -- the signed policy and rules ----------------------------------------------------------

    def _load_policy(self) -> None:
        """The policy in force before this process started (state.db), verified again."""
        env = self.db.get_json(POLICY_DOC)
        if env is None:
            return
        try:
            self.policy_in_force = verify_policy(
                env, self.order_verifier, appliance_id=self.appliance_id, site_id=self.site_id,
                catalog=self.catalog, release_verifiers=self.release_verifiers,
            )  # fmt: skip
        except PolicyRefused as e:
            log.error("the stored policy does not verify; running on catalogue defaults: %s", e)
            with self.db.tx():
                self.db.add_incident(
                    "policy_state_invalid", "critical",
                    f"the policy stored in state.db does not verify: {e}"[:500],
                    {"reason": str(e)[:500]},
                )  # fmt: skip
            return
        self._apply_policy()

    def _apply_signed(self, env: Any, rules: dict[str, Any], report: CycleReport) -> None:
        """Verify a delivered policy and the rules; put them in force together or not at all.

        A policy that does not verify (bad or unknown signature, other appliance or site,
        malformed, a lower version than the one in force, a parameter the catalogue refuses) is
        refused with a ``rejected`` bundle and an incident, once per document; so is one whose
        rules (named by ``ruleset_hash``) are refused. The previous policy and rules stay."""
        candidate: AcceptedPolicy | None = None
        if env is not None:
            try:
                candidate = verify_policy(
                    env, self.order_verifier, appliance_id=self.appliance_id,
                    site_id=self.site_id, catalog=self.catalog,
                    release_verifiers=self.release_verifiers, in_force=self.policy_in_force,
                )  # fmt: skip
            except PolicyRefused as e:
                self._reject_policy(env, str(e), report)
        target = candidate or self.policy_in_force
        if target is None:
            return  # no policy has ever been accepted: catalogue defaults, baseline rules only
        signed = rules.get("signed")
        try:
            parsed = verify_signed_rules(signed, self.order_verifier, self.catalog)
            if ruleset_hash(signed) != target.doc["ruleset_hash"]:
                raise RuleSetRefused(
                    f"rule set {ruleset_hash(signed)[:23]}… is not the one the signed policy "
                    f"names ({target.doc['ruleset_hash'][:23]}…)"
                )
        except RuleSetRefused as e:
            self._refuse_rules(rules, e)
            if candidate is not None and candidate is not self.policy_in_force:
                self._reject_policy(env, f"the rules it names were refused: {e}", report)
            return
        if candidate is not None and candidate is not self.policy_in_force:
            self._enforce(candidate, report)
        self.server_rules = parsed
        self.rules = {"version": signed["version"], "rules": signed["rules"]}
        with self.db.tx():
            self.db.set("rules_version", signed["version"])

    def _refuse_rules(self, rules: dict[str, Any], e: Exception) -> None:
        version = str(rules.get("version", ""))[:128]
        if self._rules_refused == (version, str(e)):
            return
        self._rules_refused = (version, str(e))
        log.error("rules version %s refused, keeping the previous rules: %s", version, e)
        with self.db.tx():
            self.db.add_incident(
                "rules_refused",
                "high",
                f"received L1 rules that were refused; the previous rules stay: {e}"[:500],
                {"version": version, "reason": str(e)[:500],
                 "kept_version": self.db.get("rules_version")},
            )  # fmt: skip

    _rules_refused: tuple[str, str] | None = None

    def _reject_policy(self, env: Any, reason: str, report: CycleReport) -> None:
        """One ``rejected`` bundle (check ``policy``) and one incident per refused document."""
        try:
            digest = envelope_sha256(env)
        except (OsirisError, RecursionError):
            digest = "not canonical JSON"
        if self.db.get(POLICY_REJECTED) == digest:
            return
        doc = env.get("policy") if isinstance(env, dict) else None
        version = doc.get("version") if isinstance(doc, dict) else None
        version = version if type(version) is int else None
        sig = env.get("sig") if isinstance(env, dict) else None
        key_id = sig.get("key_id") if isinstance(sig, dict) else None
        kept = self.policy_in_force.version if self.policy_in_force is not None else "default"
        log.error("policy v%s refused, policy %s stays in force: %s", version, kept, reason)
        now = canonical.utc_now()
        text = f"policy v{version} refused: {reason}; policy {kept} stays in force"
        self.record(
            report, host_id=self.appliance_id, check=POLICY_CHECK,
            controls=list(controls_for(POLICY_CHECK)), outcome="rejected", tier="monitor",
            action_taken=text[:1000],
            pre_state={
                "observed": {"version": version, "sha256": digest,
                             "key_id": key_id if isinstance(key_id, str) else None,
                             "reason": reason[:500]},
                "expected": {"signed_by": self.order_verifier.key_id_hex,
                             "appliance_id": self.appliance_id, "site_id": self.site_id,
                             "min_version": kept},
            },
            started_at=now, finished_at=now,
        )  # fmt: skip
        with self.db.tx():
            self.db.set(POLICY_REJECTED, digest)
            self.db.add_incident(
                "policy_rejected", "high",
                f"a policy was refused; policy {kept} stays in force: {reason}"[:500],
                {"version": version, "sha256": digest, "reason": reason[:500], "kept": kept},
            )  # fmt: skip

    def _enforce(self, new: AcceptedPolicy, report: CycleReport) -> None:
        """Put ``new`` in force (state.db first), then sign a ``policy_change`` bundle for every
        trust-redirecting value that changed, naming the change record the policy carries."""
        old = self.policy_in_force
        before = old.trust_values(self.catalog) if old is not None else {}
        after = new.trust_values(self.catalog)
        with self.db.tx():
            self.db.set_json(POLICY_DOC, new.envelope)
        self.policy_in_force = new
        self._apply_policy()  # the bundles below already carry the new version
        records = {(c["runbook_id"], c["param"]): c for c in new.doc["changes"]}
        for rid in sorted(set(before) | set(after)):
            rb = self.catalog.runbooks[rid]
            for name in sorted(set(before.get(rid, {})) | set(after.get(rid, {}))):
                default = rb.params[name].default
                was = before.get(rid, {}).get(name, default)
                now_v = after.get(rid, {}).get(name, default)
                if was == now_v:
                    continue
                rec = records.get((rid, name))
                who = f"{rec['by']} at {rec['at']}" if rec else "an unrecorded change"
                ts = canonical.utc_now()
                self.record(
                    report, host_id=self.appliance_id, check=POLICY_CHANGE_CHECK,
                    controls=list(controls_for(POLICY_CHANGE_CHECK)), outcome="alert",
                    tier="monitor", runbook_id=rid,
                    action_taken=f"trust-redirecting {rid}.{name} changed by {who}: "
                    f"{was!r} -> {now_v!r} (policy v{new.version})"[:1000],
                    pre_state={"observed": {"param": name, "value": was}},
                    post_state={"observed": {"param": name, "value": now_v},
                                "change": rec, "policy_version": new.version},
                    started_at=ts, finished_at=ts,
                )  # fmt: skip
        if new.skipped:
            names = ", ".join(f"{x['runbook_id']}.{x['param']}" for x in new.skipped[:10])
            with self.db.tx():
                self.db.add_incident(
                    "runbook_params_refused", "warning",
                    f"policy v{new.version} sets parameters this agent's catalogue does not "
                    f"know; their catalogue default applies: {names}"[:500],
                    {"skipped": new.skipped[:50], "policy_version": new.version},
                )  # fmt: skip

    def _apply_policy(self) -> None:
        """The healing policy from the signed policy in force (catalogue defaults without one):
        an explicit empty enabled list means nothing runs (never "everything")."""
        known = set(self.catalog.runbooks)
        pol = self.policy_in_force
        if pol is None:
            self.window = self.cfg.window
            self.policy = Policy.default(
                self.catalog, in_window=self.in_window,
                allow_disruptive_outside_window=self.cfg.window.allow_disruptive_outside,
                l2=self.l2, policy_version="default",
            )  # fmt: skip
        else:
            doc = pol.doc
            self._apply_window(doc["window"])
            self.policy = Policy(
                enabled_runbooks=frozenset(doc["runbooks"]["enabled"]) & known,
                disabled_runbooks=frozenset(doc["runbooks"]["disabled"]) & known,
                rules=list(self.server_rules),
                in_window=self.in_window,
                allow_disruptive_outside_window=self.window.allow_disruptive_outside,
                l2=self._l2_under(doc["l2"]),
                policy_version=str(pol.version),
                ruleset_hash=doc["ruleset_hash"],
                params=pol.params,
                context=pol.context,
            )
        now = {"policy_version": self.policy.policy_version,
               "ruleset_hash": self.policy.ruleset_hash}  # fmt: skip
        if self.db.get_json("policy") != now:  # for status and the console; written on change
            with self.db.tx():
                self.db.set_json("policy", now)

    def _l2_under(self, limits: dict[str, Any]) -> Any:
        """The local L2 planner as the policy allows it: off, or with a confidence threshold no
        lower than the policy's (the policy can restrict L2, never enable it)."""
        if self.l2 is None or not limits["allowed"]:
            return None
        if limits["min_confidence"] <= self.l2.min_confidence:
            return self.l2
        import copy

        stricter = copy.copy(self.l2)
        stricter.min_confidence = limits["min_confidence"]
        return stricter

    @property
    def site_params(self) -> dict[str, dict[str, Any]]:
        """The policy's parameter values in force, ``{runbook_id: {name: value}}``."""
        return {rb: dict(v) for rb, v in self.policy.params.items()}

    # -- orders -------------------------------------------------------------------------------

    @staticmethod
    def _executes(outcome: OrderOutcome) -> bool:
        """An accepted ``run_runbook`` order: the healing executor runs it and its evidence is
        the record (no separate acknowledgement bundle)."""
        refused = outcome.outcome in ("rejected", "expired", "deferred")
        return not refused and outcome.kind == "run_runbook" and outcome.order is not None

    def _order_fields(self, outcome: OrderOutcome) -> dict[str, Any]:
        """Evidence for an order's fate, under a catalogue check id: the named runbook's check,
        else the agent's own evidence pipeline."""
        fields = outcome.bundle_fields(self.appliance_id)
        check = ORDER_CHECK
        if fields.get("runbook_id") in self.catalog.runbooks:
            check = self.catalog.runbooks[fields["runbook_id"]].check
        else:
            fields["runbook_id"] = None
        fields["check"] = check
        fields["controls"] = list(controls_for(check))
        return fields

    def _apply_window(self, w: dict[str, Any]) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(w["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("server sent unknown time zone %r; keeping the configured window",
                        w["timezone"][:64])  # fmt: skip
            return
        self.window = WindowConfig(
            days=tuple(w["days"]),
            start=w["start"],
            duration_min=max(1, min(1440, w["duration_min"])),
            timezone=w["timezone"],
            allow_disruptive_outside=self.cfg.window.allow_disruptive_outside,
        )

    def in_window(self, now: datetime) -> bool:
        return dataclasses.replace(self.cfg, window=self.window).in_maintenance_window(now)

    def _act(self, outcome: OrderOutcome, report: CycleReport) -> None:
        order = outcome.order or {}
        params = order.get("params") if isinstance(order.get("params"), dict) else {}
        if self._executes(outcome):
            host = params.get("host_id")
            host = host if isinstance(host, str) and _HOST_ID.fullmatch(host) else None
            try:
                emitted = self.engine.run_order(order, host or self.appliance_id, self.policy)
            except Exception as e:  # noqa: BLE001 - a bug here is an error, not a dead agent
                log.exception("order %s crashed", outcome.order_id)
                report.errors.append(f"order {outcome.order_id}: {type(e).__name__}")
                emitted = []
            if not emitted:  # never a silent drop: the order's fate is evidence
                why = f"runbook {str(params.get('runbook_id'))[:64]!r} could not be run here"
                refused = OrderOutcome("rejected", why, outcome.order)
                self.record(report, **self._order_fields(refused))
        elif outcome.action == "collect_evidence":
            host = params.get("host_id")
            self.run_checks(report, host_id=host, only=params.get("checks"))
            remote = [t.host_id for t in self.targets if host in (None, t.host_id)]
            for h in remote:
                try:
                    self.engine.run_order(order, h, self.policy)
                except Exception as e:  # noqa: BLE001
                    log.exception("order %s crashed on %s", outcome.order_id, h)
                    report.errors.append(f"order {outcome.order_id}: {type(e).__name__}")
        elif outcome.action == "refresh_rules":
            self.checkin_no_orders(report)

    def checkin_no_orders(self, report: CycleReport) -> None:
        """A second check-in on request; its own orders are handled (no recursion loop)."""
        sub = CycleReport()
        self.checkin(sub)
        report.recorded += sub.recorded

    # -- checks -------------------------------------------------------------------------------

    def hosts(self) -> list[HostHandle]:
        own = HostHandle(self.appliance_id, "local", clock=self.clock)
        return [own] + [HostHandle(t.host_id, t.kind, target=t, clock=self.clock)
                        for t in self.targets]  # fmt: skip

    def run_checks(
        self, report: CycleReport, host_id: str | None = None, only: list[str] | None = None
    ) -> None:
        for host in self.hosts():
            if host_id is not None and host.host_id != host_id:
                continue
            for check in self.checks:
                if only is not None and check.id not in only:
                    continue
                if not check.applies_to(host):
                    continue
                started = canonical.utc_now()
                try:
                    result = check.run(host)
                except Exception as e:  # a check's bug must not stop the cycle; it is evidence
                    log.exception("check %s on %s crashed", check.id, host.host_id)
                    result = CheckResult("error", {"error": type(e).__name__}, {}, "check crashed")
                finished = canonical.utc_now()
                with self.db.tx():
                    self.db.set_result(
                        host.host_id, check.id, result.status, result.observed, result.expected,
                        finished,
                    )  # fmt: skip
                    self.record(
                        report,
                        host_id=host.host_id,
                        check=check.id,
                        controls=list(check.controls),
                        outcome=result_outcome(result),
                        tier="monitor",
                        pre_state={"observed": result.observed, "expected": result.expected},
                        action_taken=result.detail[:4000] or None,
                        started_at=started,
                        finished_at=finished,
                    )

    # -- healing ------------------------------------------------------------------------------

    def scan_targets(self) -> list[Any]:
        """What the scanner looks at: the site's targets, plus the appliance itself on NixOS."""
        from .hosts.base import Target

        out = list(self.targets)
        if self.scan_self:
            out.append(Target(host_id=self.appliance_id, kind="local", address="localhost"))
        return out

    def heal(self, report: CycleReport) -> None:
        """Detect what is due on every target and hand each finding to the healing engine."""
        targets = self.scan_targets()
        if not targets:
            return
        try:
            findings = self.scanner.run(targets, self.now(), self.policy)
        except Exception as e:  # noqa: BLE001 - a scanner bug must not stop the cycle
            log.exception("scan crashed")
            report.errors.append(f"scan: {type(e).__name__}")
            return
        healed: dict[tuple[str, str], dict[str, Any]] = {}
        for f in findings:
            mark = len(self.evidence_sink.emitted)
            try:
                self.engine.handle(f, self.policy)
            except Exception as e:  # noqa: BLE001
                log.exception("healing %s on %s crashed", f.runbook_id, f.host_id)
                report.errors.append(f"heal {f.runbook_id}: {type(e).__name__}")
                continue
            for b in self.evidence_sink.emitted[mark:]:
                if b["outcome"] == "healed" and b["runbook_id"] == f.runbook_id:
                    healed[(f.host_id, f.runbook_id)] = b.get("post_state") or {}
        self._store_findings(findings, healed)

    def _store_findings(
        self, findings: list[Finding], healed: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        """Last result per (host, check) for status, check-in and the console: the worst status
        of the check's runbooks, with observed/expected per runbook (after any heal)."""
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            groups.setdefault((f.host_id, f.check), []).append(f)
        now = canonical.utc_now()
        with self.db.tx():
            for (host, check), fs in groups.items():
                statuses, observed, expected = [], {}, {}
                for f in fs:
                    status, obs = f.status, f.observed
                    post = healed.get((host, f.runbook_id))
                    if post is not None:
                        status = "compliant"
                        obs = post.get("observed", obs) if isinstance(post, dict) else obs
                    statuses.append(status)
                    observed[f.runbook_id] = obs
                    expected[f.runbook_id] = f.expected
                worst = next((s for s in ("drift", "error") if s in statuses), "compliant")
                self.db.set_result(host, check, worst, observed, expected, now)

    # -- flush --------------------------------------------------------------------------------

    def flush(self, report: CycleReport, max_batches: int | None = None) -> bool:
        """Send queued bundles in batches of ≤ 100 and acknowledge verified receipts.

        Returns True when the queue was drained (or nothing could be sent for a reason that
        retrying will not fix), False when the server was unreachable.
        """
        self.send_incidents(report)
        if not self.witness.trusted:
            report.errors.append(f"not trusting the server's log: {self.witness.distrust_reason}")
            return True
        batches = 0
        while max_batches is None or batches < max_batches:
            size = CATCHUP_BATCH if self.outbox.depth() > BATCH else BATCH
            batch = self.outbox.pending(size)
            if not batch:
                return True
            total = 0
            for n, p in enumerate(batch):
                total += len(p.data)
                if total > CATCHUP_BYTES and n > 0:
                    batch = batch[:n]
                    break
            batches += 1
            body = {
                "envelopes": [p.envelope for p in batch],
                "log_size_seen": self.witness.size,
            }
            try:
                resp = self.client.post("/evidence", body)
            except ServerUnreachable as e:
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return False
            except ServerRefused as e:
                report.reachable = True
                if e.error_code == "E_LOG_SIZE":
                    # The server no longer has the tree we verified: a rolled-back log.
                    why = f"log rolled back: server says our verified size is beyond its log ({e})"
                    self.witness.distrust(why, {"log_size_seen": self.witness.size})
                    report.errors.append(f"log_inconsistent: {why}")
                    self.send_incidents(report)
                    return True
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                return True
            except AuthRefused as e:
                self.outbox.note_failure([p.seq for p in batch], str(e))
                report.errors.append(str(e))
                report.reachable = True
                return True
            report.reachable = True
            try:
                verdict = self.witness.verify_batch(resp, batch)
            except LogInconsistent as e:
                log.error("log_inconsistent: %s", e)
                self.witness.distrust(str(e), {"batch_first_seq": batch[0].seq})
                report.errors.append(f"log_inconsistent: {e}")
                self.send_incidents(report)
                return True
            self.witness.commit(verdict, self.outbox.ack)
            report.acked += len(verdict.acks)
            for seq, err in verdict.rejected:
                self.outbox.mark_rejected(seq, err)
                with self.db.tx():
                    self.db.add_incident(
                        "evidence_rejected", "high", f"server rejected bundle seq {seq}",
                        {"seq": seq, "error": err},
                    )  # fmt: skip
        return True

    def send_incidents(self, report: CycleReport) -> None:
        """Deliver queued incidents (``POST /incidents``, batches of ≤ 100), oldest first; they
        stay queued while the server is unreachable."""
        pending = self.db.unsent_incidents()
        while pending:
            batch, pending = pending[:100], pending[100:]
            items = []
            for inc in batch:
                details = dict(inc["details"])
                item = {
                    "kind": inc["kind"],
                    "severity": SERVER_SEVERITY.get(inc["severity"], "warning"),
                    "summary": inc["summary"][:1024],
                    "details": {**details, "agent_severity": inc["severity"]},
                }
                host = details.get("host_id")
                if isinstance(host, str) and _HOST_ID.fullmatch(host):
                    item["host_id"] = host
                items.append(item)
            try:
                self.client.post("/incidents", {"incidents": items})
            except ServerRefused as e:
                # Refused as malformed: resending cannot help; say so loudly, then drop it.
                log.error("server refused %d incident(s) (%s): %s", len(items),
                          ", ".join(sorted({i["kind"] for i in items})), e)  # fmt: skip
                report.errors.append(str(e))
            except ClientError:
                return
            with self.db.tx():
                for inc in batch:
                    self.db.mark_incident_sent(inc["id"])

    # -- the cycle ----------------------------------------------------------------------------

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        """One cycle; checks ``stop`` between steps so SIGTERM never waits for a full cycle."""
        report = CycleReport()
        stopped = stop.is_set if stop is not None else (lambda: False)
        self.report = report
        if self.decommissioned is not None:
            report.errors.append(f"decommissioned (chain closed at seq {self.decommissioned})")
            return report
        self.evidence_sink.emitted = []
        self.clock = self.measure_clock()
        clock = self._clock_field()
        with self.db.tx():
            self.db.set_json("last_clock", {"at": canonical.utc_now(), **clock})
            self.db.set_json("clock", {k: clock[k] for k in ("ntp_ok", "offset_ms", "source")})
        if stopped():
            return report
        self.checkin(report)
        if stopped():
            return report
        self.run_checks(report)
        self._due_orders(report)
        if stopped():
            return report
        self.heal(report)
        if stopped():
            return report
        drained = self.flush(report)
        if drained and report.reachable:
            self.backoff.success()
        self.outbox.prune(self.cfg.evidence.keep_last, self.cfg.evidence.min_age_days, self.now())
        self.orders.guard.purge(self.now())
        with self.db.tx():
            self.db.set_json(
                "last_cycle",
                {"at": canonical.utc_now(), "reachable": report.reachable,
                 "recorded": report.recorded, "acked": report.acked},
            )  # fmt: skip
        return report

    def _due_orders(self, report: CycleReport) -> None:
        now = self.now()
        for outcome in self.orders.due(
            now, self.in_window(now), self.window.allow_disruptive_outside
        ):
            with self.db.tx():
                if not self._executes(outcome):
                    self.record(report, **self._order_fields(outcome))
                if outcome.order_id:
                    self.orders.forget_deferred(outcome.order_id)
            self._act(outcome, report)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``: a cycle every interval ± jitter; between cycles, retry the flush
        with exponential backoff while the server is unreachable; a ``run-request`` file asks
        for a cycle now."""
        next_cycle = 0.0
        next_flush: float | None = None
        request = self.state_dir / RUN_REQUEST
        while not stop.is_set():
            if self.decommissioned is not None:  # closed by `osiris-agent decommission`
                log.error("this appliance was decommissioned (chain closed at seq %s); stopping",
                          self.decommissioned)  # fmt: skip
                return
            now = time.monotonic()
            if request.exists():
                try:
                    request.unlink()
                except OSError:
                    pass
                next_cycle = now
            if now >= next_cycle:
                report = self.cycle(stop)
                interval = self.cfg.jittered_interval(base=self.next_checkin_s)
                next_cycle = time.monotonic() + max(1.0, interval)
                next_flush = None
                if not report.reachable:
                    next_flush = time.monotonic() + self.backoff.failure()
                log.info("cycle: reachable=%s recorded=%d acked=%d queue=%d",
                         report.reachable, report.recorded, report.acked,
                         self.outbox.depth())  # fmt: skip
            elif next_flush is not None and now >= next_flush:
                report = CycleReport()
                if self.flush(report) and (report.reachable or self.outbox.depth() == 0):
                    self.backoff.success()
                    next_flush = None
                else:
                    next_flush = time.monotonic() + self.backoff.failure()
            wake = min(next_cycle, next_flush if next_flush is not None else next_cycle)
            stop.wait(max(0.0, min(1.0, wake - time.monotonic())))


def request_cycle(state_dir: str | os.PathLike[str]) -> None:
    """What the console does to ask a running agent for a cycle now (a file, never a socket)."""
    p = Path(state_dir) / RUN_REQUEST
    p.touch(mode=0o600, exist_ok=True)
