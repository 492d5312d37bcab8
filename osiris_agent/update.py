"""Agent updates (issue 16): an `update_agent` order, the switch, the health check, a rollback.

Why its own module: an update is the one order that outlives the cycle that received it — on
NixOS the switch restarts the agent itself — so its progress is a small file in the state dir
(``update.json``, phases ``switching`` → ``switched`` → done, or ``rolling_back`` → done) and
every step is a signed bundle (tier ``order``, the order's id, ``action_taken`` starting with the
step): **requested**, **switched**, then **healthy** or **rolled_back** (outcome ``reverted``,
plus a ``high`` incident ``update_rolled_back``). A refused order says why (``rejected``) and
nothing is switched.

What the agent checks before it asks for a switch (the root unit checks the signature again):
the order's ``release`` verifies against a key pinned at enrolment (``ctx.release_verifiers``:
the pinned ``release_vkey`` alone, or the order key on an appliance enrolled before release keys
that pinned none — ``osiris_core.release.release_pin``), it names the same version and system as
the order, it carries a version, and it is not a downgrade unless both the release
(``allow_downgrade: true``) and the order (``allow_downgrade``) say so. The same version again is
refused (a replay of a finished rollout cannot re-run a switch; the order itself is stopped by
the replay guard first).

The switch itself is ``agent.switch_command``: empty on NixOS (write
``<state_dir>/switch/request.json``, ``systemctl start osiris-switch-system.service``); otherwise
a program speaking the same verbs — only the lab's stand-in (``osiris_lab.standin_switch``).

Health after a switch, judged at the end of the next cycle (on NixOS: the restarted agent's
first cycle): the switch says the generation is healthy, this cycle checked in (reporting the
new version), and the cycle ran without errors. A failed check-in is tolerated: only
``agent.update_health_checkins`` of them in a row (default 3) roll back, each miss logged; cycle
errors or a wrong version roll back at once. Otherwise the agent asks for a rollback to the
system the root unit recorded. Once healthy, it writes ``<state_dir>/switch/healthy`` (the
system it confirmed) for the root update guard (``osiris_core.release_guard``), which rolls back
a switch nobody confirmed within its deadline — a build whose agent cannot even start. The old
agent, started again after that, finds the guard's record and writes the same ``rolled_back``
step and ``update_rolled_back`` incident as its own rollback would.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris_agent import AGENT_VERSION
from osiris_core import canonical
from osiris_core.errors import OsirisError, SchemaError
from osiris_core.files import write_private
from osiris_core.release import downgrade_refusal, verify_release
from osiris_core.release_guard import CONFIRMATION, read_record

from .orders import OrderOutcome

if TYPE_CHECKING:
    from .context import AgentContext, CycleReport

log = logging.getLogger("osiris.agent")

PENDING = "update.json"
NIXOS_UNIT = "osiris-switch-system.service"
NIXOS_SWITCH_STATE = Path("/var/lib/osiris-switch")  # root's; guard.json there is world-readable
_TIMEOUT_S = 900  # a NixOS switch may build nothing but still restart many units


class Switch:
    """The root switch, through the protocol ``switch REQUEST`` / ``current`` / ``health``."""

    def __init__(self, state_dir: Path, command: tuple[str, ...]) -> None:
        self.request_file = state_dir / "switch" / "request.json"
        self.command = command

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=_TIMEOUT_S,
            check=False,
        )  # fmt: skip

    def request(self, body: dict[str, Any]) -> tuple[bool, str]:
        """Hand the request to the root switch; (done, why)."""
        self.request_file.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(self.request_file, canonical.dumps(body))
        try:
            if self.command:
                p = self._run("switch", str(self.request_file))
            else:
                p = subprocess.run(["systemctl", "start", NIXOS_UNIT], capture_output=True,
                                   text=True, timeout=_TIMEOUT_S, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"switch did not run: {type(exc).__name__}"
        why = (p.stdout + p.stderr).strip().splitlines()
        return p.returncode == 0, (why[-1] if why else f"exit {p.returncode}")[:300]

    def current(self) -> dict[str, Any]:
        """``{"version", "system"}`` of the running generation (None where unknown)."""
        if not self.command:
            try:
                system = str(Path("/run/current-system").readlink())
            except OSError:
                system = None
            return {"version": AGENT_VERSION, "system": system}
        try:
            p = self._run("current")
            cur = json.loads(p.stdout) if p.returncode == 0 else {}
        except (OSError, subprocess.TimeoutExpired, ValueError):
            cur = {}
        cur = cur if isinstance(cur, dict) else {}
        return {"version": cur.get("version"), "system": cur.get("system")}

    def guard_record(self) -> dict[str, Any]:
        """What the root update guard last did (``osiris_core.release_guard``; {} if nothing)."""
        if not self.command:
            return read_record(NIXOS_SWITCH_STATE)
        try:
            p = self._run("guard-record")
            rec = json.loads(p.stdout) if p.returncode == 0 else {}
        except (OSError, subprocess.TimeoutExpired, ValueError):
            rec = {}
        return rec if isinstance(rec, dict) else {}

    def healthy(self) -> tuple[bool, str]:
        """The generation's own verdict (NixOS: this process runs the new build — true)."""
        if not self.command:
            return True, "running"
        try:
            p = self._run("health")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, type(exc).__name__
        return p.returncode == 0, (p.stderr.strip() or "ok")[:300]


