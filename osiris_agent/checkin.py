"""Check-in: report status, then apply the answer (targets, signed policy and rules, orders).

Why its own module: the check-in is the agent's only inbound channel (the appliance never
listens on a port). What it sends (the status block, cosignatures of the server's log) and what
it applies from the answer — targets and their sealed credentials into memory only, the signed
policy and rules through :mod:`osiris_agent.signed_policy`, orders through
:mod:`osiris_agent.order_actions` — is one exchange, read top to bottom here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_core.errors import OsirisError, SchemaError
from osiris_core.protocol import (
    ERROR_REASONS,
    validate_checkin_request,
    validate_checkin_response,
)
from osiris_core.seal import open_sealed

from .client import ServerRefused, ServerUnreachable
from .context import CycleReport
from .scanner import PLATFORM_OF_KIND

if TYPE_CHECKING:
    from .context import AgentContext
    from .order_actions import OrderActions
    from .signed_policy import PolicyKeeper

log = logging.getLogger("osiris.agent")


def result_reason(observed: Any) -> str | None:
    """The reason word of a stored error result: ``observed`` is ``{"error": {"kind", …}}``
    (a host error, a fact check) or that per runbook (``heal.py``)."""
    if not isinstance(observed, dict):
        return None
    for v in [observed, *observed.values()]:
        err = v.get("error") if isinstance(v, dict) else None
        if isinstance(err, dict) and err.get("kind") in ERROR_REASONS:
            return str(err["kind"])
    return None


class CheckIn:
    """``POST /checkin`` and applying its answer to the context."""

    def __init__(self, ctx: AgentContext, policy: PolicyKeeper, orders: OrderActions) -> None:
        self.ctx = ctx
        self.policy = policy
        self.orders = orders
        self.target_keys: dict[str, tuple[Any, ...]] = {}
        self.targets_refused: list[str] = []
        self.targets_seen = False  # targets arrive with the first answer (memory only)
        self.legacy_status = False  # the server refused the status block's optional fields
        self.legacy_holds = False  # the server refused ``holds`` (older than partial answers)
        self.targets_hash: str | None = None  # the version of the targets held (memory only)
        self._box: Any = None  # the box key credentials are sealed to (memory once loaded)

    def status_block(self) -> dict[str, Any]:
        ctx = self.ctx
        seq, head = ctx.outbox.head()
        clock = ctx.clock_field()
        return {
            "uptime_s": int(time.monotonic() - ctx.started),
            "outbox_depth": ctx.outbox.depth(),
            "chain_head": head,
            "seq": seq,
            "clock": {
                "ntp_ok": clock["ntp_ok"],
                "offset_ms": clock["offset_ms"] if clock["offset_ms"] is not None else 0,
                "source": clock["source"][:128],
            },
            "checks": self.status_checks(),
        }

    def status_checks(self) -> list[dict[str, Any]]:
        """The last result per (host, check) the check-in reports.

        Each carries when it last ran (``checked_at``) and its interval, so a console can mark a
        result that stopped being refreshed as stale; an error carries its ``reason``. Hosts no
        longer among the targets (their credential was deleted) are left out once this process
        has received its targets — their history stays in the evidence. An older server that
        refuses the three optional fields gets the block without them (``checkin``)."""
        ctx = self.ctx
        known = {t.host_id for t in ctx.targets} | {ctx.appliance_id}
        out = []
        for r in ctx.db.results():
            if self.targets_seen and r["host_id"] not in known:
                continue
            c: dict[str, Any] = {
                "host_id": r["host_id"], "check": r["check"], "status": r["status"],
                "since": r["since"],
            }  # fmt: skip
            if not self.legacy_status:
                if r["status"] == "error":
                    reason = result_reason(r["observed"])
                    if reason is not None:
                        c["reason"] = reason
                if r.get("updated_at"):
                    c["checked_at"] = r["updated_at"]
                c["interval_s"] = self.interval_of(r["check"])
            out.append(c)
        return out

    def interval_of(self, check: str) -> int:
        """The check's interval on this agent: its scan cadence, never less than a cycle (a
        fact check such as ``timesync`` runs every cycle)."""
        ctx = self.ctx
        cycle = max(1, int(ctx.next_checkin_s or 60))
        if check in ctx.scanner.catalog.checks and ctx.scanner.catalog.checks[check].fact:
            return cycle
        return max(cycle, int(ctx.scanner.interval(check)))

    def request(self, full: bool) -> dict[str, Any]:
        """The check-in request; unless ``full``, it names what this process holds and verified
        (``policy_version``, ``holds``), so the answer leaves out the parts still current."""
        ctx = self.ctx
        req: dict[str, Any] = {
            "appliance_id": ctx.appliance_id,
            "agent_version": ctx.updater.version(),  # the switched generation's
            "status": self.status_block(),
            "log_size_seen": ctx.witness.size,
            "cosignatures": ctx.witness.cosignatures(ctx.cosigner),
        }
        if not full and ctx.policy_in_force is not None:  # policy then only when newer
            req["policy_version"] = ctx.policy_in_force.version
        if not self.legacy_holds:
            holds: dict[str, str] = {}
            if not full and self.policy.held_rules_hash is not None:
                holds["rules"] = self.policy.held_rules_hash
            if not full and self.targets_seen and self.targets_hash is not None:
                holds["targets"] = self.targets_hash
            req["holds"] = holds
        validate_checkin_request(req)
        return req

    def post(self, req: dict[str, Any]) -> dict[str, Any]:
        """POST once, falling back (once each, said once) for a server older than the status
        block's optional fields or than ``holds``; the answer validated."""
        ctx = self.ctx
        while True:
            try:
                resp = ctx.client.post("/checkin", req)
                break
            except ServerRefused as e:
                schema = e.error_code == "E_SCHEMA"
                if schema and not self.legacy_status and "status.checks" in str(e):
                    log.warning("server refused the new status fields; sending the older block")
                    self.legacy_status = True
                    req["status"] = self.status_block()
                elif schema and not self.legacy_holds and "holds" in str(e):
                    log.warning("server refused holds; asking for whole check-in answers")
                    self.legacy_holds = True
                    req.pop("holds", None)
                else:
                    raise
        validate_checkin_response(resp)
        return resp

    def unheld(self, req: dict[str, Any], resp: dict[str, Any]) -> list[str]:
        """Parts the answer calls unchanged although this request did not name them as held —
        or rules called unchanged beside a new policy naming other rules. "Unchanged" is no
        document: such an answer is never applied; the agent asks again in full."""
        holds = req.get("holds", {})
        said = {"policy": "policy_version" in req, "rules": "rules" in holds,
                "targets": "targets" in holds}  # fmt: skip
        out = [p for p in resp.get("unchanged", []) if not said[p]]
        env = resp.get("policy")
        named = env.get("policy", {}).get("ruleset_hash") if isinstance(env, dict) else None
        if "rules" in resp.get("unchanged", []) and named is not None:
            if named != self.policy.held_rules_hash and "rules" not in out:
                out.append("rules")
        return out

    def checkin(self, report: CycleReport, full: bool = False) -> dict[str, Any] | None:
        """POST /checkin and apply the answer; ``None`` when the server is unreachable or the
        answer is refused. An answer calling unchanged what this agent does not hold is asked
        again in full (once); its orders are kept, the server hands an order out only once."""
        at = canonical.utc_now()
        req = self.request(full)
        try:
            resp = self.post(req)
            missing = self.unheld(req, resp)
            if missing and not full:
                log.warning("check-in answer calls %s unchanged, but this agent does not hold "
                            "it; asking again in full", "/".join(missing))  # fmt: skip
                first = resp["orders"]
                req = self.request(True)
                try:
                    resp = self.post(req)
                except (ServerUnreachable, ServerRefused, SchemaError):
                    self.orders.receive(first, report)  # signed; verified by the order book
                    raise
                resp["orders"] = first + resp["orders"]
                missing = self.unheld(req, resp)
            if missing:  # still: nothing of it is applied but its signed orders (handed once)
                self.orders.receive(resp["orders"], report)
                raise SchemaError(f"unchanged: {'/'.join(missing)} is not held by this agent")
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

    def checkin_no_orders(self, report: CycleReport) -> None:
        """A second check-in on request (``refresh_rules``), asking for everything again; its
        own orders are handled (no recursion loop)."""
        sub = CycleReport()
        self.checkin(sub, full=True)
        report.recorded += sub.recorded

    def _note_checkin(self, at: str, reachable: bool, error: str | None) -> None:
        """``last_contact`` (status CLI), ``last_checkin`` = ``{"at", "ok"}`` of the latest
        attempt (the technician's console) and ``last_checkin_ok_at`` (last success)."""
        ok = reachable and error is None
        db = self.ctx.db
        with db.tx():
            db.set_json("last_contact", {"at": at, "reachable": reachable, "error": error})
            db.set_json("last_checkin", {"at": at, "ok": ok})
            if ok:
                db.set("last_checkin_ok_at", at)

    def apply(self, resp: dict[str, Any], report: CycleReport) -> None:
        """Apply a validated check-in answer; targets and credentials stay in memory.

        What the agent does comes only from the signed policy (and the signed rules it names):
        the answer's unsigned ``runbooks``, ``window`` and ``policy_version`` (an older server's)
        are ignored, and its ``next_checkin_s`` can only shorten the policy's cadence. A part
        named ``unchanged`` keeps what this process holds and verified (``checkin`` made sure
        it holds one)."""
        ctx = self.ctx
        if "targets" in resp:  # else unchanged: the targets held stay, transports stay open
            self.apply_targets(resp["targets"])
            self.targets_hash = resp.get("targets_hash")
        self.policy.apply_signed(resp.get("policy"), resp.get("rules"), report)
        self.policy.apply_policy()
        ctx.next_checkin_s = resp["next_checkin_s"]
        if ctx.policy_in_force is not None:
            cadence = ctx.policy_in_force.doc["checkin_interval_s"]
            ctx.next_checkin_s = min(ctx.next_checkin_s, cadence)
        self.orders.receive(resp["orders"], report)

    def apply_targets(self, raw: list[dict[str, Any]]) -> None:
        """Targets → memory; a transport whose target changed (or vanished) is closed so the
        next use opens it with the new address or rotated credential."""
        from .hosts.base import Target

        ctx = self.ctx
        transports = ctx.transports
        targets = []
        refused: list[str] = []
        for t in raw:
            if t["kind"] == "local" and t["host_id"] != ctx.appliance_id:
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
            lab = bool(t["lab"]) and ctx.cfg.agent.lab
            if t["lab"] and not lab:
                log.warning("target %s is marked lab at the server; ignored (agent.lab = false)",
                            t["host_id"])  # fmt: skip
            # a key/certificate accepted on first use at this destination (kept in state.db)
            tofu_pin = transports.pin_for(t["host_id"], t["kind"], t["address"], t["port"] or None)
            pins = tuple(t["host_key_fingerprints"])
            if not pins and tofu_pin and t["kind"] == "ssh":
                pins = (tofu_pin,)
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
                    # No pin in the credential: accept the first key, as evidence (on_tofu).
                    tofu=t["kind"] == "ssh" and not pins,
                    lab=lab,
                    use_tls=t["use_tls"],
                    verify_tls=t["verify_tls"],
                    # WinRM trust per host (hosts/winrm_trust.py): the credential's CA bundle or
                    # pinned thumbprint; neither: trust on first use, pinned in state.db
                    ca_bundle=t.get("ca_bundle") or None,
                    cert_thumbprint=t.get("cert_thumbprint")
                    or (tofu_pin if t["kind"] == "winrm" and not t.get("ca_bundle") else None),
                    # The lab WS-Man simulator speaks HTTP Basic only; a real host NTLM or
                    # Kerberos — never Basic, whatever the server says (winrm.py refuses it)
                    auth="basic" if lab else (t.get("auth") or "ntlm"),
                    # sudo is an SSH login's way to root; meaningless (and ignored) elsewhere
                    sudo=t["kind"] == "ssh" and bool(t.get("sudo", False)),
                    become_password=secret.get("become_password"),
                )
            )
        if refused and refused != self.targets_refused:
            log.error("targets refused: %s", "; ".join(refused))
            with ctx.db.tx():
                ctx.db.add_incident(
                    "targets_refused", "high",
                    f"credentials refused by the appliance: {'; '.join(refused)}"[:500],
                    {"refused": refused[:20]},
                )  # fmt: skip
        self.targets_refused = refused
        keys = {t.host_id: (t, t.password, t.private_key, t.become_password) for t in targets}
        changed = {h for h, k in self.target_keys.items() if keys.get(h) != k}
        ctx.transports.close(changed & set(ctx.transports.open))
        self.target_keys = keys
        self.targets_seen = True
        ctx.targets = targets
        for t in targets:
            ctx.engine.set_platform(t.host_id, PLATFORM_OF_KIND.get(t.kind, t.kind))
        ctx.engine.set_platform(ctx.appliance_id, "nixos")

    def _box_key(self) -> Any:
        """The X25519 key credentials are sealed to (loaded on first use, kept in memory)."""
        if self._box is None:
            from . import boxkey

            self._box = boxkey.load(boxkey.path_in(self.ctx.state_dir))
        return self._box
