"""First-boot enrolment by MAC approval, end to end: the real ``osiris-agent run`` polls the real
server with its requester secret; an operator's approval of ANOTHER requester's fingerprint for
the same MAC enrols nothing; approving the fingerprint this box logs (computed locally, equal
to the server's) enrols it, cycles record evidence, and a restart continues the chain. No claim
code in the output; a group-readable secret file is refused."""

from __future__ import annotations

import os
import re
import secrets
import time

import httpx
import pytest

from osiris_agent import mac_enrol
from osiris_agent.enroll import EnrollError, mac_address
from tests.agent.fixtures_agent import Sntp
from tests.e2e.conftest import Central, assert_one_chain, seed_site
from tests.e2e.test_firstboot_file import _run, _stop, _until


def _poll_as(c: Central, mac: str, secret: str) -> dict:
    r = httpx.get(f"{c.url}/api/v1/provision/{mac}",
                  headers={mac_enrol.SECRET_HEADER: secret}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.timeout(240)
def test_mac_approval_enrols_only_the_approved_requester(central: Central, tmp_path) -> None:
    site = seed_site(central)
    mac = mac_address()
    ntp = Sntp()
    out = tmp_path / "agent.out"
    state = tmp_path / "state"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[server]\nurl = "{central.url}"\n[agent]\nstate_dir = "{state}"\nlab = true\n'
        f'checkin_interval_s = 5\n[ntp]\nservers = ["{ntp.server}"]\nmin_good = 1\n'
        "[enrolment]\nmac_poll = true\npoll_interval_s = 5\n"
    )
    try:
        p = _run(cfg, out)
        try:
            _until(lambda: "requester fingerprint" in out.read_text(), "the fingerprint log")
            secret = (state / "enroll-secret").read_text().strip()
            assert (state / "enroll-secret").stat().st_mode & 0o777 == 0o600
            mine = mac_enrol.fingerprint(secret)
            assert mine in out.read_text()
            assert _poll_as(central, mac, secret)["fingerprint"] == mine  # the server agrees
            assert secret not in out.read_text()
            # Attack: someone else polls for this MAC; the operator approves THEIR fingerprint.
            other = secrets.token_urlsafe(32)
            theirs = _poll_as(central, mac, other)["fingerprint"]
            central.api("POST", f"/provision/{mac}",
                        {"site_id": site.id, "requester_fingerprint": theirs})  # fmt: skip
            time.sleep(7)  # more than one poll interval
            assert not (state / "pins.json").exists() and central.evidence(site.id) == []
            assert _poll_as(central, mac, other)["status"] == "approved"
            # The operator approves the fingerprint read off this box's console.
            central.api("POST", f"/provision/{mac}",
                        {"site_id": site.id, "requester_fingerprint": mine})  # fmt: skip
            _until(lambda: len(central.evidence(site.id)) >= 1, "evidence after approval")
        finally:
            assert _stop(p) == 0
        first = len(central.evidence(site.id))
        p = _run(cfg, out)
        try:
            _until(lambda: len(central.evidence(site.id)) > first, "evidence after restart")
        finally:
            assert _stop(p) == 0
    finally:
        ntp.close()
    assert_one_chain(central, site.id)
    text = out.read_text()
    assert "enrolled as" in text and "Traceback" not in text
    assert re.search(r"ocl_", text) is None, "a claim code was logged"


def test_group_readable_secret_refused(tmp_path) -> None:
    s = mac_enrol.load_or_create_secret(tmp_path)
    assert len(s) >= 43 and mac_enrol.load_or_create_secret(tmp_path) == s
    os.chmod(tmp_path / mac_enrol.SECRET_NAME, 0o644)
    with pytest.raises(EnrollError, match="0600"):
        mac_enrol.load_or_create_secret(tmp_path)
