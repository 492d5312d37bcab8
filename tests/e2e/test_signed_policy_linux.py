"""Nothing weakens a clinic, end to end (issue 11): the REAL osiris-server, a REAL agent, and a
Linux host reached over a REAL sshd running the catalogue's Linux runbooks (the lab sandbox root
stands in for ``/``, see ``osiris_lab/linux.py``).

1. A partner key asks for ``chmod 0666 /etc/shadow`` (and the other attacks of the issue): the
   server refuses, and when ``/etc/shadow`` drifts the agent heals it to the baseline 0640 — no
   bundle ever says ``healed`` for a weakened mode.
2. Someone who can answer the agent's check-in (a hostile proxy in front of the real server, or
   a server without the order key) hands out a policy signed by the wrong key, a rolled-back
   version, a tampered parameter, and — with the order key itself — a signed but weakening
   parameter: each is refused by the agent with one ``rejected`` bundle that reaches the server's
   transparency log, and the last good policy stays in force: the next drift is still healed to
   0640, never to 0666.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from osiris_core import policy
from osiris_core.evidence import bundle_hash
from osiris_core.keys import Signer, load_private_key
from osiris_lab.linux import LabSshd, LinuxSandbox
from tests.e2e.conftest import Site, bundles, enroll_agent, verify_receipt

PERM = "LIN-PERM-001"


class CheckinProxy:
    """A real HTTP proxy in front of the real server that may replace the ``policy`` of a
    check-in answer (``self.policy``): what a hostile network or front end could do."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.policy: Any = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "x-api-key")
                }
                r = httpx.request(method, proxy.upstream + self.path, content=body,
                                  headers=headers, timeout=30)  # fmt: skip
                data = r.content
                if self.path.endswith("/checkin") and r.status_code == 200 and proxy.policy:
                    answer = json.loads(data)
                    answer["policy"] = proxy.policy
                    # a partial answer names the policy it left out (issue 14): a hostile
                    # server that sends one does not also call it unchanged (the agent would
                    # refuse the contradiction before looking at the policy)
                    if "unchanged" in answer:
                        answer["unchanged"] = [p for p in answer["unchanged"] if p != "policy"]
                    data = json.dumps(answer).encode()
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._forward("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def lin(tmp_path) -> Iterator[tuple[LinuxSandbox, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed")
    box = LinuxSandbox(tmp_path / "root").build()
    with LabSshd(tmp_path / "sshd", box) as sshd:
        yield box, sshd


def _partner_site(central) -> tuple[httpx.Client, str]:
    p = central.api("POST", "/partners", {"name": "Hostile MSP partner"})
    c = httpx.Client(base_url=central.url + "/api/v1", headers={"X-API-Key": p["api_key"]},
                     timeout=10)  # fmt: skip
    r = c.post("/sites", json={"name": "Clinic", "window": {
        "days": [], "start": "02:00", "duration_min": 60, "timezone": "UTC"}})  # fmt: skip
    assert r.status_code == 201, r.text
    return c, r.json()["id"]


def _healed_modes(agent: Any) -> list[str]:
    return [
        b["post_state"]["observed"]["mode"]
        for b in bundles(agent)
        if b["runbook_id"] == PERM and b["outcome"] == "healed"
    ]


