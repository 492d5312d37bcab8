"""The NixOS update guard units (issue 16 item 6), evaluated from nix/modules/osiris-agent.nix.

Why a test: the guard is the only thing that heals a build whose agent cannot start, so its
unit must exist wherever the switch unit does, run as root the real verb
(``python -m osiris_core.release guard``) on the switch unit's own state, with the deadline
from the agent's settings, on a timer that keeps firing while its condition skips it.
"""

from __future__ import annotations

from tests.test_nix import agent, needs_nix


@needs_nix
def test_guard_unit_and_timer() -> None:
    conf = agent(settings={"agent": {"update_guard_deadline_s": 600}})["config"]
    svc = conf["systemd"]["services"]["osiris-update-guard"]
    start = [a.strip("'") for a in svc["serviceConfig"]["ExecStart"].split()]
    assert start[1:] == [
        "-s", "-m", "osiris_core.release", "guard", "--state", "/var/lib/osiris-switch",
        "--agent-state", "/var/lib/osiris", "--deadline-s", "600", "--nix-env", start[-1],
    ]  # fmt: skip
    assert start[-1].endswith("/bin/nix-env")
    assert svc["serviceConfig"]["User"] == "root" and svc["serviceConfig"]["Type"] == "oneshot"
    assert svc["unitConfig"]["ConditionPathExists"] == "/var/lib/osiris-switch/pending.json"
    assert svc["restartIfChanged"] is False
    timer = conf["systemd"]["timers"]["osiris-update-guard"]
    assert timer["timerConfig"]["OnCalendar"] == "minutely"
    # the agent reads the guard's record: root's state dir is readable, on both units
    sw = conf["systemd"]["services"]["osiris-switch-system"]["serviceConfig"]
    assert sw["StateDirectoryMode"] == svc["serviceConfig"]["StateDirectoryMode"] == "0755"
    # the default deadline
    default = agent()["config"]["systemd"]["services"]["osiris-update-guard"]
    assert "--deadline-s 900" in default["serviceConfig"]["ExecStart"].replace("'", "")


@needs_nix
def test_no_guard_without_the_switch_unit() -> None:
    conf = agent(privileges={"systemSwitch": False})["config"]
    assert "osiris-update-guard" not in conf["systemd"]["services"]
    assert "osiris-update-guard" not in conf["systemd"].get("timers", {})
