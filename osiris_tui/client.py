"""Typed client for the Central Command API, shared by the CLI and the console.

Why one client: `osiris site list --json` and the console's Sites view must show the same data,
so both go through these functions. No Textual import here (a test proves it), so the CLI stays
fast and the data layer can be benchmarked and tested on its own.

Errors are mapped to one small tree whose ``exit_code`` is the CLI's exit code (console.md):
2 input/usage (4xx other than auth), 3 server unreachable or failing (connect errors, 5xx),
4 authentication refused (401/403). Idempotent reads are retried on connect errors and 502-504;
writes are never retried (a retried POST could queue an order twice).
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from osiris_core.errors import ExitCode, OsirisError

API = "/api/v1"
DEFAULT_TIMEOUT = 10.0
RETRY_STATUSES = (502, 503, 504)


# ---------------------------------------------------------------- errors


class ClientError(OsirisError):
    """Anything the client could not do; ``exit_code`` follows DESIGN §4.2."""

    code = "E_CLIENT"
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code)
        self.status = status


class UsageError(ClientError):
    """Missing configuration or a request the server refused as bad input (exit 2)."""

    code = "E_INPUT"
    exit_code = ExitCode.USAGE


class NotFound(UsageError):
    code = "E_NOT_FOUND"


class Conflict(UsageError):
    code = "E_CONFLICT"


class Unreachable(ClientError):
    """Connect error, timeout, or a server answering 5xx (exit 3)."""

    code = "E_UNREACHABLE"
    exit_code = ExitCode.UNREACHABLE


class AuthRefused(ClientError):
    """401 or 403: the token is missing, wrong, revoked, or its role may not do this (exit 4)."""

    code = "E_AUTH"
    exit_code = ExitCode.AUTH


# ---------------------------------------------------------------- configuration


def profile_path() -> Path:
    if os.environ.get("OSIRIS_PROFILE_FILE"):
        return Path(os.environ["OSIRIS_PROFILE_FILE"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "osiris" / "profiles.toml"


def resolve_config(
    server: str | None = None, token: str | None = None, profile: str | None = None
) -> tuple[str, str]:
    """Flags beat environment beat the profile file (``[name] server=… token=…``)."""
    server = server or os.environ.get("OSIRIS_SERVER")
    token = token or os.environ.get("OSIRIS_TOKEN")
    if not (server and token):
        path = profile_path()
        name = profile or os.environ.get("OSIRIS_PROFILE") or "default"
        if path.exists():
            try:
                mode = path.stat().st_mode
            except OSError as e:
                raise UsageError(f"{path}: cannot read profile file: {e}") from None
            if mode & 0o077:
                # it holds operator tokens: like ssh with a private key, refuse a shared file
                raise UsageError(
                    f"{path}: profile file is readable or writable by other users "
                    f"(mode {mode & 0o777:o}); it holds tokens: run `chmod 600 {path}`"
                )
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise UsageError(f"{path}: cannot read profile file: {e}") from None
            section = data.get(name, {})
            if not isinstance(section, dict):
                raise UsageError(f"{path}: [{name}] is not a table")
            server = server or section.get("server")
            token = token or section.get("token")
        elif profile:
            raise UsageError(f"profile {profile!r} requested but {path} does not exist")
    if not server:
        raise UsageError("no server: pass --server, set OSIRIS_SERVER or write a profile")
    if not token:
        raise UsageError("no token: pass --token, set OSIRIS_TOKEN or write a profile")
    return server.rstrip("/"), token


# ---------------------------------------------------------------- records


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: data.get(k) for k in names if k != "raw"}


@dataclass
class Record:
    """Base: stable fields for ``--json`` plus the server's full answer in ``raw``."""

    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        obj = cls(**_pick(cls, data))
        obj.raw = data
        return obj

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw", None)
        return out


@dataclass
class Site(Record):
    id: str = ""
    name: str = ""
    partner_id: str | None = None
    checkin_interval_s: int = 60
    created_at: str | None = None
    window: dict[str, Any] | None = None


@dataclass
class CheckStatus:
    host_id: str
    check: str
    status: str
    since: str


