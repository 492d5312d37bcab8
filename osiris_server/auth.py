"""Tokens, roles and tenant scoping (DESIGN §4.1).

* Token formats: ``oak_`` appliance, ``osk_`` operator, ``opk_`` partner API key; each is 32
  random bytes in URL-safe base64 after the prefix. Only SHA-256(token) is stored, so a copy of
  the database grants nothing. Lookup is by that hash; the row's hash is then compared with
  ``hmac.compare_digest`` so no byte-by-byte comparison of secrets happens in Python.
* Roles: admin, operator (change things), auditor (read everything), client (read one site);
  partners act like operators on their own sites only.
* Another tenant's resource is answered exactly like a missing one (404), so ids cannot be
  probed.
* Failed authentication is rate limited per source address (sliding window); after the limit
  every request from that address gets 429 until the window passes.
"""

from __future__ import annotations

import hashlib
import hmac
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
    """Sliding-window counter per key (source address). Thread-safe, bounded memory."""

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
            q = self._hits.setdefault(key, deque())
            self._trim(q, now)
            q.append(now)
            return len(q) > self.limit


def unauthorized(message: str = "missing or invalid credentials") -> HttpError:
    return HttpError(401, "E_AUTH", message)


def too_many() -> HttpError:
    return HttpError(429, "E_RATE_LIMIT", "too many failed attempts; try again later")


def bearer(auth_header: str | None) -> str | None:
    if not auth_header:
        return None
    scheme, _, value = auth_header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
