"""L2 through the agent config against a scripted OpenAI-compatible endpoint on 127.0.0.1, and
an L3 escalation while the real server is down, delivered once it is back."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import add_winrm, bundles, enroll_agent, seed_site

FW = "RB-WIN-FIREWALL-001"


class ScriptedLLM:
    """A chat-completions endpoint that answers what the test scripted, and records requests."""

    def __init__(self) -> None:
        self.answer = ""
        self.requests: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": outer.answer}}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def llm() -> Iterator[ScriptedLLM]:
    s = ScriptedLLM()
    yield s
    s.close()


def _l2_agent(central, win, llm, tmp_path):
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    toml = f'[healing]\nl2_enabled = true\nl2_base_url = "{llm.url}"\nl2_model = "lab-model"\n'
    a = enroll_agent(central, site, tmp_path / "state", toml)
    return host, site, a


def _answer(runbook_id: Any, confidence: int = 90) -> str:
    return json.dumps({"runbook_id": runbook_id, "params": {}, "confidence": confidence,
                       "reason": "firewall profiles are off"})  # fmt: skip


def test_l2_valid_plan_runs_with_model_and_prompt_hash(central, win, llm, tmp_path) -> None:
    """Every Windows runbook has an L1 rule, so L2 plans the same runbook only once L1 has used
    up its attempts (3 failed verifies, an hour apart so no cooldown holds anything back)."""
    host, site, a = _l2_agent(central, win, llm, tmp_path)
    base = datetime.now(UTC)
    try:
        assert a.l2 is not None and a.policy.l2 is a.l2
        a.cycle()
        host.inject("firewall_off")
        llm.answer = json.dumps({"runbook_id": None, "confidence": 0, "reason": "unsure"})
        for k in range(1, 4):
            a.now = lambda k=k: base + timedelta(minutes=61 * k)
            host.break_next(FW)  # L1's remediation claims success and changes nothing
            assert a.cycle().reachable
        l1 = [b["outcome"] for b in bundles(a) if b["tier"] == "L1" and b["runbook_id"] == FW]
        # issue 15, deliberate: FIREWALL-001 has a snapshot and a rollback now, so each failed
        # verify is rolled back and re-checked (reverted), which uses up an attempt like failed
        assert l1 == ["reverted"] * 3
        llm.answer = _answer(FW)
        a.now = lambda: base + timedelta(minutes=61 * 4)
        r = a.cycle()
        assert r.reachable, r.errors
        l2 = [b for b in bundles(a) if b["tier"] == "L2" and b["outcome"] != "escalated"]
        assert [b["outcome"] for b in l2] == ["healed"], [b["action_taken"] for b in l2]
        rec = l2[0]["pre_state"]["l2"]
        assert rec["model"] == "lab-model" and rec["accepted"] is True
        assert rec["runbook_id"] == FW and l2[0]["runbook_id"] == FW
        # The prompt hash in the evidence is the hash of exactly what the endpoint received.
        sent = llm.requests[-1]["messages"]
        blob = json.dumps(sent, sort_keys=True, separators=(",", ":")).encode()
        assert rec["prompt_sha256"] == hashlib.sha256(blob).hexdigest()
        assert all(p["enabled"] for p in host.state["firewall"].values())
    finally:
        a.close()


@pytest.mark.parametrize(
    "answer",
    [_answer("RB-WIN-SVC-001"), "I think you should run netsh advfirewall set allprofiles on"],
    ids=["ineligible", "garbage"],
)
def test_l2_refusal_goes_to_l3(central, win, llm, tmp_path, answer) -> None:
    host, site, a = _l2_agent(central, win, llm, tmp_path)
    try:
        a.cycle()
        llm.answer = answer
        host.inject("firewall_off")
        host.break_next(FW)
        r = a.cycle()
        assert r.reachable, r.errors
        l2 = [b for b in bundles(a) if b["tier"] == "L2"]
        assert [b["outcome"] for b in l2] == ["escalated"]
        assert "L2 plan refused" in l2[0]["action_taken"]
        assert l2[0]["pre_state"]["l2"]["accepted"] is False
        l3 = [b for b in bundles(a) if b["tier"] == "L3" and b["runbook_id"] == FW]
        assert l3 and l3[0]["outcome"] == "escalated"
        incidents = central.api("GET", f"/incidents?site={site.id}")["incidents"]
        inc = [i for i in incidents if i["kind"] == "drift_unresolved" and i["host_id"] == "dc01"]
        assert inc, incidents
        assert not all(p["enabled"] for p in host.state["firewall"].values())
        assert not [x for x in host.phases_run() if x == ("RB-WIN-SVC-001", "remediate")]
    finally:
        a.close()


def test_l3_while_server_down_is_delivered_later(central, win, tmp_path) -> None:
    host, server = win
    site = seed_site(central)
    add_winrm(central, site, server)
    a = enroll_agent(central, site, tmp_path / "state")
    try:
        assert a.cycle().reachable
        central.stop()
        host.inject("firewall_off")
        host.break_next(FW)
        r = a.cycle()  # targets from the last check-in are still in memory: healing goes on
        assert not r.reachable
        l3 = [b["outcome"] for b in bundles(a) if b["tier"] == "L3" and b["runbook_id"] == FW]
        assert l3 == ["escalated"]
        queued = a.db.unsent_incidents()
        assert [(i["kind"], i["details"]["runbook_id"]) for i in queued] == [
            ("drift_unresolved", FW)
        ]
        central.start()
        r = a.cycle()
        assert r.reachable and a.db.unsent_incidents() == [] and a.outbox.depth() == 0, r.errors
        incidents = central.api("GET", f"/incidents?site={site.id}")["incidents"]
        got = [i for i in incidents if i["kind"] == "drift_unresolved"]
        assert got and got[0]["host_id"] == "dc01" and FW in got[0]["summary"]
    finally:
        a.close()
