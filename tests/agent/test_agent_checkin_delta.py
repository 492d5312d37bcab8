"""The agent's side of partial check-in answers (issue 14 item 6): the real agent, enrolled with
the real ``enroll`` against the real osiris-server over loopback HTTP.

Between the two sits a small forwarding proxy: it gives the agent one URL across server
restarts, counts the requests, and — for the hostile cases — rewrites the real server's answer
the way a hostile or broken server could: "unchanged" for a part the agent never received, or
rules called unchanged beside a policy naming other rules. "Unchanged" is never a document: the
agent asks again in full, and refuses to act on an answer that still claims it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from osiris_agent.context import CycleReport
from osiris_core import canonical
from osiris_core.catalog import load_catalog
from osiris_server.app import init_data, sign_rules
from tests.e2e.conftest import NEVER, WIN_PASSWORD, Site, add_winrm, enroll_agent
from tests.server.conftest import start_server, stop_server

PATCH = "RB-WIN-PATCH-001"
ALL = ["policy", "rules", "targets"]
Rewrite = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class Proxy:
    """Forwards every request to ``upstream``; ``rewrite(request, answer)`` may change a
    check-in answer. ``checkins`` keeps each check-in request body and the answer sent."""

    def __init__(self) -> None:
        self.upstream = ""
        self.rewrite: Rewrite | None = None
        self.checkins: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self.refuse_holds = False  # answer as a server older than holds would
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                keep = ("authorization", "content-type", "x-api-key")
                headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
                status, out = proxy.handle(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        is_checkin = method == "POST" and path.startswith("/api/v1/checkin")
        req = json.loads(body) if is_checkin else None
        if is_checkin and self.refuse_holds and "holds" in req:
            self.checkins.append((req, None))
            err = {"error": {"code": "E_SCHEMA", "message": "unknown field checkin.holds"}}
            return 400, json.dumps(err).encode()
        r = httpx.request(method, self.upstream + path, headers=headers, content=body, timeout=30)
        if not is_checkin or r.status_code != 200:
            return r.status_code, r.content
        resp = r.json()
        if self.rewrite is not None:
            resp = self.rewrite(req, resp)
        self.checkins.append((req, resp))
        return 200, json.dumps(resp).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Central:
    """The real server in this process (so a restart can sign other rules), behind the proxy;
    ``api`` as tests/e2e's ``Central.api`` (the admin token over HTTP)."""

    def __init__(self, data: Path, proxy: Proxy) -> None:
        self.data, self.proxy = data, proxy
        self.admin = init_data(data, "test.osiris/osiris/log")["admin_token"]
        self.app: Any = None
        self.srv: Any = None
        self.stopped: list[Any] = []  # kept alive: the server's per-app caches key on id(app)
        self.start()

    @property
    def url(self) -> str:
        return self.proxy.url

    def start(self, rules: list[Any] | None = None) -> None:
        self.app, self.srv, self.proxy.upstream = start_server(self.data)
        if rules is not None:  # another catalogue's rules, signed as _load_catalog signs them
            self.app.signed_rules = sign_rules(rules, self.app.order_signer)
            self.app.signed_rules_json = canonical.dumps(self.app.signed_rules)

    def stop(self) -> None:
        stop_server(self.app, self.srv)
        self.stopped.append(self.app)

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)):
        auth = {"Authorization": f"Bearer {self.admin}"}
        r = httpx.request(
            method, self.proxy.upstream + "/api/v1" + path, json=body, headers=auth, timeout=10
        )
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None


@pytest.fixture()
def c(tmp_path: Path) -> Iterator[Central]:
    proxy = Proxy()
    central = Central(tmp_path / "srv", proxy)
    try:
        yield central
    finally:
        central.stop()
        proxy.close()


def _site(c: Central, win: Any) -> Site:
    pid = c.api("POST", "/partners", {"name": "MSP delta"})["partner"]["id"]
    site = Site(
        c.api("POST", "/sites", {"name": "Clinic", "partner_id": pid, "window": NEVER})["id"]
    )
    add_winrm(c, site, win[1])  # type: ignore[arg-type]
    return site


def _agent(c: Central, site: Site, state: Path) -> Any:
    return enroll_agent(c, site, state)  # type: ignore[arg-type]


def _checkin(agent: Any) -> tuple[dict[str, Any] | None, CycleReport]:
    report = CycleReport()
    return agent.checkin(report), report


def _cred(c: Central, site: Site) -> str:
    return c.api("GET", f"/sites/{site.id}/credentials")["credentials"][0]["id"]


