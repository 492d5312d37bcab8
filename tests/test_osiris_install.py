"""The unattended installer (iso/osiris-install): it erases a disk, so its decisions are tested.

Run for real here: shellcheck; the disk choice and every refusal against fake sysfs trees
(OSIRIS_SYSFS / OSIRIS_DEV point the script at them); the dry-run plan's exact order (recovery
key before the TPM, the throwaway passphrase slot wiped last, before any data is written);
and, where sfdisk/cryptsetup exist, the plan's own partition layout on a sparse image file and
its LUKS2 key sequence on a file (luksFormat, recovery key, wipe of the password slot) —
everything but the TPM enrolment, which needs a TPM, and the installation, which needs NixOS.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "iso" / "osiris-install"
SYSTEM = "/nix/store/00000000000000000000000000000000-nixos-system-osiris-appliance"


def fake_box(tmp: Path, disks: dict[str, dict[str, object]], tpm: str | None = "2") -> Path:
    """A sysfs tree: /class/tpm/tpm0 (unless tpm is None) and /block/<disk> per entry."""
    sys = tmp / "sys"
    (sys / "block").mkdir(parents=True)
    if tpm is not None:
        (sys / "class" / "tpm" / "tpm0").mkdir(parents=True)
        (sys / "class" / "tpm" / "tpm0" / "tpm_version_major").write_text(tpm + "\n")
    for name, attrs in disks.items():
        d = sys / "block" / name
        d.mkdir()
        (d / "removable").write_text(f"{attrs.get('removable', 0)}\n")
        (d / "size").write_text(f"{attrs.get('size', 500118192)}\n")
        if attrs.get("usb"):
            target = tmp / "devices" / "pci0000:00" / "usb1" / "1-1" / name
            target.mkdir(parents=True)
            (d / "device").symlink_to(target)
        for part in attrs.get("parts", []):  # type: ignore[attr-defined]
            (d / part).mkdir()
            (d / part / "partition").write_text("1\n")
    return sys


def install(
    tmp: Path, *args: str, sysfs: Path, stdin: str = "", system: str = SYSTEM
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "OSIRIS_SYSFS": str(sysfs),
        "OSIRIS_DEV": str(tmp / "dev"),
        "OSIRIS_SYSTEM": system,
        "OSIRIS_RUNDIR": str(tmp / "run"),
        "OSIRIS_TARGET": "/mnt",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def plan(out: str) -> list[list[str]]:
    """The commands a dry run prints (`+ cmd args`), split as the shell would."""
    return [
        [w for w in shlex.split(line[2:]) if not w.startswith("<<")]  # sfdisk's here-document
        for line in out.splitlines()
        if line.startswith("+ ")
    ]


def test_script_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install -y shellcheck)")
    r = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert SCRIPT.read_text().splitlines()[:20].count("set -euo pipefail") == 1


def test_picks_the_single_non_removable_disk(tmp_path: Path) -> None:
    sysfs = fake_box(tmp_path, {
        "sda": {}, "sdb": {"removable": 1}, "sdc": {"usb": True}, "loop0": {}, "sr0": {},
        "zram0": {}, "dm-0": {}, "nvme1n1": {"size": 0},
    })  # fmt: skip
    r = install(tmp_path, "--dry-run", sysfs=sysfs)
    assert r.returncode == 0, r.stderr
    sfdisk = next(c for c in plan(r.stdout) if c[0] == "sfdisk")
    assert sfdisk[-1] == str(tmp_path / "dev" / "sda")
    # the plan ends with the installation of the ISO's closure, offline
    nixos = next(c for c in plan(r.stdout) if c[0] == "nixos-install")
    assert nixos == ["nixos-install", "--root", "/mnt", "--system", SYSTEM, "--no-root-passwd",
                     "--no-channel-copy"]  # fmt: skip


@pytest.mark.parametrize(
    ("disks", "args", "message"),
    [
        ({"sda": {}, "nvme0n1": {}}, [], "more than one disk (nvme0n1 sda)"),
        ({"sdb": {"removable": 1}}, [], "no non-removable disk found"),
        ({"sda": {"parts": ["sda1", "sda2"]}}, [], "holds partitions: refusing to erase"),
        ({"sda": {}, "sdb": {"removable": 1}}, ["--disk", "/dev/sdb"], "is removable"),
        ({"sda": {}}, ["--disk", "/dev/sdz"], "is not a disk of this box"),
        (
            {"sda": {"parts": ["sda1"]}},
            ["--disk", "/dev/sda1", "--wipe"],
            "is not a disk of this box",
        ),
        ({"sda": {}}, ["--disk", "/dev/"], "takes a whole disk as /dev/NAME"),
        ({"sda": {}}, ["--disk", "/dev/../sys"], "takes a whole disk as /dev/NAME"),
        ({"sda": {}}, ["--disk", "/dev/sda; reboot"], "takes a whole disk as /dev/NAME"),
        ({"sda": {}}, ["--disk", "sda"], "takes a whole disk as /dev/NAME"),
        ({"sda": {}}, ["--disk"], "usage:"),
        ({"sda": {}}, ["--provision", "/nonexistent/osiris-provision.toml"], "not found"),
    ],
)
def test_refuses_and_touches_nothing(
    tmp_path: Path, disks: dict[str, dict[str, object]], args: list[str], message: str
) -> None:
    r = install(tmp_path, "--dry-run", *args, sysfs=fake_box(tmp_path, disks))
    assert r.returncode == (2 if message == "usage:" else 1)  # 2: a usage error
    assert message in r.stderr
    assert "Traceback" not in r.stderr and plan(r.stdout) == []  # no command was planned


def test_refuses_without_a_tpm2(tmp_path: Path) -> None:
    r = install(tmp_path, "--dry-run", sysfs=fake_box(tmp_path, {"sda": {}}, tpm=None))
    assert r.returncode == 1 and "no TPM found" in r.stderr and "firmware setup" in r.stderr
    assert plan(r.stdout) == []
    r = install(tmp_path / "v1", "--dry-run", sysfs=fake_box(tmp_path / "v1", {"sda": {}}, "1"))
    assert r.returncode == 1 and "not a TPM 2.0" in r.stderr and plan(r.stdout) == []


def test_refuses_without_a_system_closure_and_bad_arguments(tmp_path: Path) -> None:
    sysfs = fake_box(tmp_path, {"sda": {}})
    r = install(tmp_path, "--dry-run", sysfs=sysfs, system="")
    assert r.returncode == 1 and "no system to install" in r.stderr and plan(r.stdout) == []
    r = install(tmp_path, "--dry-run", "--erase-everything", sysfs=sysfs)
    assert r.returncode == 2 and "unknown argument" in r.stderr and "usage:" in r.stderr


def test_wipe_and_explicit_disk_choose_among_many(tmp_path: Path) -> None:
    sysfs = fake_box(tmp_path, {"sda": {"parts": ["sda1"]}, "nvme0n1": {}})
    r = install(tmp_path, "--dry-run", "--disk", "/dev/sda", "--wipe", sysfs=sysfs)
    assert r.returncode == 0, r.stderr
    assert next(c for c in plan(r.stdout) if c[0] == "sfdisk")[-1].endswith("/dev/sda")


def test_confirm_needs_the_disk_name_typed(tmp_path: Path) -> None:
    sysfs = fake_box(tmp_path, {"nvme0n1": {}})
    r = install(tmp_path, "--dry-run", "--confirm", sysfs=sysfs, stdin="yes\n")
    assert r.returncode == 1 and "not confirmed" in r.stderr and plan(r.stdout) == []
    r = install(tmp_path, "--dry-run", "--confirm", sysfs=sysfs, stdin="nvme0n1\n")
    assert r.returncode == 0 and plan(r.stdout)


def test_dry_run_plan_order_recovery_key_then_tpm_then_wipe_then_data(tmp_path: Path) -> None:
    prov = tmp_path / "stick"
    (prov / "ssh").mkdir(parents=True)
    (prov / "osiris-provision.toml").write_text('server_url = "https://cc.example"\n')
    (prov / "ssh" / "tech.keys").write_text("ssh-ed25519 AAAA tech\n")
    r = install(
        tmp_path, "--dry-run", "--provision", str(prov), sysfs=fake_box(tmp_path, {"sda": {}})
    )
    assert r.returncode == 0, r.stderr
    cmds = plan(r.stdout)

    def at(pred: str) -> int:
        hits = [i for i, c in enumerate(cmds) if pred in " ".join(c)]
        assert len(hits) == 1, (pred, cmds)
        return hits[0]

    luks = str(tmp_path / "dev" / "disk" / "by-partlabel" / "osiris-luks")
    fmt = at("luksFormat --batch-mode --type luks2")
    assert cmds[fmt][-1] == luks
    order = [at("sfdisk"), fmt, at("--recovery-key"), at("--tpm2-device=auto --tpm2-pcrs=7"),
             at("--wipe-slot=password"), at("mkfs.ext4"), at("inbox/osiris-provision.toml"),
             at("nixos-install"), at("umount -R")]  # fmt: skip
    assert order == sorted(order)
    enrolls = [i for i, c in enumerate(cmds) if c[0] == "systemd-cryptenroll"]
    assert cmds[enrolls[-1]][2] == "--wipe-slot=password"  # the passphrase slot goes last
    # the throwaway passphrase lives in the runtime (tmpfs) dir only, and no recovery-key
    # command is redirected anywhere: it is printed once on the console
    key_lines = [
        line for line in r.stdout.splitlines() if "recovery" in line.lower() and "+ " in line
    ]
    assert key_lines and all(">" not in line for line in key_lines)
    assert all("--key-file" not in c or str(tmp_path / "run") in " ".join(c) for c in cmds)
    stage = str(tmp_path / "run" / "osiris-install" / "stage")
    copied = [c for c in cmds if c[0] == "install" and c[1:3] == ["-m", "0600"]]
    assert copied == [
        ["install", "-m", "0600", str(prov / "osiris-provision.toml"),
         f"{stage}/osiris-provision.toml"],
        ["install", "-m", "0600", f"{stage}/osiris-provision.toml",
         "/mnt/var/lib/osiris-provision/inbox/osiris-provision.toml"],
    ]  # fmt: skip
    # the medium is read before anything is erased
    assert cmds.index(copied[0]) < at("sfdisk") < at("luksFormat") < cmds.index(copied[1])
    assert not (tmp_path / "run").exists()  # a dry run creates nothing


def _layout(out: str) -> str:
    m = re.search(r"<<EOF\n(.*?)\nEOF", out, re.S)
    assert m
    return m[1]


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="apt-get install -y fdisk")
def test_plan_layout_partitions_a_real_image(tmp_path: Path) -> None:
    r = install(tmp_path, "--dry-run", sysfs=fake_box(tmp_path, {"sda": {}}))
    img = tmp_path / "disk.img"
    with img.open("wb") as f:
        f.truncate(2 * 1024**3)  # sparse
    subprocess.run(["sfdisk", "--wipe", "always", str(img)], input=_layout(r.stdout),
                   text=True, check=True, capture_output=True)  # fmt: skip
    table = json.loads(subprocess.run(["sfdisk", "--json", str(img)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]  # fmt: skip
    assert table["label"] == "gpt"
    esp, root = table["partitions"]
    assert (esp["name"], esp["type"]) == ("osiris-esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    assert esp["size"] * table["sectorsize"] == 512 * 1024**2
    assert root["name"] == "osiris-luks" and root["start"] >= esp["start"] + esp["size"]
    assert (root["start"] + root["size"]) * table["sectorsize"] > 2 * 1024**3 - 2 * 1024**2


@pytest.mark.skipif(
    shutil.which("cryptsetup") is None or shutil.which("systemd-cryptenroll") is None,
    reason="apt-get install -y cryptsetup-bin (and systemd)",
)
def test_plan_luks_key_sequence_on_a_real_file(tmp_path: Path) -> None:
    """The plan's own luksFormat / recovery-key / wipe-slot commands, run on a file (the TPM
    step needs a TPM): afterwards only the recovery key opens the volume."""
    r = install(tmp_path, "--dry-run", sysfs=fake_box(tmp_path, {"sda": {}}))
    cmds = [shlex.split(line[2:]) for line in r.stdout.splitlines() if line.startswith("+ ")]
    luks = str(tmp_path / "dev" / "disk" / "by-partlabel" / "osiris-luks")
    keyfile = str(tmp_path / "run" / "osiris-install" / "passphrase")
    img = tmp_path / "luks.img"
    with img.open("wb") as f:
        f.truncate(64 * 1024**2)
    (tmp_path / "run" / "osiris-install").mkdir(parents=True, mode=0o700)
    Path(keyfile).write_bytes(os.urandom(48).hex().encode())
    os.chmod(keyfile, 0o600)

    def real(c: list[str]) -> list[str]:
        return [str(img) if w == luks else w for w in c]

    fmt = next(c for c in cmds if "luksFormat" in c)
    subprocess.run(real(fmt)[:-1] + ["--iter-time", "100", str(img)], check=True)  # fast pbkdf
    rec = next(c for c in cmds if "--recovery-key" in c)
    out = subprocess.run(
        real(rec), capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL
    )
    key = re.search(r"([a-z]{8}(?:-[a-z]{8}){7})", out.stdout)
    assert key, out.stdout
    wipe = next(c for c in cmds if "--wipe-slot=password" in c)
    subprocess.run(real(wipe), check=True, capture_output=True)

    def opens(secret: str) -> bool:
        t = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", "-", str(img)],
                           input=secret, text=True, capture_output=True)  # fmt: skip
        return t.returncode == 0

    assert opens(key[1])
    assert not opens(Path(keyfile).read_text())  # the throwaway passphrase no longer opens it
    dump = subprocess.run(["cryptsetup", "luksDump", str(img)], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "Version:       \t2" in dump and "systemd-recovery" in dump
    # the recovery key was written nowhere below the test's dirs
    for p in tmp_path.rglob("*"):
        if p.is_file() and p != img:
            assert key[1] not in p.read_text(errors="replace")


def test_provisioning_stick_is_found_by_label_and_mounted_read_only(tmp_path: Path) -> None:
    """No --provision: a stick labelled OSIRIS-PROV is mounted read-only, its file and keys
    copied (0600 file in the agent's inbox, keys root-readable), and it is unmounted."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    label = tmp_path / "dev" / "disk" / "by-label"
    label.mkdir(parents=True)
    os.mknod(label / "OSIRIS-PROV", 0o600 | stat.S_IFBLK, os.makedev(7, 250))
    r = install(tmp_path, "--dry-run", sysfs=fake_box(tmp_path, {"sda": {}}))
    assert r.returncode == 0, r.stderr
    cmds = plan(r.stdout)
    mnt = str(tmp_path / "run" / "osiris-install" / "prov")
    stage = str(tmp_path / "run" / "osiris-install" / "stage")
    i_mount = cmds.index(["mount", "-o", "ro,nosuid,nodev,noexec", str(label / "OSIRIS-PROV"), mnt])
    i_copy = cmds.index(["install", "-m", "0600", f"{mnt}/osiris-provision.toml",
                         f"{stage}/osiris-provision.toml"])  # fmt: skip
    i_keys = cmds.index(["install", "-m", "0644", f"{mnt}/ssh/tech.keys", f"{stage}/tech.keys"])
    i_umount = cmds.index(["umount", mnt])
    i_erase = next(i for i, c in enumerate(cmds) if c[0] == "sfdisk")
    i_inbox = cmds.index(["install", "-m", "0600", f"{stage}/osiris-provision.toml",
                          "/mnt/var/lib/osiris-provision/inbox/osiris-provision.toml"])  # fmt: skip
    i_tech = cmds.index(["install", "-m", "0644", f"{stage}/tech.keys",
                         "/mnt/var/lib/osiris-provision/ssh/tech.keys"])  # fmt: skip
    i_nixos = next(i for i, c in enumerate(cmds) if c[0] == "nixos-install")
    assert i_mount < i_copy < i_keys < i_umount < i_erase < i_inbox < i_tech < i_nixos


def test_symlinks_on_the_medium_are_refused(tmp_path: Path) -> None:
    prov = tmp_path / "stick"
    (prov / "ssh").mkdir(parents=True)
    (prov / "osiris-provision.toml").symlink_to("/etc/shadow")
    r = install(
        tmp_path, "--dry-run", "--provision", str(prov), sysfs=fake_box(tmp_path, {"sda": {}})
    )
    assert r.returncode == 1 and "is a symbolic link: refusing" in r.stderr
    assert not any(c[0] == "nixos-install" for c in plan(r.stdout))


def test_without_a_stick_nothing_is_copied(tmp_path: Path) -> None:
    r = install(tmp_path, "--dry-run", sysfs=fake_box(tmp_path, {"sda": {}}))
    assert r.returncode == 0
    assert not any("osiris-provision.toml" in " ".join(c) for c in plan(r.stdout))


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="apt-get install -y fdisk")
def test_real_run_on_an_image_file_partitions_it_and_leaves_no_secret(tmp_path: Path) -> None:
    """Not a dry run: the disk is an image file (OSIRIS_DEV/sda). The script stages the
    provisioning file, partitions the image for real, then stops at luksFormat (no udev here
    makes the by-partlabel link, and no device mapper is touched on this machine). On that
    failure the throwaway passphrase and the staged claim code are gone from the runtime dir."""
    if os.geteuid() != 0:
        pytest.skip("the real run needs root")
    (tmp_path / "dev").mkdir()
    img = tmp_path / "dev" / "sda"
    with img.open("wb") as f:
        f.truncate(1024**3)
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "osiris-provision.toml").write_text('claim_code = "SECRET-CLAIM-CODE"\n')
    r = install(tmp_path, "--provision", str(stick), sysfs=fake_box(tmp_path, {"sda": {}}))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr  # stops at luksFormat (or at udevadm where no udev)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(img)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]  # fmt: skip
    assert [p["name"] for p in table["partitions"]] == ["osiris-esp", "osiris-luks"]
    run = tmp_path / "run" / "osiris-install"
    assert run.is_dir() and list(run.iterdir()) == []  # no passphrase, no staged claim code
    assert "SECRET-CLAIM-CODE" not in r.stdout + r.stderr
