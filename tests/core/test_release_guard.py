"""The root update guard (``osiris_core.release_guard``), NixOS half, for real.

The real root script ``nix/modules/osiris-switch-system.sh`` switches in a sandbox root (bash,
the real verifier, a stand-in ``nix-env`` and ``switch-to-configuration`` that log their calls;
the Box of tests/core/test_release.py) and records ``pending.json``; then the real guard verb
``python -m osiris_core.release guard`` runs as a process: it waits within the deadline, does
nothing once the agent confirmed (or nothing is pending), rolls back to the recorded previous
system when nobody confirmed — and refuses to move anywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from osiris_core import canonical
from osiris_core.release import make_release, sign_release
from osiris_core.release_guard import decide
from tests.core.test_release import CURRENT, DESIRED, LOOKALIKE, ORDER, REPO, Box, box

__all__ = ["box"]  # the sandbox fixture, shared with tests/core/test_release.py


def _switched(box: Box) -> None:
    """The real script switches to DESIRED; the sandbox's /run/current-system follows."""
    box.ask({"action": "switch", "release": sign_release(make_release(DESIRED, "n"), ORDER)})
    p = box.run()
    assert p.returncode == 0, p.stderr
    os.unlink(box.root / "run/current-system")
    os.symlink(DESIRED, box.root / "run/current-system")


def _guard(box: Box, deadline_s: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris_core.release", "guard", "--state", str(box.state),
         "--agent-state", str(box.agent), "--deadline-s", str(deadline_s),
         "--root", str(box.root), "--nix-env", str(box.nix_env)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def _record(box: Box) -> dict:
    return json.loads((box.state / "guard.json").read_text())


def test_the_switch_records_when_and_to_what(box: Box) -> None:
    _switched(box)
    pending = json.loads((box.state / "pending.json").read_text())
    assert pending["system"] == DESIRED and pending["previous"] == CURRENT
    assert isinstance(pending["at"], int)
    assert oct((box.state / "pending.json").stat().st_mode & 0o777) == "0o644"
    # the agent's own rollback goes back to the recorded system: nothing left to guard
    box.ask({"action": "rollback"})
    assert box.run().returncode == 0
    assert not (box.state / "pending.json").exists()


def test_unconfirmed_switch_is_rolled_back_once(box: Box) -> None:
    p = _guard(box, 0)
    assert p.returncode == 0 and p.stdout.startswith("idle"), p.stdout + p.stderr
    _switched(box)
    before = box.calls()
    p = _guard(box, 3600)  # within the deadline: wait
    assert p.stdout.startswith("wait"), p.stdout + p.stderr
    assert box.calls() == before and not (box.state / "guard.json").exists()
    p = _guard(box, 0)
    assert p.returncode == 0 and p.stdout.startswith("rollback"), p.stdout + p.stderr
    assert box.calls()[len(before) :] == [
        f"nix-env -p {box.root}/nix/var/nix/profiles/system --set {CURRENT}",
        f"switch {CURRENT} switch",
    ]
    rec = _record(box)
    assert rec["action"] == "rolled_back" and rec["from"] == DESIRED and rec["to"] == CURRENT
    assert "did not confirm health within 0 s; rolled back by the root guard" in rec["why"]
    canonical.parse_time(rec["at"])
    assert oct((box.state / "guard.json").stat().st_mode & 0o777) == "0o644"
    after = box.calls()
    p = _guard(box, 0)  # idempotent: nothing is pending any more
    assert p.stdout.startswith("idle") and box.calls() == after


def test_confirmed_switch_is_kept(box: Box) -> None:
    _switched(box)
    before = box.calls()
    (box.agent / "switch" / "healthy").write_text(DESIRED + "\n")
    p = _guard(box, 0)
    assert p.stdout.startswith("confirmed"), p.stdout + p.stderr
    assert box.calls() == before and _record(box)["action"] == "confirmed"
    assert not (box.state / "pending.json").exists()


def test_a_confirmation_for_another_system_or_a_symlink_confirms_nothing(box: Box) -> None:
    _switched(box)
    healthy = box.agent / "switch" / "healthy"
    healthy.write_text(CURRENT + "\n")
    assert _guard(box, 3600).stdout.startswith("wait")
    healthy.unlink()
    target = box.agent / "elsewhere"
    target.write_text(DESIRED + "\n")
    os.symlink(target, healthy)  # not followed: root reads only the agent's own file
    assert _guard(box, 0).stdout.startswith("rollback")
    assert _record(box)["to"] == CURRENT


def test_the_guard_moves_nowhere_but_the_recorded_previous_system(box: Box) -> None:
    _switched(box)
    before = box.calls()
    # the pending record and root's `previous` disagree: refused, nothing switched
    (box.state / "previous").write_text(LOOKALIKE + "\n")
    p = _guard(box, 0)
    assert p.stdout.startswith("refused"), p.stdout + p.stderr
    assert box.calls() == before and _record(box)["to"] is None
    assert not (box.state / "pending.json").exists()  # settled: the next run does nothing
    assert _guard(box, 0).stdout.startswith("idle")


def test_decide_covers_every_verdict() -> None:
    rec = {"at": 1000, "previous": CURRENT, "system": DESIRED}
    assert decide(None, CURRENT, DESIRED, None, 2000, 60)[0] == "idle"
    assert decide(rec, CURRENT, DESIRED, None, 1030, 60)[0] == "wait"
    assert decide(rec, CURRENT, DESIRED, None, 1060, 60)[0] == "rollback"
    assert decide(rec, CURRENT, DESIRED, DESIRED, 9999, 60)[0] == "confirmed"
    assert decide(rec, CURRENT, CURRENT, None, 9999, 60)[0] == "moved_on"
    assert decide(rec, LOOKALIKE, DESIRED, None, 9999, 60)[0] == "refused"
    assert decide({**rec, "previous": ""}, "", DESIRED, None, 9999, 60)[0] == "refused"
    assert decide({"system": DESIRED}, CURRENT, DESIRED, None, 9999, 60)[0] == "refused"
    assert decide({**rec, "previous": "/tmp/x"}, "/tmp/x", DESIRED, None, 9999, 60)[0] == "refused"


def test_guard_of_a_missing_state_dir_is_idle(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "osiris_core.release", "guard", "--state", str(tmp_path / "no"),
         "--agent-state", str(tmp_path / "no-agent")],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0 and p.stdout.startswith("idle"), p.stderr
