"""RFC 3161 tokens end to end: a real server with a real lab TSA, the real `osiris` CLI.

`osiris packet build` asks the server to timestamp the very checkpoint the packet proves
against and carries the token as checkpoint.tsr; `osiris evidence verify --packet --tsa-ca`
checks it offline. The hostile MSP's moves, each a test: swap in a token from another TSA,
flip a byte, reuse a genuine token over another checkpoint, drop the token (rebuilding the
unsigned manifest every time so only the token is wrong). And `osiris evidence pull` carries the
server's token too; a server without a TSA builds a packet without one, with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from osiris_core import canonical
from osiris_core import note as notes
from osiris_core.keys import Verifier
from osiris_core.trust import make_attestation
from osiris_lab.tsa import LabTsa
from osiris_server.tsa import TsaConfig
from tests.server.conftest import (  # noqa: F401
    Appliance,
    Server,
    checkin_body,
    index_urls,
    pg_index_template,
    server_factory,
)
from tests.tsa_fixtures import lab_tsa, other_tsa  # noqa: F401

OSIRIS = str(Path(sys.executable).parent / "osiris")
FROM, TO = "2026-10-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z"
DAYS = ["2026-09-30", "2026-10-05", "2026-10-10", "2026-10-20", "2026-11-02"]


def osiris(server: Server, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update(OSIRIS_SERVER=server.url, OSIRIS_TOKEN=server.admin_token,
               OSIRIS_PROFILE_FILE="/nonexistent",
               XDG_CONFIG_HOME=str(server.data / "cfg"))  # fmt: skip
    return subprocess.run([OSIRIS, *args], capture_output=True, text=True, env=env, timeout=120)


def seed(server: Server, tmp: Path) -> tuple[Appliance, Path]:
    """One appliance: a bundle before, three in and one after October, cosigned; its
    attestation (what `osiris-agent attest` writes)."""
    site = server.site("TSA packet clinic")
    a = server.enroll(site["id"])
    envs = []
    for i, day in enumerate(DAYS):
        t = f"{day}T10:{i:02d}:00.000Z"
        envs.append(a.envelope(host_id="dc01", check="windows_firewall", outcome="compliant",
                               started_at=t, finished_at=t))  # fmt: skip
    c = server.client(a.token)
    out = c.post("/api/v1/evidence", json={"envelopes": envs}).json()
    log = Verifier.from_vkey(server.init["log_vkey"])
    body = notes.open_note(out["checkpoint"], [log]).text
    size = notes.Checkpoint.parse(body).size
    line = notes.cosign(body, a.cosigner, int(time.time()))
    r = c.post("/api/v1/checkin",
               json=checkin_body(a, size, cosignatures=[{"size": size, "line": line}]))  # fmt: skip
    assert r.status_code == 200, r.text
    keys = server.admin.get("/api/v1/log/keys").json()
    att = make_attestation(
        a.signer, appliance_id=a.id, site_id=a.site_id, cosign_vkey=a.cosigner.vkey,
        log_vkey=keys["log"], order_vkey=keys["order"], rotations=[],
        chain_head={"seq": a.chain.seq, "hash": a.chain.head}, cosigned_checkpoint=None,
        attested_at=canonical.utc_now(), agent_version="0.1.0",
    )  # fmt: skip
    path = tmp / "clinic.json"
    path.write_text(json.dumps(att))
    return a, path


def build(server: Server, a: Appliance, out: Path) -> subprocess.CompletedProcess:
    r = osiris(server, "packet", "build", "--site", a.site_id, "--from", FROM, "--to", TO,
               "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r


def rewrite(src: Path, dst: Path, tsr: bytes | None) -> Path:
    """The packet with checkpoint.tsr replaced (None: dropped) and the manifest rebuilt to
    match, as the MSP who builds packets can."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    m = canonical.loads(files["manifest.json"])
    m["files"] = [f for f in m["files"] if f["path"] != "checkpoint.tsr"]
    files.pop("checkpoint.tsr", None)
    if tsr is not None:
        files["checkpoint.tsr"] = tsr
        entry = {"path": "checkpoint.tsr", "sha256": hashlib.sha256(tsr).hexdigest(),
                 "size": len(tsr)}  # fmt: skip
        m["files"] = sorted([*m["files"], entry], key=lambda f: f["path"])
    files["manifest.json"] = canonical.dumps(m)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return dst


def verify(server: Server, packet: Path, *extra: str) -> subprocess.CompletedProcess:
    return osiris(server, "evidence", "verify", "--packet", str(packet), *extra)


@pytest.fixture
def tsa_server(server_factory: Any, lab_tsa: LabTsa) -> Server:  # noqa: F811
    return server_factory(tsa=TsaConfig(url=lab_tsa.url, ca_file=lab_tsa.ca_file))


