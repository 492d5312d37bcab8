"""Enrollment against a fake Central Command over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import stat

import pytest

from osiris_agent.client import ServerRefused
from osiris_agent.config import load_config
from osiris_agent.enroll import enroll
from osiris_core.keys import KEY_TYPE_COSIGNATURE, load_private_key
from tests.agent.fixtures_agent import FakeCentral


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def test_enroll_writes_keys_pins_token_config(srv, tmp_path) -> None:
    code = srv.add_claim_code()
    sd = tmp_path / "state"
    r = enroll(srv.url, code, sd, hostname="clinic-a")
    assert not r.already and r.appliance_id == srv.state.appliance_id
    for name in ("appliance.key", "cosign.key", "token", "pins.json", "agent.toml"):
        assert stat.S_IMODE((sd / name).stat().st_mode) == 0o600, name
    sign = load_private_key(sd / "appliance.key")
    cos = load_private_key(sd / "cosign.key")
    assert sign.name == cos.name == f"osiris/appliance/{r.appliance_id}"
    assert cos.key_type == KEY_TYPE_COSIGNATURE and sign.public != cos.public
    # The server registered exactly these public keys.
    assert srv.state.signing.public == sign.public and srv.state.cosigning.public == cos.public
    pins = json.loads((sd / "pins.json").read_text())
    assert (
        pins["log_vkey"] == srv.state.log.vkey and pins["order_vkey"] == srv.state.orders_key.vkey
    )
    assert (sd / "token").read_text().strip() == srv.state.token
    assert srv.state.token not in (sd / "agent.toml").read_text()
    cfg = load_config(sd / "agent.toml")
    assert cfg.server.url == srv.url and cfg.agent.state_dir == str(sd)


def test_rerun_is_safe_and_spends_no_code(srv, tmp_path) -> None:
    code = srv.add_claim_code()
    sd = tmp_path / "state"
    enroll(srv.url, code, sd)
    key = (sd / "appliance.key").read_text()
    r = enroll(srv.url, "ANY-OTHER", sd)
    assert r.already and (sd / "appliance.key").read_text() == key


def test_bad_code_is_refused_and_keys_reused_on_retry(srv, tmp_path) -> None:
    sd = tmp_path / "state"
    with pytest.raises(ServerRefused):
        enroll(srv.url, "WRONG", sd)
    assert not (sd / "agent.toml").exists()
    seed_pub = load_private_key(sd / "appliance.key").public
    enroll(srv.url, srv.add_claim_code(), sd)
    assert load_private_key(sd / "appliance.key").public == seed_pub
