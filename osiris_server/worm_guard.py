"""The client-side guard around the S3 client: no call that could shorten or weaken retention.

Why a guard in our own process: S3 Object Lock in COMPLIANCE mode refuses those calls itself,
but only if the bucket is what we think it is — a bucket in GOVERNANCE mode, an S3-compatible
store that enforces less, or moto (which allows shortening COMPLIANCE, COMPLIANCE→GOVERNANCE and
suspending versioning; ../shared/reference/worm.md) would obey. So this wrapper refuses, before
any request leaves the process, every call that would shorten a retain-until date, downgrade a
mode, bypass governance, lower or remove the bucket's default retention, suspend versioning, or
delete an object version. Anything it does not know is refused too (an allow-list, not a deny
list): the WORM copy only reads, puts new objects and extends.

It wraps any boto3 S3 client (``GuardedClient(boto3.client("s3", ...))``); refusals are
``GuardRefused`` (``E_WORM_GUARD``) with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from osiris_core.errors import OsirisError

COMPLIANCE = "COMPLIANCE"
_READS = ("head_", "get_", "list_")
_CHECKED = {
    "put_object",
    "put_object_retention",
    "put_object_lock_configuration",
    "put_bucket_versioning",
    "put_object_legal_hold",
    "delete_object",
    "delete_objects",
    "create_bucket",
}
_NO_GUARD = {"close", "can_paginate", "get_paginator", "get_waiter", "meta", "exceptions"}


class GuardRefused(OsirisError):
    """A call the guard will not send: it would weaken WORM retention."""

    code = "E_WORM_GUARD"


def _utc(d: Any) -> datetime:
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    if isinstance(d, str):
        return datetime.fromisoformat(d.replace("Z", "+00:00"))
    raise GuardRefused(f"retain-until date {d!r} is not a date")


def _default_years(rule: dict[str, Any] | None) -> float:
    """A default retention as years (Days/365.25): the unit S3 takes either of."""
    r = (rule or {}).get("DefaultRetention") or {}
    if r.get("Years"):
        return float(r["Years"])
    if r.get("Days"):
        return float(r["Days"]) / 365.25
    return 0.0


class GuardedClient:
    """A boto3 S3 client that cannot be told to shorten retention (see the module docstring)."""

    def __init__(self, client: Any, min_years: int = 6) -> None:
        self._client = client
        self._min_years = min_years

    def __getattr__(self, name: str) -> Any:
        if name in _NO_GUARD or name.startswith(_READS):
            return getattr(self._client, name)
        if name in _CHECKED:
            return getattr(self, f"_{name}")
        raise GuardRefused(f"{name} is not a call the WORM copy makes; the guard refuses it")

    # ---------------------------------------------------------------- checks
    @staticmethod
    def _no_bypass(kw: dict[str, Any]) -> None:
        if kw.get("BypassGovernanceRetention"):
            raise GuardRefused("BypassGovernanceRetention is never sent")

    def _put_object(self, **kw: Any) -> Any:
        self._no_bypass(kw)
        mode = kw.get("ObjectLockMode")
        if mode is not None and mode != COMPLIANCE:
            raise GuardRefused(f"objects are locked in COMPLIANCE mode, not {mode}")
        if kw.get("ObjectLockLegalHoldStatus") not in (None, "ON"):
            raise GuardRefused("a legal hold is never switched off")
        return self._client.put_object(**kw)

    def _put_object_retention(self, **kw: Any) -> Any:
        self._no_bypass(kw)
        ret = kw.get("Retention") or {}
        if ret.get("Mode") != COMPLIANCE:
            raise GuardRefused(
                f"retention mode {ret.get('Mode')!r}: only COMPLIANCE is ever set (no downgrade)"
            )
        until = _utc(ret.get("RetainUntilDate"))
        head = {k: kw[k] for k in ("Bucket", "Key", "VersionId") if k in kw}
        current = self._client.head_object(**head)
        now_until = current.get("ObjectLockRetainUntilDate")
        if now_until is not None and until < _utc(now_until):
            raise GuardRefused(
                f"retain-until {until.isoformat()} is earlier than the object's current "
                f"{_utc(now_until).isoformat()}: retention is only ever extended"
            )
        return self._client.put_object_retention(**kw)

    def _put_object_lock_configuration(self, **kw: Any) -> Any:
        cfg = kw.get("ObjectLockConfiguration") or {}
        rule = cfg.get("Rule")
        mode = ((rule or {}).get("DefaultRetention") or {}).get("Mode")
        if cfg.get("ObjectLockEnabled") != "Enabled" or mode != COMPLIANCE:
            raise GuardRefused("the bucket's default retention stays COMPLIANCE and enabled")
        years = _default_years(rule)
        if years < self._min_years:
            raise GuardRefused(
                f"a default retention of {years:g} years is below the configured {self._min_years}"
            )
        try:
            now_rule = self._client.get_object_lock_configuration(Bucket=kw["Bucket"])
            current = _default_years(now_rule["ObjectLockConfiguration"].get("Rule"))
        except Exception:  # noqa: BLE001 - no configuration yet: nothing to lower
            current = 0.0
        if years < current:
            raise GuardRefused(
                f"a default retention of {years:g} years would lower the bucket's {current:g}"
            )
        return self._client.put_object_lock_configuration(**kw)

    def _put_bucket_versioning(self, **kw: Any) -> Any:
        vc = kw.get("VersioningConfiguration") or {}
        if vc.get("Status") != "Enabled" or vc.get("MFADelete") == "Disabled":
            raise GuardRefused("versioning is never suspended (Object Lock depends on it)")
        return self._client.put_bucket_versioning(**kw)

    def _put_object_legal_hold(self, **kw: Any) -> Any:
        if (kw.get("LegalHold") or {}).get("Status") != "ON":
            raise GuardRefused("a legal hold is never switched off")
        return self._client.put_object_legal_hold(**kw)

    def _delete_object(self, **kw: Any) -> Any:
        self._no_bypass(kw)
        if kw.get("VersionId"):
            raise GuardRefused("an object version is never deleted")
        return self._client.delete_object(**kw)  # a delete marker only: every version stays

    def _delete_objects(self, **kw: Any) -> Any:
        self._no_bypass(kw)
        objs = (kw.get("Delete") or {}).get("Objects") or []
        if any(o.get("VersionId") for o in objs):
            raise GuardRefused("an object version is never deleted")
        return self._client.delete_objects(**kw)

    def _create_bucket(self, **kw: Any) -> Any:
        if not kw.get("ObjectLockEnabledForBucket"):
            raise GuardRefused("a WORM bucket is created with ObjectLockEnabledForBucket=True")
        return self._client.create_bucket(**kw)