@dataclass
class Appliance(Record):
    id: str = ""
    site_id: str = ""
    hostname: str = ""
    mac: str | None = None
    agent_version: str | None = None
    created_at: str | None = None
    revoked_at: str | None = None
    last_seen_at: str | None = None
    last_seen_epoch: int | None = None
    online: bool | None = None
    status: dict[str, Any] | None = None
    quarantined: int | bool | None = None  # enrolled from a non-admin's code, not confirmed
    confirmed_by: str | None = None
    confirmed_at: str | None = None

    @property
    def is_quarantined(self) -> bool:
        return bool(self.quarantined) and not self.revoked_at

    @cached_property
    def checks(self) -> list[CheckStatus]:
        out = []
        for c in (self.status or {}).get("checks", []) or []:
            if isinstance(c, dict):
                out.append(
                    CheckStatus(
                        str(c.get("host_id", "")),
                        str(c.get("check", "")),
                        str(c.get("status", "")),
                        str(c.get("since", "")),
                    )
                )
        return out

    @cached_property
    def drift_count(self) -> int:
        return sum(1 for c in self.checks if c.status == "drift")

    @cached_property
    def compliance(self) -> tuple[int, int]:
        """(compliant checks, checks with a verdict) from the last check-in."""
        cs = [c for c in self.checks if c.status in ("compliant", "drift")]
        return sum(1 for c in cs if c.status == "compliant"), len(cs)

    def state(self, now: float | None = None, interval_s: int = 60) -> str:
        """online / stale / offline / never / revoked: one word the views and CLI share.

        stale = missed one interval (data may be old) but not yet the server's 3-interval
        offline threshold; the server's own ``online`` flag wins when it says offline.
        """
        if self.revoked_at:
            return "revoked"
        if self.last_seen_epoch is None:
            return "never"
        if self.online is False:
            return "offline"
        age = (now if now is not None else time.time()) - self.last_seen_epoch
        if age > 3 * interval_s:
            return "offline"
        if age > 1.5 * interval_s:
            return "stale"
        return "online"

    def as_json(self) -> dict[str, Any]:
        out = super().as_json()
        out["drift_count"] = self.drift_count
        return out


@dataclass
class Credential(Record):
    id: str = ""
    site_id: str = ""
    host_id: str = ""
    kind: str = ""
    address: str = ""
    port: int | None = None
    username: str = ""
    lab: bool = False
    use_tls: bool | None = None
    verify_tls: bool | None = None
    host_key_fingerprints: list[str] | None = None
    version: int | None = None
    secret: str = "********"
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class Order(Record):
    id: str = ""
    site_id: str = ""
    appliance_id: str = ""
    kind: str = ""
    params: dict[str, Any] | None = None
    disruptive: bool = False
    status: str = ""
    created_at: str | None = None
    created_by: str | None = None
    expires_at: str | None = None
    delivered_at: str | None = None
    done_at: str | None = None
    result_bundle_hash: str | None = None
    result_outcome: str | None = None


@dataclass
class Incident(Record):
    id: str = ""
    site_id: str = ""
    appliance_id: str | None = None
    host_id: str = ""
    kind: str = ""
    severity: str = ""
    summary: str = ""
    status: str = ""
    count: int = 1
    first_seen: str | None = None
    last_seen: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None


@dataclass
class Provision(Record):
    id: str = ""
    site_id: str = ""
    created_by: str | None = None
    created_at: str | None = None
    expires_at: str | None = None
    used_at: str | None = None
    appliance_id: str | None = None
    mac: str | None = None

    @property
    def state(self) -> str:
        return "claimed" if self.used_at else "pending"


@dataclass
class LearningCandidate(Record):
    """A (check, runbook) pair the server tracks for promotion to an automatic L1 rule.

    Read-only: the server lists candidates; promoting one is not in its API yet.
    """

    id: str = ""
    site_id: str | None = None
    check_id: str = ""
    runbook_id: str = ""
    successes: int = 0
    failures: int = 0
    status: str = ""
    updated_at: str | None = None

    @property
    def success_rate(self) -> str:
        n = (self.successes or 0) + (self.failures or 0)
        return f"{100 * (self.successes or 0) // n}%" if n else "-"


@dataclass
class Partner(Record):
    id: str = ""
    name: str = ""
    contact_email: str | None = None
    created_at: str | None = None


@dataclass
class Token(Record):
    id: str = ""
    kind: str = ""
    role: str = ""
    site_id: str | None = None
    partner_id: str | None = None
    name: str = ""
    created_at: str | None = None
    created_by: str | None = None
    revoked_at: str | None = None


