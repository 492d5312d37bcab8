"""The root update guard and the health check's retries, end to end (issue 16 item 6).

Real parts only: a real osiris-server process, real ``osiris-agent once`` processes, the lab's
STAND-IN root switch (``osiris_lab.standin_switch``) and its ``guard`` verb — the same
``osiris_core.release_guard`` code as NixOS's ``osiris-update-guard.service`` (run here as the
test user; it is root on NixOS).

Cases: a build whose agent cannot start (the stand-in marks its version ``broken-at-start`` and
this file's launcher then does not run the agent, as a crash at import would) is left alone
within the deadline and rolled back by the guard after it; the old agent, started again, sends
the signed ``rolled_back`` step and the ``update_rolled_back`` incident to the server. A single
failed check-in after a switch (server stopped for one cycle) does not roll back — the update
ends healthy and the guard then finds it confirmed; three in a row (the default
``agent.update_health_checkins``) do roll back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, Central, _env
from tests.e2e.test_agent_update import S0, S1, S3, Appliance, _release, sntp

__all__ = ["sntp"]  # the loopback SNTP fixture, shared with tests/e2e/test_agent_update.py


class GuardedAppliance(Appliance):
    """An appliance whose agent launcher refuses to run a build that cannot start."""

    def __init__(self, c: Central, tmp: Path, sntp: Any) -> None:
        super().__init__(c, tmp, sntp)
        self.starts = 0

    def once(self) -> None:
        if self.standin("starts").returncode != 0:
            return  # the new build's agent dies before its first cycle
        self.starts += 1
        p = subprocess.run(
            [sys.executable, "-m", "osiris_agent.cli", "once", "--config",
             str(self.state / "agent.toml")],
            env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert p.returncode in (0, 1, 3), p.stderr[-2000:]  # 3: the server is unreachable

    def guard(self, deadline_s: int) -> str:
        p = self.standin("guard", "--agent-state", str(self.state), "--deadline-s",
                         str(deadline_s))  # fmt: skip
        assert p.returncode == 0, p.stderr
        return p.stdout.split(":")[0]

    def record(self) -> dict[str, Any]:
        return json.loads(self.standin("guard-record").stdout)

    def incidents(self) -> list[dict[str, Any]]:
        rows = self.c.api("GET", f"/incidents?site={self.site.id}")["incidents"]
        return [i for i in rows if i["kind"] == "update_rolled_back"]


def test_a_build_that_cannot_start_is_rolled_back_by_the_guard(central, tmp_path, sntp):
    a = GuardedAppliance(central, tmp_path, sntp)
    a.once()
    assert a.guard(0) == "idle"  # no switch pending: the guard does nothing
    assert a.current()["generation"] == 1
    a.standin("broken-at-start", "0.3.0")
    _release(central, "0.3.0", S3)
    ro = a.rollout("0.3.0")
    order_id = ro["appliances"][0]["order_id"]
    a.once()  # requested + switched; the switch restarts the agent into 0.3.0 ...
    assert a.current()["system"] == S3
    runs = a.starts
    a.once()  # ... which cannot start: no cycle, no health check, nothing rolls back
    assert a.starts == runs and a.current()["system"] == S3
    assert a.guard(3600) == "wait"  # within the deadline: nothing moves
    assert a.current()["system"] == S3
    assert a.guard(0) == "rollback"  # past it, unconfirmed: back to the recorded system
    assert a.current()["system"] == S0 and a.current()["version"] == "0.1.0"
    rec = a.record()
    assert (rec["action"], rec["from"], rec["to"]) == ("rolled_back", S3, S0)
    assert a.guard(0) == "idle" and a.current()["generation"] == 3  # idempotent
    assert a.incidents() == []
    a.once()  # the old agent starts again and reports what the guard did
    steps = a.steps(order_id)
    assert [s[0] for s in steps] == ["compliant", "compliant", "reverted"], steps
    assert ("rolled_back: the new agent did not confirm health within 0 s; rolled back by the "
            "root guard; back on 0.1.0") in steps[-1][1]  # fmt: skip
    assert a.state_of(ro) == "rolled_back"
    assert len(a.incidents()) == 1
    assert not (a.state / "update.json").exists()
    a.once()  # reported once, not again
    assert len(a.steps(order_id)) == 3 and len(a.incidents()) == 1
    assert a.version() == "0.1.0"


def test_one_failed_checkin_is_tolerated_and_confirmed(central, tmp_path, sntp):
    a = GuardedAppliance(central, tmp_path, sntp)
    a.once()
    _release(central, "0.2.0", S1)
    ro = a.rollout("0.2.0")
    order_id = ro["appliances"][0]["order_id"]
    a.once()  # requested + switched
    central.stop()
    a.once()  # the first cycle after the switch cannot check in: a blip, tolerated
    pending = json.loads((a.state / "update.json").read_text())
    assert pending["phase"] == "switched" and pending["missed_checkins"] == 1
    assert a.current()["system"] == S1
    central.start()
    a.once()  # checks in as 0.2.0: healthy
    steps = a.steps(order_id)
    assert [s[0] for s in steps] == ["compliant"] * 3, steps
    assert "healthy: 0.2.0" in steps[-1][1]
    assert a.state_of(ro) == "healthy" and a.version() == "0.2.0"
    assert (a.state / "switch" / "healthy").read_text().strip() == S1
    # the agent confirmed: the guard keeps the build even past its deadline
    assert a.guard(0) == "confirmed"
    assert a.current()["system"] == S1 and a.record()["action"] == "confirmed"


def test_three_failed_checkins_in_a_row_roll_back(central, tmp_path, sntp):
    a = GuardedAppliance(central, tmp_path, sntp)
    a.once()
    _release(central, "0.2.0", S1)
    ro = a.rollout("0.2.0")
    order_id = ro["appliances"][0]["order_id"]
    a.once()
    central.stop()
    a.once()
    a.once()
    assert a.current()["system"] == S1  # two misses: still tolerated
    a.once()  # the third in a row: rolled back
    assert a.current()["system"] == S0
    central.start()
    a.once()  # the evidence and the incident reach the server
    steps = a.steps(order_id)
    assert [s[0] for s in steps] == ["compliant", "compliant", "reverted"], steps
    assert "3 check-ins in a row after the switch failed" in steps[-1][1]
    assert a.state_of(ro) == "rolled_back" and len(a.incidents()) == 1
    assert a.version() == "0.1.0"
