"""The log key signs checkpoints and nothing else (DESIGN §3.3).

Auditors pin the log key to believe checkpoints. Anything else it signs on request — a packet
manifest hash, say — is a statement the MSP can make up at will under the auditor's trust root.
So: with every kind of credential, walk every route of the OpenAPI document with plausible
requests, and check every signature line by the log key in every answer is over a body that
parses as a tlog checkpoint, and that no answer carries any other signature by that key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from osiris_core import evidence as ev
from osiris_core import note as notes
from osiris_core.canonical import format_time, utc_now
from osiris_core.errors import NoteError
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, Verifier, appliance_key_name
from osiris_core.trust import make_rotation
from tests.brand_fixtures import b64, make_png
from tests.server.conftest import Server, checkin_body
from tests.server.packet_fixture import fake_packet
from tests.tsa_fixtures import lab_tsa  # noqa: F401

MAC = "aa:bb:cc:00:77:01"
SECRET = {"X-Osiris-Enroll-Secret": "s" * 43}
BRAND = {"display_name": "Partner P", "colour": "#2b4a6f", "logo_b64": b64(make_png()),
         "logo_type": "image/png"}  # fmt: skip


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _objects(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _objects(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _objects(v)


def log_signatures(text: str, log: Verifier) -> list[str]:
    """Every message the log key signed in one answer (as a signed-note line); fails on a
    line that names the log key and carries its key id but verifies over nothing in the answer,
    and on any JSON signature object made with the log key."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    for o in _objects(doc):
        assert o.get("key_id") != log.key_id_hex, f"a signature by the log key: {o}"
    line_re = re.compile(rf"^{notes.SIG_PREFIX}{re.escape(log.name)} (\S+)$", re.MULTILINE)
    signed: list[str] = []
    for s in [*_strings(doc), text] if doc is not None else [text]:
        for m in line_re.finditer(s):
            blob = base64.b64decode(m.group(1) + "==")
            if blob[:4] != log.key_id:
                continue  # the log's name with another key: not made by the log key
            # the signature block this line is in, and the note text before its blank line
            start = m.start()
            while start > 0 and s.rfind("\n", 0, start - 1) >= 0:
                prev = s.rfind("\n", 0, start - 1) + 1
                if not s.startswith(notes.SIG_PREFIX, prev):
                    break
                start = prev
            end = start - 1 if s[max(0, start - 2) : start] == "\n\n" else start
            candidates = [0] + [i + 1 for i in range(end) if s[i] == "\n"]
            found = [s[j:end] for j in candidates if log.verify(s[j:end].encode(), blob[4:])]
            assert found, f"a log-key line that verifies over nothing in the answer: {m.group(0)}"
            signed += found
    return signed


def _csr() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _fill(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)