@dataclass
class AuditEntry(Record):
    id: int = 0
    at: str = ""
    actor: str = ""
    action: str = ""
    target: str = ""
    site_id: str | None = None
    source: str | None = None
    detail: dict[str, Any] | None = None


@dataclass
class RunbookState:
    """One runbook's effective state at a scope, with where the decision came from."""

    id: str
    enabled: bool
    default: bool
    site: bool | None
    appliance: bool | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def runbook_states(view: dict[str, Any]) -> list[RunbookState]:
    defaults = view.get("defaults", {}) or {}
    enabled = set(view.get("enabled", []) or [])
    site = view.get("site", {}) or {}
    app = view.get("appliance", {}) or {}
    ids = sorted(set(defaults) | enabled | set(view.get("disabled", []) or []))
    return [
        RunbookState(rb, rb in enabled, bool(defaults.get(rb, False)), site.get(rb), app.get(rb))
        for rb in ids
    ]


# ---------------------------------------------------------------- client


class Client:
    """Synchronous httpx client; the console calls it from thread workers.

    Why sync: one code path for CLI and console, and the console never calls it on the UI
    thread, so blocking is harmless there while the CLI stays simple.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.retries = retries
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "osiris-cli"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_config(
        cls, server: str | None = None, token: str | None = None, profile: str | None = None
    ) -> Client:
        s, t = resolve_config(server, token, profile)
        return cls(s, t)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        url = path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if method == "GET" else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            try:
                resp = self._http.request(method, url, json=json, params=params)
            except httpx.TimeoutException as e:
                last = Unreachable(f"{self.server}: timed out ({type(e).__name__})")
                continue
            except httpx.TransportError as e:
                last = Unreachable(f"{self.server}: unreachable ({_reason(e)})")
                continue
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                last = _error_for(resp)
                continue
            if resp.status_code >= 400:
                raise _error_for(resp)
            if raw:
                return resp.text
            if not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                raise Unreachable(f"{self.server}: answer is not JSON") from None
        assert last is not None
        raise last

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", API + path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", API + path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", API + path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", API + path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", API + path)

    # ---- health

    def healthz(self) -> dict[str, Any]:
        return self.request("GET", "/healthz")

    def stats(self) -> dict[str, Any]:
        return self.get("/stats")

    # ---- sites & appliances

    def sites(self) -> list[Site]:
        return [Site.from_json(r) for r in self.get("/sites")["sites"]]

    def site(self, site_id: str) -> Site:
        return Site.from_json(self.get(f"/sites/{_seg(site_id)}"))

    def create_site(
        self,
        name: str,
        site_id: str | None = None,
        partner_id: str | None = None,
        checkin_interval_s: int | None = None,
    ) -> Site:
        body: dict[str, Any] = {"name": name}
        if site_id:
            body["id"] = site_id
        if partner_id:
            body["partner_id"] = partner_id
        if checkin_interval_s:
            body["checkin_interval_s"] = checkin_interval_s
        return Site.from_json(self.post("/sites", body))

    def update_site(self, site_id: str, **changes: Any) -> Site:
        return Site.from_json(self.patch(f"/sites/{_seg(site_id)}", changes))

    def appliances(self, site_id: str | None = None) -> list[Appliance]:
        if site_id is None:
            data = self.get("/appliances")
        else:
            data = self.get(f"/sites/{_seg(site_id)}/appliances")
        return [Appliance.from_json(r) for r in data["appliances"]]

    def appliance(self, appliance_id: str) -> Appliance:
        return Appliance.from_json(self.get(f"/appliances/{_seg(appliance_id)}"))

    def confirm_appliance(self, appliance_id: str) -> dict[str, Any]:
        """Admin: lift a quarantine; the appliance then receives its site's credentials."""
        return self.post(f"/appliances/{_seg(appliance_id)}/confirm", {})

    def revoke_appliance(self, appliance_id: str) -> dict[str, Any]:
        return self.delete(f"/appliances/{_seg(appliance_id)}")

    # ---- runbooks

    def site_runbooks(self, site_id: str) -> list[RunbookState]:
        return runbook_states(self.get(f"/sites/{_seg(site_id)}/runbooks"))

    def set_site_runbooks(
        self, site_id: str, changes: dict[str, bool | None]
    ) -> list[RunbookState]:
        view = self.put(f"/sites/{_seg(site_id)}/runbooks", {"runbooks": changes})
        return runbook_states(view)

    def appliance_runbooks(self, appliance_id: str) -> list[RunbookState]:
        return runbook_states(self.get(f"/appliances/{_seg(appliance_id)}/runbooks"))

    def set_appliance_runbooks(
        self, appliance_id: str, changes: dict[str, bool | None]
    ) -> list[RunbookState]:
        view = self.put(f"/appliances/{_seg(appliance_id)}/runbooks", {"runbooks": changes})
        return runbook_states(view)

    # ---- runbook parameters (per-site policy thresholds)

    def runbook_params(
        self, site_id: str, runbook_id: str, appliance_id: str | None = None
    ) -> dict[str, Any]:
        """``{runbook_id, site_id, schema, defaults, site, effective[, appliance_id,
        appliance]}``; with ``appliance_id`` the appliance must belong to ``site_id``."""
        if appliance_id is None:
            return self.get(f"/sites/{_seg(site_id)}/runbooks/{_seg(runbook_id)}/params")
        view = self.get(f"/appliances/{_seg(appliance_id)}/runbooks/{_seg(runbook_id)}/params")
        self._same_site(view, site_id, appliance_id)
        return view

    def set_runbook_params(
        self,
        site_id: str,
        runbook_id: str,
        params: dict[str, Any],
        appliance_id: str | None = None,
    ) -> dict[str, Any]:
        """Set (value) or clear (``None``) parameters; the server validates against the
        catalogue and answers with the same view as :meth:`runbook_params`."""
        body = {"params": params}
        if appliance_id is None:
            path = f"/sites/{_seg(site_id)}/runbooks/{_seg(runbook_id)}/params"
            return self.put(path, body)
        self.runbook_params(site_id, runbook_id, appliance_id)  # refuses another site's
        path = f"/appliances/{_seg(appliance_id)}/runbooks/{_seg(runbook_id)}/params"
        return self.put(path, body)

    def site_runbook_params(self, site_id: str) -> dict[str, dict[str, Any]]:
        """Every value set at the site: ``{runbook_id: {name: value}}``."""
        return self.get(f"/sites/{_seg(site_id)}/runbook-params").get("params", {})

    @staticmethod
    def _same_site(view: dict[str, Any], site_id: str, appliance_id: str) -> None:
        if view.get("site_id") != site_id:
            raise NotFound(f"appliance {appliance_id} is not in site {site_id}", "E_NOT_FOUND")

    # ---- credentials

    def credentials(self, site_id: str) -> list[Credential]:
        data = self.get(f"/sites/{_seg(site_id)}/credentials")
        return [Credential.from_json(r) for r in data["credentials"]]

    def credential(self, site_id: str, cred_id: str) -> Credential:
        return Credential.from_json(self.get(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}"))

    def add_credential(self, site_id: str, fields: dict[str, Any]) -> Credential:
        return Credential.from_json(self.post(f"/sites/{_seg(site_id)}/credentials", fields))

    def update_credential(self, site_id: str, cred_id: str, fields: dict[str, Any]) -> Credential:
        path = f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}"
        return Credential.from_json(self.patch(path, fields))

    def delete_credential(self, site_id: str, cred_id: str) -> dict[str, Any]:
        return self.delete(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}")

    def reveal_credential(self, site_id: str, cred_id: str) -> dict[str, Any]:
        """Admin only; the server audits every reveal."""
        return self.post(f"/sites/{_seg(site_id)}/credentials/{_seg(cred_id)}/reveal", {})

    # ---- orders

    def orders(self, appliance_id: str, limit: int | None = None) -> list[Order]:
        data = self.get(f"/appliances/{_seg(appliance_id)}/orders", limit=limit)
        return [Order.from_json(r) for r in data["orders"]]

    def order(self, appliance_id: str, order_id: str) -> Order:
        return Order.from_json(
            self.get(f"/appliances/{_seg(appliance_id)}/orders/{_seg(order_id)}")
        )

    def create_order(
        self,
        appliance_id: str,
        kind: str,
        params: dict[str, Any] | None = None,
        disruptive: bool | None = None,
        ttl_s: int | None = None,
    ) -> Order:
        body: dict[str, Any] = {"kind": kind, "params": params or {}}
        if disruptive is not None:
            body["disruptive"] = disruptive
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return Order.from_json(self.post(f"/appliances/{_seg(appliance_id)}/orders", body))

    # ---- incidents

    def incidents(
        self, site_id: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Incident]:
        data = self.get("/incidents", site=site_id, status=status, limit=limit)
        return [Incident.from_json(r) for r in data["incidents"]]

    def incident(self, incident_id: str) -> Incident:
        return Incident.from_json(self.get(f"/incidents/{_seg(incident_id)}"))

    def resolve_incident(self, incident_id: str) -> Incident:
        return Incident.from_json(self.post(f"/incidents/{_seg(incident_id)}/resolve", {}))

    # ---- provisioning

    def provisions(self) -> list[Provision]:
        return [Provision.from_json(r) for r in self.get("/provisions")["provisions"]]

    def create_provision(self, site_id: str, ttl_s: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"site_id": site_id}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.post("/provisions", body)

    def mac_requests(self) -> list[dict[str, Any]]:
        """MAC enrollment requests (admins and operators of every site only)."""
        return list(self.get("/provisions").get("mac_requests", []))

    def approve_mac(
        self, mac: str, site_id: str, fingerprint: str, ttl_s: int | None = None
    ) -> dict[str, Any]:
        """Approve one requester of a MAC, named by its full fingerprint."""
        body: dict[str, Any] = {"site_id": site_id, "requester_fingerprint": fingerprint}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self.post(f"/provision/{_seg(mac)}", body)

    def delete_mac(self, mac: str) -> dict[str, Any]:
        return self.delete(f"/provision/{_seg(mac)}")

    def delete_provision(self, provision_id: str) -> dict[str, Any]:
        return self.delete(f"/provisions/{_seg(provision_id)}")

    # ---- partners, tokens, audit

    def partners(self) -> list[Partner]:
        return [Partner.from_json(r) for r in self.get("/partners")["partners"]]

    def create_partner(self, name: str, contact_email: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if contact_email:
            body["contact_email"] = contact_email
        return self.post("/partners", body)

    def tokens(self) -> list[Token]:
        return [Token.from_json(r) for r in self.get("/tokens")["tokens"]]

    def create_token(self, role: str, name: str, site_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"role": role, "name": name}
        if site_id:
            body["site_id"] = site_id
        return self.post("/tokens", body)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self.delete(f"/tokens/{_seg(token_id)}")

    def learning_candidates(self, site_id: str | None = None) -> list[LearningCandidate]:
        data = self.get("/learning/candidates", site=site_id)
        return [LearningCandidate.from_json(r) for r in data["candidates"]]

    def audit(
        self,
        site_id: str | None = None,
        action: str | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        data = self.get("/audit", site=site_id, action=action, before=before, limit=limit)
        return [AuditEntry.from_json(r) for r in data["audit"]]

    # ---- evidence and the log

    def evidence(
        self,
        site_id: str,
        appliance_id: str | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        return self.get(
            "/evidence", site=site_id, appliance=appliance_id, after_seq=after_seq, limit=limit
        )

    def log_checkpoint(self) -> str:
        return self.request("GET", API + "/log/checkpoint", raw=True)

    def log_keys(self) -> dict[str, Any]:
        return self.get("/log/keys")

    def inclusion_proof(self, bundle_hash: str) -> Any:
        return self.get("/log/proof/inclusion", hash=bundle_hash)


def _seg(value: str) -> str:
    """One URL path segment; ids never contain '/', so refuse rather than escape."""
    if not value or "/" in value or value in (".", ".."):
        raise UsageError(f"not a valid id: {value!r}")
    return httpx.URL("/" + value).raw_path.decode().lstrip("/") if "%" in value else value


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]


def _error_for(resp: httpx.Response) -> ClientError:
    code, message = "E_HTTP", resp.reason_phrase or f"HTTP {resp.status_code}"
    try:
        err = resp.json().get("error", {})
        code = str(err.get("code", code))
        message = str(err.get("message", message))
    except (ValueError, AttributeError):
        pass
    st = resp.status_code
    if st in (401, 403):
        return AuthRefused(message, code, st)
    if st == 404:
        return NotFound(message, code, st)
    if st == 409:
        return Conflict(message, code, st)
    if st >= 500:
        return Unreachable(f"server error {st}: {message}", code, st)
    return UsageError(message, code, st)


def as_json_list(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [i.as_json() for i in items]
