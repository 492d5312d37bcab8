"""Shared test peers for the agent engine: a small Central Command built from REAL osiris_core
parts (a MemoryStore Merkle tree, checkpoints signed with a real log key, orders signed with a
real order key) speaking the contract's JSON over real HTTP on 127.0.0.1, and a tiny SNTP
responder. The fake can misbehave on purpose (fork or roll back its log), which a real server
never does — that is how the witness is tested.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from osiris_agent import ntp
from osiris_core import canonical, tlog
from osiris_core import note as notes
from osiris_core.evidence import bundle_hash, envelope_bytes, verify_envelope
from osiris_core.keys import KEY_TYPE_COSIGNATURE, Signer, Verifier, appliance_key_name
from osiris_core.orders import new_order, sign_order
from osiris_core.protocol import rules_message


@dataclass
class FakeState:
    log: Signer
    orders_key: Signer
    leaves: list[bytes] = field(default_factory=list)  # leaf hashes in index order
    entries: list[bytes] = field(default_factory=list)  # canonical envelope bytes
    index_of: dict[bytes, int] = field(default_factory=dict)
    claim_codes: set[str] = field(default_factory=set)
    token: str | None = None
    appliance_id: str = "app-test-1"
    site_id: str = "site-test-1"
    signing: Verifier | None = None
    cosigning: Verifier | None = None
    pending_orders: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    cosignatures: list[dict[str, Any]] = field(default_factory=list)
    checkins: list[dict[str, Any]] = field(default_factory=list)
    evidence_posts: int = 0
    targets: list[dict[str, Any]] = field(default_factory=list)  # secrets sealed when sent
    box_pub: str | None = None  # the appliance's box key, registered at the claim
    rules: list[Any] = field(default_factory=list)  # signed with the order key at check-in
    runbooks: dict[str, list[str]] = field(
        default_factory=lambda: {"enabled": ["RB-TIME-001"], "disabled": []}
    )
    window: dict[str, Any] = field(
        default_factory=lambda: {
            "days": [],
            "start": "02:00",
            "duration_min": 60,
            "timezone": "UTC",
        }  # fmt: skip
    )
    # The signed policy the fake builds from runbooks/window/params/allowlists (version grows
    # whenever that content changes), unless a test sets ``policy_override`` to an envelope
    # (or any JSON) to hand out instead.
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowlists: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    checkin_interval_s: int = 60
    policy_version: int = 0
    policy_sha: str = ""
    policy_env: dict[str, Any] | None = None
    policy_override: Any = None
    misbehave: str | None = None  # None | "fork" | "rollback" | "bad_sig" | "bad_inclusion"
    fail_next_evidence: int = 0  # answer 503 to this many /evidence calls
    lock: threading.Lock = field(default_factory=threading.Lock)
    conns: set[Any] = field(default_factory=set)


class FakeCentral:
    """``with FakeCentral() as srv: srv.url`` — a fake server on 127.0.0.1 (random port)."""

    def __init__(self, port: int = 0) -> None:
        self.state = FakeState(
            log=Signer.generate("127.0.0.1/osiris/log"),
            orders_key=Signer.generate("127.0.0.1/osiris/orders"),
        )
        self.port = port
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.start()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        handler = _make_handler(self.state)
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        for c in list(self.state.conns):  # a down server also drops its keep-alive connections
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.state.conns.clear()

    def __enter__(self) -> FakeCentral:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- helpers for tests -------------------------------------------------------------------

    def add_claim_code(self, code: str = "CLAIM-1234") -> str:
        self.state.claim_codes.add(code)
        return code

    def queue_order(  # fmt: skip
        self,
        kind: str,
        params: dict[str, Any],
        disruptive: bool = False,
        ttl_s: int = 900,
        now: Any = None,
        signer: Signer | None = None,
    ) -> dict:
        order = new_order(self.state.site_id, self.state.appliance_id, kind, params, disruptive,
                          ttl_s=ttl_s, now=now)  # fmt: skip
        env = sign_order(order, signer or self.state.orders_key)
        self.state.pending_orders.append(env)
        return env

    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.state.entries]


def _sealed_target(t: dict[str, Any], box_pub: str | None) -> dict[str, Any]:
    """As the real server sends a target: secrets sealed to the appliance's box key."""
    from osiris_core.seal import SECRET_FIELDS, seal

    out = {k: v for k, v in t.items() if k not in SECRET_FIELDS}
    secret = {k: t[k] for k in SECRET_FIELDS if t.get(k) is not None}
    if secret:
        assert box_pub is not None, "the appliance registered no box key"
        out["sealed"] = seal(box_pub, secret)
    return out


