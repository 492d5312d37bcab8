"""The appliance ships what its own checks expect (issue 15 item 6): osiris-appliance.nix.

Two halves, both reading the paths and unit names FROM the RB-NIX runbooks (their manifests'
default parameters and their scripts), so module and runbooks cannot drift apart:

* the module, evaluated by Nix (tests/test_nix.py's stub evaluator), declares every unit and
  file a RB-NIX detect reads with its default parameters;
* a sandbox root laid out the way the module lays it out (the baseline text and its sha256 as
  Nix computed them, the real backup script run for real, the canary line from the unit's own
  command line) makes each RB-NIX detect with default parameters report compliant, or a real
  drift where the appliance really is not compliant (no LUKS root) — never an error. No NixOS
  host can boot here, so the stand-ins are the sandbox's (systemctl, nft, journalctl,
  timedatectl), as in tests/core/test_scripts.py.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from core.test_scripts import CATALOG_DIR, Sandbox
from test_nix import AGENT, NIX, ROOT, URL, evaluate

from osiris_core.catalog import load_catalog, match_rules

APPLIANCE = ROOT / "nix" / "modules" / "osiris-appliance.nix"
BACKUP_SH = ROOT / "nix" / "modules" / "osiris-backup.sh"
CAT = load_catalog()
NIX_RUNBOOKS = sorted(r for r in CAT.runbooks if r.startswith("RB-NIX-"))


def default(rid: str, name: str) -> Any:
    return CAT.runbook(rid).params[name].default


def script(rid: str, phase: str = "detect") -> str:
    return (CATALOG_DIR / "runbooks" / rid / f"{phase}.sh").read_text()


def unit(name: str) -> str:
    return name.removesuffix(".service")


def appliance(**user: Any) -> dict[str, Any]:
    """The appliance module, evaluated over the agent module's own evaluated options and its
    egress table (what NixOS's merge would hand it)."""
    a = evaluate(
        AGENT,
        {"services": {"osiris-agent": {"enable": True, "settings": {"server": {"url": URL}},
                                       "egress": {"enable": True}}}},
    )  # fmt: skip
    other = {
        "services": {"osiris-agent": a["options"]["services"]["osiris-agent"]},
        "networking": {"nftables": {"tables": a["config"]["networking"]["nftables"]["tables"]}},
    }
    body = {"services": {"osiris-appliance": {"enable": True, **user}}}
    return _evaluate_with(body, other) | {"agent": a}


def _evaluate_with(user: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    import json

    from test_nix import EVAL, _nix

    expr = (
        "{ userJSON, otherJSON }: import " + str(EVAL) + " { modulePath = " + str(APPLIANCE)
        + "; userConfig = builtins.fromJSON userJSON; otherConfig = builtins.fromJSON otherJSON; }"
    )  # fmt: skip
    out = _nix("--eval", "--strict", "--json", "-E", expr, "--argstr", "userJSON",
               json.dumps(user), "--argstr", "otherJSON", json.dumps(other))  # fmt: skip
    return json.loads(out)


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    _need_nix()
    return appliance()


def _need_nix() -> None:
    if NIX is None:
        pytest.skip("nix-instantiate not installed (apt-get install -y nix-bin)")


def etc(conf: dict[str, Any], path: str) -> str:
    assert path.startswith("/etc/"), path
    return conf["environment"]["etc"][path.removeprefix("/etc/")]["text"]


# --- the module declares what the runbooks read ------------------------------------------------


def test_every_nix_runbook_is_covered_here() -> None:
    covered = {"RB-NIX-FW-001", "RB-NIX-AV-001", "RB-NIX-BACKUP-001", "RB-NIX-LOG-001",
               "RB-NIX-TIME-001", "RB-NIX-LUKS-001", "RB-NIX-GEN-001"}  # fmt: skip
    assert set(NIX_RUNBOOKS) == covered


def test_module_ships_the_firewall_baseline_and_loads_exactly_it(built: dict[str, Any]) -> None:
    conf = built["config"]
    assert built["failedAssertions"] == []
    base_file = default("RB-NIX-FW-001", "baseline_file")
    text = etc(conf, base_file)
    assert text.splitlines()[2] == "flush ruleset"  # remediate's nft -f replaces, not appends
    assert "policy drop" in text and "dport 22 accept" not in text  # no port open by default
    assert "table inet osiris_egress {" in text  # the agent's egress table is in the baseline
    # the pin the runbook reads when the policy sets none: <baseline_file>.sha256
    assert "$base.sha256" in script("RB-NIX-FW-001") and "$base.sha256" in script(
        "RB-NIX-FW-001", "remediate"
    )
    assert etc(conf, base_file + ".sha256") == hashlib.sha256(text.encode()).hexdigest() + "\n"
    svc = conf["systemd"]["services"][unit(default("RB-NIX-FW-001", "service"))]
    assert svc["serviceConfig"]["ExecStart"][0].endswith(f"/bin/nft -f {base_file}")
    assert svc["environment"]["OSIRIS_NFT_STATE"] == default("RB-NIX-FW-001", "state_file")
    # the unit records the live ruleset with the very command the runbook hashes
    cmd = re.search(r"nft -s(?: -[a-z])* list ruleset", script("RB-NIX-FW-001"))
    assert cmd and cmd[0] in APPLIANCE.read_text()
    assert conf["networking"]["firewall"]["enable"] is False
    assert conf["networking"]["nftables"]["enable"] is False  # NixOS's own loader stays off


def test_module_refuses_a_second_firewall() -> None:
    _need_nix()
    r = _evaluate_with(
        {"services": {"osiris-appliance": {"enable": True}}},
        {"networking": {"firewall": {"enable": True}}},
    )
    assert any("owns the firewall" in m for m in r["failedAssertions"])


def test_module_ships_clamav_backup_canary_timesync(built: dict[str, Any]) -> None:
    conf = built["config"]
    services = conf["systemd"]["services"]
    # AV: NixOS's clamav module names its daemon unit clamav-daemon; signatures by freshclam
    assert default("RB-NIX-AV-001", "service") == "clamav-daemon"
    assert conf["services"]["clamav"]["daemon"]["enable"] is True
    assert conf["services"]["clamav"]["updater"]["enable"] is True
    assert default("RB-NIX-AV-001", "binary").startswith("/run/current-system/sw/bin/")
    assert any(p.endswith("-clamav") for p in conf["environment"]["systemPackages"])
    name = Path(default("RB-NIX-AV-001", "binary")).name
    assert "/etc/osiris/${OSIRIS_P_BINARY##*/}.sha256" in script("RB-NIX-AV-001")
    assert conf["environment"]["etc"][f"osiris/{name}.sha256"]["source"].endswith(
        "-osiris-clamscan-sha256"
    )
    assert "database.clamav.net" in conf["services"]["osiris-agent"]["egress"]["allowedHosts"]
    # backup: both units, their timers, and the status file the runbook reads
    status = default("RB-NIX-BACKUP-001", "status_file")
    for param in ("backup_service", "restore_test_service"):
        name = unit(default("RB-NIX-BACKUP-001", param))
        argv = shlex.split(services[name]["serviceConfig"]["ExecStart"])
        assert argv[2] == status, name
        assert name in conf["systemd"]["timers"], name
    # the runbook's key=value names are the ones the backup script writes
    for key in ("last_backup", "last_restore_test", "archive", "sha256"):
        assert f"get {key}" in script("RB-NIX-BACKUP-001") and f"{key}=" in BACKUP_SH.read_text()
    assert any(r.startswith(f"d {Path(status).parent} 0750 root osiris")
               for r in conf["systemd"]["tmpfiles"]["rules"])  # fmt: skip
    # logging: the canary unit writes the token the runbook greps, often enough
    token = re.search(r"grep -c '([A-Z-]+)'", script("RB-NIX-LOG-001"))
    assert token is not None
    assert token[1] in services["osiris-log-canary"]["serviceConfig"]["ExecStart"]
    every = conf["systemd"]["timers"]["osiris-log-canary"]["timerConfig"]["OnUnitActiveSec"]
    assert every == "30min" and 30 * 60 < default("RB-NIX-LOG-001", "canary_max_age_hours") * 3600
    assert "systemd-journal" in conf["users"]["users"]["osiris"]["extraGroups"]
    assert set(default("RB-NIX-LOG-001", "services").split()) == {"systemd-journald"}
    # time
    assert default("RB-NIX-TIME-001", "service") == "systemd-timesyncd"
    assert conf["services"]["timesyncd"]["enable"] is True
    # every unit a RB-NIX runbook starts by default, the agent may start (polkit)
    allowed = set(built["agent"]["options"]["services"]["osiris-agent"]["privileges"]["units"])
    for rid, param in (("RB-NIX-FW-001", "service"), ("RB-NIX-AV-001", "service"),
                       ("RB-NIX-BACKUP-001", "backup_service"),
                       ("RB-NIX-BACKUP-001", "restore_test_service"),
                       ("RB-NIX-TIME-001", "service")):  # fmt: skip
        name = default(rid, param)
        assert (name if name.endswith(".service") else name + ".service") in allowed, name


def test_module_luks_root_is_the_volume_the_runbook_checks(built: dict[str, Any]) -> None:
    assert default("RB-NIX-LUKS-001", "volumes") == "root"
    assert any("RB-NIX-LUKS-001" in w for w in built["config"]["warnings"])
    conf = appliance(diskEncryption={"rootDevice": "/dev/disk/by-partlabel/osiris-root"})["config"]
    assert conf["boot"]["initrd"]["luks"]["devices"]["root"]["device"].endswith("osiris-root")
    assert conf["warnings"] == []


def test_image_uses_the_appliance_module(built: dict[str, Any]) -> None:
    from test_nix import IMAGE

    img = evaluate(
        IMAGE,
        {
            "osiris": {
                "appliance": {
                    "serverUrl": URL,
                    "dnsResolvers": ["192.168.10.1"],
                    "sshAllowFrom": ["192.168.10.0/24"],
                }
            }
        },
    )
    conf = img["config"]
    assert any(i.endswith("nix/modules/osiris-appliance.nix") for i in img["imports"])
    assert conf["services"]["osiris-appliance"]["enable"] is True
    assert conf["networking"]["firewall"]["enable"] is False
    ours = appliance(**{k: v for k, v in conf["services"]["osiris-appliance"].items()
                        if k != "enable"})["config"]  # fmt: skip
    text = etc(ours, default("RB-NIX-FW-001", "baseline_file"))
    assert "ip saddr 192.168.10.0/24 tcp dport 22 accept" in text
    assert text.count("dport 22 accept") == 1


def test_module_shell_scripts_pass_shellcheck() -> None:
    """The backup script runs as root on every appliance: the same gate as catalogue scripts."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck binary missing (CI installs the Debian package 'shellcheck')")
    scripts = sorted((ROOT / "nix" / "modules").glob("*.sh"))
    assert BACKUP_SH in scripts
    p = subprocess.run(["shellcheck", "-s", "bash", "-S", "style", *map(str, scripts)],
                       capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0, p.stdout


# --- each RB-NIX detect, default parameters, on a root laid out like the module ----------------

JOURNALCTL = """#!/bin/bash
# TEST STAND-IN for journalctl: the journal is the file $FAKE_JOURNAL (--since is not modelled:
# the test writes only lines it means to be recent).
cat "${FAKE_JOURNAL:?}" 2>/dev/null || true
"""
LOGGER = """#!/bin/bash
# TEST STAND-IN for logger: appends the message to $FAKE_JOURNAL.
while [ "$#" -gt 0 ]; do case $1 in -t) shift 2 ;; *) break ;; esac; done
echo "$*" >>"${FAKE_JOURNAL:?}"
"""
TIMEDATECTL = """#!/bin/bash
# TEST STAND-IN for timedatectl show -p NTPSynchronized --value: the answer is $FAKE_NTP_SYNC.
[ "$*" = "show -p NTPSynchronized --value" ] && echo "${FAKE_NTP_SYNC:-no}"
"""


class ApplianceRoot(Sandbox):
    """A sandbox laid out the way osiris-appliance.nix lays out a built appliance."""

    def __init__(self, tmp: Path, conf: dict[str, Any]) -> None:
        super().__init__(tmp)
        self.conf = conf
        self.journal = tmp / "journal"
        for name, text in (("journalctl", JOURNALCTL), ("logger", LOGGER),
                           ("timedatectl", TIMEDATECTL)):  # fmt: skip
            p = self.bin / name
            p.write_text(text)
            p.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "OSIRIS_ROOT": str(self.root),
            "FAKE_SYSTEMCTL_DIR": str(self.state),
            "FAKE_NFT_RULESET": str(self.ruleset),
            "FAKE_JOURNAL": str(self.journal),
            "FAKE_NTP_SYNC": "yes",
            "LC_ALL": "C",
        }

    def boot(self) -> None:
        """What the module's units have done by the time the agent first checks."""
        conf = self.conf
        clamscan = self.file("run/current-system/sw/bin/clamscan", "#!/bin/sh\n", 0o755)
        # files the module builds with a derivation: what each derivation computes
        built = {"osiris-clamscan-sha256": hashlib.sha256(clamscan.read_bytes()).hexdigest()}
        for rel, entry in conf["environment"]["etc"].items():
            if "text" in entry:
                self.file("etc/" + rel, entry["text"])
            else:
                self.file("etc/" + rel, built[entry["source"].split("-", 1)[1]] + "\n")
        # nftables.service: nft -f <baseline>, then record the live ruleset's hash
        base = self.root / default("RB-NIX-FW-001", "baseline_file").lstrip("/")
        sh = subprocess.run(["bash", "-c", f"nft -f {base} && nft -s -t list ruleset | sha256sum"],
                            env=self.env(), capture_output=True, text=True, check=True)  # fmt: skip
        state = conf["systemd"]["services"]["nftables"]["environment"]["OSIRIS_NFT_STATE"]
        self.file(state.lstrip("/"), sh.stdout.split()[0] + "\n")
        for name in ("nftables", "clamav-daemon", "systemd-journald", "systemd-timesyncd"):
            self.unit(name, "active")
        # the agent's state and /etc/osiris exist; then osiris-backup + osiris-restore-test run
        self.file("var/lib/osiris/state.db", "sqlite\n", 0o600)
        for name in ("osiris-backup", "osiris-restore-test"):
            self.run_unit(name)
        # osiris-log-canary.service, its own command line, through the stand-in logger
        self.run_unit("osiris-log-canary")

    def run_unit(self, name: str) -> None:
        argv = shlex.split(self.conf["systemd"]["services"][name]["serviceConfig"]["ExecStart"])
        # the store paths of the stub evaluation stand for: the module's script, util-linux
        if argv[0].endswith("-osiris-backup"):
            cmd = ["bash", str(BACKUP_SH), *argv[1:]]
        else:
            assert argv[0].endswith("/bin/logger"), argv[0]
            cmd = [str(self.bin / "logger"), *argv[1:]]
        subprocess.run(cmd, env=self.env(), check=True, capture_output=True)

    def detect(self, rid: str, ok: bool = True, **params: Any) -> dict[str, Any]:
        import json

        from osiris_core.catalog import render

        rb = CAT.runbook(rid)
        p = subprocess.run(["bash", "-c", render(rb, "detect", params or None)], env=self.env(),
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        res = json.loads(p.stdout)
        if ok:
            assert res["status"] != "error", (rid, res, p.stderr)
            assert set(rb.observed_keys) <= set(res["observed"]), (rid, res)
        return res


@pytest.fixture
def booted(tmp_path: Path, built: dict[str, Any]) -> ApplianceRoot:
    root = ApplianceRoot(tmp_path, built["config"])
    root.boot()
    return root


@pytest.mark.parametrize("rid", [r for r in NIX_RUNBOOKS if r != "RB-NIX-GEN-001"])
def test_default_detect_never_errors_on_a_built_appliance(booted: ApplianceRoot, rid: str) -> None:
    res = booted.detect(rid)
    if rid == "RB-NIX-LUKS-001":  # no LUKS root in this layout: a real drift, escalated
        assert res["status"] == "drift" and res["observed"]["unencrypted"] == ["root"]
        hits = match_rules(CAT.rules, {"check": "encryption", "runbook_id": rid, **res})
        assert [h.action for h in hits] == ["escalate"]
    elif rid == "RB-NIX-AV-001":  # no pin in the policy: the one the module built
        assert res["status"] == "compliant" and res["observed"]["hash_state"] == "match"
        assert res["observed"]["pin_source"] == "module"
    else:
        assert res["status"] == "compliant", res
    if rid == "RB-NIX-FW-001":
        assert res["observed"]["pin_source"] == "module"


def test_replaced_scanner_is_mismatch_and_escalated(booted: ApplianceRoot) -> None:
    binary = booted.root / default("RB-NIX-AV-001", "binary").lstrip("/")
    binary.write_text("#!/bin/sh\necho not clamscan\n")
    res = booted.detect("RB-NIX-AV-001")
    assert res["status"] == "drift" and res["observed"]["hash_state"] == "mismatch"
    hits = match_rules(CAT.rules, {"check": "av_edr", "runbook_id": "RB-NIX-AV-001", **res})
    assert [h.action for h in hits] == ["escalate"]
    pin = booted.root / "etc/osiris/clamscan.sha256"
    pin.write_text("garbage\n")  # an unreadable pin is no pin: unpinned, never a pass by error
    res = booted.detect("RB-NIX-AV-001")
    assert res["observed"]["hash_state"] == "unpinned" and res["observed"]["pin_source"] == "none"


def test_luks_root_opened_by_the_initrd_is_compliant(booted: ApplianceRoot) -> None:
    booted.file("sys/block/dm-0/dm/name", "root\n")  # boot.initrd.luks.devices.root
    booted.file("sys/block/dm-0/dm/uuid", "CRYPT-LUKS2-5a1e0c0ffee-root\n")
    assert booted.detect("RB-NIX-LUKS-001")["status"] == "compliant"


def test_generation_without_a_release_is_an_alert_not_an_escalation(booted: ApplianceRoot) -> None:
    """The one RB-NIX detect that errors on defaults, on purpose: the desired system comes only
    from a signed release in the policy; without one there is nothing to compare against, and
    'never a pass' was chosen over a compliant guess. The rule alerts (L1-NIX-GEN-002); it does
    not escalate or heal."""
    res = booted.detect("RB-NIX-GEN-001", ok=False)
    assert res["status"] == "error" and "desired_system" in res["observed"]["error"]
    hits = match_rules(CAT.rules, {"check": "nixos_generation", "runbook_id": "RB-NIX-GEN-001",
                                   **res})  # fmt: skip
    assert [h.action for h in hits] == ["alert"]


# --- hostile cases --------------------------------------------------------------------------


def test_tampered_baseline_is_drift_and_escalated_never_loaded(booted: ApplianceRoot) -> None:
    base = booted.root / default("RB-NIX-FW-001", "baseline_file").lstrip("/")
    base.write_text(base.read_text().replace("policy drop", "policy accept"))
    res = booted.detect("RB-NIX-FW-001")
    assert res["status"] == "drift" and res["observed"]["baseline_state"] == "mismatch"
    hits = match_rules(CAT.rules, {"check": "firewall", "runbook_id": "RB-NIX-FW-001", **res})
    assert [h.action for h in hits] == ["escalate"]
    before = booted.ruleset.read_text()
    assert booted.run("RB-NIX-FW-001", "remediate", ok=False)["status"] == "error"
    assert booted.ruleset.read_text() == before and "policy drop" in before


def test_no_pin_anywhere_is_unpinned_drift_not_error(booted: ApplianceRoot) -> None:
    pin = booted.root / (default("RB-NIX-FW-001", "baseline_file") + ".sha256").lstrip("/")
    for text in (None, "not-a-hash\n", "A" * 64 + "\n"):
        if text is None:
            pin.unlink()
        else:
            pin.write_text(text)
        res = booted.detect("RB-NIX-FW-001")
        assert res["status"] == "drift" and res["observed"]["baseline_state"] == "unpinned"
        hits = match_rules(CAT.rules, {"check": "firewall", "runbook_id": "RB-NIX-FW-001", **res})
        assert [h.action for h in hits] == ["escalate"]
        out = booted.run("RB-NIX-FW-001", "remediate", ok=False)
        assert out["status"] == "error" and "not pinned" in out["observed"]["error"]


def test_opened_firewall_is_changed_drift(booted: ApplianceRoot) -> None:
    booted.ruleset.write_text(booted.ruleset.read_text().replace("policy drop", "policy accept"))
    res = booted.detect("RB-NIX-FW-001")
    assert res["status"] == "drift" and res["observed"]["ruleset_state"] == "changed"


def test_egress_refresh_does_not_look_like_a_firewall_change(booted: ApplianceRoot) -> None:
    """The terse listing (-t) leaves set elements out: resolved addresses come and go."""
    assert "-s -t list ruleset" in script("RB-NIX-FW-001")


def test_corrupted_backup_fails_the_restore_test_and_stays_drift(booted: ApplianceRoot) -> None:
    status = booted.root / default("RB-NIX-BACKUP-001", "status_file").lstrip("/")
    lines = dict(line.split("=", 1) for line in status.read_text().splitlines())
    archive = booted.root / lines["archive"].lstrip("/")
    assert archive.stat().st_mode & 0o777 == 0o640
    archive.write_bytes(archive.read_bytes()[:-8] + b"tampered")
    with pytest.raises(subprocess.CalledProcessError):
        booted.run_unit("osiris-restore-test")
    assert status.read_text().splitlines() == [f"{k}={v}" for k, v in lines.items()]
    assert booted.detect("RB-NIX-BACKUP-001")["observed"]["checksum_ok"] is False


def test_backup_keeps_newest_archives_and_both_jobs_keep_each_others_lines(
    booted: ApplianceRoot,
) -> None:
    status = booted.root / default("RB-NIX-BACKUP-001", "status_file").lstrip("/")
    first = dict(line.split("=", 1) for line in status.read_text().splitlines())
    time.sleep(1.05)  # archive names are per second
    booted.run_unit("osiris-backup")
    now = dict(line.split("=", 1) for line in status.read_text().splitlines())
    assert now["archive"] != first["archive"]
    assert now["last_restore_test"] == first["last_restore_test"]
    assert booted.detect("RB-NIX-BACKUP-001")["status"] == "compliant"
