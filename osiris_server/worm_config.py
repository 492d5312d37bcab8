"""``[worm]`` in server.toml: where the WORM copy goes (S3 Object Lock) and for how long.

Why its own module: the server reads this section whether or not boto3 is installed (the
``osiris[worm]`` extra), so nothing here imports boto3. Credentials are never a key of this
section: boto3 finds them by its standard chain (environment, ``~/.aws``, an instance role),
so they are never in server.toml, in a backup of it, or in a log line.

``retention_years`` may only go up: ``worm_state`` keeps the highest value objects were ever
locked with (the high-water mark), and a configuration asking fewer years is refused at startup
and at upload (``check_high_water``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from osiris_core.errors import ExitCode, OsirisError

MIN_RETENTION_YEARS = 6  # HIPAA §164.316(b)(2)(i): six years
DEFAULT_CADENCE_S = 3600.0
DEFAULT_LEAF_BATCH = 10_000
# S3 bucket names (the DNS-compatible rules); a prefix is a plain path of safe segments
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")
_SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "secret_key",
                "access_key", "password")  # fmt: skip
_KEYS = ("bucket", "endpoint_url", "region", "prefix", "retention_years", "cadence_s",
         "leaf_batch")  # fmt: skip


class WormConfigError(OsirisError):
    """A ``[worm]`` section or a retention this server cannot use (exit 2)."""

    code = "E_WORM_CONFIG"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class WormConfig:
    bucket: str
    region: str = "us-east-1"
    prefix: str = "osiris"
    retention_years: int = MIN_RETENTION_YEARS
    cadence_s: float = DEFAULT_CADENCE_S  # the tick's upload pass; 0: only `worm upload`
    endpoint_url: str | None = None  # an S3-compatible endpoint; None: AWS
    leaf_batch: int = DEFAULT_LEAF_BATCH  # log entries per leaves object (full ranges only)


def parse(raw: Any, where: str = "server.toml") -> WormConfig:
    """The ``[worm]`` table, checked; any problem is a ``WormConfigError`` naming the key."""
    if not isinstance(raw, dict):
        raise WormConfigError(f"{where}: [worm] must be a table")
    for k in raw:
        if k in _SECRET_KEYS:
            raise WormConfigError(
                f"{where}: [worm] {k}: credentials do not go in server.toml; give them to "
                "boto3's standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, a role)"
            )
        if k not in _KEYS:
            raise WormConfigError(f"{where}: [worm] has an unknown key {k!r}")
    bucket = raw.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise WormConfigError(f"{where}: [worm] bucket must be an S3 bucket name")
    years = raw.get("retention_years", MIN_RETENTION_YEARS)
    if not isinstance(years, int) or isinstance(years, bool) or years < MIN_RETENTION_YEARS:
        raise WormConfigError(
            f"{where}: [worm] retention_years must be an integer of at least "
            f"{MIN_RETENTION_YEARS} (HIPAA keeps records six years)"
        )
    if years > 100:
        raise WormConfigError(f"{where}: [worm] retention_years must be at most 100")
    prefix = raw.get("prefix", "osiris")
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or ".." in prefix:
        raise WormConfigError(f"{where}: [worm] prefix must be a path like 'osiris' or 'msp/cc1'")
    cadence = raw.get("cadence_s", DEFAULT_CADENCE_S)
    if not isinstance(cadence, int | float) or isinstance(cadence, bool) or cadence < 0:
        raise WormConfigError(f"{where}: [worm] cadence_s must be a number of seconds >= 0")
    batch = raw.get("leaf_batch", DEFAULT_LEAF_BATCH)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1_000_000:
        raise WormConfigError(f"{where}: [worm] leaf_batch must be between 1 and 1000000")
    region = raw.get("region", "us-east-1")
    endpoint = raw.get("endpoint_url")
    if not isinstance(region, str) or not region:
        raise WormConfigError(f"{where}: [worm] region must be a string")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not re.match(r"https?://[^\s@]+\Z", endpoint)
    ):
        raise WormConfigError(f"{where}: [worm] endpoint_url must be an http(s) URL without @")
    return WormConfig(bucket, region, prefix.strip("/"), years, float(cadence), endpoint, batch)
