"""The client-side guard (osiris_server/worm_guard.py): the attacks moto would let through.

A hostile or careless operator with the server's S3 credentials, or a bug, asks to shorten a
retain-until, downgrade COMPLIANCE to GOVERNANCE, bypass governance, lower or drop the bucket's
default retention, suspend versioning, or delete a version. moto allows several of these (shown
here first, on a sacrificial object: the attack is real), so each is checked twice: the guard
raises ``GuardRefused`` AND nothing of it went over the wire (botocore's before-send log) AND
the object or bucket is unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from osiris_server.worm_guard import GuardedClient, GuardRefused
from tests.server.worm_fixtures import WireLog, aws_env, make_bucket, moto_url, raw_client

__all__ = ["aws_env", "moto_url"]


def locked_object(url: str, bucket: str, key: str, years: int = 6) -> tuple[str, datetime]:
    until = (datetime.now(UTC) + timedelta(days=365 * years + 2)).replace(microsecond=0)
    r = raw_client(url).put_object(
        Bucket=bucket, Key=key, Body=b"evidence", ChecksumAlgorithm="SHA256",
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
    )  # fmt: skip
    return r["VersionId"], until


@pytest.fixture
def world(moto_url) -> dict[str, Any]:
    bucket = make_bucket(moto_url)
    version, until = locked_object(moto_url, bucket, "osiris/leaves/0-2-abc.jsonl")
    raw = raw_client(moto_url)
    wire = WireLog(raw)
    return {"bucket": bucket, "version": version, "until": until, "raw": raw, "wire": wire,
            "guard": GuardedClient(raw, 6), "key": "osiris/leaves/0-2-abc.jsonl"}  # fmt: skip


def test_moto_itself_lets_retention_be_shortened_and_downgraded(moto_url) -> None:
    """Why the guard exists: without it, these calls succeed against moto."""
    bucket = make_bucket(moto_url)
    version, until = locked_object(moto_url, bucket, "victim")
    raw = raw_client(moto_url)
    short = datetime.now(UTC) + timedelta(days=1)
    weaker = {"Mode": "GOVERNANCE", "RetainUntilDate": short}
    raw.put_object_retention(Bucket=bucket, Key="victim", VersionId=version, Retention=weaker)
    head = raw.head_object(Bucket=bucket, Key="victim", VersionId=version)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"] < until
    raw.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert raw.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def _refused(world: dict[str, Any], call: str, **kw: Any) -> str:
    before = len(world["wire"].ops)
    with pytest.raises(GuardRefused) as e:
        getattr(world["guard"], call)(**kw)
    sent = world["wire"].ops[before:]
    write_ops = [op for op in sent if not op.startswith(("HeadObject", "GetObjectLock"))]
    assert write_ops == [], f"{call} reached the server: {sent}"
    return str(e.value)


def _unchanged(world: dict[str, Any]) -> None:
    raw, b = world["raw"], world["bucket"]
    head = raw.head_object(Bucket=b, Key=world["key"], VersionId=world["version"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == world["until"]
    assert raw.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    rule = raw.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert rule["DefaultRetention"]["Years"] == 6


def test_shortening_a_retain_until_is_refused_locally(world) -> None:
    earlier = world["until"] - timedelta(days=30)
    msg = _refused(world, "put_object_retention", Bucket=world["bucket"], Key=world["key"],
                   VersionId=world["version"],
                   Retention={"Mode": "COMPLIANCE", "RetainUntilDate": earlier})  # fmt: skip
    assert "only ever extended" in msg
    _unchanged(world)


@pytest.mark.parametrize("mode", ["GOVERNANCE", None, "compliance"])
def test_a_downgraded_mode_is_refused_even_with_a_later_date(world, mode) -> None:
    later = world["until"] + timedelta(days=30)
    ret = {"RetainUntilDate": later, **({"Mode": mode} if mode else {})}
    _refused(world, "put_object_retention", Bucket=world["bucket"], Key=world["key"],
             VersionId=world["version"], Retention=ret)  # fmt: skip
    _refused(world, "put_object", Bucket=world["bucket"], Key="new", Body=b"x",
             ObjectLockMode=mode or "GOVERNANCE", ObjectLockRetainUntilDate=later)  # fmt: skip
    _unchanged(world)


def test_bypass_governance_is_never_sent(world) -> None:
    for call, kw in (
        ("delete_object", {"Key": world["key"]}),
        ("put_object", {"Key": "x", "Body": b"x"}),
        ("put_object_retention", {"Key": world["key"], "Retention": {
            "Mode": "COMPLIANCE", "RetainUntilDate": world["until"] + timedelta(days=1)}}),
        ("delete_objects", {"Delete": {"Objects": [{"Key": world["key"]}]}}),
    ):  # fmt: skip
        msg = _refused(world, call, Bucket=world["bucket"], BypassGovernanceRetention=True, **kw)
        assert "BypassGovernanceRetention" in msg
    _unchanged(world)


def test_deleting_a_version_is_refused(world) -> None:
    _refused(world, "delete_object", Bucket=world["bucket"], Key=world["key"],
             VersionId=world["version"])  # fmt: skip
    one = {"Key": world["key"], "VersionId": world["version"]}
    _refused(world, "delete_objects", Bucket=world["bucket"], Delete={"Objects": [one]})
    _unchanged(world)


@pytest.mark.parametrize(
    "rule",
    [
        {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 5}},
        {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}},
        {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 10}},
        None,
    ],
)
def test_the_bucket_default_is_never_lowered_or_dropped(world, rule) -> None:
    conf: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
    if rule is not None:
        conf["Rule"] = rule
    _refused(world, "put_object_lock_configuration", Bucket=world["bucket"],
             ObjectLockConfiguration=conf)  # fmt: skip
    _unchanged(world)


def test_a_default_below_the_current_one_is_refused(moto_url) -> None:
    bucket = make_bucket(moto_url, years=10)
    raw = raw_client(moto_url)
    wire = WireLog(raw)
    with pytest.raises(GuardRefused, match="lower the bucket's 10"):
        GuardedClient(raw, 6).put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {
                "DefaultRetention": {"Mode": "COMPLIANCE", "Years": 8}}})  # fmt: skip
    assert "PutObjectLockConfiguration" not in wire.ops


def test_suspending_versioning_and_unknown_calls_are_refused(world) -> None:
    for status in ("Suspended", None):
        _refused(world, "put_bucket_versioning", Bucket=world["bucket"],
                 VersioningConfiguration={"Status": status} if status else {})  # fmt: skip
    _refused(world, "put_object_legal_hold", Bucket=world["bucket"], Key=world["key"],
             LegalHold={"Status": "OFF"})  # fmt: skip
    rules = {"Rules": [{"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]}
    msg = _refused(world, "put_bucket_lifecycle_configuration", Bucket=world["bucket"],
                   LifecycleConfiguration=rules)  # fmt: skip
    assert "not a call the WORM copy makes" in msg
    _refused(world, "delete_bucket", Bucket=world["bucket"])
    _refused(world, "create_bucket", Bucket="osiris-unlocked-bucket")
    _unchanged(world)


def test_extending_is_allowed(world) -> None:
    later = world["until"] + timedelta(days=365)
    world["guard"].put_object_retention(
        Bucket=world["bucket"], Key=world["key"], VersionId=world["version"],
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})  # fmt: skip
    head = world["raw"].head_object(Bucket=world["bucket"], Key=world["key"])
    assert head["ObjectLockRetainUntilDate"] == later
    assert "PutObjectRetention" in world["wire"].ops  # the wire log does see what is sent
