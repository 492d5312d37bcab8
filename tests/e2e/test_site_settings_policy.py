"""A window changed from the CLI reaches the appliance only through its signed policy: a real
osiris-server, a real enrolled agent, `osiris site settings set` as a subprocess. At the next
check-in the agent verifies and accepts a newer signed policy carrying the new window and
cadence, puts them in force, and signs a ``policy_change`` bundle for each (old and new value,
the policy version), which reaches the server's log like any evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from osiris_core.evidence import bundle_hash
from tests.e2e.conftest import bundles, enroll_agent, seed_site, verify_receipt

OSIRIS = str(Path(sys.executable).parent / "osiris")


def _cli(central, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=central.url, OSIRIS_TOKEN=central.admin,
               OSIRIS_PROFILE_FILE="/nonexistent")  # fmt: skip
    return subprocess.run([OSIRIS, *args], capture_output=True, text=True, env=env, timeout=60)


def test_window_set_from_the_cli_arrives_in_a_signed_policy(central, tmp_path) -> None:
    site = seed_site(central)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        assert a.cycle().reachable
        v1 = a.policy_in_force.version
        old_window = dict(a.policy_in_force.doc["window"])
        assert not [b for b in bundles(a) if b["check"] == "policy_change"]
        r = _cli(central, "site", "settings", "set", site.id, "--days", "sat,sun", "--start",
                 "03:30", "--duration", "90", "--timezone", "Europe/Berlin",
                 "--checkin-interval", "300", "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        want = {"days": ["sat", "sun"], "start": "03:30", "duration_min": 90,
                "timezone": "Europe/Berlin"}  # fmt: skip
        assert json.loads(r.stdout)["window"] == want

        assert a.cycle().reachable  # the next check-in
        pol = a.policy_in_force
        assert pol.version > v1 and pol.doc["window"] == want  # verified, signed, in force
        assert pol.doc["checkin_interval_s"] == 300
        assert a.window.days == ("sat", "sun") and a.window.timezone == "Europe/Berlin"
        changes = {b["post_state"]["observed"]["setting"]: b
                   for b in bundles(a) if b["check"] == "policy_change"}  # fmt: skip
        assert set(changes) == {"window", "checkin_interval_s"}
        win = changes["window"]
        assert win["outcome"] == "alert" and win["runbook_id"] is None
        assert win["pre_state"]["observed"]["value"] == old_window
        assert win["post_state"]["observed"]["value"] == want
        assert win["post_state"]["policy_version"] == pol.version
        assert win["policy_version"] == str(pol.version)  # recorded under the new policy
        assert changes["checkin_interval_s"]["post_state"]["observed"]["value"] == 300
        assert a.outbox.depth() == 0  # delivered to the server
        for b in changes.values():  # in the server's log, proven by the receipt it returned
            verify_receipt(a, central, bundle_hash(b))

        # a value the API refuses never reaches the appliance: nothing new is signed
        r = _cli(central, "site", "settings", "set", site.id, "--timezone", "Mars/Base")
        assert r.returncode == 2 and "not an IANA time zone" in r.stderr
        assert a.cycle().reachable
        assert a.policy_in_force.version == pol.version
        assert len([b for b in bundles(a) if b["check"] == "policy_change"]) == 2
    finally:
        a.close()
