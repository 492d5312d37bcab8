"""Seed a real osiris-server over its HTTP API: sites, enrolled appliances, check-ins, evidence.

Everything goes through the public API on 127.0.0.1 (claim codes, Bearer tokens, signed
envelopes), exactly as an appliance and an operator would; nothing touches the database.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

import httpx

from osiris_core import evidence as ev
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, appliance_key_name


@dataclass
class FakeAppliance:
    """An enrolled appliance driven by the test (real keys, real chain, real API calls)."""

    url: str
    id: str
    site_id: str
    token: str
    signer: Signer
    cosigner: Signer
    chain: ev.Chain

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=20
        )

    def checkin(self, checks: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "appliance_id": self.id,
            "agent_version": "0.1.0",
            "status": {
                "uptime_s": 10,
                "outbox_depth": 0,
                "chain_head": self.chain.head,
                "seq": self.chain.seq,
                "clock": {"ntp_ok": True, "offset_ms": 3, "source": "127.0.0.1"},
                "checks": checks,
            },
            "log_size_seen": 0,
        }
        with self.http() as h:
            r = h.post("/api/v1/checkin", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def witness(self) -> None:
        """Cosign the log's newest checkpoint at a check-in, as the agent's witness does (so
        `evidence pull` finds a checkpoint this site's appliance cosigned)."""
        import time

        from osiris_core import note
        from osiris_core.keys import Verifier

        with self.http() as h:
            cp = h.get("/api/v1/log/checkpoint").json()
            log_vkey = h.get("/api/v1/log/keys").json()["log"]
        text = note.open_note(cp["note"], [Verifier.from_vkey(log_vkey)]).text
        line = note.cosign(text, self.cosigner, int(time.time()))
        body = {
            "appliance_id": self.id,
            "agent_version": "0.1.0",
            "status": {
                "uptime_s": 10, "outbox_depth": 0, "chain_head": self.chain.head,
                "seq": self.chain.seq, "checks": [],
                "clock": {"ntp_ok": True, "offset_ms": 3, "source": "127.0.0.1"},
            },
            "log_size_seen": cp["size"],
            "cosignatures": [{"size": cp["size"], "line": line}],
        }  # fmt: skip
        with self.http() as h:
            r = h.post("/api/v1/checkin", json=body)
        assert r.status_code == 200, r.text

    def send_evidence(self, n: int, **fields: Any) -> list[dict[str, Any]]:
        envs = []
        for i in range(n):
            f = dict(fields)
            f.setdefault("site_id", self.site_id)
            f.setdefault("host_id", "dc01")
            f.setdefault("check", "firewall")
            f.setdefault("outcome", "compliant" if i % 3 else "healed")
            b = self.chain.next(**f)
            self.chain.advance(b)
            envs.append(ev.sign_bundle(b, self.signer))
        with self.http() as h:
            r = h.post("/api/v1/evidence", json={"envelopes": envs, "log_size_seen": 0})
        assert r.status_code == 200, r.text
        assert all(x["status"] == "accepted" for x in r.json()["results"]), r.text
        return envs

    def send_bundles(self, bundles: list[dict[str, Any]]) -> list[str]:
        """Sign and post bundles built from `bundles` (fields for Chain.next); their hashes."""
        envs, hashes = [], []
        for f in bundles:
            b = self.chain.next(**{"site_id": self.site_id, **f})
            hashes.append(self.chain.advance(b))
            envs.append(ev.sign_bundle(b, self.signer))
        with self.http() as h:
            r = h.post("/api/v1/evidence", json={"envelopes": envs, "log_size_seen": 0})
        assert r.status_code == 200, r.text
        assert all(x["status"] == "accepted" for x in r.json()["results"]), r.text
        return hashes


def enroll(url: str, admin: str, site_id: str, hostname: str) -> FakeAppliance:
    h = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=20)
    with h:
        r = h.post("/api/v1/provisions", json={"site_id": site_id, "ttl_s": 3600})
        assert r.status_code == 201, r.text
        code = r.json()["code"]
    sk_seed, ck_seed = os.urandom(32), os.urandom(32)
    sk = Signer("tmp", sk_seed)
    ck = Signer("tmp", ck_seed, key_type=KEY_TYPE_COSIGNATURE)
    r = httpx.post(
        url + "/api/v1/provision/claim",
        json={
            "code": code,
            "hostname": hostname,
            "signing_pub": base64.b64encode(sk.public).decode(),
            "cosign_pub": base64.b64encode(ck.public).decode(),
            "agent_version": "0.1.0",
        },
        timeout=20,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    name = appliance_key_name(out["appliance_id"])
    return FakeAppliance(
        url=url,
        id=out["appliance_id"],
        site_id=out["site_id"],
        token=out["token"],
        signer=Signer(name, sk_seed),
        cosigner=Signer(name, ck_seed, key_type=KEY_TYPE_COSIGNATURE),
        chain=ev.Chain(out["appliance_id"]),
    )


def admin_client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def check(host: str, check_id: str, status: str, since: str = "2026-01-01T00:00:00.000Z"):
    return {"host_id": host, "check": check_id, "status": status, "since": since}
