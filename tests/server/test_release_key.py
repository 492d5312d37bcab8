"""The server's release key (issue 16 item 6), over loopback HTTP, both engines: ``init`` makes a
0600 ``release.key`` distinct from the order key and the enrolment answer carries its vkey;
``POST /api/v1/releases`` signs with it, or stores an envelope signed offline by it as is and
refuses one signed by the order key or any other key (400, nothing stored); a rollout sends an
appliance that pinned no release key (enrolled earlier) the same release signed by the order
key; a data dir from before gets a release key on first start (a log line says so); a server
given only the release vkey (``init --release-vkey``) holds no private key, refuses to sign
(409) and accepts pre-signed releases; a bad ``--release-vkey`` writes nothing."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from osiris_core.keys import Signer, load_private_key
from osiris_core.release import make_release, sign_release
from osiris_server.app import init_data
from osiris_server.config import ConfigError
from tests.server.conftest import Server, start_server, stop_server

SYS = "/nix/store/" + "6" * 32 + "-osiris-appliance-0.2.0"


def _order_params(server: Server, appliance_id: str) -> dict[str, Any]:
    orders = server.admin.get(f"/api/v1/appliances/{appliance_id}/orders").json()["orders"]
    return orders[0]["envelope"]["order"]["params"]


def test_init_makes_a_release_key_and_enrolment_pins_it(server) -> None:
    path = server.data / "keys" / "release.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    release = load_private_key(path)
    order = load_private_key(server.data / "keys" / "order.key")
    assert server.init["release_vkey"] == release.vkey != order.vkey
    site = server.site("Clinic A")
    body = {"code": server.claim_code(site["id"]), "hostname": "box", "agent_version": "0.1.0",
            "signing_pub": base64.b64encode(os.urandom(32)).decode(),
            "cosign_pub": base64.b64encode(os.urandom(32)).decode()}  # fmt: skip
    r = server.client().post("/api/v1/provision/claim", json=body)
    assert r.status_code == 201 and r.json()["release_vkey"] == release.vkey, r.text
    assert server.admin.get("/api/v1/log/keys").json()["release"] == release.vkey


def test_releases_signed_by_the_release_key_or_presigned(server) -> None:
    site = server.site("Clinic A")
    a = server.enroll(site["id"], "box-a")
    release = load_private_key(server.data / "keys" / "release.key")
    order = load_private_key(server.data / "keys" / "order.key")
    r = server.admin.post("/api/v1/releases", json={"version": "0.2.0", "system": SYS})
    assert r.status_code == 201 and r.json()["key_id"] == release.key_id_hex, r.text
    # refused: an order-key envelope, another key's, a forged key id, mixed bodies, no version
    order_env = sign_release(make_release(SYS, "x", version="0.3.0"), order)
    other_env = sign_release(make_release(SYS, "x", version="0.3.0"), Signer.generate("o"))
    forged = json.loads(json.dumps(other_env))
    forged["sig"]["key_id"] = release.key_id_hex
    no_version = sign_release(make_release(SYS, "x"), release)
    for body, why in (
        ({"envelope": order_env}, "unknown key"),
        ({"envelope": other_env}, "unknown key"),
        ({"envelope": forged}, "does not verify"),
        ({"envelope": sign_release(make_release(SYS, "x", version="0.3.0"), release),
          "version": "0.3.0"}, "either envelope alone"),
        ({"envelope": no_version}, "must name its version"),
        ({"envelope": {"release": "nope"}}, "exactly release and sig"),
        ({"name": "x"}, "version and system are required"),
    ):  # fmt: skip
        r = server.admin.post("/api/v1/releases", json=body)
        assert r.status_code == 400 and why in r.text, (why, r.text)
    listed = server.admin.get("/api/v1/releases").json()["releases"]
    assert [x["version"] for x in listed] == ["0.2.0"]
    # accepted: an envelope signed offline by the release key, stored exactly as sent
    env = sign_release(make_release(SYS.replace("6", "7"), "offline", version="0.3.0"), release)
    r = server.admin.post("/api/v1/releases", json={"envelope": env})
    assert r.status_code == 201, r.text
    ro = server.admin.post("/api/v1/rollouts", json={"release": "0.3.0", "sites": [site["id"]],
                                                     "outside_window": True})  # fmt: skip
    assert ro.status_code == 201, ro.text
    assert _order_params(server, a.id)["release"] == env


def test_an_appliance_enrolled_earlier_gets_the_order_key_release(server) -> None:
    site = server.site("Clinic A")
    new, old = server.enroll(site["id"], "new"), server.enroll(site["id"], "old")
    with server.app.db.write() as w:
        w.execute("UPDATE appliances SET release_key_id = NULL WHERE id = ?", [old.id])
    server.admin.post("/api/v1/releases", json={"version": "0.2.0", "system": SYS})
    ro = server.admin.post("/api/v1/rollouts", json={"release": "0.2.0", "sites": [site["id"]],
                                                     "outside_window": True})  # fmt: skip
    assert ro.status_code == 201, ro.text
    release = load_private_key(server.data / "keys" / "release.key")
    order = load_private_key(server.data / "keys" / "order.key")
    sent_new = _order_params(server, new.id)["release"]
    sent_old = _order_params(server, old.id)["release"]
    assert sent_new["sig"]["key_id"] == release.key_id_hex
    assert sent_old["sig"]["key_id"] == order.key_id_hex
    assert sent_new["release"] == sent_old["release"]
    # an appliance that pinned ANOTHER release key is refused, nothing made
    with server.app.db.write() as w:
        w.execute("UPDATE appliances SET release_key_id = 'deadbeef' WHERE id = ?", [old.id])
    before = len(server.admin.get("/api/v1/rollouts").json()["rollouts"])
    r = server.admin.post("/api/v1/rollouts", json={"release": "0.2.0", "sites": [site["id"]]})
    assert r.status_code == 409 and "deadbeef" in r.text, r.text
    assert len(server.admin.get("/api/v1/rollouts").json()["rollouts"]) == before


def test_a_data_dir_from_before_gets_a_release_key(tmp_path, index_urls, capfd) -> None:
    data = tmp_path / "old"
    init_data(data, "test.osiris/osiris/log", index_urls())
    (data / "keys" / "release.key").unlink()  # as a data dir made before release keys
    capfd.readouterr()
    app, srv, _url = start_server(data)
    try:
        made = load_private_key(data / "keys" / "release.key")
        assert app.release.signer is not None and app.release.verifier.vkey == made.vkey
        assert stat.S_IMODE((data / "keys" / "release.key").stat().st_mode) == 0o600
    finally:
        stop_server(app, srv)
    assert '"event":"release_key_created"' in capfd.readouterr().err
    app, srv, _url = start_server(data)  # the next start loads that same key, says nothing
    try:
        assert app.release.verifier.vkey == made.vkey
    finally:
        stop_server(app, srv)
    assert "release_key_created" not in capfd.readouterr().err


def test_an_offline_release_key_server(tmp_path, index_urls) -> None:
    offline = Signer.generate("msp/osiris/release")
    data = tmp_path / "srv"
    info = init_data(data, "test.osiris/osiris/log", index_urls(), offline.vkey)
    assert info["release_vkey"] == offline.vkey
    assert not (data / "keys" / "release.key").exists()
    app, srv, url = start_server(data)
    server = Server(url=url, app=app, data=data, admin_token=info["admin_token"], init=info)
    try:
        site = server.site("Clinic A")
        a = server.enroll(site["id"], "box-a")
        r = server.admin.post("/api/v1/releases", json={"version": "0.2.0", "system": SYS})
        assert r.status_code == 409 and r.json()["error"]["code"] == "E_NO_RELEASE_KEY"
        assert server.admin.get("/api/v1/releases").json()["releases"] == []
        env = sign_release(make_release(SYS, "osiris-0.2.0", version="0.2.0"), offline)
        assert server.admin.post("/api/v1/releases", json={"envelope": env}).status_code == 201
        ro = server.admin.post("/api/v1/rollouts", json={"release": "0.2.0",
                                                         "sites": [site["id"]]})  # fmt: skip
        assert ro.status_code == 201, ro.text
        assert _order_params(server, a.id)["release"] == env
    finally:
        for c in server.clients:
            c.close()
        stop_server(app, srv)


def test_a_bad_release_vkey_writes_nothing(tmp_path) -> None:
    with pytest.raises(ConfigError, match="release-vkey"):
        init_data(tmp_path / "srv", "test.osiris/osiris/log", None, "not-a-vkey")
    assert not (tmp_path / "srv").exists()


def test_offline_signing_commands(tmp_path: Path) -> None:
    key = tmp_path / "offline.key"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "osiris_server.cli", "release", *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    made = cli("keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli("keygen", "--out", str(key)).returncode == 2  # never overwrites a key
    assert cli("vkey", "--key", str(key)).stdout.strip() == made.stdout.strip()
    out = cli("sign", "--key", str(key), "--version", "0.5.0", "--system", SYS,
              "--allow-downgrade")  # fmt: skip
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env["release"]["allow_downgrade"] is True and env["release"]["version"] == "0.5.0"
    bad = cli("sign", "--key", str(key), "--version", "0.5.0", "--system", "/tmp/x")
    assert bad.returncode == 2 and "store path" in bad.stderr and bad.stdout == ""