def test_unchanged_answers_keep_what_the_agent_verified_and_each_change_arrives(
    c, win, tmp_path
) -> None:
    site = _site(c, win)
    agent = _agent(c, site, tmp_path / "a")
    try:
        assert agent.cycle().checked_in
        first_req, first = c.proxy.checkins[0]
        assert first_req["holds"] == {} and "policy_version" not in first_req
        assert first is not None and {"rules", "targets", "policy"} <= set(first)
        targets, rules, pol = agent.targets, agent.server_rules, agent.policy_in_force
        assert targets[0].password == WIN_PASSWORD and rules and pol is not None
        held = agent.keeper.held_rules_hash
        assert held == pol.doc["ruleset_hash"]

        # nothing changed: nothing resent, everything held stays in force (the very objects)
        assert agent.cycle().checked_in
        req, resp = c.proxy.checkins[-1]
        assert req["holds"] == {"rules": held, "targets": first["targets_hash"]}
        assert req["policy_version"] == pol.version
        assert resp is not None and sorted(resp["unchanged"]) == ALL
        assert len(json.dumps(resp)) <= 2048
        assert agent.targets is targets and agent.server_rules is rules
        assert agent.policy_in_force is pol and agent.policy.ruleset_hash == held

        # a rotated credential
        c.api("PATCH", f"/sites/{site.id}/credentials/{_cred(c, site)}",
              {"password": "Rotated-Pw-9f3a"})  # fmt: skip
        resp, _ = _checkin(agent)
        assert resp is not None and "targets" in resp and sorted(resp["unchanged"]) == [
            "policy", "rules"]  # fmt: skip
        assert agent.targets[0].password == "Rotated-Pw-9f3a"
        assert agent.policy_in_force is pol and agent.server_rules is rules

        # a site parameter, then a runbook toggle: a new signed policy, the rules kept
        c.api("PUT", f"/sites/{site.id}/runbooks/{PATCH}/params",
              {"params": {"critical_overdue_days": 15}})  # fmt: skip
        resp, _ = _checkin(agent)
        assert resp is not None and "policy" in resp and "rules" in resp["unchanged"]
        assert agent.site_params[PATCH] == {"critical_overdue_days": 15}
        assert agent.policy_in_force.version == pol.version + 1
        assert agent.server_rules is rules
        c.api("PUT", f"/sites/{site.id}/runbooks", {"runbooks": {PATCH: False}})
        resp, _ = _checkin(agent)
        assert resp is not None and "policy" in resp
        assert PATCH in agent.policy.disabled_runbooks

        # a revoked credential: the targets shrink
        c.api("DELETE", f"/sites/{site.id}/credentials/{_cred(c, site)}", ok=(200, 204))
        resp, _ = _checkin(agent)
        assert resp is not None and resp["targets"] == [] and agent.targets == []
        assert sorted(_checkin(agent)[0]["unchanged"]) == ALL  # type: ignore[index]
        assert agent.targets == []

        # new rules: the server restarts with another catalogue's rules (one rule fewer)
        c.stop()
        c.start(list(load_catalog().rules)[:-1])
        resp, report = _checkin(agent)
        assert resp is not None and not report.errors, report.errors
        assert "rules" in resp and "policy" in resp and resp["unchanged"] == ["targets"]
        assert len(agent.server_rules) == len(rules) - 1
        assert agent.keeper.held_rules_hash != held
        assert agent.policy.ruleset_hash == agent.keeper.held_rules_hash
        assert agent.policy_in_force.doc["ruleset_hash"] == agent.keeper.held_rules_hash
        assert not [i for i in agent.db.unsent_incidents() if i["kind"].endswith("refused")]
    finally:
        agent.close()


def test_a_quarantine_lift_reaches_the_agent_at_the_next_checkin(c, win, tmp_path) -> None:
    site = _site(c, win)
    op = c.api("POST", "/tokens", {"role": "operator", "name": "op"})["token"]
    r = httpx.post(c.proxy.upstream + "/api/v1/provisions", json={"site_id": site.id},
                   headers={"Authorization": f"Bearer {op}"}, timeout=10)  # fmt: skip
    code = r.json()["code"]
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent
    from osiris_agent.enroll import enroll
    from tests.agent.fixtures_agent import good_clock

    res = enroll(c.url, code, tmp_path / "q", lab=True)
    agent = Agent(load_config(Path(res.config_path)), measure_clock=good_clock,
                  scan_interval_s=0, scan_self=False)  # fmt: skip
    try:
        assert agent.cycle().checked_in and agent.targets == []
        resp, _ = _checkin(agent)
        assert resp is not None and "targets" in resp["unchanged"]
        c.api("POST", f"/appliances/{agent.appliance_id}/confirm", {})
        resp, _ = _checkin(agent)
        assert resp is not None and "targets" in resp
        assert [t.host_id for t in agent.targets] == ["dc01"]
        assert agent.targets[0].password == WIN_PASSWORD
    finally:
        agent.close()


