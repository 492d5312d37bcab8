"""`osiris packet upload`: a packet built by `osiris packet build` reaches the server's packet
store and, with `osiris-server worm upload`, the S3 Object Lock bucket — end to end.

The real server subprocess (tests/tui/conftest.py ``live``), the real CLIs, moto's S3 server on
loopback. Attacks: uploading one site's packet under another site (refused locally and by the
server), a packet changed after the build (refused by the server, exit 2, nothing stored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.server.worm_fixtures import make_bucket, moto_url, raw_client
from tests.tui.test_packet_cli import MONTH, packet, run, site

__all__ = ["moto_url", "packet", "site"]  # fixtures
SERVER = str(Path(sys.executable).parent / "osiris-server")


def test_a_built_packet_is_stored_once_and_reaches_worm(live, site, packet, moto_url) -> None:
    r = run(live, "packet", "upload", str(packet), "--site", site["id"], "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["new"] is True and out["packet"]["month"] == MONTH
    sha = out["packet"]["sha256"]
    assert (live.data / "packets" / f"{sha}.zip").read_bytes() == packet.read_bytes()
    again = run(live, "packet", "upload", str(packet), "--site", site["id"])
    assert again.returncode == 0 and again.stdout.startswith("already stored: " + sha)
    with live.admin() as h:
        listed = h.get(f"/api/v1/sites/{site['id']}/packets").json()["packets"]
    assert [p["sha256"] for p in listed] == [sha]
    # the WORM pass puts it in the bucket, locked
    bucket = make_bucket(moto_url)
    toml = live.data / "server.toml"
    original = toml.read_text()
    try:
        toml.write_text(original + f'\n[worm]\nbucket = "{bucket}"\nendpoint_url = "{moto_url}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSIRIS_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        up = subprocess.run([SERVER, "worm", "upload", "--data", str(live.data)],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
        assert up.returncode == 0, up.stderr
    finally:
        toml.write_text(original)
    key = f"osiris/packets/{site['id']}/{sha}.zip"
    head = raw_client(moto_url).head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    body = raw_client(moto_url).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == packet.read_bytes()


def test_another_sites_packet_or_a_changed_one_is_refused(live, site, packet, tmp_path) -> None:
    other = live.site("Other clinic")["id"]
    r = run(live, "packet", "upload", str(packet), "--site", other)
    assert r.returncode == 2 and f"is a packet of site {site['id']}" in r.stderr
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(packet) as src, zipfile.ZipFile(changed, "w") as dst:
        for n in src.namelist():
            data = src.read(n)
            dst.writestr(n, b'{"status":"met"}' if n == "report.json" else data)
    r = run(live, "packet", "upload", str(changed), "--site", site["id"])
    assert r.returncode == 2, r.stderr
    assert "does not match its manifest entry" in r.stderr
    with live.admin() as h:
        listed = h.get(f"/api/v1/sites/{other}/packets").json()["packets"]
    assert listed == []


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_a_file_that_is_not_a_packet_is_a_usage_error(live, tmp_path, content) -> None:
    f = tmp_path / "x.zip"
    f.write_bytes(content)
    r = run(live, "packet", "upload", str(f), "--site", "any-site")
    assert r.returncode == 2 and "not a packet zip" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
