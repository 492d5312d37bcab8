"""STAND-IN for the root switch unit (``osiris-switch-system.service``), for demos and tests only.

Why it exists: an ``update_agent`` order ends in a root unit that switches a NixOS system
(``nix/modules/osiris-switch-system.sh``). Outside NixOS there is no system to switch, but the
agent's half — the request, the signature the unit re-checks, the health check, the rollback —
must still run for real. This program speaks the same protocol as the unit and keeps a model of
what NixOS keeps: a list of generations, the current one, and the ``previous`` system the unit
records before each switch. It is named a stand-in everywhere it appears (config, evidence of
tests, docs) and the appliance's Nix package does not ship ``osiris_lab``.

What it shares with the real unit, deliberately: the request is checked by the same function
(``osiris_core.release.switch_target``) against the keys in ``<root>/trusted-keys`` (seeded once
from the agent's pins by ``seed_keys``, exactly like the unit's trust on first use: the pinned
``release_vkey`` alone, the order key only when none was pinned), so a release not signed by
that key — one the order key signed included — is refused here too and nothing moves; a
rollback goes only to the system this program recorded itself.

What it models that NixOS does by itself: ``current`` prints ``{"version", "system",
"generation"}`` (on NixOS, ``/run/current-system`` and the running agent's version); ``health``
exits 1 while the current generation's version is listed in ``<root>/unhealthy`` (a test's way
to ship a broken build and see the agent roll back); ``starts`` exits 1 while it is listed in
``<root>/broken-at-start`` (a test's agent launcher then does not run the agent: a build whose
agent cannot start, which only the root guard can roll back).

The update guard (``guard``, ``guard-record``): the same ``osiris_core.release_guard`` code as
NixOS's ``osiris-update-guard.service`` — ``switch`` records ``pending.json`` by the NixOS
script's rule, ``guard`` rolls back to ``previous`` when the agent has not confirmed health
within the deadline, and ``guard-record`` prints what it did (what the agent reads).

    python -m osiris_lab.standin_switch --root DIR --pins PINS init --version V --system P
    python -m osiris_lab.standin_switch --root DIR --pins PINS switch REQUEST
    python -m osiris_lab.standin_switch --root DIR --pins PINS current | health
    python -m osiris_lab.standin_switch --root DIR --pins PINS unhealthy V   (tests)
    python -m osiris_lab.standin_switch --root DIR --pins PINS broken-at-start V | starts
    python -m osiris_lab.standin_switch ... guard --agent-state DIR [--deadline-s N]
    python -m osiris_lab.standin_switch --root DIR --pins PINS guard-record
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from osiris_core import canonical, release_guard
from osiris_core.errors import OsirisError
from osiris_core.files import write_atomic
from osiris_core.release import _read_nofollow, load_keys, seed_keys, switch_target

STATE = "generations.json"


def _state(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / STATE).read_text())
    except FileNotFoundError:
        return {"generations": [], "current": None}


def _save(root: Path, state: dict[str, Any]) -> None:
    write_atomic(root / STATE, (json.dumps(state, indent=1) + "\n").encode(), mode=0o644)


def _known(root: Path) -> dict[str, str]:
    """The version each system switched to so far carries (a NixOS closure carries its own)."""
    p = root / "systems.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _switch(root: Path, state: dict[str, Any], system: str, version: str | None) -> dict[str, Any]:
    gens = state["generations"]
    n = (gens[-1]["generation"] + 1) if gens else 1
    cur = state["current"]
    if cur is not None and cur["system"] != system:
        write_atomic(root / "previous", (cur["system"] + "\n").encode(), mode=0o644)
    gen = {"generation": n, "system": system, "version": version,
           "at": canonical.utc_now()}  # fmt: skip
    gens.append(gen)
    state["current"] = gen
    _save(root, state)
    return gen


def _recorded(root: Path) -> str | None:
    p = root / "previous"
    return p.read_text().strip() if p.exists() else None


def cmd_guard(root: Path, agent_state: Path, deadline_s: int) -> int:
    """The root guard's run on this model (``osiris_core.release_guard.run_guard``, the same
    decision as NixOS's ``python -m osiris_core.release guard``)."""
    state = _state(root)
    cur = state["current"]["system"] if state["current"] else None

    def switch_to(target: str) -> None:
        _switch(root, _state(root), target, _known(root).get(target))

    verdict, why = release_guard.run_guard(root, agent_state, deadline_s, cur, switch_to)
    print(f"{verdict}: {why}")
    return 0


