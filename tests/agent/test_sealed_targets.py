"""The agent's side of sealed credentials (DESIGN §3.7), against a fake Central Command that
seals like the real one: a box key made at enrolment, secrets opened only with it, and targets
the agent must refuse (a "local" target that is not itself, a secret sealed to another key)."""

from __future__ import annotations

import os
import stat

import pytest
from nacl.public import PrivateKey

from osiris_agent import boxkey
from osiris_core.errors import KeyPermissionError
from osiris_core.seal import public_b64
from tests.agent.fixtures_agent import FakeCentral, make_agent

PW = "Pw-sealed-7c1e"


@pytest.fixture()
def srv():
    with FakeCentral() as s:
        yield s


def _target(host_id: str, kind: str = "winrm", **kw) -> dict:  # noqa: ANN003
    t = {"host_id": host_id, "kind": kind, "address": "127.0.0.1", "port": 5986, "lab": True,
         "username": "svc", "password": PW, "host_key_fingerprints": [], "use_tls": True,
         "verify_tls": False}  # fmt: skip
    t.update(kw)
    return t


def test_box_key_is_made_at_enrolment_0600_and_registered(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    p = boxkey.path_in(tmp_path / "s")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert srv.state.box_pub == public_b64(boxkey.load(p))
    srv.state.targets = [_target("dc01")]
    assert a.cycle().checked_in
    assert a.targets[0].password == PW  # opened with the box key, kept in memory
    a.close()
    os.chmod(p, 0o644)
    with pytest.raises(KeyPermissionError):
        boxkey.load(p)


def test_refused_targets_raise_an_incident_and_are_not_used(srv, tmp_path) -> None:
    a = make_agent(srv, tmp_path / "s")
    # a "local" target under a clinic host's id, and a secret sealed to somebody else's key
    srv.state.targets = [_target("dc01", kind="local"), _target("fs01")]
    real = srv.state.box_pub
    srv.state.box_pub = public_b64(PrivateKey.generate())
    assert a.cycle().checked_in
    srv.state.box_pub = real
    assert [t.host_id for t in a.targets] == []
    inc = [i for i in a.db.unsent_incidents() + _sent(a) if i["kind"] == "targets_refused"]
    assert inc, "no incident for the refused targets"
    text = str(inc[0])
    assert "dc01" in text and "fs01" in text and PW not in text
    # the appliance's own id as a local target is fine
    srv.state.targets = [_target(a.appliance_id, kind="local", password=None)]
    assert a.cycle().checked_in
    assert [t.host_id for t in a.targets] == [a.appliance_id]
    a.close()


def _sent(a) -> list[dict]:  # noqa: ANN001
    rows = a.db.conn.execute("SELECT kind, summary, details FROM incidents").fetchall()
    return [{"kind": r[0], "summary": r[1], "details": r[2]} for r in rows]


def test_sudo_and_become_password_reach_the_target(srv, tmp_path) -> None:
    """Issue 15 item 2: an SSH target's sudo flag and its sealed become password become
    Target(sudo=, become_password=); sudo on a WinRM target is ignored (it means nothing there);
    a rotated become password is in force at the next check-in."""
    a = make_agent(srv, tmp_path / "s")
    srv.state.targets = [
        _target(
            "lin01",
            kind="ssh",
            port=22,
            password=None,
            private_key="KEY",
            sudo=True,
            become_password="Become-Pw-1",
        ),  # fmt: skip
        _target("dc01", sudo=True),
    ]
    assert a.cycle().checked_in
    by = {t.host_id: t for t in a.targets}
    assert by["lin01"].sudo is True and by["lin01"].become_password == "Become-Pw-1"
    assert "Become-Pw-1" not in repr(by["lin01"])
    assert by["dc01"].sudo is False and by["dc01"].become_password is None
    srv.state.targets[0] = {**srv.state.targets[0], "become_password": "Become-Pw-2"}
    assert a.cycle().checked_in
    assert {t.host_id: t for t in a.targets}["lin01"].become_password == "Become-Pw-2"
    a.close()
