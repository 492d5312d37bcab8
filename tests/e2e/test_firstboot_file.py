"""First-boot enrolment by provisioning file, end to end: a real ``osiris-server``, the real
``osiris-agent run`` in a subprocess on an unenrolled state dir. A file naming another server
is refused and wiped (nothing enrolled); the good file enrols the appliance, ``run`` goes on
into cycles that record evidence, and a restarted ``run`` on the same state dir continues the
hash chain. The claim code appears in no output; the wipe really overwrites the bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osiris_agent import provision_file
from tests.agent.fixtures_agent import Sntp
from tests.e2e.conftest import ROOT, Central, assert_one_chain, seed_site


def _run(cfg: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    f = open(out, "ab")  # noqa: SIM115 - handed to the child
    p = subprocess.Popen([sys.executable, "-m", "osiris_agent.cli", "run", "--config", str(cfg)],
                         env=env, stdout=f, stderr=subprocess.STDOUT)  # fmt: skip
    f.close()
    return p


def _until(cond, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stop(p: subprocess.Popen[bytes]) -> int:
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=20)


def _config(tmp: Path, c: Central, usb: Path, ntp: Sntp) -> Path:
    cfg = tmp / "etc" / "agent.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        f'[server]\nurl = "{c.url}/"\n[agent]\nstate_dir = "{tmp / "state"}"\nlab = true\n'
        f'checkin_interval_s = 5\n[ntp]\nservers = ["{ntp.server}"]\nmin_good = 1\n'
        f'[enrolment]\nprovision_dirs = ["{tmp / "nothing"}", "{usb}"]\npoll_interval_s = 5\n'
    )
    return cfg


@pytest.mark.timeout(240)
def test_provisioning_file_enrols_and_restart_continues_chain(central: Central, tmp_path) -> None:
    site = seed_site(central)
    code = central.api("POST", "/provisions", {"site_id": site.id})["code"]
    usb = tmp_path / "usb"
    usb.mkdir()
    ntp = Sntp()
    out = tmp_path / "agent.out"
    try:
        cfg = _config(tmp_path, central, usb, ntp)
        state = tmp_path / "state"
        prov = usb / provision_file.FILE_NAME
        # Attack: a stick naming another server. Refused, wiped, nothing enrolled or spent.
        prov.write_text(f'server_url = "https://evil.example"\nclaim_code = "{code}"\n')
        p = _run(cfg, out)
        try:
            _until(lambda: not prov.exists(), "the foreign file to be wiped")
            time.sleep(1)
            assert not (state / "pins.json").exists() and p.poll() is None
            assert "not this appliance's server" in out.read_text()
            # The good file (trailing slash ignored); picked up on the next poll.
            prov.write_text(f'server_url = "{central.url}"\nclaim_code = "{code}"\n')
            _until(lambda: len(central.evidence(site.id)) >= 1, "evidence after enrolment")
            assert not prov.exists()
        finally:
            assert _stop(p) == 0
        first = central.evidence(site.id)
        # Restart on the same state dir: the chain continues.
        p = _run(cfg, out)
        try:
            _until(lambda: len(central.evidence(site.id)) > len(first), "evidence after restart")
        finally:
            assert _stop(p) == 0
    finally:
        ntp.close()
    rows = assert_one_chain(central, site.id)
    assert len({r["appliance_id"] for r in rows}) == 1
    text = out.read_text()
    assert "enrolled as" in text and "Traceback" not in text
    assert code not in text, "the claim code was logged"


def test_wipe_overwrites_the_bytes_and_refuses_symlinks(tmp_path) -> None:
    prov = tmp_path / provision_file.FILE_NAME
    prov.write_text('server_url = "https://cc.example"\nclaim_code = "SECRET-CODE"\n')
    os.link(prov, tmp_path / "other-name")  # the same inode, seen after the unlink
    data = provision_file.take(prov)
    assert b"SECRET-CODE" in data and not prov.exists()
    assert (tmp_path / "other-name").read_bytes() == b"\0" * len(data)
    with pytest.raises(provision_file.ProvisionFileError):  # re-use after the wipe: nothing
        provision_file.take(prov)
    # A symlink to a precious file: removed, never followed, the target untouched.
    target = tmp_path / "token"
    target.write_text("oak_secret\n")
    prov.symlink_to(target)
    with pytest.raises(provision_file.ProvisionFileError, match="symlink"):
        provision_file.take(prov)
    assert target.read_text() == "oak_secret\n" and not prov.is_symlink()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("server_url = [", "bad TOML"),
        ('server_url = "https://cc.example"\nclaim_code = "X"\nextra = 1\n', "unknown key"),
        ('server_url = "https://cc.example"\n', "claim_code missing"),
        ('claim_code = "X"\n', "server_url missing"),
        ('server_url = "https://cc.example"\nclaim_code = "X"\nserver_ca = "nope"\n', "PEM"),
    ],
)
def test_bad_files_refused_without_the_code(tmp_path, text: str, why: str) -> None:
    with pytest.raises(provision_file.ProvisionFileError, match=why) as e:
        provision_file.parse(tmp_path / "f", text.encode(), "https://cc.example/")
    assert "X" not in str(e.value).replace(str(tmp_path), "")
