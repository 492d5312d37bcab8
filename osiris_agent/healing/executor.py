"""Run catalogue runbooks on a host: the one place where a phase script is sent anywhere.

Why one executor: L1 rules, L2 plans and operator orders must pass the *same* guards (lesson D:
the old product had toggles and the maintenance-window flag but nothing enforced them). So every
action goes through :meth:`Executor.execute`, which

1. refuses a runbook the site disabled (outcome ``alert``, reason given, nothing runs);
2. defers a disruptive or window-only runbook outside the maintenance window (``deferred``);
3. runs ``remediate`` then ``verify``; a verify that is not ``compliant`` runs ``rollback`` where
   the runbook has one (``reverted`` only when a re-detect shows the pre-change state) or
   reports ``failed``; success is ``healed``. A remediate that *refuses* to act (it would lock
   the agent out, a GPO owns the setting) is ``failed`` after a re-detect, never rolled back.

Only catalogue runbooks can run: the script text always comes from
:func:`osiris_core.catalog.render`, which validates parameters against the manifest. There is no
way to pass a command string through here.

A phase's stdout must hold one JSON object ``{"status", "observed", "expected"}``. Anything else
(no JSON, non-zero exit without a result, a transport failure, a timeout) is an ``error`` result —
never a pass (lesson A8).

An error says why in one machine word first (``osiris_core.protocol.ERROR_REASONS``): the text is
``"<reason>: <detail>"`` (``error_text``/``split_error``), so the one string a ``Finding`` carries
keeps both, and evidence records it as ``{"kind", "detail"}`` (``PhaseResult.state``). The
reasons ``auth``, ``unreachable``, ``hostkey`` and ``tls`` are about the *host*, not the check
(``HOST_REASONS``): the scanner then marks every check of that host as an error.

Why this file is long: the phase-result parsing, the guards and the remediate → verify →
rollback → re-check sequence are one contract about what a runbook run may claim; split apart,
each half would have to re-derive what the other decided.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from osiris_core import canonical
from osiris_core.catalog import Catalog, Runbook, render
from osiris_core.errors import OsirisError, SchemaError
from osiris_core.protocol import ERROR_REASONS

MAX_STATE_BYTES = 16 * 1024  # per pre/post state, so an envelope stays far below 60 KiB
MAX_TEXT = 500


# Failures that say the host cannot be worked with at all (every check on it fails alike).
HOST_REASONS = frozenset({"auth", "unreachable", "hostkey", "tls"})
LEGACY_TRANSPORT = "transport"  # the prefix agents before issue 13 wrote for every host failure


def error_text(reason: str, detail: str) -> str:
    """``"<reason>: <detail>"`` — the one encoding of an error's reason and its human detail."""
    return short(f"{reason}: {detail}")


def split_error(error: str | None) -> tuple[str, str] | None:
    """``(reason, detail)`` of an error text. An older agent's ``transport: …`` reads as
    ``unreachable``; any other unprefixed text as ``script``."""
    if not error:
        return None
    head, sep, rest = str(error).partition(": ")
    if sep and head in ERROR_REASONS:
        return head, rest
    if sep and head == LEGACY_TRANSPORT:
        return "unreachable", rest
    return "script", str(error)


def reason_of_exception(exc: BaseException) -> str:
    """The reason word for a transport failure, from its class (hosts/base.py's tree).

    Why the two text tests: the WinRM client reports a missing answer and a failed certificate
    check as plain ``TransportError``s; a message test here keeps the transports unchanged."""
    from ..hosts.base import AuthError, HostKeyError, ScriptTimeout

    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, HostKeyError):
        return "hostkey"
    if isinstance(exc, ScriptTimeout):
        return "timeout"
    text = str(exc).lower()
    if "tls" in text or "certificate" in text:
        return "tls"
    return "unreachable"  # connection refused, no route, no answer in time, closed channel


def interpreter_for(runbook: Runbook) -> str:
    return "powershell" if runbook.platform == "windows" else "bash"