def _policy(st: FakeState, signed_rules: dict[str, Any]) -> dict[str, Any]:
    """The fake's signed ``osiris.policy/1`` for its appliance, as the real server builds it:
    a new version whenever the content changes, signed with the order key."""
    import hashlib

    from osiris_core import policy

    body = {
        "appliance_id": st.appliance_id, "site_id": st.site_id,
        "runbooks": st.runbooks, "params": st.params, "window": st.window,
        "checkin_interval_s": st.checkin_interval_s,
        "l2": {"allowed": True, "min_confidence": 0}, "allowlists": st.allowlists,
        "releases": [], "changes": st.changes,
        "ruleset_hash": "sha256:" + hashlib.sha256(canonical.dumps(signed_rules)).hexdigest(),
    }  # fmt: skip
    draft = policy.make_policy(**body, version=1, issued_at=canonical.utc_now())
    sha = policy.content_sha256(draft)
    if sha != st.policy_sha or st.policy_env is None:
        st.policy_version += 1
        doc = policy.make_policy(**body, version=st.policy_version, issued_at=canonical.utc_now())
        st.policy_env = policy.sign_policy(doc, st.orders_key)
        st.policy_sha = sha
    return st.policy_env


def _tree(leaves: list[bytes]) -> tlog.MerkleTree:
    return tlog.MerkleTree(tlog.MemoryStore(leaves))


def _make_handler(st: FakeState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            st.conns.add(self.connection)

        def _send(self, status: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _err(self, status: int, code: str, msg: str) -> None:
            self._send(status, {"error": {"code": code, "message": msg}})

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n) or b"{}")
            path = self.path.removeprefix("/api/v1")
            with st.lock:
                if path == "/provision/claim":
                    return self._claim(body)
                if st.token is None or self.headers.get("Authorization") != f"Bearer {st.token}":
                    return self._err(401, "E_AUTH", "bad token")
                if path == "/checkin":
                    return self._checkin(body)
                if path == "/evidence":
                    return self._evidence(body)
                if path == "/incidents":
                    # The real server's shape: {"incidents": [{kind, severity, summary, ...}]}.
                    items = body.get("incidents") if isinstance(body, dict) else None
                    if not isinstance(items, list) or not items:
                        return self._err(400, "E_SCHEMA", "incidents must be a non-empty list")
                    st.incidents.extend(items)
                    return self._send(201, {"incidents": items})
            self._err(404, "E_NOT_FOUND", path)

        def _claim(self, body: dict[str, Any]) -> None:
            if body.get("code") not in st.claim_codes:
                return self._err(404, "E_CLAIM", "unknown claim code")
            st.claim_codes.discard(body["code"])
            name = appliance_key_name(st.appliance_id)
            st.signing = Verifier(name, base64.b64decode(body["signing_pub"]))
            st.cosigning = Verifier(name, base64.b64decode(body["cosign_pub"]),
                                    KEY_TYPE_COSIGNATURE)  # fmt: skip
            st.token = "oak_" + os.urandom(16).hex()
            st.box_pub = body.get("box_pub")
            self._send(200, {
                "appliance_id": st.appliance_id, "site_id": st.site_id, "token": st.token,
                "log_vkey": st.log.vkey, "order_vkey": st.orders_key.vkey,
                "server_origin": st.log.name, "checkin_interval_s": 60,
            })  # fmt: skip

        def _checkin(self, body: dict[str, Any]) -> None:
            st.checkins.append(body)
            for c in body.get("cosignatures", []):
                st.cosignatures.append(c)
            rules: list[Any] = st.rules
            msg = canonical.dumps(rules_message(rules, "7"))
            sig = {"alg": "ed25519", "key_id": st.orders_key.key_id_hex,
                   "value": base64.b64encode(st.orders_key.sign(msg)).decode()}  # fmt: skip
            orders, st.pending_orders = st.pending_orders, []
            signed = {"rules": rules, "version": "7", "sig": sig}
            answer = {
                "server_time": canonical.utc_now(), "next_checkin_s": 60,
                "targets": [_sealed_target(t, st.box_pub) for t in st.targets],
                "rules": {"version": "7", "signed": signed}, "orders": orders,
            }  # fmt: skip
            env = st.policy_override if st.policy_override is not None else _policy(st, signed)
            if st.policy_override is not None or body.get("policy_version") != st.policy_version:
                answer["policy"] = env
            self._send(200, answer)

        def _evidence(self, body: dict[str, Any]) -> None:
            st.evidence_posts += 1
            if st.fail_next_evidence > 0:
                st.fail_next_evidence -= 1
                return self._err(503, "E_UNAVAILABLE", "try later")
            assert st.signing is not None
            results = []
            for env in body["envelopes"]:
                verify_envelope(env, {st.signing.key_id_hex: st.signing})
                data = envelope_bytes(env)
                leaf = tlog.leaf_hash(data)
                status = "duplicate"
                if leaf not in st.index_of:
                    st.index_of[leaf] = len(st.leaves)
                    st.leaves.append(leaf)
                    st.entries.append(data)
                    status = "accepted"
                results.append((bundle_hash(env["bundle"]), st.index_of[leaf], status))
            leaves = list(st.leaves)
            if st.misbehave == "fork" and len(leaves) > 1:
                leaves[0] = tlog.leaf_hash(b"rewritten history")
            if st.misbehave == "rollback":
                keep = max(0, body["log_size_seen"] - 1)
                leaves = leaves[:keep]
            tree = _tree(leaves)
            size = tree.size
            cp = notes.Checkpoint(st.log.name, size, tree.root())
            signer = st.log if st.misbehave != "bad_sig" else Signer.generate(st.log.name)
            cp_note = notes.sign_note(cp.body(), [signer])
            old = body["log_size_seen"]
            proof = tree.consistency_proof(old, size) if 0 < old <= size else []
            out = []
            for h, idx, status in results:
                if idx >= size:
                    idx = size - 1 if size else 0
                path = tree.inclusion_proof(idx, size) if size else []
                if st.misbehave == "bad_inclusion" and path:
                    path = [bytes(32)] + path[1:]
                receipt = notes.TlogProof(idx, path, cp_note).format()
                out.append({"bundle_hash": h, "index": idx, "receipt": receipt, "status": status})
            self._send(200, {
                "checkpoint": cp_note,
                "consistency": {"from": old, "to": size,
                                "proof": [base64.b64encode(p).decode() for p in proof]},
                "results": out,
            })  # fmt: skip

    return Handler