class World:
    """One of everything, visible to every role: a partner's site with an appliance that has
    evidence, a cosigned checkpoint, an incident, a credential, an order and a MAC request."""

    def __init__(self, server: Server) -> None:
        self._n = 0
        self.server = server
        admin = server.admin
        partner = admin.post("/api/v1/partners", json={"name": "Partner P"}).json()
        self.partner_id = partner["partner"]["id"]
        pclient = server.client(api_key=partner["api_key"])
        # a brand with a logo, so GET .../branding and .../logo reach their success paths
        r = pclient.put(f"/api/v1/partners/{self.partner_id}/branding", json=BRAND)
        assert r.status_code == 200, r.text
        site = pclient.post("/api/v1/sites", json={"name": "P clinic"}).json()
        self.site_id = site["id"]
        self.a = server.enroll(self.site_id)
        self.log = Verifier.from_vkey(server.init["log_vkey"])
        out = self._evidence([self.a.envelope() for _ in range(3)])
        self.bundle_hash = out["results"][0]["bundle_hash"]
        body = notes.open_note(out["checkpoint"], [self.log]).text
        self.size = notes.Checkpoint.parse(body).size
        line = notes.cosign(body, self.a.cosigner, int(time.time()))
        c = server.client(self.a.token)
        cs = [{"size": self.size, "line": line}]
        r = c.post("/api/v1/checkin", json=checkin_body(self.a, self.size, cosignatures=cs))
        assert r.status_code == 200, r.text
        inc = {"kind": "test_kind", "severity": "info", "summary": "walk"}
        r = c.post("/api/v1/incidents", json={"incidents": [inc]})
        assert r.status_code in (200, 201), r.text
        self.incident_id = r.json()["incidents"][0]["id"]
        cred = {"host_id": "dc01", "kind": "winrm", "address": "10.0.0.5", "username": "u"}
        cred["password"] = "pw"
        r = admin.post(f"/api/v1/sites/{self.site_id}/credentials", json=cred)
        assert r.status_code == 201, r.text
        self.cred_id = r.json()["id"]
        r = admin.post(
            f"/api/v1/appliances/{self.a.id}/orders", json={"kind": "refresh_rules", "params": {}}
        )
        assert r.status_code == 201, r.text
        self.order_id = r.json()["id"]
        polled = server.client().get(f"/api/v1/provision/{MAC}", headers=SECRET)
        assert polled.status_code == 200
        self.requester = polled.json()["fingerprint"]  # an approval names the requester
        rb = admin.get(f"/api/v1/sites/{self.site_id}/runbooks").json()
        self.runbook_id = sorted(rb["enabled"] + rb["disabled"])[0]
        self._later_routes(server, admin, c)
        self.roles: dict[str, httpx.Client] = {
            "client": server.client(self._token("client", self.site_id)),
            "auditor": server.client(self._token("auditor")),
            "operator": server.client(self._token("operator")),
            "partner": pclient,
            "admin": admin,
            "appliance": c,
        }
        self.ids = {
            "site_id": self.site_id,
            "appliance_id": self.a.id,
            "bundle_hash": self.bundle_hash,
            "cred_id": self.cred_id,
            "order_id": self.order_id,
            "incident_id": self.incident_id,
            "partner_id": self.partner_id,
            "mac": MAC,
            "runbook_id": self.runbook_id,
            "token_id": "tok_none",
            "provision_id": "prv_none",
            # routes added since (escrow, learning, rollouts, alert routes): unknown ids are
            # enough — the walk checks what each answer is signed with, not what it finds
            "escrow_id": self.escrow_id,
            "candidate_id": self.candidate_ids[0],
            "rollout_id": self.rollout_id,
            "route_id": "rt_none",
        }
        self.query_values: dict[str, Any] = {
            "site": self.site_id,
            "appliance": self.a.id,
            "after_seq": 0,
            "limit": 10,
            "proof_size": self.size,
            "size": self.size,
            "cosigned_by_site": self.site_id,
            "hash": self.bundle_hash,
            "from": 1,
            "to": self.size,
            "status": "open",
            "action": "appliance.enroll",
            "before": 10**9,
        }

    def _evidence(self, envs: list[dict[str, Any]]) -> dict[str, Any]:
        r = self.server.client(self.a.token).post("/api/v1/evidence", json={"envelopes": envs})
        assert r.status_code == 200, r.text
        return r.json()

    def _later_routes(self, server: Any, admin: httpx.Client, c: httpx.Client) -> None:
        """What the routes added with issues 15 and 16 need to reach their success paths: an
        escrowed key, a release and a rollout, and two learning candidates (approve one, reject
        the other) from L2 outcomes at two sites."""
        from tests.server.test_learning import _l2

        r = c.post(f"/api/v1/appliances/{self.a.id}/escrow", json=self.escrow_body())
        assert r.status_code in (200, 201), r.text
        listed = admin.get(f"/api/v1/sites/{self.site_id}/escrow").json()["escrow"]
        self.escrow_id = listed[0]["id"]
        self.release = "9.0.0"
        r = admin.post("/api/v1/releases", json=self.release_body(self.release))
        assert r.status_code in (200, 201), r.text
        r = admin.post("/api/v1/rollouts", json={"release": self.release, "sites": [self.site_id]})
        assert r.status_code in (200, 201), r.text
        self.rollout_id = r.json()["rollout_id"]
        other = server.enroll(server.site("Walk clinic 2")["id"], hostname="walk-2")
        for x in (self.a, other):
            for days in (60, 45):
                envs = [_l2(x, params={"max_days": days}) for _ in range(3)]
                rr = server.client(x.token).post("/api/v1/evidence", json={"envelopes": envs})
                assert rr.status_code == 200, rr.text
        cands = admin.get("/api/v1/learning/candidates?status=candidate").json()["candidates"]
        assert len(cands) == 2, cands
        self.candidate_ids = sorted(x["id"] for x in cands)

    def escrow_body(self) -> dict[str, Any]:
        self._n += 1
        return {
            "host_id": "dc01", "kind": "bitlocker_recovery_password",
            "protector_id": f"{{{self._n:08d}-0000-0000-0000-000000000000}}",
            "secret": "-".join([f"{self._n:06d}"] * 8),
        }  # fmt: skip

    def release_body(self, version: str) -> dict[str, Any]:
        return {"version": version, "system": "/nix/store/" + "a" * 32 + f"-osiris-{version}"}

    def ids_for(self, template: str) -> dict[str, Any]:
        """Approve and reject each need a candidate of their own."""
        if template.endswith("/reject"):
            return {**self.ids, "candidate_id": self.candidate_ids[1]}
        return self.ids

    def _token(self, role: str, site_id: str | None = None) -> str:
        body = {"role": role, "name": f"{role} walker", **({"site_id": site_id} if site_id else {})}
        r = self.server.admin.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def unique(self) -> str:
        self._n += 1
        return f"walk{self._n}"

    # ---- plausible POST bodies; each returns (body, hook run on the answer)
    def body(self, template: str, role: str) -> tuple[Any, Callable[[httpx.Response], None]]:
        a = self.a

        def nothing(_r: httpx.Response) -> None:
            return None

        if template == "/api/v1/checkin":
            cp = self.server.admin.get("/api/v1/log/checkpoint").json()
            text = notes.open_note(cp["note"], [self.log]).text
            line = notes.cosign(text, a.cosigner, int(time.time()))
            cs = [{"size": cp["size"], "line": line}]
            return checkin_body(a, cp["size"], cosignatures=cs), nothing
        if template == "/api/v1/evidence":
            b = a.chain.next(
                site_id=a.site_id, host_id="dc01", check="firewall", outcome="compliant"
            )
            env = ev.sign_bundle(b, a.signer)

            def advance(r: httpx.Response) -> None:
                if r.status_code == 200 and r.json()["results"][0]["status"] == "accepted":
                    a.chain.advance(env["bundle"])

            return {"envelopes": [env], "log_size_seen": 0}, advance
        if template == "/api/v1/appliance/key-rotation":
            new = Signer.generate(appliance_key_name(a.id))
            stmt = make_rotation(
                a.signer,
                new,
                appliance_id=a.id,
                site_id=a.site_id,
                effective_seq=a.chain.seq + 1,
                at=utc_now(),
            )

            def switch(r: httpx.Response) -> None:
                if r.status_code == 200:
                    a.signer = new

            return {"rotation": stmt}, switch
        if template == "/api/v1/client-cert":
            from osiris_server import client_ca

            keys = self.server.app.cfg.keys_dir
            if not client_ca.paths(keys)[1].exists():
                client_ca.init(keys, self.server.app.cfg.origin)

            def refused_without_mtls(r: httpx.Response) -> None:
                if role == "appliance":
                    assert r.json()["error"]["code"] == "E_MTLS_REQUIRED", r.text

            return {"csr": _csr()}, refused_without_mtls
        if template == "/api/v1/sites/{site_id}/packets":
            return fake_packet(self.site_id), nothing  # the same bytes again: 200, no-op
        if template == "/api/v1/provision/claim":
            sk = Signer("tmp", os.urandom(32))
            ck = Signer("tmp", os.urandom(32), key_type=KEY_TYPE_COSIGNATURE)
            return {
                "code": self.server.claim_code(self.site_id),
                "hostname": self.unique(),
                "signing_pub": base64.b64encode(sk.public).decode(),
                "cosign_pub": base64.b64encode(ck.public).decode(),
                "agent_version": "0.1.0",
            }, nothing
        bodies: dict[str, Any] = {
            "/api/v1/incidents": {
                "incidents": [{"kind": "walk", "severity": "info", "summary": "x"}]
            },
            "/api/v1/provisions": {"site_id": self.site_id},
            "/api/v1/sites/{site_id}/contacts": {"email": f"{self.unique()}@clinic.example"},
            "/api/v1/provision/{mac}": {
                "site_id": self.site_id,
                "requester_fingerprint": self.requester,
            },
            "/api/v1/partners": {"name": self.unique()},
            "/api/v1/partners/{partner_id}/branding": BRAND,  # PUT (set in __init__)
            "/api/v1/sites": {"name": self.unique()},
            "/api/v1/sites/{site_id}/credentials": {
                "host_id": self.unique(),
                "kind": "ssh_password",
                "address": "10.0.0.9",
                "username": "u",
                "password": "p",
            },
            "/api/v1/appliances/{appliance_id}/orders": {"kind": "refresh_rules", "params": {}},
            "/api/v1/tokens": {"role": "auditor", "name": self.unique()},
            "/api/v1/incidents/{incident_id}/assign": {"assignee": "on-call"},
            "/api/v1/appliances/{appliance_id}/escrow": self.escrow_body(),
            "/api/v1/learning/candidates/{candidate_id}/reject": {"reason": "walk"},
            "/api/v1/partners/{partner_id}/alert-routes": {
                "name": self.unique(),
                "preset": "pagerduty",  # no [smtp] relay here; its URL is fixed
                "routing_key": "R" * 32,
            },
            "/api/v1/sites/{site_id}/alert-routes": {
                "name": self.unique(),
                "preset": "pagerduty",  # no [smtp] relay here; its URL is fixed
                "routing_key": "R" * 32,
            },
            "/api/v1/releases": self.release_body(f"9.0.{self._n + 1}"),
            "/api/v1/sites/{site_id}/legal-hold": {"reason": "walk: litigation hold"},
            "/api/v1/rollouts": {"release": self.release, "sites": [self.site_id]},
            "/api/v1/sites/{site_id}/reviews": {"month": utc_now()[:7], "note": "walk"},
            "/api/v1/sites/{site_id}/risk-acceptances": {
                "host_id": "dc01",
                "check": "windows_bitlocker",
                "reason": "walk",
                "until": format_time(datetime.now(UTC) + timedelta(days=30)),
            },
        }
        return bodies.get(template, {}), nothing


