"""Central Command as a plain WSGI application (no web framework).

``App`` owns the storage (``Database``), the transparency log, the credential vault and the two
server keys, and dispatches requests through one ``Router`` whose table also generates the
OpenAPI document. It runs under the embedded server (``osiris_server.serve``) or any WSGI server:

    gunicorn -k gthread -w 2 --threads 8 'osiris_server.app:create_app("/var/lib/osiris")'

(several workers may share one data directory: see docs/server.md and log.py on the sequencer)

Every request: route → authenticate (token hash lookup; failures limited per presented token
and per source, never refusing a token that authenticates) →
role check → strict JSON body/query validation → handler → one JSON log line on stderr
(method, path template, status, ms, tenant; never bodies or secrets). Errors are always
``{"error": {"code", "message"}}``; an unexpected exception is a 500 with no stack trace.

Why this file is long: ``App`` is the one object every handler receives (storage, log, vault, keys,
the catalogue) and it runs the request pipeline whose order is the security argument above (route,
authenticate, role, validate, handle, log); ``init_data`` and ``create_app`` beside it are the two
ways an ``App`` comes to exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from osiris_core import canonical, phi
from osiris_core.errors import OsirisError
from osiris_core.files import create_private
from osiris_core.keys import Signer, Verifier, load_private_key, write_private_key
from osiris_core.trust import AttestationError, KeyEpoch, key_epochs, original_key
from osiris_server import auth, client_ca, learning, release_key, worm
from osiris_server import config as config_mod
from osiris_server.api import (
    alert_routes,
    branding,
    checkin,
    client_certs,
    contacts,
    credentials,
    escrow,
    events,
    evidence,
    incidents,
    legal_hold,
    logapi,
    meta,
    orders,
    packets,
    partners,
    provisioning,
    rotation,
    runbooks,
    sites,
    timestamps,
    tokens,
    updates,
)
from osiris_server.api import attestations as api_attestations
from osiris_server.api import (
    learning as api_learning,
)
from osiris_server.api.notify import Alerter
from osiris_server.config import ServerConfig
from osiris_server.db import Database, open_database
from osiris_server.db import appliances as db_appliances
from osiris_server.db import rotations as db_rotations
from osiris_server.db import tenants as db_tenants
from osiris_server.db import tokens as db_tokens
from osiris_server.db.appliances import HeartbeatBuffer
from osiris_server.http import (
    STATUS_TEXT,
    HttpError,
    Request,
    Response,
    Route,
    Router,
    error_response,
    forbidden,
    source_key,
    validate,
    validate_query,
)
from osiris_server.locks import ApplianceLocks
from osiris_server.log import LogError, TransparencyLog
from osiris_server.portal import routes as portal_routes
from osiris_server.portal.mailer import Mailer
from osiris_server.release_key import ReleaseKey
from osiris_server.storage import StorageUnavailable
from osiris_server.vault import Vault, VaultError
from osiris_server.watchdog import Watchdog

MODULES = [
    meta,
    checkin,
    evidence,
    events,
    incidents,
    provisioning,
    partners,
    branding,
    sites,
    runbooks,
    credentials,
    escrow,
    orders,
    tokens,
    updates,
    logapi,
    timestamps,
    rotation,
    alert_routes,
    api_learning,
    api_attestations,
    legal_hold,
    packets,
    client_certs,
    contacts,
    portal_routes,
]

_log_lock = threading.Lock()


def build_router() -> Router:
    router = Router()
    for mod in MODULES:
        for route in mod.ROUTES:
            router.add(route)
    return router


def _rule_dict(rule: Any) -> dict[str, Any]:
    """A catalogue Rule as the plain document ``parse_rules`` reads back on the agent."""
    if is_dataclass(rule):
        d = {f.name: getattr(rule, f.name) for f in fields(rule)}
    else:
        d = dict(rule)
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "conditions":
            v = [
                {"field": c.field, "op": c.op, "value": _plain(c.value)}
                if not isinstance(c, dict)
                else {"field": c["field"], "op": c["op"], "value": _plain(c["value"])}
                for c in v
            ]
        elif v is None:
            continue
        out[k] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict) or hasattr(v, "items"):
        return {k: _plain(x) for k, x in dict(v).items()}
    return v


def sign_rules(rules: list[Any], signer: Signer) -> dict[str, Any]:
    """``{"version", "signed": {"rules", "version", "sig"}}``; the order key signs
    canonical({"rules": [...], "version": v}) so the agent can verify it like an order."""
    docs = []
    for r in rules:
        d = _rule_dict(r)
        try:
            canonical.dumps(d)
        except OsirisError:
            _emit({"event": "rule_skipped", "rule": d.get("id"), "why": "not canonical JSON"})
            continue
        docs.append(d)
    version = hashlib.sha256(canonical.dumps(docs)).hexdigest()[:16]
    msg = canonical.dumps({"rules": docs, "version": version})
    sig = {
        "alg": "ed25519",
        "key_id": signer.key_id_hex,
        "value": base64.b64encode(signer.sign(msg)).decode("ascii"),
    }
    return {"version": version, "signed": {"rules": docs, "version": version, "sig": sig}}


def _emit(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


class App:
    """The WSGI callable plus everything handlers share."""

    def __init__(
        self,
        cfg: ServerConfig,
        db: Database,
        log: TransparencyLog,
        vault: Vault,
        log_signer: Signer,
        order_signer: Signer,
        release: ReleaseKey | None = None,
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.log = log
        self.vault = vault
        self.log_signer = log_signer
        self.order_signer = order_signer
        # signs (or, offline, only verifies) releases; never the order key (release_key.py)
        self.release = release or release_key.load(cfg.keys_dir, cfg.origin, _emit)
        self.router = build_router()
        self.heartbeats = HeartbeatBuffer(db)
        # claim-code failures, per source (provisioning.claim)
        self.auth_failures = auth.RateLimiter(cfg.auth_fail_limit, cfg.auth_fail_window_s)
        # token failures, per presented token and per source (_authenticate)
        self.token_failures = auth.AuthLimiter(
            cfg.auth_fail_limit, cfg.auth_fail_source_limit, cfg.auth_fail_window_s
        )
        self.provision_limiter = auth.RateLimiter(cfg.provision_rate_per_min, 60.0)
        self.alerter = Alerter(self)
        # the clinic portal's sign-in mail (osiris_server/portal/); None while [portal] is off
        self.portal_mailer = (
            Mailer(cfg.smtp, cfg.portal.sender_name) if cfg.portal and cfg.smtp else None
        )
        # silent appliances and hosts become incidents (one tick at a time across servers)
        self.watchdog = Watchdog(self, cfg.watchdog_tick_s)
        self._verifiers: dict[str, Verifier] = {}
        self._epochs: dict[tuple[str, str], list[KeyEpoch]] = {}
        # one ingest or key rotation at a time per appliance, across gunicorn workers too
        # (on PostgreSQL across hosts too: advisory locks in the shared database)
        self.appliance_locks = ApplianceLocks(cfg.data / "appliance.lock", db_url=cfg.db_url)
        self._sites: dict[str, tuple[float, dict[str, Any]]] = {}
        self.checkin_cache = checkin.CheckinCache()
        self._catalog_loaded = False
        self._runbooks: dict[str, Any] = {}
        self._defaults: dict[str, bool] = {}
        self.signed_rules: dict[str, Any] = {}
        self.signed_rules_json = b"{}"
        self._load_catalog()
        # per-site rule sets: the baseline plus the learned rules promoted there (learning.py)
        self.rule_sets = learning.RuleSets(self)
        self.closed = False
        self.watchdog.start()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, data: str | Path, **overrides: Any) -> App:
        cfg = config_mod.load(data, **overrides)
        # osiris.db (unless the index is on PostgreSQL), log.db (+ -wal/-shm): 0600
        config_mod.secure_data_files(cfg.data, index=cfg.db_url is None)
        log_signer = load_private_key(cfg.log_key_path)
        order_signer = load_private_key(cfg.order_key_path)
        release = release_key.load(cfg.keys_dir, cfg.origin, _emit)
        if release.verifier.vkey in (order_signer.vkey, log_signer.vkey):
            raise config_mod.ConfigError("keys/release.key must not be the order or log key")
        vault = Vault.open(cfg.vault_path)
        db = open_database(cfg)
        try:
            if cfg.worm is not None:  # WORM retention only goes up (osiris_server/worm.py)
                worm.check_high_water(db, cfg.worm)
            log = TransparencyLog.open(
                cfg.db_url or cfg.log_path,  # PostgreSQL: the same database, schema osiris_log
                log_signer,
                cfg.origin,
                interval_s=cfg.checkpoint_interval_s,
                idle_s=cfg.checkpoint_idle_s,
            )
        except BaseException:
            db.close()
            raise
        return cls(cfg, db, log, vault, log_signer, order_signer, release)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.watchdog.close()
        self.alerter.close()
        if self.portal_mailer is not None:
            self.portal_mailer.close()
        self.heartbeats.close()
        self.log.close()
        self.db.close()
        self.appliance_locks.close()

    def _load_catalog(self) -> None:
        try:
            from osiris_core.catalog import load_catalog

            cat = load_catalog()
            self._runbooks = dict(cat.runbooks)
            rules = list(cat.rules)
        except (ImportError, OsirisError) as exc:  # the catalogue is data; run without it
            _emit({"event": "catalog_unavailable", "error": str(exc)[:200]})
            self._runbooks, rules = {}, []
        self._defaults = {
            rid: bool(getattr(rb, "default_enabled", False)) for rid, rb in self._runbooks.items()
        }
        self.signed_rules = sign_rules(rules, self.order_signer)
        self.signed_rules_json = canonical.dumps(self.signed_rules)

    # ------------------------------------------------------------------ shared helpers
    def catalog_runbooks(self) -> dict[str, Any]:
        return self._runbooks

    def runbook_defaults(self) -> dict[str, bool]:
        return self._defaults

    def signing_epochs(self, appliance_id: str) -> list[KeyEpoch]:
        """The appliance's signing keys and the seqs each may sign, read from the database now
        (not from the principal loaded at authentication: a rotation may have been accepted
        since, by this or another worker). One query; the history is parsed and its statements
        verified once per (appliance, current key), which is a sound cache key because every
        rotation changes the current key and a key is never rotated back to."""
        rows = db_rotations.key_history(self.db, appliance_id)
        if not rows:
            raise HttpError(404, "E_NOT_FOUND", "appliance not found")
        current = rows[0]["signing_vkey"]
        hit = self._epochs.get((appliance_id, current))
        if hit is not None:
            return hit
        statements = [json.loads(r["statement"]) for r in rows if r["statement"] is not None]
        if not statements:
            epochs = [KeyEpoch(self._verifier(current), 1, None)]
        else:
            try:
                epochs = key_epochs(
                    original_key(current, statements), statements, f"appliance {appliance_id}"
                )
            except AttestationError as exc:
                raise HttpError(500, "E_KEYS", f"stored key history is unusable: {exc}") from None
            if epochs[-1].verifier.vkey != current:
                raise HttpError(500, "E_KEYS", "stored key history does not end at the key")
        if len(self._epochs) > 100_000:
            self._epochs.clear()
        self._epochs[(appliance_id, current)] = epochs
        return epochs

    def appliance_cosigner(self, p: auth.Principal) -> Verifier:
        return self._verifier(p.cosign_vkey or "")

    def _verifier(self, vkey: str) -> Verifier:
        v = self._verifiers.get(vkey)
        if v is None:
            v = Verifier.from_vkey(vkey)
            if len(self._verifiers) > 100_000:
                self._verifiers.clear()
            self._verifiers[vkey] = v
        return v

    def site_cached(self, site_id: str) -> dict[str, Any]:
        """Sites change rarely; a 1 s cache saves a query per check-in."""
        now = time.monotonic()
        hit = self._sites.get(site_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        site = db_tenants.get_site(self.db, site_id)
        if site is None:
            raise HttpError(404, "E_NOT_FOUND", "site not found")
        self._sites[site_id] = (now + 1.0, site)
        return site

    @staticmethod
    def scrub(text: str) -> str:
        return phi.scrub(text)

    @staticmethod
    def scrub_obj(obj: Any) -> Any:
        return phi.scrub_obj(obj)

    # ------------------------------------------------------------------ auth
    def _authenticate(self, req: Request, route: Route) -> auth.Principal:
        principal: auth.Principal | None = None
        api_key = req.header("X-API-Key")
        raw_auth = req.header("Authorization")
        token = auth.bearer(raw_auth)
        limiter = self.token_failures
        cred = limiter.credential_key(api_key if api_key is not None else raw_auth)
        refused = limiter.refused_before_lookup(cred)
        if refused is not None:
            raise refused
        if api_key is not None:
            if api_key.startswith(auth.PARTNER_PREFIX) and token is None:
                h = auth.token_hash(api_key)
                row = db_tokens.by_hash(self.db, h)
                if row and row["kind"] == "partner" and auth.same_hash(row["token_hash"], h):
                    principal = auth.Principal(
                        "partner", row["id"], "partner", row["name"], partner_id=row["partner_id"]
                    )
        elif token is not None:
            h = auth.token_hash(token)
            if token.startswith(auth.APPLIANCE_PREFIX):
                row = db_appliances.by_token_hash(self.db, h)
                if row and auth.same_hash(row["token_hash"], h):
                    principal = auth.Principal(
                        "appliance",
                        row["id"],
                        "appliance",
                        site_id=row["site_id"],
                        signing_vkey=row["signing_vkey"],
                        cosign_vkey=row["cosign_vkey"],
                        g_site=row["g_site"] or 0,
                        g_own=row["g_own"] or 0,
                        open_orders=row["open_orders"] or 0,
                    )
            elif token.startswith(auth.OPERATOR_PREFIX):
                row = db_tokens.by_hash(self.db, h)
                if row and row["kind"] == "operator" and auth.same_hash(row["token_hash"], h):
                    principal = auth.Principal(
                        "operator", row["id"], row["role"], row["name"], site_id=row["site_id"]
                    )
        if principal is None:
            raise limiter.failed(source_key(req.remote_addr), cred)
        req.principal = principal
        if principal.kind == "appliance" and req.environ.get("osiris.mtls"):
            client_ca.require_for(req.environ.get("osiris.client_cert"), principal.id)
        if route.auth == "appliance" and principal.kind != "appliance":
            raise forbidden("this endpoint is for appliances")
        if route.auth == "staff" and principal.kind == "appliance":
            raise forbidden("this endpoint is not for appliances")
        if route.auth != "appliance" and principal.role not in route.roles:
            raise forbidden()
        return principal

    # ------------------------------------------------------------------ WSGI
    @property
    def max_request_bytes(self) -> int:
        """The largest body any route takes: the HTTP server's own bound, before routing."""
        return max(self.cfg.max_body_bytes, self.cfg.max_packet_bytes)

    def _read_body(self, environ: dict[str, Any], route: Route | None = None) -> bytes:
        limit = self.cfg.max_body_bytes
        if route is not None and route.max_body is not None:
            limit = int(getattr(self.cfg, route.max_body))
        raw = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if raw:
            if not raw.isdigit():
                raise HttpError(400, "E_INPUT", "bad Content-Length")
            n = int(raw)
            if n > limit:
                raise HttpError(
                    413, "E_TOO_LARGE", f"request body too large (at most {limit} bytes)"
                )
            if n == 0 or stream is None:
                return b""
            data = stream.read(n)
            if len(data) != n:
                raise HttpError(400, "E_INPUT", "request body shorter than Content-Length")
            return data
        if stream is not None and environ.get("wsgi.input_terminated"):
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise HttpError(413, "E_TOO_LARGE", "request body too large")
            return data
        return b""

    def handle(self, environ: dict[str, Any]) -> tuple[Response, Request | None]:
        req: Request | None = None
        try:
            method = environ.get("REQUEST_METHOD", "GET").upper()
            route, path_params = self.router.match(method, environ.get("PATH_INFO", "/") or "/")
            body = self._read_body(environ, route)
            req = Request(environ, body)
            req.route = route
            if route.auth != "none":
                self._authenticate(req, route)
            ctype = req.header("Content-Type")
            want = "json" if route.media_type == "application/json" else route.media_type
            if body and ctype and want not in ctype.lower():
                raise HttpError(415, "E_MEDIA_TYPE", f"send {route.media_type}")
            if not route.html:
                req.params = validate_query(route.query, req.query)
            if route.body is not None:
                req.data = validate(route.body, req.json() if body else {})
            resp = route.handler(self, req, **path_params)
            if route.status != 200 and resp.status == 200:
                resp.status = route.status
            return resp, req
        except HttpError as exc:
            if _is_portal(environ):
                # a person's browser, not an API client: an unknown page, a wrong method or an
                # oversized form before any portal handler ran still gets a page, not JSON
                return portal_routes.error_page(exc.status, exc.message), req
            return error_response(exc.status, exc.code, exc.message, exc.headers), req
        except VaultError:
            return error_response(500, "E_VAULT", "credential store error"), req
        except LogError as exc:
            return error_response(503, "E_LOG", str(exc)[:200]), req
        except StorageUnavailable:
            # the database dropped or refused the connection: nothing of this request was
            # committed (its transaction died with the connection); the next request reconnects
            _emit({"event": "storage_unavailable", "db": self.db.describe()})
            return error_response(
                503, "E_STORAGE", "the database is unavailable; retry later", [("Retry-After", "1")]
            ), req
        except OsirisError as exc:
            # A client-input class (osiris_core.errors: http_status 4xx) answers with its
            # message; any other core error escaping a handler is our fault: a generic 500.
            if 400 <= exc.http_status < 500:
                return error_response(exc.http_status, exc.code, str(exc)[:500]), req
            _emit({"event": "internal_error", "type": type(exc).__name__, "code": exc.code})
            return error_response(500, "E_INTERNAL", "internal error"), req
        except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a 500
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
            _emit({"event": "internal_error", "type": type(exc).__name__, "where": where})
            return error_response(500, "E_INTERNAL", "internal error"), req

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        t0 = time.perf_counter()
        resp, req = self.handle(environ)
        headers = [
            ("Content-Type", resp.content_type),
            ("Content-Length", str(len(resp.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *resp.headers,
        ]
        if resp.status == 429 and not any(k == "Retry-After" for k, _ in resp.headers):
            headers.append(("Retry-After", str(int(self.cfg.auth_fail_window_s))))
        start_response(STATUS_TEXT.get(resp.status, f"{resp.status} Error"), headers)
        if self.cfg.request_log:
            route = req.route if req is not None else None
            p = req.principal if req is not None else None
            _emit(
                {
                    "ts": round(time.time(), 3),
                    "method": environ.get("REQUEST_METHOD", ""),
                    "path": route.template if route else "-",
                    "status": resp.status,
                    "ms": round((time.perf_counter() - t0) * 1000, 2),
                    "tenant": p.tenant if p else None,
                    "remote": environ.get("REMOTE_ADDR", ""),
                    "pid": os.getpid(),  # which worker, when several run under gunicorn
                }
            )
        return [resp.body]


# ---------------------------------------------------------------------- init / factory


def _is_portal(environ: dict[str, Any]) -> bool:
    path = environ.get("PATH_INFO", "") or ""
    return path == "/portal" or path.startswith("/portal/")


def default_origin() -> str:
    return f"{socket.gethostname() or 'localhost'}/osiris/log"


def init_data(
    data: str | Path,
    origin: str | None = None,
    db_url: str | None = None,
    release_vkey: str | None = None,
) -> dict[str, str]:
    """Create a data directory: keys (0600), vault, config, database, first admin token.

    ``db_url`` (``init --db``): the index lives in that PostgreSQL database, which is migrated
    here and recorded in ``server.toml`` (so ``serve --data DIR`` alone finds it). It is opened
    first — before any key is written — and refused if it already holds tokens: a second
    server joins an existing database with a copy of the first one's data directory, never a
    second ``init`` (which would mint keys the log and the agents do not know).

    ``release_vkey`` (``init --release-vkey``): the release key is the MSP's offline key; only
    its vkey is stored and the server never holds the private half (release_key.py).

    Returns ``{"admin_token", "log_vkey", "order_vkey", "release_vkey"}``; the token is shown
    exactly once (only its hash is stored)."""
    data = Path(data)
    db_url = config_mod.check_db_url(db_url)
    if release_vkey is not None:
        try:
            Verifier.from_vkey(release_vkey.strip())  # refused before anything is written
        except (OsirisError, ValueError) as exc:
            raise config_mod.ConfigError(f"--release-vkey is not a vkey: {exc}") from None
    if (data / "server.toml").exists() or (data / "osiris.db").exists():
        raise config_mod.ConfigError(f"{data} is already initialised")
    pg = open_database(data / "osiris.db", db_url) if db_url else None
    try:
        if pg is not None and db_tokens.any_exist(pg):
            raise config_mod.ConfigError(
                f"{pg.describe()} already holds an osiris index; to add a server, copy the "
                "first server's data directory (docs/server.md, 'PostgreSQL')"
            )
        return _init_files(data, origin, db_url, pg, release_vkey)
    finally:
        if pg is not None:
            pg.close()


def _init_files(
    data: Path,
    origin: str | None,
    db_url: str | None,
    pg: Database | None,
    release_vkey: str | None = None,
) -> dict[str, str]:
    origin = origin or default_origin()
    host = origin.split("/", 1)[0]
    order_name = f"{host}/osiris/order"
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    keys = data / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys, 0o700)
    log_signer = Signer.generate(origin)
    order_signer = Signer.generate(order_name)
    write_private_key(keys / "log.key", log_signer)
    write_private_key(keys / "order.key", order_signer)
    if release_vkey is not None:
        release_v = release_key.write_vkey(keys, release_vkey)
    else:
        release_v = release_key.create(keys, origin).verifier()
    Vault.create(keys / "vault.keyring")
    toml = config_mod.render(origin, order_name, db_url)
    create_private(data / "server.toml", toml.encode("utf-8"))
    if pg is None:
        create_private(data / "osiris.db")  # 0600 before SQLite writes a byte
    db = pg or open_database(data / "osiris.db")
    token = auth.new_token(auth.OPERATOR_PREFIX)
    try:
        with db.write() as w:
            db_tokens.create(
                w, "operator", auth.token_hash(token), "admin", "initial admin", "init"
            )
            from osiris_server.db import audit as db_audit

            db_audit.record(w, "init", "server.init", origin)
    finally:
        if pg is None:
            db.close()
    if pg is None:
        os.chmod(data / "osiris.db", 0o600)
    return {"admin_token": token, "log_vkey": log_signer.vkey, "order_vkey": order_signer.vkey,
            "release_vkey": release_v.vkey}  # fmt: skip


def create_app(data: str | Path | None = None) -> App:
    """WSGI factory for gunicorn and friends; ``data`` defaults to ``$OSIRIS_DATA``."""
    data = data or os.environ.get("OSIRIS_DATA")
    if not data:
        raise config_mod.ConfigError("no data directory: pass one or set OSIRIS_DATA")
    return App.open(data)
