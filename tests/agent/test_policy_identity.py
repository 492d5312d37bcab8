"""Every bundle names the policy it ran under (DESIGN §3.6): ``ruleset_hash`` is the SHA-256 of
the canonical signed rules document the agent verified, ``policy_version`` the server's policy
version, which grows when the site's toggles or parameters change.

Against the REAL osiris-server (and the lab Windows host for healing evidence); the expected
values are taken from the server's own check-in answer, fetched here with the appliance's token.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx

from osiris_agent import AGENT_VERSION
from osiris_core import canonical
from osiris_core.keys import Signer
from osiris_core.protocol import rules_message
from tests.agent.fixtures_agent import FakeCentral, make_agent
from tests.e2e.conftest import Central, add_winrm, bundles, enroll_agent, seed_site

FW = "RB-WIN-FIREWALL-001"
PATCH = "RB-WIN-PATCH-001"


def _answer(c: Central, agent: Any) -> dict[str, Any]:
    """The server's check-in answer for this appliance, asked with its own token."""
    token = Path(agent.cfg.agent.token_file).read_text().strip()
    body = {
        "appliance_id": agent.appliance_id,
        "agent_version": AGENT_VERSION,
        "status": agent.status_block(),
        "log_size_seen": agent.witness.size,
    }
    r = httpx.post(
        c.url + "/api/v1/checkin", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _hash(signed: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical.dumps(signed)).hexdigest()


def _since(agent: Any, seq: int) -> list[dict[str, Any]]:
    return [b for b in bundles(agent) if b["seq"] > seq]


def test_bundles_carry_ruleset_hash_and_growing_policy_version(central, tmp_path) -> None:
    site = seed_site(central)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        ans = _answer(central, a)
        want_hash = _hash(ans["rules"]["signed"])
        v1 = ans["policy_version"]
        assert isinstance(v1, str) and v1.isdigit()
        first = bundles(a)
        assert first, "a cycle records at least the appliance's own timesync bundle"
        assert {b["ruleset_hash"] for b in first} == {want_hash}
        assert {b["policy_version"] for b in first} == {v1}

        # A runbook toggle at the site: a newer policy version in the next cycle's bundles.
        seq = a.outbox.head()[0]
        central.api("PUT", f"/sites/{site.id}/runbooks", {"runbooks": {FW: False}})
        assert a.cycle().reachable
        v2 = _answer(central, a)["policy_version"]
        assert int(v2) > int(v1)
        after = _since(a, seq)
        assert after and {b["policy_version"] for b in after} == {v2}
        assert {b["ruleset_hash"] for b in after} == {want_hash}  # rules did not change

        # A runbook parameter change: newer again.
        seq = a.outbox.head()[0]
        path = f"/sites/{site.id}/runbooks/{PATCH}/params"
        central.api("PUT", path, {"params": {"critical_overdue_days": 10}})
        assert a.cycle().reachable
        v3 = _answer(central, a)["policy_version"]
        assert int(v3) > int(v2)
        assert {b["policy_version"] for b in _since(a, seq)} == {v3}
        # status and the console see the policy in force
        assert a.db.get_json("policy") == {"policy_version": v3, "ruleset_hash": want_hash}
    finally:
        a.close()


def test_healing_evidence_carries_the_policy(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        a.cycle()
        host.inject("firewall_off")
        r = a.cycle()
        assert r.reachable, r.errors
        ans = _answer(central, a)
        healed = [b for b in bundles(a) if b["runbook_id"] == FW and b["tier"] == "L1"]
        assert healed and healed[-1]["outcome"] == "healed"
        for b in healed:
            assert b["ruleset_hash"] == _hash(ans["rules"]["signed"])
            assert b["policy_version"] == ans["policy_version"]
    finally:
        a.close()


def test_older_server_without_policy_version_falls_back_to_rules_version(tmp_path) -> None:
    """The fake Central Command answers like a server that predates ``policy_version``."""
    with FakeCentral() as srv:
        a = make_agent(srv, tmp_path / "s")
        try:
            srv.stop()  # first cycle unreachable: the catalogue defaults, no rules applied yet
            r = a.cycle()
            assert not r.reachable
            offline = bundles(a)
            assert offline and {(b["policy_version"], b["ruleset_hash"]) for b in offline} == {
                ("default", None)
            }
            srv.start()
            seq = a.outbox.head()[0]
            assert a.cycle().reachable
            # what the fake signs: rules_message(rules, "7") with its order key (Ed25519 is
            # deterministic, so the same document is rebuilt here byte for byte)
            key: Signer = srv.state.orders_key
            msg = canonical.dumps(rules_message(srv.state.rules, "7"))
            signed = {
                "rules": srv.state.rules,
                "version": "7",
                "sig": {"alg": "ed25519", "key_id": key.key_id_hex,
                        "value": base64.b64encode(key.sign(msg)).decode()},
            }  # fmt: skip
            online = _since(a, seq)
            assert online
            assert {(b["policy_version"], b["ruleset_hash"]) for b in online} == {
                ("7", _hash(signed))
            }
        finally:
            a.close()