def _variants(op: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    params = [p for p in op.get("parameters", []) if p["in"] == "query"]
    required = {p["name"]: values[p["name"]] for p in params if p["required"]}
    out = [required]
    for p in params:
        if not p["required"] and p["name"] in values:
            out.append({**required, p["name"]: values[p["name"]]})
    return out


def test_log_key_signs_only_checkpoints_on_every_route(server_factory, lab_tsa) -> None:  # noqa: F811
    from osiris_server.tsa import TsaConfig

    server = server_factory(tsa=TsaConfig(url=lab_tsa.url, ca_file=lab_tsa.ca_file))
    w = World(server)
    # the RFC 3161 routes (issue 17): a stored token over the walk's checkpoint for GET
    # /log/timestamp?size=; POST anchors the newest with the lab TSA (admin, operator)
    assert server.admin.post("/api/v1/log/timestamp", json={"size": w.size}).status_code == 200
    doc = server.client().get("/api/v1/openapi.json").json()
    assert "/api/v1/packets/sign" not in doc["paths"]
    ok: dict[tuple[str, str], int] = {}
    checked = 0
    checkpoints_seen = 0
    for role, client in w.roles.items():
        for template, ops in doc["paths"].items():
            for method, op in ops.items():
                if method not in ("get", "post"):
                    continue
                url = _fill(template, w.ids_for(template))
                headers = SECRET if template == "/api/v1/provision/{mac}" else {}
                if method == "get":
                    calls = [(q, None, lambda _r: None) for q in _variants(op, w.query_values)]
                else:
                    body, hook = w.body(template, role)
                    calls = [({}, body, hook)]
                for query, body, hook in calls:
                    if method == "get":
                        r = client.get(url, params=query, headers=headers)
                    elif isinstance(body, bytes):  # a raw body: the packet store's zip
                        zh = {**headers, "Content-Type": "application/zip"}
                        r = client.post(url, params=query, content=body, headers=zh)
                    else:
                        r = client.post(url, params=query, json=body, headers=headers)
                    assert r.status_code < 500, (role, method, url, r.text)
                    hook(r)
                    checked += 1
                    for text in log_signatures(r.text, w.log):
                        try:
                            cp = notes.Checkpoint.parse(text)
                        except NoteError:
                            raise AssertionError(
                                f"{role} {method.upper()} {url}: the log key signed a body "
                                f"that is not a checkpoint: {text!r}"
                            ) from None
                        assert cp.origin == w.log.name
                        checkpoints_seen += 1
                    if 200 <= r.status_code < 300:
                        ok[(method, template)] = ok.get((method, template), 0) + 1
    # the walk reached every route's success path at least once, so nothing was skipped
    missing = [(m, t) for t, ops in doc["paths"].items() for m in ops if m in ("get", "post")]
    # succeeds only over mTLS (this walk is plain HTTP): its success path, with a certificate
    # and no log-key signature, is walked by tests/e2e/test_mtls.py
    assert ("post", "/api/v1/client-cert") not in ok
    assert [k for k in missing if k not in ok and k != ("post", "/api/v1/client-cert")] == []
    assert checkpoints_seen > 20 and checked > 300, (checkpoints_seen, checked)
    # the rotation in the walk really happened (so evidence after it used the new key)
    entry = next(
        x
        for x in server.admin.get("/api/v1/log/keys").json()["appliances"]
        if x["appliance_id"] == w.a.id
    )
    assert len(entry["rotations"]) == 1


def test_packet_sign_endpoint_is_gone(server) -> None:
    w = World(server)
    body = {"site_id": w.site_id, "month": "2026-01", "manifest_sha256": "0" * 64}
    for role, client in w.roles.items():
        r = client.post("/api/v1/packets/sign", json=body)
        assert r.status_code in (404, 405), (role, r.status_code, r.text)
        assert log_signatures(r.text, w.log) == []
        r = client.get("/api/v1/packets/sign")
        assert r.status_code in (404, 405), (role, r.status_code)


def test_checker_catches_a_log_signature_over_anything_else(server) -> None:
    """The walk's detector is not vacuous: a note by the log key over a non-checkpoint body,
    embedded in JSON like an answer would carry it, is found and is not a checkpoint."""
    from osiris_core.keys import load_private_key

    signer = load_private_key(server.data / "keys" / "log.key")
    log = signer.verifier()
    forged = notes.sign_note("osiris-packet-manifest\nsite\n2026-01\n" + "0" * 64 + "\n", [signer])
    found = log_signatures(json.dumps({"note": forged}), log)
    assert len(found) == 1
    try:
        notes.Checkpoint.parse(found[0])
        raise AssertionError("a manifest note parsed as a checkpoint")
    except NoteError:
        pass
    cp = server.admin.get("/api/v1/log/checkpoint").json()
    assert [notes.Checkpoint.parse(t).size for t in log_signatures(json.dumps(cp), log)] == [
        cp["size"]
    ]
