"""Tokens, roles and tenant scoping (DESIGN §4.1).

* Token formats: ``oak_`` appliance, ``osk_`` operator, ``opk_`` partner API key; each is 32
  random bytes in URL-safe base64 after the prefix. Only SHA-256(token) is stored, so a copy of
  the database grants nothing. Lookup is by that hash; the row's hash is then compared with
  ``hmac.compare_digest`` so no byte-by-byte comparison of secrets happens in Python.
* Roles: admin, operator (change things), auditor (read everything), client (read one site);
  partners act like operators on their own sites only.
* Another tenant's resource is answered exactly like a missing one (404), so ids cannot be
  probed.
* Failed authentication is limited twice (``AuthLimiter``, sliding windows): per presented
  credential (a hash of the value, so the same wrong or revoked token is throttled wherever it
  comes from) and per source address (so a client cycling through random tokens is throttled
  too). Either limit answers *failed* attempts with 429 and ``Retry-After``; a token that
  authenticates is never refused by them, so a fleet behind one proxy address keeps working
  while a bad client behind the same address floods it with wrong tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from osiris_server.http import HttpError

ROLES = ("admin", "operator", "auditor", "client")
WRITE_ROLES = ("admin", "operator", "partner")
READ_ROLES = ("admin", "operator", "auditor", "client", "partner")
APPLIANCE_PREFIX = "oak_"
OPERATOR_PREFIX = "osk_"
PARTNER_PREFIX = "opk_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Principal:
    kind: str  # appliance | operator | partner
    id: str  # token id or appliance id
    role: str  # admin | operator | auditor | client | partner | appliance
    name: str = ""
    site_id: str | None = None  # client tokens and appliances
    partner_id: str | None = None  # partner keys
    signing_vkey: str | None = None
    cosign_vkey: str | None = None
    # appliances only: read with the token in the same statement (db/appliances.by_token_hash)
    g_site: int = 0
    g_own: int = 0
    open_orders: int = 0

    @property
    def actor(self) -> str:
        """How the audit log names this principal (never the secret)."""
        return f"{self.kind}:{self.id}"

    @property
    def tenant(self) -> str:
        if self.kind == "partner":
            return f"partner:{self.partner_id}"
        if self.site_id:
            return f"site:{self.site_id}"
        return self.role

    @property
    def all_sites(self) -> bool:
        return self.kind == "operator" and self.role in ("admin", "operator", "auditor")


def can_see_site(p: Principal, site: dict[str, Any] | None) -> bool:
    if site is None:
        return False
    if p.all_sites:
        return True
    if p.kind == "partner":
        return site.get("partner_id") is not None and site.get("partner_id") == p.partner_id
    return p.site_id is not None and site.get("id") == p.site_id


class RateLimiter:
    """Sliding-window counter per key (e.g. a source address). Thread-safe, bounded memory: at
    most ``max_keys`` keys, and per key only the newest ``limit + 1`` events (all that the
    comparisons below can see), so a flood cannot grow it."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window_s
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def blocked(self, key: str) -> bool:
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return False
            self._trim(q, time.monotonic())
            return len(q) >= self.limit

    def hit(self, key: str) -> bool:
        """Count one event; True when ``key`` is now over the limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) >= self.max_keys and key not in self._hits:
                for k in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
                    del self._hits[k]
                if len(self._hits) >= self.max_keys:
                    self._hits.pop(next(iter(self._hits)))
            q = self._hits.get(key)
            if q is None:
                q = self._hits[key] = deque(maxlen=self.limit + 1)
            self._trim(q, now)
            q.append(now)
            return len(q) > self.limit

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` is below the limit again (0 when it is already)."""
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return 0.0
            now = time.monotonic()
            self._trim(q, now)
            if len(q) < self.limit:
                return 0.0
            # the window must drop len - limit + 1 events: wait for the newest of those
            return max(0.0, q[len(q) - self.limit] + self.window - now)


class AuthLimiter:
    """Failed authentication counted per presented credential *and* per source address.

    The caller looks the credential up first (a hash and one indexed query, cheap) and asks
    here only about failures: ``refused_before_lookup`` throttles a credential that has failed
    too often already (no database work for a repeated bad token), ``failed`` counts one
    failure in both buckets and says whether to answer 429 instead of 401. A credential that
    authenticates is never counted nor refused, whatever its source did.
    """

    def __init__(self, per_credential: int, per_source: int, window_s: float) -> None:
        self.credentials = RateLimiter(per_credential, window_s)
        self.sources = RateLimiter(per_source, window_s)
        self.window = window_s

    @staticmethod
    def credential_key(presented: str | None) -> str | None:
        """A fixed-size id of the presented value: 128 bits of its SHA-256 (never the value)."""
        if not presented:
            return None
        return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def refused_before_lookup(self, cred: str | None) -> HttpError | None:
        """429 for a credential already over its limit (and count this attempt too)."""
        if cred is None or not self.credentials.blocked(cred):
            return None
        self.credentials.hit(cred)
        return too_many(self.credentials.retry_after(cred))

    def failed(self, source: str, cred: str | None) -> HttpError:
        """Count one failed attempt; 429 when either bucket is over its limit, else 401."""
        over_cred = cred is not None and self.credentials.hit(cred)
        over_source = self.sources.hit(source)
        if over_cred or over_source:
            wait = max(
                self.credentials.retry_after(cred) if over_cred and cred else 0.0,
                self.sources.retry_after(source) if over_source else 0.0,
            )
            return too_many(wait)
        return unauthorized()


def unauthorized(message: str = "missing or invalid credentials") -> HttpError:
    return HttpError(401, "E_AUTH", message)


def too_many(retry_after_s: float | None = None) -> HttpError:
    """429; with ``retry_after_s`` the answer carries ``Retry-After`` (whole seconds, >= 1)."""
    headers = []
    if retry_after_s is not None:
        headers.append(("Retry-After", str(max(1, math.ceil(retry_after_s)))))
    return HttpError(
        429, "E_RATE_LIMIT", "too many failed attempts; try again later", headers=headers
    )


def bearer(auth_header: str | None) -> str | None:
    if not auth_header:
        return None
    scheme, _, value = auth_header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
