"""Which parts of a check-in answer an appliance already holds (issue 14 item 6).

Why its own module: the rules (~21 KB) and the targets (sealed credentials) were sent in every
answer although they change rarely. An agent that sends ``holds`` names the ruleset hash and the
targets hash it holds (and ``policy_version`` the policy); each part equal to the current one is
left out of the answer and named in ``unchanged``. This module says what "current" is for the
targets: a version the server can compute without decrypting or sealing anything.

The targets hash covers exactly what decides the targets an appliance receives — this
appliance, its box key (public) and quarantine, and per credential of its site the id, the
version (bumped by every update, the secret's included) and every non-secret target field —
never a secret, a ciphertext (sealing is random: the hash must not move when nothing changed)
or a hash of a secret. The per-site part is hashed once per site generation (the credential
rows are cached on the same generation by ``CheckinCache``), so a check-in adds one small hash.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from osiris_core import canonical
from osiris_server.api import delivery

if TYPE_CHECKING:
    from osiris_server.app import App
    from osiris_server.auth import Principal

TARGETS_HASH_VERSION = 1
MAX_ENTRIES = 200_000

_lock = threading.Lock()
# site_id -> (the cached credential list it was computed from, its digest)
_site_digests: dict[str, tuple[list[tuple], str]] = {}


def site_digest(site_id: str, creds: list[tuple]) -> str:
    """Hex SHA-256 over the site's credentials as ``[id, version, fields]`` (no secret)."""
    hit = _site_digests.get(site_id)
    if hit is not None and hit[0] is creds:
        return hit[1]
    rows = sorted([cred_id, version, meta] for meta, _enc, _ctx, cred_id, version in creds)
    digest = hashlib.sha256(canonical.dumps(rows)).hexdigest()
    with _lock:
        if len(_site_digests) >= MAX_ENTRIES:
            _site_digests.clear()
        _site_digests[site_id] = (creds, digest)
    return digest


def targets_hash(app: App, p: Principal, creds: list[tuple]) -> str:
    """``sha256:`` + hex: the version of the targets this appliance would receive now."""
    box, quarantined = delivery.state(app).meta(app, p)
    doc: dict[str, Any] = {
        "v": TARGETS_HASH_VERSION,
        "appliance_id": p.id,
        "box_pub": box,
        "quarantined": quarantined,
        "credentials": site_digest(p.site_id, creds),
    }
    return "sha256:" + hashlib.sha256(canonical.dumps(doc)).hexdigest()


def unchanged_parts(
    holds: dict[str, Any] | None, rules_hash: str, targets: str, policy_omitted: bool
) -> list[str]:
    """The parts to leave out: those the agent says it holds in their current version."""
    if holds is None:
        return []
    out = []
    if policy_omitted:
        out.append("policy")
    if holds.get("rules") == rules_hash:
        out.append("rules")
    if holds.get("targets") == targets:
        out.append("targets")
    return out


__all__ = ["site_digest", "targets_hash", "unchanged_parts"]
