"""A host key accepted on first use survives an agent restart, and is bound to its destination.

The attack: an SSH credential without a pin is trusted on first use. If that trust lived only in
memory, a man in the middle who waits for the appliance to restart (a power cut at the clinic)
would be accepted as the host on the next first use — and receive the credential. So the pin is
kept in state.db with the evidence that records it; after a restart the same destination with a
different key is refused. A credential that moves the host (new address or port, which the
operator must re-enter the secret for) is a new first use, recorded again.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from osiris_lab.linux import LabSshd, LinuxSandbox
from tests.e2e.conftest import bundles, enroll_agent, seed_site


class Forwarder:
    """A TCP relay on a fixed port: the destination the credential names. Pointing it at a
    different sshd is exactly what a man in the middle on the clinic's network does."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def two_hosts(tmp_path: Path) -> Iterator[tuple[LabSshd, LabSshd]]:
    if not LabSshd.available():
        pytest.skip("OpenSSH server not installed")
    box = LinuxSandbox(tmp_path / "root").build()
    with LabSshd(tmp_path / "a", box) as real, LabSshd(tmp_path / "b", box) as mitm:
        # the impostor accepts the same client key, as a thief of the key would
        (mitm.dir / "authorized_keys").write_text((real.dir / "client_key.pub").read_text())
        yield real, mitm


def _tofu(agent) -> list[dict]:
    return [b for b in bundles(agent) if "first use" in (b["action_taken"] or "")]


def test_first_use_pin_survives_restart_and_refuses_a_swapped_key(central, two_hosts, tmp_path):
    real, mitm = two_hosts
    fwd = Forwarder(real.port)
    site = seed_site(central)
    cred = central.api("POST", f"/sites/{site.id}/credentials", {
        "host_id": "lin-1", "kind": "ssh_key", "address": "127.0.0.1", "port": fwd.port,
        "username": real.user, "private_key": real.client_key, "host_key_fingerprints": [],
    })  # fmt: skip
    state = tmp_path / "state"
    a = enroll_agent(central, site, state)
    try:
        r = a.cycle()
        assert r.reachable, r.errors
        assert [real.host_fingerprint in b["action_taken"] for b in _tofu(a)] == [True]
        assert a._tofu_pins["lin-1"] == real.host_fingerprint
    finally:
        a.close()

    # The appliance restarts; meanwhile someone on the path answers in the host's place.
    fwd.upstream = mitm.port
    from osiris_agent.config import load_config
    from osiris_agent.cycle import Agent
    from tests.agent.fixtures_agent import good_clock

    b = Agent(load_config(state / "agent.toml"), measure_clock=good_clock, scan_interval_s=0,
              scan_self=False)  # fmt: skip
    try:
        assert b._tofu_pins["lin-1"] == real.host_fingerprint  # read back from state.db
        before = len(_tofu(b))  # the first run's records may still wait in the outbox
        old = {json.dumps(x, sort_keys=True) for x in bundles(b)}
        b.cycle()
        assert not [x for x in _tofu(b) if mitm.host_fingerprint in x["action_taken"]], (
            "the impostor's key was accepted as a new first use"
        )
        assert len(_tofu(b)) == before
        assert not [
            x for x in bundles(b)
            if json.dumps(x, sort_keys=True) not in old and x["host_id"] == "lin-1"
            and x["tier"] == "L1"
        ]  # fmt: skip
        # nothing ran there: the impostor's sshd saw no authenticated session
        log = (mitm.dir / "sshd.log").read_text(errors="replace")
        assert "Accepted publickey" not in log, log[-2000:]

        # The operator moves the credential to the real host's own port (re-entering the key,
        # as a destination change requires): a new destination is a new, recorded first use.
        central.api("PATCH", f"/sites/{site.id}/credentials/{cred['id']}", {
            "port": real.port, "private_key": real.client_key,
        })  # fmt: skip
        b.cycle()
        again = _tofu(b)[before:]
        assert [real.host_fingerprint in x["action_taken"] for x in again] == [True]
        assert b._tofu_pins["lin-1"] == real.host_fingerprint
    finally:
        b.close()
        fwd.close()
