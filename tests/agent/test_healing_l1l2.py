"""Signed L1 rule sets and the L2 planner against a scripted chat-completions server on loopback."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from osiris_agent.healing.engine import Finding, HealingEngine, Policy
from osiris_agent.healing.executor import Executor
from osiris_agent.healing.l1 import RuleSetRefused, sign_rules, verify_signed_rules
from osiris_agent.healing.l2 import OpenAIChatPlanner, judge_answer
from osiris_agent.hosts.base import Target
from osiris_agent.hosts.winrm import WinrmTransport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_core.catalog.rules import parse_rule
from osiris_core.evidence import Chain
from osiris_core.keys import Signer, Verifier
from osiris_lab.windows import WindowsLabHost
from osiris_lab.wsman import WsmanLabServer

CAT = load_catalog()
KEY_MARKER = "sk-UNIQUE-L2-KEY-4411"

RULE = {
    "id": "L1-SITE-FW-001",
    "name": "Site rule: firewall",
    "check": "windows_firewall",
    "action": "run_runbook",
    "runbook_id": "RB-WIN-FIREWALL-001",
    "priority": 1,
    "cooldown_s": 60,
    "max_attempts": 2,
    "conditions": [
        {"field": "observed.public", "op": "eq", "value": False},
        {"field": "status", "op": "in", "value": ["drift"]},
    ],
}


@pytest.fixture(scope="module")
def order_key() -> Signer:
    return Signer.generate("osiris/orders/test")


def test_signed_rules_verify(order_key: Signer) -> None:
    signed = sign_rules([RULE], "7", order_key)
    rules = verify_signed_rules(signed, Verifier.from_vkey(order_key.vkey), CAT)
    assert [r.id for r in rules] == ["L1-SITE-FW-001"]
    assert rules[0].conditions[1].value == ("drift",)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda s: s.pop("sig"), "unsigned"),
        (lambda s: s["rules"][0].update(priority=2), "does not verify"),
        (lambda s: s.update(version="8"), "does not verify"),
        (lambda s: s["sig"].update(key_id="deadbeef"), "unknown key"),
        (lambda s: s["sig"].update(value="!!"), "not base64"),
    ],
)
def test_tampered_rule_sets_are_refused(order_key: Signer, mutate, reason: str) -> None:
    signed = sign_rules([RULE], "7", order_key)
    mutate(signed)
    with pytest.raises(RuleSetRefused, match=reason):
        verify_signed_rules(signed, Verifier.from_vkey(order_key.vkey), CAT)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"runbook_id": "RB-WIN-NOPE-001"}, "unknown runbook"),
        ({"conditions": [{"field": "status", "op": "matches", "value": "x"}]}, "operator"),
        ({"action": "run_command"}, "action"),
        ({"params": {"command": "rm -rf /"}}, "unknown param"),
    ],
)
def test_validly_signed_but_invalid_rules_are_refused(order_key, change, reason) -> None:
    rule = {**copy.deepcopy(RULE), **change}
    signed = sign_rules([rule, {**RULE, "id": "L1-SITE-OK-001"}], "9", order_key)
    with pytest.raises(RuleSetRefused, match=reason):
        verify_signed_rules(signed, Verifier.from_vkey(order_key.vkey), CAT)


def test_judge_answer() -> None:
    eligible = [CAT.runbook("RB-WIN-FIREWALL-001"), CAT.runbook("RB-WIN-SEC-001")]

    def judge(text: str):
        return judge_answer(text, eligible, model="m", prompt_sha256="p", min_confidence=70)

    ok = judge('{"runbook_id": "RB-WIN-FIREWALL-001", "params": {}, "confidence": 0.9}')
    assert ok.accepted and ok.confidence == 90
    assert judge('{"runbook_id": "RB-WIN-AV-001", "confidence": 99}').refusal.startswith("runbook")
    assert "below" in judge('{"runbook_id": "RB-WIN-FIREWALL-001", "confidence": 50}').refusal
    assert "not JSON" in judge("sure! run netsh advfirewall").refusal
    bad = judge('{"runbook_id": "RB-WIN-FIREWALL-001", "params": {"x": 1}, "confidence": 95}')
    assert "invalid params" in bad.refusal


# -- L2 end to end: scripted chat server on loopback, real pywinrm to the Windows lab -------
class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.answers: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        self.server.auth.append(self.headers.get("Authorization", ""))
        content = self.server.answers.pop(0)
        data = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": content}}]}
        ).encode()
        self.send_response(200 if self.path == "/v1/chat/completions" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Sinks:
    def __init__(self) -> None:
        self.chain = Chain("app-1")
        self.bundles: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> str:
        b = self.chain.next(site_id="site-1", **fields)
        self.bundles.append(b)
        return self.chain.advance(b)

    def raise_incident(self, **kw: Any) -> None:
        self.incidents.append(kw)

    def outcomes(self) -> list[tuple[str, str, str | None]]:
        return [(b["outcome"], b["tier"], b["runbook_id"]) for b in self.bundles]


@pytest.fixture()
def l2lab(tmp_path) -> Iterator[tuple[WindowsLabHost, WinrmTransport, ChatServer, Any]]:
    host = WindowsLabHost(CAT)
    chat = ChatServer()
    t = threading.Thread(target=chat.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    key = tmp_path / "l2.key"
    key.write_text(KEY_MARKER + "\n")
    key.chmod(0o600)
    planner = OpenAIChatPlanner(chat.url, "lab-model-1", key_file=str(key), min_confidence=70)
    with WsmanLabServer(handler=host) as server:
        target = Target(
            host_id="dc01", kind="winrm", address="127.0.0.1", port=server.port,
            username="Administrator", password=server.password, lab=True, use_tls=False,
            auth="basic",
        )  # fmt: skip
        tr = WinrmTransport(target, backoff_s=0.01)
        yield host, tr, chat, planner
        tr.close()
    chat.shutdown()
    chat.server_close()


def _run(host, tr, chat, planner, answer: str) -> Sinks:
    host.inject("firewall_off")
    ex = Executor(CAT, lambda h: tr)
    rb = CAT.runbook("RB-WIN-FIREWALL-001")
    pr = ex.run_phase("dc01", rb, "detect", None)
    finding = Finding("dc01", rb.check, rb.id, pr.status, pr.observed, pr.expected, "t")
    chat.answers.append(answer)
    # the server overrides the baseline rule by id with one that never matches: no L1 action
    never = parse_rule(
        {"id": "L1-WIN-FIREWALL-001", "name": "off", "check": "windows_firewall",
         "action": "alert", "conditions": [{"field": "observed.nope", "op": "exists",
                                            "value": True}]},
        CAT,
    )  # fmt: skip
    policy = Policy.default(CAT, l2=planner, rules=[never])
    sinks = Sinks()
    engine = HealingEngine(CAT, lambda h: tr, sinks, sinks, lambda: datetime.now(UTC))
    engine.handle(finding, policy)
    return sinks


def test_l2_valid_choice_heals(l2lab) -> None:
    host, tr, chat, planner = l2lab
    answer = '{"runbook_id": "RB-WIN-FIREWALL-001", "params": {}, "confidence": 88, "reason": "x"}'
    sinks = _run(host, tr, chat, planner, answer)
    assert sinks.outcomes() == [("healed", "L2", "RB-WIN-FIREWALL-001")]
    l2 = sinks.bundles[0]["pre_state"]["l2"]
    assert l2["model"] == "lab-model-1" and len(l2["prompt_sha256"]) == 64
    assert l2["confidence"] == 88
    # the prompt held the structured finding and the eligible runbooks only
    user = json.loads(chat.requests[0]["messages"][1]["content"])
    assert user["finding"]["observed"]["public"] is False
    ids = {r["id"] for r in user["eligible_runbooks"]}
    assert ids == {"RB-WIN-FIREWALL-001", "RB-WIN-SEC-001"}
    assert chat.auth[0] == f"Bearer {KEY_MARKER}"
    assert KEY_MARKER not in canonical.dumps(sinks.bundles).decode()
    assert host.state["firewall"]["public"]["enabled"] is True


def test_l2_invalid_runbook_is_refused_and_escalated(l2lab) -> None:
    host, tr, chat, planner = l2lab
    answer = '{"runbook_id": "RB-WIN-AV-001", "params": {}, "confidence": 99}'
    sinks = _run(host, tr, chat, planner, answer)
    assert sinks.outcomes() == [
        ("escalated", "L2", "RB-WIN-FIREWALL-001"),
        ("escalated", "L3", "RB-WIN-FIREWALL-001"),
    ]
    assert "not eligible" in sinks.bundles[0]["action_taken"]
    assert sinks.incidents and sinks.incidents[0]["details"]["tried"][-1]["tier"] == "L2"
    assert ("RB-WIN-AV-001", "remediate") not in host.phases_run()
    assert host.state["firewall"]["public"]["enabled"] is False


@pytest.mark.parametrize(
    "answer",
    [
        "I think you should run `netsh advfirewall set allprofiles state on`",
        '{"runbook_id": "RB-WIN-FIREWALL-001", "confidence": 40}',
        '{"runbook_id": "RB-WIN-FIREWALL-001", "params": {"cmd": "x"}, "confidence": 99}',
        "[1, 2, 3]",
    ],
)
def test_l2_garbage_or_low_confidence_goes_to_l3(l2lab, answer: str) -> None:
    host, tr, chat, planner = l2lab
    sinks = _run(host, tr, chat, planner, answer)
    assert [o[:2] for o in sinks.outcomes()] == [("escalated", "L2"), ("escalated", "L3")]
    assert ("RB-WIN-FIREWALL-001", "remediate") not in host.phases_run()


def test_the_servers_signed_baseline_verifies_on_the_agent(order_key: Signer) -> None:
    """Wire compatibility: what osiris_server signs, the agent accepts — every baseline rule."""
    app = pytest.importorskip("osiris_server.app")
    signed = app.sign_rules(list(CAT.rules), order_key)["signed"]
    signed = json.loads(json.dumps(signed))  # as it arrives over HTTP
    rules = verify_signed_rules(signed, Verifier.from_vkey(order_key.vkey), CAT)
    assert [r.id for r in rules] == [r.id for r in CAT.rules]
    assert rules == list(CAT.rules)
