"""``osiris.release/1`` and the root switch unit's own check (RB-NIX-GEN-001).

The root script ``nix/modules/osiris-switch-system.sh`` is run for real here (bash, the real
``python -m osiris_core.release`` verifier), against a sandbox root with a stand-in ``nix-env``
and store paths whose ``switch-to-configuration`` records that it ran: a system is switched to
only when a release signed by a trusted key names it — never because it "looks like a system".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from osiris_core import canonical
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer
from osiris_core.release import (
    ReleaseRefused,
    downgrade_refusal,
    make_release,
    seed_keys,
    sign_release,
    switch_target,
    validate_release,
    verify_release,
    version_key,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "nix" / "modules" / "osiris-switch-system.sh"
ORDER = Signer.generate("osiris/order/test")
OTHER = Signer.generate("osiris/order/test")
CURRENT = "/nix/store/" + "a" * 32 + "-nixos-system-osiris-24.11"
DESIRED = "/nix/store/" + "b" * 32 + "-nixos-system-osiris-25.05"
LOOKALIKE = "/nix/store/" + "e" * 32 + "-nixos-system-evil"


def test_sign_and_verify() -> None:
    env = sign_release(make_release(DESIRED, "osiris-25.05"), ORDER)
    assert verify_release(env, [ORDER.verifier()])["system"] == DESIRED
    with pytest.raises(ReleaseRefused, match="unknown key"):
        verify_release(env, [Signer.generate("x").verifier()])
    forged = sign_release(make_release(DESIRED, "osiris-25.05"), OTHER)
    with pytest.raises(ReleaseRefused, match="unknown key"):
        verify_release(forged, [ORDER.verifier()])
    forged["sig"]["key_id"] = ORDER.key_id_hex  # claims the pinned key, signed by another
    with pytest.raises(ReleaseRefused, match="does not verify"):
        verify_release(forged, [ORDER.verifier()])
    tampered = json.loads(json.dumps(env))
    tampered["release"]["system"] = LOOKALIKE
    with pytest.raises(ReleaseRefused, match="does not verify"):
        verify_release(tampered, [ORDER.verifier()])
    with pytest.raises(ReleaseRefused):
        verify_release({"release": env["release"]}, [ORDER.verifier()])
    with pytest.raises(Exception, match="store path"):
        make_release("/tmp/system", "x")


class Box:
    """A sandbox root with a store, a current system, a stand-in nix-env and root's state."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "root"
        self.state = tmp / "osiris-switch"
        self.agent = tmp / "agent"
        self.log = tmp / "calls.log"
        for d in (self.root / "run", self.root / "nix/var/nix/profiles", self.state,
                  self.agent / "switch", tmp / "bin"):  # fmt: skip
            d.mkdir(parents=True)
        for system in (CURRENT, DESIRED, LOOKALIKE):
            self.system(system)
        os.symlink(CURRENT, self.root / "run/current-system")
        nix_env = tmp / "bin" / "nix-env"
        nix_env.write_text(f'#!/bin/sh\necho "nix-env $*" >>{self.log}\n')
        nix_env.chmod(0o755)
        self.nix_env = nix_env
        self.keys = self.state / "trusted-keys"
        self.pins = self.agent / "pins.json"
        self.pins.write_text(json.dumps({"order_vkey": ORDER.vkey, "appliance_id": "a"}))
        self.request = self.agent / "switch" / "request.json"

    def system(self, path: str) -> None:
        d = self.root / path.lstrip("/")
        (d / "bin").mkdir(parents=True)
        (d / "nixos-version").write_text("25.05\n")
        (d / "kernel").write_text("")
        stc = d / "bin" / "switch-to-configuration"
        stc.write_text(f'#!/bin/sh\necho "switch {path} $*" >>{self.log}\n')
        stc.chmod(0o755)

    def ask(self, request: dict | str) -> None:
        data = request if isinstance(request, str) else canonical.dumps(request).decode()
        self.request.write_text(data)

    def run(self, keys: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "OSIRIS_RELEASE_VERIFY": f"{sys.executable} -m osiris_core.release",
            "OSIRIS_NIX_ENV": str(self.nix_env),
        }
        return subprocess.run(
            ["bash", str(SCRIPT), str(self.request), str(self.state), str(keys or self.keys),
             str(self.pins), str(self.root)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def box(tmp_path: Path) -> Box:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    return Box(tmp_path)


def _switch(env: dict) -> dict:
    return {"action": "switch", "release": env}


def test_root_unit_switches_only_to_a_signed_release(box: Box) -> None:
    env = sign_release(make_release(DESIRED, "osiris-25.05"), ORDER)
    box.ask(_switch(env))
    p = box.run()
    assert p.returncode == 0, p.stderr
    assert box.calls() == [
        f"nix-env -p {box.root}/nix/var/nix/profiles/system --set {DESIRED}",
        f"switch {DESIRED} switch",
    ]
    assert (box.state / "previous").read_text().strip() == CURRENT
    assert not box.request.exists()
    # first use without configured keys: the pinned order key was copied, root-owned
    assert ORDER.vkey in box.keys.read_text()
    assert oct(box.keys.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "request_",
    [
        LOOKALIKE,  # the old protocol: a bare path that "looks like a system"
        {"action": "switch", "release": sign_release(make_release(LOOKALIKE, "evil"), OTHER)},
        {"action": "switch", "release": {"release": make_release(LOOKALIKE, "evil")}},
        {
            "action": "switch",
            "release": sign_release(make_release(DESIRED, "x"), ORDER),
            "system": LOOKALIKE,
        },
        {"action": "reboot"},
    ],
    ids=["bare-path", "wrong-key", "unsigned", "extra-field", "unknown-action"],
)
def test_root_unit_refuses_anything_else(box: Box, request_: object) -> None:
    box.ask(request_)  # type: ignore[arg-type]
    p = box.run()
    assert p.returncode != 0 and "refusing" in p.stderr, (p.stdout, p.stderr)
    assert box.calls() == []  # nothing switched, the profile untouched


def test_tampered_system_in_a_signed_release_is_refused(box: Box) -> None:
    env = sign_release(make_release(DESIRED, "osiris-25.05"), ORDER)
    env["release"]["system"] = LOOKALIKE
    box.ask(_switch(env))
    p = box.run()
    assert p.returncode != 0 and "does not verify" in p.stderr
    assert box.calls() == []


def test_a_compromised_agent_cannot_replace_the_trusted_key(box: Box) -> None:
    """The keys are seeded once into root's own directory; rewriting the agent's pins later
    (the agent's state dir is the agent's to write) changes nothing."""
    box.ask(_switch(sign_release(make_release(DESIRED, "osiris-25.05"), ORDER)))
    assert box.run().returncode == 0
    box.pins.write_text(json.dumps({"order_vkey": OTHER.vkey}))
    box.ask(_switch(sign_release(make_release(LOOKALIKE, "evil"), OTHER)))
    p = box.run()
    assert p.returncode != 0 and "refusing" in p.stderr
    assert OTHER.vkey not in box.keys.read_text()
    assert f"switch {LOOKALIKE} switch" not in box.calls()


def test_configured_release_keys_take_precedence(box: Box, tmp_path: Path) -> None:
    rkey = Signer.generate("osiris/release")
    keys = tmp_path / "release-keys"
    keys.write_text(rkey.vkey + "\n")
    box.ask(_switch(sign_release(make_release(DESIRED, "r"), ORDER)))
    p = box.run(keys)  # the order key is not a release key here
    assert p.returncode != 0 and "unknown key" in p.stderr
    box.ask(_switch(sign_release(make_release(DESIRED, "r"), rkey)))
    assert box.run(keys).returncode == 0
    assert not box.keys.exists()  # nothing seeded when keys are configured


def test_rollback_goes_to_the_system_the_unit_recorded(box: Box) -> None:
    box.ask({"action": "rollback"})
    p = box.run()
    assert p.returncode != 0 and "no previous system" in p.stderr
    box.ask(_switch(sign_release(make_release(DESIRED, "r"), ORDER)))
    assert box.run().returncode == 0
    box.ask({"action": "rollback", "system": LOOKALIKE})
    assert box.run().returncode != 0
    box.ask({"action": "rollback"})
    assert box.run().returncode == 0
    assert box.calls()[-1] == f"switch {CURRENT} switch"


def test_a_symlinked_request_is_refused(box: Box, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.json"
    real.write_bytes(canonical.dumps(_switch(sign_release(make_release(DESIRED, "r"), ORDER))))
    os.symlink(real, box.request)
    p = box.run()
    assert p.returncode != 0 and "refusing" in p.stderr
    assert box.calls() == []


def test_switch_target_and_seed_in_process(tmp_path: Path) -> None:
    keys, pins, prev = tmp_path / "keys", tmp_path / "pins.json", tmp_path / "previous"
    pins.write_text(json.dumps({"order_vkey": ORDER.vkey}))
    seed_keys(keys, pins)
    req = tmp_path / "req.json"
    req.write_bytes(canonical.dumps(_switch(sign_release(make_release(DESIRED, "r"), ORDER))))
    from osiris_core.release import load_keys

    assert switch_target(req, load_keys(keys), prev) == DESIRED
    req.write_bytes(b"x" * 20000)
    with pytest.raises(ReleaseRefused, match="larger"):
        switch_target(req, load_keys(keys), prev)


# ---- agent releases (issue 16 item 6): a version, and a downgrade meant twice


def test_root_unit_switches_to_a_versioned_agent_release(box: Box) -> None:
    env = sign_release(make_release(DESIRED, "osiris-0.2.0", version="0.2.0"), ORDER)
    box.ask(_switch(env))
    p = box.run()
    assert p.returncode == 0, p.stderr
    assert box.calls()[-1] == f"switch {DESIRED} switch"


def test_release_version_fields_are_validated() -> None:
    with pytest.raises(SchemaError, match="agent version"):
        make_release(DESIRED, "x", version="latest")
    with pytest.raises(SchemaError, match="allow_downgrade"):
        validate_release({**make_release(DESIRED, "x"), "allow_downgrade": True})  # no version
    with pytest.raises(SchemaError, match="allow_downgrade"):
        validate_release({**make_release(DESIRED, "x", version="1.0.0"), "allow_downgrade": 1})
    with pytest.raises(SchemaError, match="exactly"):
        validate_release({**make_release(DESIRED, "x"), "url": "http://evil/agent"})


def test_version_order_and_downgrade_refusal() -> None:
    order = ["0.9.9", "1.0.0-rc.1", "1.0.0", "1.0.0+build.7", "1.0.1", "1.10.0", "2.0"]
    keys = [version_key(v) for v in order]
    assert keys == sorted(keys) and version_key("1.0.0") == version_key("1.0.0+build.7")
    up = make_release(DESIRED, "x", version="1.1.0")
    down = make_release(DESIRED, "x", version="0.9.0")
    back = make_release(DESIRED, "x", version="0.9.0", allow_downgrade=True)
    assert downgrade_refusal("1.0.0", up, False) is None
    assert downgrade_refusal(None, down, False) is None  # nothing to compare with
    assert "already running" in str(downgrade_refusal("1.1.0", up, True))
    assert "in the order" in str(downgrade_refusal("1.0.0", down, False))
    assert "does not allow" in str(downgrade_refusal("1.0.0", down, True))
    assert "in the order" in str(downgrade_refusal("1.0.0", back, False))
    assert downgrade_refusal("1.0.0", back, True) is None
    with pytest.raises(SchemaError, match="version"):
        downgrade_refusal("1.0.0", make_release(DESIRED, "x"), True)