def jsonable(obj: Any) -> Any:
    """Make script output fit canonical JSON: floats become ints (if whole) or strings.

    Why: scripts print what their language prints (PowerShell rounds free space to 1 decimal),
    but evidence is canonical JSON, which has no floats (DESIGN §3.1).
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj if abs(obj) <= 2**53 - 1 else str(obj)
    if isinstance(obj, float):
        if math.isfinite(obj) and obj.is_integer() and abs(obj) <= 2**53 - 1:
            return int(obj)
        return repr(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    return str(obj)


def capped(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` made canonical-safe, or a digest of it when it is too large for a bundle."""
    safe = jsonable(state)
    data = canonical.dumps(safe)
    if len(data) <= MAX_STATE_BYTES:
        return safe
    return {"truncated": True, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def short(text: str, limit: int = MAX_TEXT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class PhaseResult:
    """One phase run: the script's JSON result, or an error saying why there is none."""

    phase: str
    status: str  # compliant | drift | error
    observed: dict[str, Any]
    expected: dict[str, Any]
    exit_code: int | None
    duration_ms: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "compliant" and self.error is None

    @property
    def reason(self) -> str | None:
        """The error's machine word (``ERROR_REASONS``), None when there is no error."""
        split = split_error(self.error)
        return split[0] if split else None

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "observed": self.observed,
            "expected": self.expected,
        }
        if self.error:
            out["error"] = error_record(self.error)
        return out

    def summary(self) -> dict[str, Any]:
        s: dict[str, Any] = {"phase": self.phase, "status": self.status, "rc": self.exit_code}
        if "action" in self.observed:
            s["action"] = self.observed["action"]
        if "escrow" in self.observed:  # where a recovery key went (healing/escrow.py), never it
            keys = ("escrow", "protector_id", "escrow_ref")
            s["escrow"] = {k: self.observed.get(k) for k in keys}
        if self.error:
            s["error"] = error_record(self.error)
        return s


def error_record(error: str) -> dict[str, str]:
    """What evidence keeps of an error: ``{"kind", "detail"}`` (the detail is the transport's or
    script's own short message — a host name, never a secret; credentials are in memory only
    and no transport puts one in an exception)."""
    kind, detail = split_error(error) or ("script", error)
    return {"kind": kind, "detail": short(detail, 300)}


def parse_output(phase: str, exit_code: int, stdout: str, stderr: str) -> PhaseResult:
    """Read the one JSON object a phase script prints (the last JSON line wins)."""
    parsed: Any = None
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            break
    if not isinstance(parsed, dict) or parsed.get("status") not in ("compliant", "drift", "error"):
        why = f"no result from the {phase} script (exit {exit_code})"
        if stderr.strip():
            why += f": {short(stderr, 300)}"
        return PhaseResult(phase, "error", {}, {}, exit_code, error=error_text("no_result", why))
    observed = parsed.get("observed") if isinstance(parsed.get("observed"), dict) else {}
    expected = parsed.get("expected") if isinstance(parsed.get("expected"), dict) else {}
    status = parsed["status"]
    error = None
    if status == "error":
        error = error_text("script", str(observed.get("error") or stderr or f"exit {exit_code}"))
    elif exit_code != 0:
        status, error = "error", error_text("script", f"{phase} script exited {exit_code}")
    return PhaseResult(phase, status, observed, expected, exit_code, error=error)


@dataclass
class ActionResult:
    """What one guarded action did; the engine turns it into one evidence bundle."""

    outcome: str  # healed | failed | reverted | deferred | alert
    runbook_id: str
    params: dict[str, Any]
    pre_state: dict[str, Any] | None
    post_state: dict[str, Any] | None
    action_taken: str
    rollback_available: bool
    started_at: str
    finished_at: str
    phases: list[PhaseResult] = field(default_factory=list)


def _same_state(pre: PhaseResult | None, back: PhaseResult) -> bool:
    """Whether a post-rollback detect shows the pre-change state: the same status and the same
    observed values, both without error. No usable pre-change detect → not provable → False."""
    if pre is None or pre.error is not None or back.error is not None:
        return False
    return back.status == pre.status and back.observed == pre.observed


@dataclass(frozen=True)
class Guards:
    """What the policy says about running a runbook now."""

    enabled: Callable[[str], bool]
    in_window: Callable[[datetime], bool]
    allow_disruptive_outside_window: bool = False


def _is_refusal(rem: PhaseResult) -> bool:
    """A remediate that declined to act: ``osiris_refuse`` (``observed.refused``), a Windows
    script that threw ``refused: …``, or the executor's own refusal before anything ran."""
    split = split_error(rem.error)
    if rem.status != "error" or split is None:
        return False
    reason, detail = split
    return (
        rem.observed.get("refused") is True or reason == "refused" or detail.startswith("refused:")
    )


def guard_verdict(runbook: Runbook, guards: Guards, now: datetime) -> tuple[str, str] | None:
    """``(outcome, reason)`` when the action must not run now; ``None`` when it may."""
    if not guards.enabled(runbook.id):
        return "alert", f"runbook {runbook.id} is disabled for this site; not run"
    needs_window = runbook.requires_maintenance_window or runbook.disruptive
    if needs_window and not guards.in_window(now):
        if runbook.requires_maintenance_window:
            return "deferred", f"{runbook.id} runs only in the maintenance window"
        if not guards.allow_disruptive_outside_window:
            return "deferred", f"{runbook.id} is disruptive; deferred to the maintenance window"
    return None


class Executor:
    """Render, send and judge runbook phases over whatever transport a host has."""

    def __init__(
        self,
        catalog: Catalog,
        transports: Callable[[str], Any],
        *,
        timeout_s: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.catalog = catalog
        self.transports = transports
        self.timeout_s = timeout_s
        self.clock = clock or (lambda: datetime.now(UTC))
        # where a remediate that creates a recovery key escrows it (healing/escrow.py); None:
        # such a remediate is refused, never run without an escrow
        self.escrow: Any = None

    def run_phase(
        self,
        host_id: str,
        runbook: Runbook,
        phase: str,
        params: Mapping[str, Any] | None,
        stdin: str | None = None,
    ) -> PhaseResult:
        """Run one phase; every failure becomes an ``error`` result, never an exception."""
        try:
            script = render(runbook, phase, params)
        except SchemaError as exc:
            return PhaseResult(phase, "error", {}, {}, None, error=error_text("refused", str(exc)))
        try:
            transport = self.transports(host_id)
            res = transport.run_script(
                script, interpreter=interpreter_for(runbook), stdin=stdin, timeout=self.timeout_s
            )
        except (OsirisError, OSError) as exc:  # TransportError, AuthError, HostKeyError, sockets
            why = error_text(reason_of_exception(exc), str(exc) or type(exc).__name__)
            return PhaseResult(phase, "error", {}, {}, None, error=why)
        if res.timed_out:
            why = error_text("timeout", f"the {phase} script ran past {self.timeout_s:g} s")
            pr = PhaseResult(phase, "error", {}, {}, res.exit_code, error=why)
        else:
            pr = parse_output(phase, res.exit_code, res.stdout, res.stderr)
        pr.duration_ms = res.duration_ms
        return pr

    def execute(
        self,
        host_id: str,
        runbook: Runbook,
        params: Mapping[str, Any] | None,
        guards: Guards,
        *,
        pre: PhaseResult | None = None,
        label: str = "",
    ) -> ActionResult:
        """Guards, then remediate → verify (→ rollback). ``pre`` is the detect result, if any."""
        started = canonical.format_time(self.clock())
        rollback_available = "rollback" in runbook.phases
        prefix = f"{label}: " if label else ""
        try:
            values = runbook.validate_params(params)
        except SchemaError as exc:
            return self._done(
                "failed", runbook, {}, pre, None, f"{prefix}refused: {exc}", started, []
            )
        verdict = guard_verdict(runbook, guards, self.clock())
        if verdict is not None:
            outcome, reason = verdict
            return self._done(outcome, runbook, values, pre, None, prefix + reason, started, [])
        if "remediate" not in runbook.phases:
            return self._done(
                "alert", runbook, values, pre, None,
                f"{prefix}{runbook.id} is detect-only; a person must act", started, [],
            )  # fmt: skip
        if pre is None:
            pre = self.run_phase(host_id, runbook, "detect", values)
        from .escrow import remediate_steps  # a key-creating remediate escrows it first

        phases: list[PhaseResult] = remediate_steps(self, host_id, runbook, values)
        rem = phases[-1]
        if _is_refusal(rem):
            return self._refused(host_id, runbook, values, pre, rem, prefix, started, phases)
        ver: PhaseResult | None = None
        if rem.status != "error":
            ver = self.run_phase(host_id, runbook, "verify", values)
            phases.append(ver)
            if ver.ok:
                text = f"{prefix}{runbook.id} remediate, verify compliant"
                return self._done("healed", runbook, values, pre, ver, text, started, phases)
        what = (
            f"remediate failed ({rem.error})"
            if ver is None
            else f"verify {ver.status}" + (f" ({ver.error})" if ver.error else "")
        )
        post = ver
        if rollback_available:
            rb = self.run_phase(host_id, runbook, "rollback", values)
            phases.append(rb)
            if rb.status != "error":
                # A rollback script that exits 0 proves nothing: detect again, and say
                # ``reverted`` only when the host is back in the state detect saw before the
                # change; otherwise the host is in a state nobody chose — ``failed`` (the engine
                # takes a failure up a tier, to a person at L3).
                back = self.run_phase(host_id, runbook, "detect", values)
                back.phase = "recheck"
                phases.append(back)
                post = back  # what the host is now
                if _same_state(pre, back):
                    text = f"{prefix}{runbook.id} {what}; rollback done, state restored"
                    return self._done("reverted", runbook, values, pre, back, text, started, phases)
                what += "; rollback ran but " + (
                    f"the re-check failed ({back.error})"
                    if back.error
                    else f"the host is not back in its pre-change state ({back.status})"
                )
            else:
                what += f"; rollback failed ({rb.error})"
        text = f"{prefix}{runbook.id} {what}"
        return self._done("failed", runbook, values, pre, post, text, started, phases)

    def _refused(
        self,
        host_id: str,
        runbook: Runbook,
        values: dict[str, Any],
        pre: PhaseResult | None,
        rem: PhaseResult,
        prefix: str,
        started: str,
        phases: list[PhaseResult],
    ) -> ActionResult:
        """A remediate that refused to act (it would lock the agent out, a GPO owns the
        setting, …) changed nothing by its own account: no verify, no rollback — a rollback
        would restore a snapshot of an unchanged host and read as ``reverted``, a change that
        never happened. Detect again to hold the script to its word; always ``failed``, which
        the engine takes to a person."""
        back = self.run_phase(host_id, runbook, "detect", values)
        back.phase = "recheck"
        phases.append(back)
        text = f"{prefix}{runbook.id} remediate refused ({rem.error}); " + (
            "nothing was changed (re-checked)"
            if _same_state(pre, back)
            else f"but the re-check does not show the pre-change state ({back.status})"
        )
        return self._done("failed", runbook, values, pre, back, text, started, phases)

    def _done(
        self,
        outcome: str,
        runbook: Runbook,
        params: dict[str, Any],
        pre: PhaseResult | None,
        post: PhaseResult | None,
        text: str,
        started: str,
        phases: list[PhaseResult],
    ) -> ActionResult:
        post_state: dict[str, Any] | None = None
        if post is not None or phases:
            post_state = post.state() if post is not None else {"status": "unknown"}
            post_state["phases"] = [p.summary() for p in phases]
            post_state = capped(post_state)
        return ActionResult(
            outcome=outcome,
            runbook_id=runbook.id,
            params=params,
            pre_state=capped(pre.state()) if pre is not None else None,
            post_state=post_state,
            action_taken=short(text, 1000),
            rollback_available="rollback" in runbook.phases,
            started_at=started,
            finished_at=canonical.format_time(self.clock()),
            phases=phases,
        )
