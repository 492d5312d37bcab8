"""The typed records the API answers with (sites, appliances, credentials, orders, …).

Each keeps the stable fields ``--json`` prints (``as_json``) and the server's full answer in
``raw``; derived views the CLI and the console share (an appliance's online/stale/offline
``state``, its drift count and compliance, a provision's state) live on the record so both
compute them one way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from .check_status import (  # noqa: F401 - re-exported: records is where callers look
    SCORE_RULE,
    STALE_INTERVALS,
    CheckStatus,
    Score,
    Tally,
    epoch_of,
    score,
    score_tally,
    sum_scores,
    tally_raw,
)

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
    # SHA-256 of each public key, as the box's setup screen shows them (compare by eye)
    signing_fingerprint: str | None = None
    cosign_fingerprint: str | None = None
    box_fingerprint: str | None = None

    @property
    def is_quarantined(self) -> bool:
        return bool(self.quarantined) and not self.revoked_at

    @cached_property
    def checks(self) -> list[CheckStatus]:
        out = []
        for c in (self.status or {}).get("checks", []) or []:
            if isinstance(c, dict):
                interval = c.get("interval_s")
                out.append(
                    CheckStatus(
                        str(c.get("host_id", "")),
                        str(c.get("check", "")),
                        str(c.get("status", "")),
                        str(c.get("since", "")),
                        str(c["reason"]) if c.get("reason") else None,
                        str(c["checked_at"]) if c.get("checked_at") else None,
                        interval if isinstance(interval, int) and interval > 0 else None,
                    )
                )
        return out

    @cached_property
    def tally(self) -> Tally:
        """The last check-in's checks counted once per record (check_status.Tally)."""
        return tally_raw((self.status or {}).get("checks", []) or [])

    @property
    def drift_count(self) -> int:
        return self.tally.counts[1]

    @property
    def error_count(self) -> int:
        """Checks that could not run at the last check-in (the fleet row's ERR)."""
        return self.tally.counts[2]

    def score(self, now: float | None = None) -> Score:
        """This appliance's checks by state at ``now`` (stale by age), see ``SCORE_RULE``.

        Kept for the second it was asked for: a fleet paint asks it three times per appliance
        (row, site, pulse line), and staleness is judged in whole intervals anyway."""
        t = now if now is not None else time.time()
        cached = self.__dict__.get("_score")
        if cached is not None and cached[0] == int(t):
            return cached[1]
        s = score_tally(self.tally, t)
        self.__dict__["_score"] = (int(t), s)
        return s

    @property
    def compliance(self) -> tuple[int, int]:
        """(compliant checks, all checks) now: errors and stale results count against."""
        s = self.score()
        return s.compliant, s.total

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
        out["error_count"] = self.error_count
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
    sudo: bool = False
    host_key_fingerprints: list[str] | None = None
    cert_thumbprint: str = ""  # winrm: SHA-256 pin of the listener's certificate
    auth: str = "ntlm"  # winrm: ntlm | kerberos | basic (lab)
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
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    resolution_note: str | None = None


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
    """A learned pattern (``GET /learning/candidates``): check, chosen runbook and params, its L2
    record across sites as ``k/n``, and where it is in the loop (observing, candidate,
    rejected, canary, fleet, disabled). Its id is the L1 rule id it becomes when approved."""

    id: str = ""
    status: str = ""
    check_id: str = ""
    detect_runbook_id: str = ""
    runbook_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    l2: dict[str, Any] = field(default_factory=dict)
    after_promotion: dict[str, Any] = field(default_factory=dict)
    approvable: bool = False
    refusal: str | None = None
    canary_sites: list[str] = field(default_factory=list)
    decided_by: str | None = None
    reason: str | None = None
    updated_at: str | None = None

    @property
    def l2_fraction(self) -> str:
        return str(self.l2.get("fraction") or "0/0")

    @property
    def sites(self) -> int:
        return int(self.l2.get("sites") or 0)

    @property
    def after_fraction(self) -> str:
        n = int(self.after_promotion.get("n") or 0)
        return str(self.after_promotion.get("fraction")) if n else "-"


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


def as_json_list(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [i.as_json() for i in items]
