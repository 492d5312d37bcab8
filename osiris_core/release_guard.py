"""The root-side update guard (issue 16 item 6): roll back a switch the new agent never confirmed.

Why: the agent judges its own health after a switch and asks for a rollback — but a build whose
agent cannot even start (crashes at import, exits at once) never runs that check, and the clinic
stays on the broken build. So the root switch records *when* it switched and *to what*
(``<switch state>/pending.json``: ``{"at": <epoch s>, "previous": P, "system": X}``, written by
``nix/modules/osiris-switch-system.sh`` and the lab stand-in alike), the agent writes a small
confirmation once the new build checked in and ran a healthy cycle
(``<agent state>/switch/healthy``, the system path it confirmed), and a root timer
(``osiris-update-guard.timer``) runs :func:`run_guard`: still on X, no confirmation naming X,
and the deadline passed → switch back to P.

Why it is tamper-irrelevant: the only thing the (non-root) agent controls is the confirmation
file. Writing it or not makes root either keep X or go back to P — and P must equal the
``previous`` system root recorded itself (a mismatch is refused, nothing moves). The guard never
switches anywhere else, reads the agent's file without following a symlink and with a size
limit, and is idempotent: once it acted (or saw the confirmation, or saw the system moved on)
the pending record is gone and the next run does nothing.

What it did is written to ``<switch state>/guard.json`` (mode 0644, root-owned; the agent reads
it to record the signed ``rolled_back`` step): ``{"action": "rolled_back" | "confirmed" |
"moved_on" | "refused", "from", "to", "at", "deadline_s", "why"}``.

The same :func:`decide` runs on NixOS (``python -m osiris_core.release guard``, which switches
with ``nix-env --set`` + ``switch-to-configuration switch``) and in the lab stand-in
(``python -m osiris_lab.standin_switch guard``, which switches its model of generations).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.files import write_atomic
from osiris_core.release import STORE_PATH, ReleaseRefused, _read_nofollow

PENDING = "pending.json"
RECORD = "guard.json"
CONFIRMATION = Path("switch") / "healthy"  # under the agent's state dir
DEFAULT_DEADLINE_S = 900


def _read_text(path: Path, limit: int) -> str | None:
    try:
        return _read_nofollow(path, limit).decode("utf-8").strip()
    except (OSError, ReleaseRefused, UnicodeDecodeError):
        return None


def read_pending(state: Path) -> dict[str, Any] | None:
    """The switch root recorded and nobody settled yet (None: nothing pending)."""
    text = _read_text(state / PENDING, 4096)
    if text is None:
        return None
    try:
        p = json.loads(text)
    except ValueError:
        return {}
    return p if isinstance(p, dict) else {}


def record_pending(state: Path, previous: str | None, system: str) -> None:
    """What the root switch writes before switching (the stand-in's half; the NixOS script
    writes the same JSON with printf)."""
    body = {"at": int(time.time()), "previous": previous or "", "system": system}
    write_atomic(state / PENDING, (json.dumps(body, sort_keys=True) + "\n").encode(), mode=0o644)


def clear_pending(state: Path) -> None:
    (state / PENDING).unlink(missing_ok=True)


def decide(
    pending: dict[str, Any] | None,
    previous: str | None,
    current: str | None,
    confirmed: str | None,
    now: float,
    deadline_s: float,
) -> tuple[str, str]:
    """(verdict, why). Verdicts: ``idle`` (nothing pending), ``wait`` (within the deadline),
    ``confirmed`` / ``moved_on`` / ``refused`` (settle the record, switch nothing) and
    ``rollback`` (switch to ``previous`` — the only system the guard ever switches to)."""
    if pending is None:
        return "idle", "no switch pending"
    system, prev, at = pending.get("system"), pending.get("previous"), pending.get("at")
    if not isinstance(system, str) or not isinstance(prev, str) or not isinstance(at, int):
        return "refused", "the pending switch record is malformed"
    if current != system:
        return "moved_on", f"the running system is {current}, not the switched {system}"
    if confirmed == system:
        return "confirmed", "the new agent confirmed health"
    if now - at < deadline_s:
        return "wait", f"{int(now - at)} s since the switch, deadline {int(deadline_s)} s"
    if not prev or STORE_PATH.fullmatch(prev) is None:
        return "refused", "no previous system was recorded before the switch"
    if previous != prev:
        return "refused", "the recorded previous system does not match the pending switch"
    return "rollback", (f"the new agent did not confirm health within {int(deadline_s)} s; "
                        "rolled back by the root guard")  # fmt: skip


def run_guard(
    state: Path,
    agent_state: Path,
    deadline_s: float,
    current: str | None,
    switch_to: Callable[[str], None],
    now: float | None = None,
) -> tuple[str, str]:
    """One guard run: decide, act, settle the record, write ``guard.json``. (verdict, why)."""
    pending = read_pending(state)
    previous = _read_text(state / "previous", 512)
    confirmed = _read_text(agent_state / CONFIRMATION, 512)
    when = time.time() if now is None else now
    verdict, why = decide(pending, previous, current, confirmed, when, deadline_s)
    if verdict in ("idle", "wait"):
        return verdict, why
    p = pending or {}
    to = str(p["previous"]) if verdict == "rollback" else None
    if to is not None:
        switch_to(to)  # raises if it fails: the record stays pending, the next run retries
    clear_pending(state)
    record = {"action": "rolled_back" if verdict == "rollback" else verdict,
              "from": p.get("system"), "to": to, "at": canonical.utc_now(),
              "deadline_s": int(deadline_s), "why": why}  # fmt: skip
    write_atomic(state / RECORD, (json.dumps(record, sort_keys=True) + "\n").encode(), mode=0o644)
    return verdict, why


def read_record(state: Path) -> dict[str, Any]:
    """``guard.json`` ({} when the guard never acted)."""
    text = _read_text(state / RECORD, 4096)
    try:
        rec = json.loads(text) if text else {}
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def nixos_switch(root: str, nix_env: str, state: Path) -> Callable[[str], None]:
    """Switch the NixOS system profile to ``target`` (what osiris-switch-system.sh does),
    recording the system it leaves as ``previous`` as the script does."""

    def switch_to(target: str) -> None:
        current = _current_nixos(root)
        for f in ("bin/switch-to-configuration", "nixos-version", "kernel"):
            if not os.path.exists(root + target + "/" + f):
                raise ReleaseRefused(f"{target} is not a NixOS system ({f})")
        if current and current != target:
            write_atomic(state / "previous", (current + "\n").encode(), mode=0o644)
        profile = root + "/nix/var/nix/profiles/system"
        subprocess.run([nix_env, "-p", profile, "--set", target], check=True, timeout=900)
        subprocess.run([root + target + "/bin/switch-to-configuration", "switch"], check=True,
                       timeout=900)  # fmt: skip

    return switch_to


def _current_nixos(root: str) -> str | None:
    try:
        return os.readlink(root + "/run/current-system")
    except OSError:
        return None


def main_guard(state: Path, agent_state: Path, deadline_s: int, root: str, nix_env: str) -> int:
    """``python -m osiris_core.release guard``: the NixOS guard unit's one run."""
    try:
        verdict, why = run_guard(state, agent_state, deadline_s, _current_nixos(root),
                                 nixos_switch(root, nix_env, state))  # fmt: skip
    except (subprocess.SubprocessError, OSError, ReleaseRefused) as exc:
        print(f"guard: rollback failed, will retry: {exc}", file=sys.stderr)
        return 1
    print(f"{verdict}: {why}")
    return 0