@pytest.mark.timeout(240)
def test_weakening_params_and_hostile_policies_never_weaken_the_host(
    central, lin, tmp_path
) -> None:
    box, sshd = lin
    partner, site_id = _partner_site(central)

    site = Site(site_id)
    central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": "lin-1", "kind": "ssh_key", "address": "127.0.0.1", "port": sshd.port,
        "username": sshd.user, "private_key": sshd.client_key,
        "host_key_fingerprints": [sshd.host_fingerprint],
    })  # fmt: skip
    # 1. the attack by the partner: refused, nothing stored
    r = partner.put(f"/sites/{site.id}/runbooks/{PERM}/params",
                    json={"params": {"target_mode": "0666", "allowed_modes": "666"}})  # fmt: skip
    assert r.status_code == 400 and "adds permission bits" in r.json()["error"]["message"]
    for rb, params in (("LIN-SVC-002", {"service": "debug-shell.service"}),
                       ("LIN-SVC-004", {"units": "sshd auditd"})):  # fmt: skip
        r = partner.put(f"/sites/{site.id}/runbooks/{rb}/params", json={"params": params})
        assert r.status_code == 400, r.text
    # a legitimate, tighter value from the partner is fine: 0600
    r = partner.put(f"/sites/{site.id}/runbooks/{PERM}/params",
                    json={"params": {"target_mode": "600"}})  # fmt: skip
    assert r.status_code == 200, r.text

    proxy = CheckinProxy(central.url)
    a = enroll_agent(central, site, tmp_path / "state", f'[server]\nurl = "{proxy.url}"\n')
    try:
        box.drift("shadow_perms")  # 0644: other-readable
        r = a.cycle()
        assert r.reachable and not r.errors, r.errors
        good = a.policy_in_force
        assert good is not None and a.policy.params_for(PERM) == {"target_mode": "600"}
        assert box.mode("etc/shadow") == 0o600 and _healed_modes(a) == ["600"]

        # a second good version (so that the first can be replayed as a rollback)
        central.api("PUT", f"/sites/{site.id}/runbooks/{PERM}/params",
                    {"params": {"allowed_modes": "600 0"}})  # fmt: skip
        assert a.cycle().reachable
        first, good = good, a.policy_in_force
        assert good.version == first.version + 1

        # 2. hostile policies in the check-in answer
        order_key = load_private_key(central.data / "keys" / "order.key")
        forger = Signer.generate(order_key.name)  # same name, not the key the agent pinned
        weak = copy.deepcopy(good.envelope["policy"])
        weak["version"] = good.version + 1
        weak["params"][PERM] = {"target_mode": "0666", "allowed_modes": "666"}
        tampered = copy.deepcopy(good.envelope)
        tampered["policy"]["params"][PERM] = {"target_mode": "0666", "allowed_modes": "666"}
        hostile = {
            "wrong key": policy.sign_policy(weak, forger),
            "rollback": first.envelope,  # validly signed, but older than the one in force
            "tampered parameter": tampered,
            "signed weakening parameter": policy.sign_policy(weak, order_key),
        }
        for k, (name, env) in enumerate(hostile.items(), start=1):
            proxy.policy = env
            # an hour later each time, so the L1 rule's cooldown lets it act again
            a.now = lambda k=k: datetime.now(UTC) + timedelta(hours=k)
            box.drift("shadow_perms")
            r = a.cycle()
            assert r.reachable and a.outbox.depth() == 0, (name, r.errors)
            assert a.policy_in_force is good, name
            assert box.mode("etc/shadow") == 0o600, name  # healed to the good policy's mode
        proxy.policy = None
        rejected = [b for b in bundles(a) if b["check"] == "policy"]
        assert [b["outcome"] for b in rejected] == ["rejected"] * len(hostile)
        reasons = " | ".join(b["action_taken"] for b in rejected)
        for why in ("bad signature", "rollback", "parameter refused"):
            assert why in reasons, reasons
        for b in rejected:  # each refusal is in the server's log, with a verified receipt
            verify_receipt(a, central, bundle_hash(b))
        on_server = [e for e in central.evidence(site.id) if e.get("check") == "policy"]
        assert len(on_server) == len(hostile)
        assert all(b["policy_version"] == str(good.version) for b in rejected)
        incidents = central.api("GET", f"/incidents?site={site.id}")["incidents"]
        assert any(i["kind"] == "policy_rejected" for i in incidents)
        # never a heal to a weakened mode, and the host never saw one
        assert set(_healed_modes(a)) == {"600"}
        assert box.mode("etc/shadow") & 0o077 == 0
    finally:
        a.close()
        proxy.close()
        partner.close()
