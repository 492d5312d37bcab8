"""Shared by the WORM tests: moto's S3 server on 127.0.0.1, buckets, a wire log.

moto's ``ThreadedMotoServer`` is a real S3 HTTP endpoint on loopback (Object Lock partly
enforced: deleting a locked version is 403; shortening or downgrading is NOT refused, which is
why the guard exists — ../shared/reference/worm.md). Credentials reach boto3 through its
standard chain (the environment), as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.packet_fixture import fake_packet

__all__ = ["fake_packet"]

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials by boto3's standard chain (never in server.toml)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


class WireLog:
    """Every request a boto3 client sends, by operation name (botocore's before-send event:
    what leaves the process, after every handler of ours ran)."""

    def __init__(self, client: Any) -> None:
        self.ops: list[str] = []
        client.meta.events.register("before-send.s3.*", self._seen)

    def _seen(self, request: Any, **kw: Any) -> None:
        self.ops.append(kw.get("event_name", "").rsplit(".", 1)[-1])


def raw_client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def make_bucket(url: str, *, lock: bool = True, mode: str = "COMPLIANCE", years: int = 6) -> str:
    """A fresh bucket: Object Lock with a default retention (or no lock at all)."""
    name = f"osiris-worm-{uuid.uuid4().hex[:12]}"
    c = raw_client(url)
    if lock:
        c.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        c.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Years": years}},
            },
        )
    else:
        c.create_bucket(Bucket=name)
    return name
