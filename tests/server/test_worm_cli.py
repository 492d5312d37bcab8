"""`osiris-server worm status` / `worm upload` in a subprocess, and the ``[worm]`` config.

The real binary against a real data dir and moto's S3 on loopback; credentials by the
environment only. A lowered retention is refused at startup (App.open) with exit 2; a key that
looks like a credential in ``[worm]`` is refused outright.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osiris_server import config as config_mod
from osiris_server.worm_config import WormConfigError, parse
from tests.server.test_worm import evidence, versions
from tests.server.worm_fixtures import aws_env, make_bucket, moto_url

__all__ = ["aws_env", "moto_url"]
SERVER = str(Path(sys.executable).parent / "osiris-server")


def with_worm(data: Path, url: str, bucket: str, years: int = 6) -> None:
    toml = data / "server.toml"
    text = toml.read_text().split("\n[worm]\n")[0]
    toml.write_text(text + f'\n[worm]\nbucket = "{bucket}"\nendpoint_url = "{url}"\n'
                    f"retention_years = {years}\nleaf_batch = 3\ncadence_s = 0\n")  # fmt: skip


def run(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSIRIS_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    return subprocess.run([SERVER, "worm", *args, "--data", str(data)], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip


def test_status_and_upload_and_a_lowered_retention(server, moto_url) -> None:
    bucket = make_bucket(moto_url, years=7)
    evidence(server, 4)
    with_worm(server.data, moto_url, bucket, years=7)
    st = run(server.data, "status", "--json")
    doc = json.loads(st.stdout)
    assert doc["configured"] and doc["bucket"] == {"bucket": bucket, "problems": []}
    assert doc["retention_high_water"] == 0 and doc["kinds"]["leaves"]["uploaded"] == 0
    up = run(server.data, "upload")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout) == {"uploaded": 2, "skipped": 0, "pending": 0}
    assert "osiris/leaves/0-2-" in up.stderr  # progress on stderr
    assert len(versions(moto_url, bucket)) == 2
    st = run(server.data, "status", "--json")
    assert st.returncode == 0, st.stdout
    doc = json.loads(st.stdout)
    assert doc["retention_high_water"] == 7
    assert doc["kinds"]["leaves"]["uploaded"] == 1 and doc["kinds"]["checkpoints"]["uploaded"] == 1
    assert doc["kinds"]["leaves"]["newest_upload"]
    human = run(server.data, "status")
    assert "retention: 7 years (high-water mark 7)" in human.stdout
    # the MSP lowers retention: refused at startup, one line, exit 2, nothing uploaded
    with_worm(server.data, moto_url, bucket, years=6)
    low = run(server.data, "upload")
    assert low.returncode == 2, low.stderr
    assert "can only be raised" in low.stderr and "Traceback" not in low.stderr
    assert len(low.stderr.strip().splitlines()) == 1


def test_status_shows_a_bucket_not_fit_for_worm(server, moto_url) -> None:
    bucket = make_bucket(moto_url, lock=False)
    with_worm(server.data, moto_url, bucket)
    st = run(server.data, "status")
    assert st.returncode == 1
    assert "NOT FIT" in st.stdout and "Object Lock is not enabled" in st.stdout
    up = run(server.data, "upload")
    assert up.returncode == 1 and "refusing to upload" in up.stderr


def test_upload_without_a_worm_section_is_a_usage_error(server) -> None:
    r = run(server.data, "upload")
    assert r.returncode == 2 and "no [worm] section" in r.stderr
    st = run(server.data, "status", "--json")
    assert json.loads(st.stdout)["configured"] is False


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"bucket": "b-ok", "aws_secret_access_key": "x"}, "credentials do not go in"),
        ({"bucket": "b-ok", "retention_years": 5}, "at least 6"),
        ({"bucket": "b-ok", "retention_years": True}, "at least 6"),
        ({"bucket": "Bad_Bucket"}, "bucket name"),
        ({"bucket": "b-ok", "prefix": "../x"}, "prefix"),
        ({"bucket": "b-ok", "endpoint_url": "http://u:p@host"}, "endpoint_url"),
        ({"bucket": "b-ok", "colour": "red"}, "unknown key"),
        ({"bucket": "b-ok", "cadence_s": -1}, "cadence_s"),
    ],
)
def test_bad_worm_sections_are_refused(raw: dict[str, Any], why: str) -> None:
    with pytest.raises(WormConfigError, match=why):
        parse(raw)


def test_server_toml_worm_section_loads(server) -> None:
    with_worm(server.data, "http://127.0.0.1:1", "osiris-worm-a", years=8)
    cfg = config_mod.load(server.data)
    assert cfg.worm is not None and cfg.worm.retention_years == 8 and cfg.worm.prefix == "osiris"
    assert "secret" not in repr(cfg.worm).lower()