def test_packet_carries_its_token_and_verifies_with_the_pinned_tsa(
    tsa_server: Server,
    tmp_path: Path,
    lab_tsa: LabTsa,  # noqa: F811
    other_tsa: LabTsa,  # noqa: F811
) -> None:
    server = tsa_server
    a, att = seed(server, tmp_path)
    pkt = tmp_path / "p.zip"
    r = build(server, a, pkt)
    assert "RFC 3161" not in r.stderr  # no warning: the token was made
    with zipfile.ZipFile(pkt) as z:
        tsr = z.read("checkpoint.tsr")
        note = z.read("checkpoint").decode()
        m = canonical.loads(z.read("manifest.json"))
    assert "checkpoint.tsr" in {f["path"] for f in m["files"]}
    size = m["checkpoint_size"]
    row = server.admin.get("/api/v1/log/timestamp", params={"size": size}).json()
    assert base64.b64decode(row["token"]) == tsr  # the token over THIS packet's checkpoint
    assert notes.Checkpoint.parse(note[: note.index("\n\n") + 1]).size == size
    trust = ["--trust", str(att)]
    pin = ["--tsa-ca", str(lab_tsa.ca_file)]

    ok = verify(server, pkt, *trust, *pin)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"PASS E_TSA checkpoint.tsr the checkpoint existed by {row['gen_time']}" in ok.stdout
    # not pinned: reported, not trusted, and not a failure
    loose = verify(server, pkt, *trust)
    assert loose.returncode == 0, loose.stdout
    assert "WARN W_TSA_UNPINNED checkpoint.tsr" in loose.stdout and "PASS E_TSA" not in loose.stdout
    # the wrong TSA pinned
    wrong = verify(server, pkt, *trust, "--tsa-ca", str(other_tsa.ca_file))
    assert wrong.returncode == 1 and "FAIL E_TSA checkpoint.tsr" in wrong.stdout
    # a flipped byte (manifest rebuilt to match)
    bad = bytearray(tsr)
    bad[len(bad) // 2] ^= 0x01
    r = verify(server, rewrite(pkt, tmp_path / "t.zip", bytes(bad)), *trust, *pin)
    assert r.returncode == 1 and "FAIL E_TSA checkpoint.tsr" in r.stdout, r.stdout
    assert "E_MANIFEST" not in r.stdout.replace("PASS E_MANIFEST", "")
    # a genuine token of the same TSA, over another checkpoint (the empty log's)
    zero = base64.b64decode(
        server.admin.post("/api/v1/log/timestamp", json={"size": 0}).json()["token"]
    )
    r = verify(server, rewrite(pkt, tmp_path / "o.zip", zero), *trust, *pin)
    assert r.returncode == 1 and "another checkpoint" in r.stdout, r.stdout
    # dropped: with the TSA pinned this fails the (strict) packet check; without a pin it still
    # fails, because report.json names the token's time and the re-derived report cannot
    dropped = rewrite(pkt, tmp_path / "d.zip", None)
    r = verify(server, dropped, *trust, *pin)
    assert r.returncode == 1 and "WARN W_TSA_MISSING checkpoint.tsr" in r.stdout, r.stdout
    r = verify(server, dropped, *trust)
    assert r.returncode == 1 and "TSA" not in r.stdout, r.stdout
    assert "FAIL E_REPORT report.json differs" in r.stdout and "checkpoint" in r.stdout


def test_pull_carries_the_token_and_export_verify_checks_it(
    tsa_server: Server,
    tmp_path: Path,
    lab_tsa: LabTsa,  # noqa: F811
    other_tsa: LabTsa,  # noqa: F811
) -> None:
    server = tsa_server
    a, att = seed(server, tmp_path)
    exp = tmp_path / "exp"
    r = osiris(server, "evidence", "pull", "--site", a.site_id, "--out", str(exp))
    assert r.returncode == 0, r.stderr
    assert not (exp / "checkpoint.tsr").exists()  # nothing anchored that size yet
    size = notes.Checkpoint.parse((exp / "checkpoint").read_text().split("\n\n")[0] + "\n").size
    assert server.admin.post("/api/v1/log/timestamp", json={"size": size}).status_code == 200
    r = osiris(server, "evidence", "pull", "--site", a.site_id, "--out", str(exp), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (exp / "checkpoint.tsr").is_file()
    r = osiris(server, "evidence", "verify", "--strict", "--trust", str(att),
               "--tsa-ca", str(lab_tsa.ca_file), str(exp))  # fmt: skip
    assert r.returncode == 0 and "PASS E_TSA" in r.stdout, r.stdout + r.stderr
    r = osiris(server, "evidence", "verify", "--trust", str(att),
               "--tsa-ca", str(other_tsa.ca_file), str(exp))  # fmt: skip
    assert r.returncode == 1 and "FAIL E_TSA" in r.stdout
    # --tsa-ca that is not a usable PEM chain: exit 2, one line, nothing verified
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for bad in (tmp_path / "missing.pem", tmp_path / "junk.pem"):
        r = osiris(server, "evidence", "verify", "--tsa-ca", str(bad), str(exp))
        assert r.returncode == 2 and "--tsa-ca" in r.stderr and r.stdout == "", r.stderr
        assert "Traceback" not in r.stderr


def test_server_without_tsa_builds_without_a_token_and_warns(
    server_factory: Any,  # noqa: F811
    tmp_path: Path,
    lab_tsa: LabTsa,  # noqa: F811
) -> None:
    server = server_factory()
    a, att = seed(server, tmp_path)
    pkt = tmp_path / "p.zip"
    r = build(server, a, pkt)
    assert "warning: no RFC 3161 timestamp" in r.stderr and "no [tsa] section" in r.stderr
    with zipfile.ZipFile(pkt) as z:
        assert "checkpoint.tsr" not in z.namelist()
    assert verify(server, pkt, "--trust", str(att)).returncode == 0
    r = verify(server, pkt, "--trust", str(att), "--tsa-ca", str(lab_tsa.ca_file))
    assert r.returncode == 1 and "W_TSA_MISSING" in r.stdout