# -- SNTP ----------------------------------------------------------------------------------------


class Sntp:
    """A loopback SNTP server answering with the local clock plus ``offset_ms``."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(1024)
            except (TimeoutError, OSError):
                continue
            now = ntp.ns_to_ntp(time.time_ns() + self.offset_ms * 1_000_000)
            originate = struct.unpack("!Q", data[40:48])[0]
            pkt = struct.pack("!BBbb", 0x24, 2, 6, -20) + b"\0" * 8 + b"LOCL"
            pkt += struct.pack("!QQQQ", now, originate, now, now)
            try:
                self.sock.sendto(pkt, src)
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def good_clock() -> ntp.ClockVerdict:
    return ntp.ClockVerdict(True, 3, 5000, [ntp.NtpSample("t", 3, 1, 2, True)], "sntp:t", "ok")


def enroll_into(srv: FakeCentral, state: Path, extra_toml: str = "") -> Path:
    """Enroll a state dir against the fake server; returns the config path."""
    from osiris_agent.enroll import enroll

    code = srv.add_claim_code(f"CODE-{os.urandom(3).hex()}")
    r = enroll(srv.url, code, state, lab=True)  # lab targets need a lab appliance
    cfg = Path(r.config_path)
    if extra_toml:
        import tomllib

        from osiris_agent.config import AgentConfig, load_config, to_toml

        d = load_config(cfg).to_dict()
        for section, body in tomllib.loads(extra_toml).items():
            d.setdefault(section, {}).update(body)
        cfg.write_text(to_toml(AgentConfig.from_dict(d)))
    return cfg


def make_agent(srv: FakeCentral, state: Path, extra_toml: str = "", **kw: Any):  # -> Agent
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent

    cfg = enroll_into(srv, state, extra_toml)
    kw.setdefault("measure_clock", good_clock)
    return Agent(load_config(cfg), **kw)