class Updater:
    """The agent's half of an update; ``ctx.record`` makes each step evidence."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.switch = Switch(ctx.state_dir, tuple(ctx.cfg.agent.switch_command))
        self.pending_file = ctx.state_dir / PENDING
        self.confirmation = ctx.state_dir / CONFIRMATION  # read by the root update guard
        # set when this process switched during this cycle's check-in: the health check
        # belongs to the next cycle, whose check-in reports the new version
        self.defer_health = False

    def version(self) -> str:
        """The agent version the appliance runs (reported at every check-in)."""
        v = self.switch.current().get("version") if self.switch.command else None
        return v if isinstance(v, str) else AGENT_VERSION

    def pending(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.pending_file.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, pending: dict[str, Any] | None) -> None:
        if pending is None:
            self.pending_file.unlink(missing_ok=True)
        else:
            write_private(self.pending_file, canonical.dumps(pending))

    # -- requested ---------------------------------------------------------------------

    def vet(self, outcome: OrderOutcome) -> OrderOutcome:
        """An accepted ``update_agent`` order → ``requested`` or ``rejected`` (nothing moves)."""
        if outcome.kind != "update_agent" or outcome.action != "update_agent":
            return outcome
        order = outcome.order or {}
        params = order.get("params") or {}
        try:
            release = verify_release(params.get("release"), self.ctx.release_verifiers)
            if release.get("version") != params["version"]:
                raise SchemaError("the order's version is not the release's")
            if release["system"] != params["system"]:
                raise SchemaError("the order's system is not the release's")
            current = self.version()
            why = downgrade_refusal(current, release, params.get("allow_downgrade") is True)
            if why is None and self.pending() is not None:
                why = "another update is in progress"
        except (OsirisError, KeyError) as exc:
            return OrderOutcome("rejected", f"release refused: {exc}"[:400], order)
        if why is not None:
            return OrderOutcome("rejected", why, order)
        return OrderOutcome("compliant", f"requested: {current} -> {release['version']} "
                            f"({release['system']})", order, "update_agent")  # fmt: skip

    # -- switched ----------------------------------------------------------------------

    def _step(
        self,
        report: CycleReport,
        order: dict[str, Any],
        outcome: str,
        why: str,
        pre: dict[str, Any] | None = None,
        post: dict[str, Any] | None = None,
    ) -> None:
        from .order_actions import order_fields  # one evidence shape for every order's fate

        fields = order_fields(self.ctx, OrderOutcome(outcome, why, order))
        with self.ctx.db.tx():
            self.ctx.record(report, **fields, pre_state=pre, post_state=post)

    def start(self, outcome: OrderOutcome, report: CycleReport) -> None:
        """Ask the root switch for the release's system (the unit re-checks its signature)."""
        order = outcome.order or {}
        params = order["params"]
        before = self.switch.current()
        before["version"] = self.version()
        to = {"version": params["version"], "system": params["system"]}
        self._save({"order": order, "phase": "switching", "from": before, "to": to,
                    "at": canonical.utc_now()})  # fmt: skip
        self.confirmation.unlink(missing_ok=True)  # a new switch is confirmed afresh
        ok, why = self.switch.request({"action": "switch", "release": params["release"]})
        if not ok:
            self._save(None)
            self._step(report, order, "failed", f"switch refused: {why}", before, before)
            return
        self.resume(report)
        self.defer_health = True

    def resume(self, report: CycleReport) -> None:
        """Finish a step a restart interrupted (the switch restarts the agent on NixOS)."""
        p = self.pending()
        if p is None or p.get("phase") not in ("switching", "switched", "rolling_back"):
            return
        now = self.switch.current()
        now["version"] = self.version()
        guard_why = self._guard_rollback(p, now) if p["phase"] != "rolling_back" else None
        if guard_why is not None:
            return self._rolled_back(report, p, now, guard_why)
        if p["phase"] == "switched":
            return
        if p["phase"] == "switching":
            if now.get("system") == p["to"]["system"]:
                p["phase"] = "switched"
                self._save(p)
                self._step(report, p["order"], "compliant",
                           f"switched: {p['from'].get('version')} -> {now['version']}",
                           p["from"], now)  # fmt: skip
            else:
                self._save(None)
                self._step(report, p["order"], "failed", "switch did not take effect",
                           p["from"], now)  # fmt: skip
            return
        why = (f"rolled_back: {p['to']['version']} was unhealthy ({p.get('why', '?')}); "
               f"back on {now['version']}")  # fmt: skip
        self._rolled_back(report, p, now, why)

    def _guard_rollback(self, p: dict[str, Any], now: dict[str, Any]) -> str | None:
        """The guard's why if the root guard switched back from this update's system (after
        the update started) and the appliance runs the ``from`` system again: the new agent
        never confirmed health. None otherwise."""
        rec = self.switch.guard_record()
        ok = (
            rec.get("action") == "rolled_back"
            and rec.get("from") == p["to"].get("system")
            and rec.get("to") == p["from"].get("system") == now.get("system")
            and isinstance(rec.get("at"), str) and rec["at"] > str(p.get("at", ""))
        )  # fmt: skip
        return str(rec.get("why") or "rolled back by the root guard")[:300] if ok else None

    def _rolled_back(
        self, report: CycleReport, p: dict[str, Any], now: dict[str, Any], why: str
    ) -> None:
        """The signed ``rolled_back`` step (``reverted``) and the ``update_rolled_back``
        incident, whoever rolled back: the agent's own request or the root guard."""
        back = now.get("system") == p["from"].get("system")
        self._save(None)
        if not why.startswith("rolled_back"):
            why = f"rolled_back: {why}; back on {now['version']}"
        if not back:
            why = f"rollback did not take effect: still on {now.get('version')}"
        self._step(report, p["order"], "reverted" if back else "failed", why, p["to"], now)
        self.ctx.incident_sink.raise_incident(
            kind="update_rolled_back", severity="high", host_id=self.ctx.appliance_id,
            check="evidence_pipeline", summary=f"agent update to {p['to']['version']}: {why}"[:400],
            details={"order_id": p["order"].get("order_id"), "from": p["from"], "to": p["to"]},
        )  # fmt: skip

    # -- healthy | rolled_back -----------------------------------------------------------

    def health_check(self, report: CycleReport, checked_in: bool) -> None:
        """At the end of the first cycle after a switch: keep it, or roll back."""
        p = self.pending()
        if p is None or p.get("phase") != "switched":
            return
        if self.defer_health:
            self.defer_health = False
            return
        ok, why = self.switch.healthy()
        now = self.switch.current()
        now["version"] = self.version()
        # a failed check-in is tolerated K-1 times in a row (a network blip must not undo an
        # update); its own error is the cycle's first — any other error still rolls back
        errors = report.errors if checked_in else report.errors[1:]
        if ok and not checked_in and not errors:
            misses = int(p.get("missed_checkins", 0)) + 1
            limit = self.ctx.cfg.agent.update_health_checkins
            if misses < limit:
                log.warning("update to %s: check-in %d of %d after the switch failed; trying "
                            "again next cycle", p["to"]["version"], misses, limit)  # fmt: skip
                p["missed_checkins"] = misses
                self._save(p)
                return
            ok, why = False, f"{misses} check-ins in a row after the switch failed"
        if ok and errors:
            ok, why = False, f"the cycle after the switch had errors: {errors[0]}"[:300]
        if ok and now["version"] != p["to"]["version"]:
            ok, why = False, f"running {now['version']}, not {p['to']['version']}"
        if ok:
            self.confirmation.parent.mkdir(mode=0o700, exist_ok=True)
            write_private(self.confirmation, (p["to"]["system"] + "\n").encode())
            self._save(None)
            self._step(report, p["order"], "compliant", f"healthy: {now['version']} checked in "
                       "and ran a cycle", p["from"], now)  # fmt: skip
            return
        log.warning("update to %s unhealthy (%s): rolling back", p["to"]["version"], why)
        p.update(phase="rolling_back", why=why)
        self._save(p)
        done, detail = self.switch.request({"action": "rollback"})
        if not done:
            log.error("rollback request failed: %s", detail)
        self.resume(report)
