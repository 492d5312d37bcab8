"""Credential delivery at check-in: sealed to the appliance, never to a quarantined one.

What a check-in may hand an appliance, decided here and only here (DESIGN §3.7, §6):

* nothing, while the appliance is **quarantined** (enrolled from a code a non-admin made, not
  yet confirmed by an admin) or has **no box key** (it could only be sent plaintext);
* otherwise each credential of its own site, with the secret fields (password, private key)
  **sealed** to the box key it registered at enrolment (``osiris_core.seal``).

Each delivery of each credential version to each appliance is audited once, ever: the
database remembers it (``credential_deliveries``), an in-process set only saves the lookup.
Sealing costs two X25519 operations, so a sealed secret is kept per (appliance, credential,
version, box key) while this process lives: the ciphertext is only readable with that key, a
rotated credential has a new version, and a new box key is sealed to anew.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import TYPE_CHECKING, Any

from osiris_core.seal import SECRET_FIELDS, seal
from osiris_server.db import appliances as db_appliances
from osiris_server.db import credentials as db_creds
from osiris_server.db.engine import Writer
from osiris_server.http import dumps

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.auth import Principal

MAX_SEALED = 200_000


class Delivery:
    """Per-process memory of appliance delivery facts and sealed secrets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[int, str | None, bool]] = {}  # id → (g_own, box, quarantined)
        self._sealed: dict[tuple[str, str, int, str], str] = {}  # … + the box key sealed to
        self._delivered: set[tuple[str, str, int]] = set()

    def meta(self, app: App, p: Principal) -> tuple[str | None, bool]:
        """(box key, quarantined) of the appliance; re-read when its generation moved (an
        admin's confirmation bumps it in the same transaction)."""
        hit = self._meta.get(p.id)
        if hit is not None and hit[0] == p.g_own:
            return hit[1], hit[2]
        row = db_appliances.box_and_quarantine(app.db, p.id)
        box = row["box_pub"] if row else None
        quarantined = bool(row["quarantined"]) if row else True
        with self._lock:
            if len(self._meta) >= MAX_SEALED:
                self._meta.clear()
            self._meta[p.id] = (p.g_own, box, quarantined)
        return box, quarantined

    def sealed(self, key: tuple[str, str, int, str], box: str, secret: dict[str, Any]) -> str:
        hit = self._sealed.get(key)
        if hit is None:
            hit = seal(box, secret)
            with self._lock:
                if len(self._sealed) >= MAX_SEALED:
                    self._sealed.clear()
                self._sealed[key] = hit
        return hit

    def cached(self, key: tuple[str, str, int, str]) -> str | None:
        return self._sealed.get(key)

    def delivered(self, key: tuple[str, str, int]) -> bool:
        return key in self._delivered

    def remember(self, key: tuple[str, str, int]) -> None:
        with self._lock:
            if len(self._delivered) >= MAX_SEALED:
                self._delivered.clear()
            self._delivered.add(key)


_STATE: weakref.WeakKeyDictionary[Any, Delivery] = weakref.WeakKeyDictionary()
_STATE_LOCK = threading.Lock()


def state(app: App) -> Delivery:
    d = _STATE.get(app)
    if d is None:
        with _STATE_LOCK:
            d = _STATE.setdefault(app, Delivery())
    return d


def targets_for(app: App, p: Principal, creds: list[tuple]) -> tuple[bytes, list, bool]:
    """(targets JSON, deliveries to audit, quarantined) for this appliance's check-in."""
    d = state(app)
    box, quarantined = d.meta(app, p)
    if quarantined or box is None:
        return b"[]", [], quarantined
    out = []
    fresh = []
    for meta, secret_enc, ctx, cred_id, version in creds:
        t = dict(meta)
        key = (p.id, cred_id, version)
        sealed = d.cached((*key, box))  # a new box key is sealed to anew
        if sealed is None:
            secret = json.loads(app.vault.decrypt(secret_enc, ctx))
            if any(secret.get(k) is not None for k in SECRET_FIELDS):
                sealed = d.sealed((*key, box), box, secret)
        if sealed is not None:
            t["sealed"] = sealed
        out.append(t)
        if not d.delivered(key):
            fresh.append({"id": cred_id, "host_id": meta["host_id"], "version": version,
                          "appliance_id": p.id})  # fmt: skip
    return dumps(out), fresh, False


def record_deliveries(w: Writer, app: App, p: Principal, fresh: list, source: str) -> list:
    """Inside the check-in's write: remember each delivery; returns those never seen before
    (in any process, ever), which the caller audits."""
    from osiris_server.db import audit as db_audit

    new = []
    for c in fresh:
        if db_creds.record_delivery(w, p.id, c["id"], c["version"]):
            new.append(c)
            db_audit.record(
                w, p.actor, "credential.deliver", c["id"], p.site_id, source,
                {"host_id": c["host_id"], "version": c["version"], "sealed": True},
            )  # fmt: skip
    return new


def after_commit(app: App, fresh: list) -> None:
    d = state(app)
    for c in fresh:
        d.remember((c["appliance_id"], c["id"], c["version"]))


__all__ = ["Delivery", "after_commit", "record_deliveries", "state", "targets_for"]
