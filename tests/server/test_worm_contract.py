"""Opt-in contract test against REAL S3 (or another S3 store): what moto does not enforce.

Skipped unless ``OSIRIS_S3_CONTRACT=1``. It needs a bucket made for it, with Object Lock, and
credentials in boto3's standard chain (docs/server.md, WORM, "Contract test against real S3"):

    aws s3api create-bucket --bucket B --object-lock-enabled-for-bucket
    aws s3api put-object-lock-configuration --bucket B --object-lock-configuration \
        '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}'
    OSIRIS_S3_CONTRACT=1 OSIRIS_S3_BUCKET=B [OSIRIS_S3_ENDPOINT=URL] [AWS_REGION=R] \
        .venv/bin/python -m pytest -q tests/server/test_worm_contract.py

WARNING: objects it writes are locked COMPLIANCE for ONE DAY (they cannot be deleted before,
by anyone, and are billed). It uses the raw client on purpose, without the guard: the store
itself must refuse shortening, downgrading, deleting a locked version and suspending versioning.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("OSIRIS_S3_CONTRACT") != "1", reason="set OSIRIS_S3_CONTRACT=1 (real S3)"
)


@pytest.fixture
def s3():  # noqa: ANN201
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3", endpoint_url=os.environ.get("OSIRIS_S3_ENDPOINT") or None)


def _refused(call, *a, **kw) -> str:  # noqa: ANN001
    with pytest.raises(Exception) as e:
        call(*a, **kw)
    return e.value.response["Error"]["Code"]


def test_the_store_enforces_compliance_mode(s3) -> None:
    bucket = os.environ["OSIRIS_S3_BUCKET"]
    key = f"osiris-contract/{uuid.uuid4().hex}"
    until = datetime.now(UTC) + timedelta(days=1)
    lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
    v = s3.put_object(Bucket=bucket, Key=key, Body=b"contract", ChecksumAlgorithm="SHA256",
                      **lock)["VersionId"]  # fmt: skip
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=12)}
    assert _refused(s3.put_object_retention, Bucket=bucket, Key=key, VersionId=v,
                    Retention=shorter) == "AccessDenied"  # fmt: skip
    weaker = {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(hours=1)}
    assert _refused(s3.put_object_retention, Bucket=bucket, Key=key, VersionId=v,
                    Retention=weaker) == "AccessDenied"  # fmt: skip
    assert _refused(s3.delete_object, Bucket=bucket, Key=key, VersionId=v) == "AccessDenied"
    assert _refused(s3.delete_object, Bucket=bucket, Key=key, VersionId=v,
                    BypassGovernanceRetention=True) == "AccessDenied"  # fmt: skip
    code = _refused(s3.put_bucket_versioning, Bucket=bucket,
                    VersioningConfiguration={"Status": "Suspended"})  # fmt: skip
    assert code in ("InvalidBucketState", "AccessDenied")
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=v)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= until - timedelta(seconds=1)