def cmd_switch(root: Path, pins: Path, request: Path) -> int:
    keys = root / "trusted-keys"
    seed_keys(keys, pins)
    target = switch_target(request, load_keys(keys), root / "previous")
    req = canonical.loads(_read_nofollow(request, 16384))
    state = _state(root)
    cur = state["current"]["system"] if state["current"] else None
    if cur != target:  # the NixOS script's rule: when and to what, for the update guard
        if target == _recorded(root):
            release_guard.clear_pending(root)  # back to the recorded system: nothing to guard
        else:
            release_guard.record_pending(root, cur, target)
    if req["action"] == "switch":
        version = req["release"]["release"].get("version")
        known = _known(root)
        if version:
            known[target] = version
            write_atomic(root / "systems.json", (json.dumps(known) + "\n").encode(), mode=0o644)
    else:
        version = _known(root).get(target)
    gen = _switch(root, state, target, version)
    os.unlink(request)
    print(f"switched to {target} (stand-in generation {gen['generation']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m osiris_lab.standin_switch",
                                 description="STAND-IN root switch unit (lab only)")  # fmt: skip
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--pins", required=True, type=Path)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ini = sub.add_parser("init")
    ini.add_argument("--version", required=True)
    ini.add_argument("--system", required=True)
    sw = sub.add_parser("switch")
    sw.add_argument("request", type=Path)
    sub.add_parser("current")
    sub.add_parser("health")
    un = sub.add_parser("unhealthy")
    un.add_argument("version")
    br = sub.add_parser("broken-at-start")
    br.add_argument("version")
    sub.add_parser("starts")
    gd = sub.add_parser("guard")
    gd.add_argument("--agent-state", required=True, type=Path)
    gd.add_argument("--deadline-s", type=int, default=release_guard.DEFAULT_DEADLINE_S)
    sub.add_parser("guard-record")
    args = ap.parse_args(argv)
    root: Path = args.root
    root.mkdir(parents=True, exist_ok=True)
    try:
        if args.cmd == "init":
            state = _state(root)
            if state["current"] is None:
                known = {args.system: args.version}
                write_atomic(root / "systems.json", (json.dumps(known) + "\n").encode(), mode=0o644)
                _switch(root, state, args.system, args.version)
            return 0
        if args.cmd == "switch":
            return cmd_switch(root, args.pins, args.request)
        if args.cmd == "current":
            cur = _state(root)["current"] or {"generation": 0, "system": None, "version": None}
            print(json.dumps({k: cur[k] for k in ("generation", "system", "version")}))
            return 0
        if args.cmd in ("unhealthy", "broken-at-start"):
            with open(root / args.cmd, "a") as f:
                f.write(args.version + "\n")
            return 0
        if args.cmd == "guard":
            return cmd_guard(root, args.agent_state, args.deadline_s)
        if args.cmd == "guard-record":
            print(json.dumps(release_guard.read_record(root)))
            return 0
        if args.cmd == "starts":  # a test's agent launcher asks: does this build's agent start?
            cur = _state(root)["current"]
            bad = root / "broken-at-start"
            broken = bad.read_text().split() if bad.exists() else []
            if cur is not None and cur["version"] in broken:
                print(f"stand-in: version {cur['version']} cannot start", file=sys.stderr)
                return 1
            return 0
        cur = _state(root)["current"]
        bad = (root / "unhealthy").read_text().split() if (root / "unhealthy").exists() else []
        if cur is not None and cur["version"] in bad:
            print(f"stand-in: version {cur['version']} is marked unhealthy", file=sys.stderr)
            return 1
        return 0
    except (OsirisError, OSError, ValueError, KeyError) as exc:
        print(f"refusing: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
