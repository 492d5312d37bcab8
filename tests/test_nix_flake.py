"""The flake's installed appliance, installer ISO and nixosTest checks, read without nixpkgs.

No nixpkgs can be fetched here, so nothing below builds or boots: flake.nix's outputs are
evaluated by Nix against a stub nixpkgs input (nix/tests/stub-nixpkgs.nix: nixosSystem returns
its module list, testers.runNixOSTest returns the test definition) — enough to see which checks
exist for each system, which modules each configuration is made of, and the exact text of every
VM test script (compiled here as Python, the language the NixOS test driver runs). The installed
system (iso/installed.nix) and the ISO (iso/appliance.nix) are each evaluated by the stub module
evaluator and checked against what the installer script (iso/osiris-install) really creates.
nix/README.md says what was never built or run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_nix import NIX, ROOT, URL, _nix, evaluate

needs_nix = pytest.mark.skipif(NIX is None, reason="apt-get install -y nix-bin")
INSTALLED = ROOT / "iso" / "installed.nix"
ISO = ROOT / "iso" / "appliance.nix"
INSTALLER = ROOT / "iso" / "osiris-install"
STUB_NIXPKGS = ROOT / "nix" / "tests" / "stub-nixpkgs.nix"
SYSTEMS = ("x86_64-linux", "aarch64-linux")
VM_CHECKS = {
    "vm-agent-no-listen",
    "vm-state-perms",
    "vm-egress-table",
    "vm-first-boot-enrolment",
    "vm-tech-tui-local",
}
# what each VM test's script must do, in its own words (the brief's (i)..(v))
MUST_SAY = {
    "vm-agent-no-listen": ["ss -Htlnup", '"osiris-agent" not in listening'],
    "vm-state-perms": ["stat -c '%a %U %G' /var/lib/osiris", '"700 osiris osiris"', '"600 osiris"',
                       "find /var/lib/osiris -perm /077"],
    "vm-egress-table": ["nft list table inet osiris_egress", '"policy drop" in table',
                        '"set dns_v4" in table', '"set dns_v6" in table',
                        "appliance.fail(\"bash -c 'echo x > /dev/udp/192.168.1.99/53'\")"],
    "vm-first-boot-enrolment": ["osiris provision create --site", "osiris-provision.toml",
                                "claim_code =", "server_ca =", "server_url =",
                                "test ! -e /var/lib/osiris-provision/inbox/osiris-provision.toml",
                                "osiris appliance list", "last_seen_at",
                                'claim["appliance_id"] == enrolled["id"]'],
    "vm-tech-tui-local": ["runuser -u tech -- osiris tui --local",
                          'appliance.fail("runuser -u tech -- ls /var/lib/osiris")',
                          "/var/lib/osiris-status/status.json"],
}  # fmt: skip


@pytest.fixture(scope="module")
def flake() -> dict[str, Any]:
    if NIX is None:
        pytest.skip("nix-instantiate not installed (apt-get install -y nix-bin)")
    expr = f"""
      let
        flake = import {ROOT}/flake.nix;
        nixpkgs = import {STUB_NIXPKGS};
        self = flake.outputs {{ inherit self nixpkgs; }};
        describe = m: if builtins.isPath m then toString m
                      else if builtins.isAttrs m then {{ attrs = builtins.attrNames m; }}
                      else "function";
      in {{
        checks = builtins.mapAttrs (_: builtins.attrNames) self.checks;
        vm = builtins.mapAttrs (_: c: builtins.mapAttrs (_: t: {{
               inherit (t) name testScript; nodes = builtins.attrNames t.nodes; }})
             (nixpkgs.lib.filterAttrs (_: t: t.isNixOSTest or false) c)) self.checks;
        configs = builtins.mapAttrs (_: c: map describe c.modules) self.nixosConfigurations;
        installerPayload = builtins.elemAt self.nixosConfigurations.installer.modules 3;
        applianceToplevel = self.nixosConfigurations.appliance.config.system.build.toplevel.drvPath;
      }}"""
    return json.loads(_nix("--eval", "--strict", "--json", "-E", expr))


def test_every_system_has_the_evaluation_and_vm_checks(flake: dict[str, Any]) -> None:
    for system in SYSTEMS:
        names = set(flake["checks"][system])
        assert {"installer-evaluates", "appliance-evaluates", *VM_CHECKS} <= names, system
        assert set(flake["vm"][system]) == VM_CHECKS  # each vm-* is a real nixosTest


def test_configurations_are_the_installed_system_and_the_iso_carrying_it(
    flake: dict[str, Any],
) -> None:
    appliance, installer = flake["configs"]["appliance"], flake["configs"]["installer"]
    assert appliance[0] == str(INSTALLED)
    assert installer[0] == str(ISO)
    # the ISO's payload is exactly the installed configuration's toplevel
    payload = flake["installerPayload"]["osiris"]["installer"]["system"]
    assert payload["drvPath"] == flake["applianceToplevel"]
    assert payload["fromModules"][0] == str(INSTALLED)


@pytest.mark.parametrize("check", sorted(VM_CHECKS))
def test_vm_test_scripts_compile_and_assert_what_they_must(
    flake: dict[str, Any], check: str
) -> None:
    test = flake["vm"]["x86_64-linux"][check]
    script = test["testScript"]
    compile(script, f"{check}.testScript", "exec")  # the driver runs it as Python
    for needle in MUST_SAY[check]:
        assert needle in script, (check, needle)
    assert "assert" in script or ".fail(" in script
    assert test["nodes"] == (["appliance", "server"] if "enrolment" in check else ["appliance"])
    assert "${" not in script  # every Nix interpolation was resolved


def test_vm_appliance_node_is_the_shared_appliance_configuration() -> None:
    nodes = (ROOT / "nix" / "tests" / "vm" / "nodes.nix").read_text()
    assert "imports = [ ../../../iso/common.nix ];" in nodes
    assert "self.nixosModules.osiris-server" in nodes


# --- the installed system against what the installer makes -----------------------------------


def _installer_value(name: str) -> str:
    m = re.search(rf'^{name}="?([^"\n]+)"?$', INSTALLER.read_text(), re.M)
    assert m, name
    return m[1]


@needs_nix
def test_installed_system_boots_what_the_installer_makes() -> None:
    conf = evaluate(INSTALLED)["config"]
    script = INSTALLER.read_text()
    assert conf["boot"]["initrd"]["systemd"]["enable"] is True
    root = conf["boot"]["initrd"]["luks"]["devices"]["root"]  # RB-NIX-LUKS-001: /dev/mapper/root
    assert _installer_value("LUKS_NAME") == "root"
    assert root["device"] == "/dev/disk/by-partlabel/osiris-luks"
    assert 'name="osiris-luks"' in script and 'name="osiris-esp"' in script
    assert root["crypttabExtraOpts"] == ["tpm2-device=auto"]
    assert "--tpm2-device=auto --tpm2-pcrs=7" in script
    fs = conf["fileSystems"]
    assert fs["/"]["device"] == "/dev/disk/by-label/osiris-root" and fs["/"]["fsType"] == "ext4"
    assert "mkfs.ext4 -q -L osiris-root" in script
    assert fs["/boot"]["device"] == "/dev/disk/by-label/OSIRIS-ESP"
    assert "mkfs.fat -F 32 -n OSIRIS-ESP" in script
    assert "umask=0077" in fs["/boot"]["options"]
    assert conf["boot"]["loader"]["systemd-boot"]["editor"] is False
    # state and the provisioning inbox persist on the encrypted root, owned as the agent needs
    rules = conf["systemd"]["tmpfiles"]["rules"]
    assert "d /var/lib/osiris 0700 osiris osiris - -" in rules
    inbox = "/var/lib/osiris-provision/inbox"
    assert f"d {inbox} 0700 osiris osiris - -" in rules
    assert 'INBOX="$TARGET' + inbox + '"' in script
    enrol = conf["services"]["osiris-agent"]["settings"]["enrolment"]
    assert enrol["provision_dirs"] == [inbox, "/run/osiris-provision"]  # then a first-boot stick
    assert evaluate(INSTALLED)["imports"] == [str(ROOT / "iso" / "common.nix")]


@needs_nix
def test_installed_system_shares_the_site_options_and_logins() -> None:
    """The installed system gets serverUrl/dnsResolvers/sshAllowFrom and the login rules from
    common.nix (evaluated in tests/test_nix.py), not a copy of its own."""
    for path in (INSTALLED, ISO):
        code = path.read_text()
        assert "./common.nix" in code
        for copied in ("serverUrl", "dnsResolvers", "sshAllowFrom", "users.users", "openssh"):
            assert copied not in code.split("{", 1)[1], (path, copied)


# --- the ISO -------------------------------------------------------------------------------


@needs_nix
def test_iso_carries_the_installed_closure_and_the_installer_command() -> None:
    system = "/nix/store/00000000000000000000000000000000-nixos-system-osiris-appliance"
    r = evaluate(ISO, {"osiris": {"installer": {"system": system}}})
    conf = r["config"]
    assert conf["isoImage"]["storeContents"] == [system]
    assert any(p.endswith("-osiris-install") for p in conf["environment"]["systemPackages"])
    assert not any("installation-cd" in i for i in r["imports"])
    assert str(ROOT / "iso" / "common.nix") in r["imports"]
    assert evaluate(ISO)["config"]["isoImage"]["storeContents"] == []  # no payload: none


@needs_nix
def test_iso_installer_never_runs_without_the_technician_typing() -> None:
    """It erases a disk: the only unit that starts it runs it with --confirm on a console
    (the technician types the disk's name); no unit runs osiris-install by itself."""
    units = evaluate(ISO)["config"]["systemd"]["services"]
    assert set(units) == {"osiris-install-console"}
    svc = units["osiris-install-console"]["serviceConfig"]
    assert svc["TTYPath"] == "/dev/tty8" and svc["StandardInput"] == "tty"
    assert svc["ExecStart"].endswith("/bin/osiris-install-console")
    code = ISO.read_text()
    assert code.count('osiris-install --confirm "') == 1  # the one invocation
    assert "read -r -p" in code
    assert "read -r -p \"Type the disk's name" in INSTALLER.read_text()


def test_stub_flake_input_cannot_pass_a_missing_check(tmp_path: Path) -> None:
    """The check-name test can fail: a flake without the VM checks is missing them."""
    if NIX is None:
        pytest.skip("nix-instantiate not installed")
    text = (ROOT / "flake.nix").read_text().replace("vm-tech-tui-local =", "vm-other =")
    (tmp_path / "flake.nix").write_text(text.replace("./", str(ROOT) + "/"))
    expr = (
        f"builtins.attrNames ((import {tmp_path}/flake.nix).outputs {{ self = {{}};"
        f" nixpkgs = import {STUB_NIXPKGS}; }}).checks.x86_64-linux"
    )
    names = set(json.loads(_nix("--eval", "--json", "-E", expr)))
    assert "vm-tech-tui-local" not in names and "vm-other" in names
    assert URL  # the shared example URL of test_nix (keeps one definition)


# what pkgs.writeShellApplication puts before the text, and then shellchecks (nixpkgs 24.11)
_PREAMBLE = "#!/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\n\n"


def _shellcheck(text: str, tmp_path: Path, name: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    f = tmp_path / name
    f.write_text(_PREAMBLE + text)
    r = subprocess.run(["shellcheck", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_iso_shell_applications_pass_the_shellcheck_their_build_runs(tmp_path: Path) -> None:
    """writeShellApplication fails the build on any shellcheck finding: the text the ISO hands
    it (the installer with its shebang removed and OSIRIS_SYSTEM set; the tty8 prompt) is
    checked here the same way."""
    code = ISO.read_text()
    first = INSTALLER.read_text().split("\n", 1)[0]
    assert f'lib.removePrefix "{first}\\n" (builtins.readFile ./osiris-install)' in code
    installer = INSTALLER.read_text().removeprefix(first + "\n")
    _shellcheck("export OSIRIS_SYSTEM=/nix/store/x-system\n" + installer, tmp_path, "install")
    m = re.search(r'name = "osiris-install-console";.*?text = \'\'\n(.*?)\n    \'\';', code, re.S)
    assert m, "the console's text block"
    console = m[1].replace("''${", "${")
    assert "osiris-install --confirm" in console
    _shellcheck(console, tmp_path, "console")