def _strip(parts: list[str]) -> Rewrite:
    """A hostile answer: ``parts`` left out and called unchanged, whatever the agent holds."""

    def rewrite(req: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
        for p in parts:
            resp.pop(p, None)
            if p == "targets":
                resp.pop("targets_hash", None)
        resp["unchanged"] = sorted(set(resp.get("unchanged", [])) | set(parts))
        return resp

    return rewrite


@pytest.mark.parametrize("parts", [["rules"], ["targets"], ["policy"], ALL])
def test_unchanged_for_what_the_agent_never_got_asks_again_in_full(c, win, tmp_path, parts) -> None:
    site = _site(c, win)
    agent = _agent(c, site, tmp_path / "a")
    try:
        once = {"done": False}
        strip = _strip(parts)

        def first_only(req: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
            if once["done"]:
                return resp
            once["done"] = True
            return strip(req, resp)

        c.proxy.rewrite = first_only
        report = agent.cycle()
        assert report.checked_in and not [e for e in report.errors if "check-in" in e]
        (r1, a1), (r2, a2) = c.proxy.checkins[:2]
        assert r1["holds"] == {} and r2["holds"] == {} and "policy_version" not in r2
        assert a2 is not None and a2["unchanged"] == []
        assert agent.targets[0].password == WIN_PASSWORD
        assert agent.server_rules and agent.policy_in_force is not None
        assert agent.keeper.held_rules_hash == agent.policy_in_force.doc["ruleset_hash"]
    finally:
        agent.close()


@pytest.mark.parametrize("parts", [["rules"], ["targets"], ALL])
def test_an_answer_that_keeps_claiming_unchanged_is_refused_and_nothing_runs(
    c, win, tmp_path, parts
) -> None:
    site = _site(c, win)
    agent = _agent(c, site, tmp_path / "a")
    try:
        c.proxy.rewrite = _strip(parts)
        report = agent.cycle()
        assert any("bad check-in answer" in e and "not held" in e for e in report.errors)
        assert len(c.proxy.checkins) == 2  # asked once more in full, then refused
        assert agent.targets == [] and agent.server_rules == []
        assert agent.policy_in_force is None and agent.policy.policy_version == "default"
        assert agent.db.get_json("last_checkin")["ok"] is False
        # an honest answer later is taken as usual
        c.proxy.rewrite = None
        assert agent.cycle().checked_in
        assert agent.targets and agent.server_rules and agent.policy_in_force is not None
    finally:
        agent.close()


def test_rules_called_unchanged_beside_a_policy_naming_other_rules_asks_in_full(
    c, win, tmp_path
) -> None:
    """The agent holds rules R1 and policy v1; the server restarts with rules R2 and a policy
    v2 naming R2, but the (broken) answer says the rules are unchanged. The agent must not run
    v2 with R1 (nor refuse v2 for it): it asks in full and takes R2 with v2."""
    site = _site(c, win)
    agent = _agent(c, site, tmp_path / "a")
    try:
        assert agent.cycle().checked_in
        r1 = agent.keeper.held_rules_hash
        c.stop()
        c.start(list(load_catalog().rules)[:-1])
        c.proxy.rewrite = lambda req, resp: (
            _strip(["rules"])(req, resp) if req["holds"].get("rules") else resp
        )
        n = len(c.proxy.checkins)
        resp, report = _checkin(agent)
        assert resp is not None and not report.errors, report.errors
        assert len(c.proxy.checkins) == n + 2 and c.proxy.checkins[-1][0]["holds"] == {}
        assert agent.keeper.held_rules_hash not in (None, r1)
        assert agent.policy_in_force.doc["ruleset_hash"] == agent.keeper.held_rules_hash
        assert not [i for i in agent.db.unsent_incidents() if i["kind"] == "policy_rejected"]
    finally:
        agent.close()


def test_a_server_older_than_holds_gets_a_request_without_it(c, win, tmp_path) -> None:
    site = _site(c, win)
    agent = _agent(c, site, tmp_path / "a")
    try:
        c.proxy.refuse_holds = True
        assert agent.cycle().checked_in
        assert [("holds" in r) for r, _ in c.proxy.checkins] == [True, False]
        assert agent.targets[0].password == WIN_PASSWORD and agent.server_rules
        assert agent.cycle().checked_in  # said once; whole answers from then on
        assert "holds" not in c.proxy.checkins[-1][0]
    finally:
        agent.close()
