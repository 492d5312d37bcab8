"""The parsers of LIN-AV-001, LIN-EDR-001, LIN-BACKUP-001, LIN-LUKS-001 and LIN-TIME-001: the
real rendered scripts, run by bash, reading tool output in Debian 12's formats.

The tools (``chronyc``, ``timedatectl``, ``systemctl``, ``findmnt``, ``lsblk``, ``veeamconfig``)
are labelled TEST STAND-INS on PATH that print a recorded sample; each sample says where it
comes from. What the real tools do on a real host is proven in
tests/realhost/test_linux_coverage.py; here, the edge cases a real host cannot be put into
(a LUKS root, chrony's local reference, timesyncd, a Veeam agent) and the hostile ones.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from osiris_core.catalog import load_catalog, match_rules, render
from osiris_core.errors import SchemaError

CAT = load_catalog()

# chronyc -n -c tracking on the real Debian 12 host (chrony 4.3), synchronised to the test's
# NTP server, then with chronyd just started (no source yet): recorded from
# tests/realhost/test_linux_coverage.py.
CHRONY_SYNCED = ("0AD50011,10.213.0.17,3,1796190386.743377054,0.000020157,0.000021652,"
                 "0.000021652,22.171,0.000,78.637,0.003983157,0.003939312,1.0,Normal")  # fmt: skip
CHRONY_UNSYNCED = ("00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,"
                   "0.000,1.000000000,1.000000000,0.0,Not synchronised")  # fmt: skip
# the same line shapes: 3 s off the source (last offset), and chrony's own `local stratum 10`
# reference (127.127.1.1 = 7F7F0101), which is no time source at all
CHRONY_3S = CHRONY_SYNCED.replace("0.000021652,0.000021652", "3.000112000,3.000112000")
CHRONY_LOCAL = CHRONY_SYNCED.replace("0AD50011,10.213.0.17,3", "7F7F0101,,10")
# timedatectl timesync-status (systemd 252) on Debian 12 with systemd-timesyncd
TIMESYNCD = """       Server: 192.168.1.1 (192.168.1.1)
Poll interval: 34min 8s (min: 32s; max 34min 8s)
         Leap: normal
      Version: 4
      Stratum: 2
    Reference: C0A80101
    Precision: 1us (-25)
Root distance: 14.539ms (max: 5s)
       Offset: {offset}
        Delay: 2.390ms
       Jitter: 1.105ms
 Packet count: 35
    Frequency: +7.321ppm
"""
# Veeam Agent for Linux `veeamconfig session list`, in the layout of Veeam's user guide
# ("Viewing Session List"); no real Veeam agent ran here.
VEEAM = """Job name  Type    ID                                      State    Started at        Finished at
nightly   Backup  {{2fd1b6cc-0ba1-4b58-9ab0-9f3c1e7e5e2f}}  Failed   {old} {old_t}  {old} {old_t}
nightly   Backup  {{b1c3d1a2-23e4-4f5a-8a6b-7c8d9e0f1a2b}}  Success  {day} {t}  {day} {t}
Total amount: 2
"""  # noqa: E501

STAND_IN = """#!/bin/bash
# TEST STAND-IN for {name}: prints the recorded sample in $SAMPLES/{name}.<args>, or $SAMPLES/{name}
d=${{SAMPLES:?}}; key="$d/{name}.$(printf '%s' "$*" | tr -c 'A-Za-z0-9' '_')"
if [ -f "$key" ]; then cat "$key"; exit "$(cat "$key.rc" 2>/dev/null || echo 0)"; fi
if [ -f "$d/{name}" ]; then cat "$d/{name}"; exit "$(cat "$d/{name}.rc" 2>/dev/null || echo 0)"; fi
exit 1
"""


class Host:
    """A sandbox OSIRIS_ROOT plus stand-in tools; ``out(tool, text, args=None)`` records a
    sample; ``unit(name, active)`` is what the stand-in ``systemctl is-active`` answers."""

    def __init__(self, tmp: Path) -> None:
        self.root, self.bin, self.samples = tmp / "root", tmp / "bin", tmp / "samples"
        for d in (self.root, self.bin, self.samples):
            d.mkdir()
        for tool in ("chronyc", "timedatectl", "findmnt", "lsblk", "veeamconfig", "systemctl"):
            p = self.bin / tool
            p.write_text(STAND_IN.format(name=tool))
            p.chmod(0o755)
        self.tools = {"chronyc", "timedatectl", "findmnt", "lsblk", "systemctl"}

    def out(self, tool: str, text: str, args: str | None = None, rc: int = 0) -> None:
        name = (
            tool if args is None else f"{tool}." + "".join(c if c.isalnum() else "_" for c in args)
        )
        (self.samples / name).write_text(text)
        (self.samples / f"{name}.rc").write_text(str(rc))

    def unit(self, name: str, active: bool) -> None:
        self.out("systemctl", "", f"is-active --quiet {name}", 0 if active else 3)

    def file(self, rel: str, data: bytes | str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    def run(self, rid: str, params: dict | None = None, veeam: bool = False) -> dict:
        if not veeam:
            (self.bin / "veeamconfig").unlink(missing_ok=True)
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "OSIRIS_ROOT": str(self.root),
               "SAMPLES": str(self.samples), "LC_ALL": "C", "TZ": "UTC"}  # fmt: skip
        proc = subprocess.run(["bash", "-c", render(CAT.runbook(rid), "detect", params)],
                              env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        lines = proc.stdout.splitlines()
        assert len(lines) == 1, (proc.stdout, proc.stderr)
        res = json.loads(lines[0])
        assert set(CAT.runbook(rid).observed_keys) <= set(res["observed"]), res
        return res


@pytest.fixture
def h(tmp_path: Path) -> Host:
    return Host(tmp_path)


def _rules(rid: str, res: dict) -> list[str]:
    return [r.id for r in match_rules(CAT.rules, {"check": CAT.runbook(rid).check,
                                                  "runbook_id": rid, **res})]  # fmt: skip


# --------------------------------------------------------------------------------- TIME


def test_chrony_tracking_offset_sync_and_bound(h: Host) -> None:
    h.unit("chrony", True)
    h.out("chronyc", CHRONY_SYNCED + "\n")
    ok = h.run("LIN-TIME-001")
    assert ok["status"] == "compliant"
    assert ok["observed"] == {"service": "chrony", "service_active": True, "synchronised": True,
                              "offset_ms": 0, "source": "10.213.0.17"}  # fmt: skip
    h.out("chronyc", CHRONY_3S + "\n")
    far = h.run("LIN-TIME-001", {"max_offset_ms": 1000})
    assert far["status"] == "drift" and far["observed"]["offset_ms"] == 3000
    # escalated, never "healed" by setting the clock
    assert _rules("LIN-TIME-001", far) == ["L1-LIN-TIME-001-OFFSET"]


def test_chrony_unsynchronised_local_or_stopped_is_drift(h: Host) -> None:
    h.unit("chrony", True)
    for line in (CHRONY_UNSYNCED, CHRONY_LOCAL):
        h.out("chronyc", line + "\n")
        res = h.run("LIN-TIME-001")
        assert res["status"] == "drift" and res["observed"]["synchronised"] is False, line
    h.out("chronyc", "506 Cannot talk to daemon\n", rc=1)
    assert h.run("LIN-TIME-001")["observed"]["offset_ms"] is None
    h.unit("chrony", False)
    stopped = h.run("LIN-TIME-001")
    assert stopped["status"] == "drift" and stopped["observed"]["service_active"] is False
    assert _rules("LIN-TIME-001", stopped) == ["L1-LIN-TIME-001"]


@pytest.mark.parametrize(("offset", "ms"), [("-1.016ms", 1), ("+512us", 1), ("+2.100s", 2100),
                                            ("-87ms", 87)])  # fmt: skip
def test_timesyncd_offset_units(h: Host, offset: str, ms: int) -> None:
    h.unit("systemd-timesyncd", True)
    h.out("timedatectl", "yes\n", "show -p NTPSynchronized --value")
    h.out("timedatectl", TIMESYNCD.format(offset=offset), "timesync-status")
    res = h.run("LIN-TIME-001", {"service": "systemd-timesyncd"})
    assert res["observed"]["offset_ms"] == ms and res["observed"]["source"] == "192.168.1.1"
    assert res["status"] == ("compliant" if ms <= 100 else "drift")


def test_timesyncd_unparsable_offset_is_never_compliant(h: Host) -> None:
    h.unit("systemd-timesyncd", True)
    h.out("timedatectl", "yes\n", "show -p NTPSynchronized --value")
    h.out("timedatectl", TIMESYNCD.format(offset="+1min 3s"), "timesync-status")
    res = h.run("LIN-TIME-001", {"service": "systemd-timesyncd"})
    assert res["status"] == "drift" and res["observed"]["offset_ms"] is None


def test_time_params_cannot_loosen_or_redirect() -> None:
    rb = CAT.runbook("LIN-TIME-001")
    for bad in ({"max_offset_ms": 60000}, {"max_offset_ms": 0}, {"service": "debug-shell"},
                {"service": "ntpdate"}, {"service": "chrony; date -s 2000-01-01"}):  # fmt: skip
        with pytest.raises(SchemaError):
            rb.validate_params(bad)
    for phase in rb.phases:  # the scripts never set the clock
        code = [ln for ln in rb.script(phase).splitlines() if not ln.lstrip().startswith("#")]
        never = ("makestep", "settime", "date -s", "hwclock")
        assert not any(w in ln for ln in code for w in never), phase


# ----------------------------------------------------------------------------------- AV


def _cvd(stime: int | None) -> bytes:
    head = ("ClamAV-VDB:02 Dec 2026 05-36 +0000:27474:2077000:90:X:X:raynman:"
            + ("" if stime is None else str(stime)))  # fmt: skip
    return head.encode().ljust(512, b" ") + b"\0" * 1024


def test_av_age_is_the_header_build_time_and_states(h: Host) -> None:
    h.unit("clamav-daemon", True)
    h.unit("clamav-freshclam", True)
    now = int(time.time())
    assert h.run("LIN-AV-001")["observed"]["signature_state"] == "missing"
    h.file("var/lib/clamav/daily.cvd", _cvd(now - 5 * 3600))
    ok = h.run("LIN-AV-001")
    assert ok["status"] == "compliant" and ok["observed"]["signature_age_hours"] == 5
    h.file("var/lib/clamav/daily.cld", _cvd(now - 3600))  # the newer of .cvd/.cld counts
    assert h.run("LIN-AV-001")["observed"]["signature_db"] == "daily.cld"
    h.file("var/lib/clamav/daily.cld", _cvd(now - 100 * 3600))
    h.file("var/lib/clamav/daily.cvd", _cvd(now - 100 * 3600))
    stale = h.run("LIN-AV-001")
    assert stale["status"] == "drift" and stale["observed"]["signature_state"] == "stale"
    assert h.run("LIN-AV-001", {"max_signature_age_hours": 168})["status"] == "compliant"
    assert _rules("LIN-AV-001", stale)[0] == "L1-LIN-AV-001-STALE"  # both units run: a human's
    h.file("var/lib/clamav/daily.cld", _cvd(now + 86400))
    fut = h.run("LIN-AV-001")
    assert fut["observed"]["signature_state"] == "future"
    assert _rules("LIN-AV-001", fut)[0] == "L1-LIN-AV-001-SIGDB"


def test_av_a_headerless_or_fake_database_is_unreadable_not_fresh(h: Host) -> None:
    h.unit("clamav-daemon", True)
    h.unit("clamav-freshclam", True)
    h.file("var/lib/clamav/daily.cld", b"just bytes, freshly touched\n")
    res = h.run("LIN-AV-001")
    assert res["status"] == "drift" and res["observed"]["signature_state"] == "unreadable"
    h.file("var/lib/clamav/daily.cld", _cvd(None))  # a header without its build time
    assert h.run("LIN-AV-001")["observed"]["signature_state"] == "unreadable"
    assert _rules("LIN-AV-001", res)[0] == "L1-LIN-AV-001-SIGDB"


def test_av_stopped_units_go_to_the_heal_rule(h: Host) -> None:
    h.unit("clamav-daemon", False)
    h.unit("clamav-freshclam", True)
    h.file("var/lib/clamav/daily.cvd", _cvd(int(time.time()) - 3600))
    res = h.run("LIN-AV-001")
    assert res["status"] == "drift" and res["observed"]["daemon_active"] is False
    assert _rules("LIN-AV-001", res) == ["L1-LIN-AV-001"]
    for bad in ({"daemon_service": "debug-shell"}, {"updater_service": "sshd"},
                {"max_signature_age_hours": 24 * 365}):  # fmt: skip
        with pytest.raises(SchemaError):
            CAT.runbook("LIN-AV-001").validate_params(bad)


def test_av_remediate_never_writes_the_database() -> None:
    text = CAT.runbook("LIN-AV-001").script("remediate")
    code = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    assert not any("clamav" in ln and ("rm " in ln or ">" in ln or "touch" in ln) for ln in code)
    assert not any("/var/lib/clamav" in ln for ln in code)


# ---------------------------------------------------------------------------------- EDR


def test_edr_each_vendor_and_the_expected_choice(h: Host) -> None:
    h.file("usr/sbin/clamd", "#!/bin/sh\n").chmod(0o755)
    none = h.run("LIN-EDR-001")
    assert none["status"] == "drift" and none["observed"]["clamav_present"] is True
    for name, binary, unit in (("falcon", "opt/CrowdStrike/falconctl", "falcon-sensor"),
                               ("sentinelone", "opt/sentinelone/bin/sentinelctl", "sentinelone"),
                               ("mdatp", "usr/bin/mdatp", "mdatp")):  # fmt: skip
        h.file(binary, "#!/bin/sh\n").chmod(0o755)
        h.unit(unit, True)
        res = h.run("LIN-EDR-001", {"expected": name})
        assert res["status"] == "compliant" and name in res["observed"]["running"], name
    h.unit("falcon-sensor", False)
    res = h.run("LIN-EDR-001", {"expected": "falcon"})
    assert res["status"] == "drift" and "falcon" in res["observed"]["agents_found"]
    assert h.run("LIN-EDR-001")["status"] == "compliant"  # any: another one runs
    with pytest.raises(SchemaError):  # no value turns the check off
        CAT.runbook("LIN-EDR-001").validate_params({"expected": "none"})


# ------------------------------------------------------------------------------- BACKUP


def _show(result: str, status: int, ts: int | None) -> str:
    stamp = "" if ts is None else f"@{ts}"
    return f"Result={result}\nExecMainExitTimestamp={stamp}\nExecMainStatus={status}\n"


def test_backup_systemd_units_are_discovered_by_name_and_judged_by_result(h: Host) -> None:
    now = int(time.time())
    units = "restic-backups-home.service disabled enabled\nborgmatic.service static -\n" \
            "systemd-tmpfiles-clean.service static -\nrestic@.service static -\n"  # fmt: skip
    h.out("systemctl", units,
          "list-unit-files --type=service --no-legend --plain restic* borg*")  # fmt: skip
    props = "show -p Result -p ExecMainStatus -p ExecMainExitTimestamp --timestamp=unix"
    h.out("systemctl", _show("success", 0, now - 3 * 3600), f"{props} restic-backups-home.service")
    h.out("systemctl", _show("success", 0, now - 7200), f"{props} borgmatic.service")
    ok = h.run("LIN-BACKUP-001")
    assert ok["status"] == "compliant", ok
    assert ok["observed"]["sources"] == ["systemd:borgmatic.service",
                                         "systemd:restic-backups-home.service"]  # fmt: skip
    assert ok["observed"]["oldest_success_age_hours"] == 3
    h.out("systemctl", _show("exit-code", 1, now - 600), f"{props} borgmatic.service")
    bad = h.run("LIN-BACKUP-001")
    assert bad["status"] == "drift" and bad["observed"]["stale"] == ["systemd:borgmatic.service"]
    assert _rules("LIN-BACKUP-001", bad) == ["L1-LIN-BACKUP-001"]
    h.out("systemctl", _show("success", 0, now - 30 * 3600), f"{props} borgmatic.service")
    assert h.run("LIN-BACKUP-001")["status"] == "drift"
    assert h.run("LIN-BACKUP-001", {"max_age_hours": 48})["status"] == "compliant"
    with pytest.raises(SchemaError):
        CAT.runbook("LIN-BACKUP-001").validate_params({"max_age_hours": 24 * 30})


def test_backup_rsnapshot_without_a_logfile_is_not_readable_so_drift(h: Host) -> None:
    h.file("etc/rsnapshot.conf", "config_version\t1.2\n#logfile\t/var/log/rsnapshot.log\n")
    res = h.run("LIN-BACKUP-001")
    assert res["status"] == "drift" and res["observed"]["stale"] == ["rsnapshot"]
    assert res["observed"]["oldest_success_age_hours"] is None


def test_backup_veeam_newest_success_row(h: Host) -> None:
    def fmt(t: float) -> tuple[str, str]:
        return time.strftime("%Y-%m-%d", time.gmtime(t)), time.strftime("%H:%M", time.gmtime(t))

    day, t = fmt(time.time() - 5 * 3600)
    old, old_t = fmt(time.time() - 2 * 3600)
    h.out("veeamconfig", VEEAM.format(day=day, t=t, old=old, old_t=old_t), "session list")
    res = h.run("LIN-BACKUP-001", veeam=True)
    # the newer row failed; the success 5 h ago is what counts
    assert res["status"] == "compliant" and res["observed"]["sources"] == ["veeam"]
    assert res["observed"]["oldest_success_age_hours"] in (4, 5)
    h.out("veeamconfig", VEEAM.replace("Success", "Failed ").format(
        day=day, t=t, old=old, old_t=old_t), "session list")  # fmt: skip
    assert h.run("LIN-BACKUP-001", veeam=True)["observed"]["stale"] == ["veeam"]


def test_backup_nothing_found_is_drift(h: Host) -> None:
    res = h.run("LIN-BACKUP-001")
    assert res["status"] == "drift" and res["observed"]["sources"] == []


# --------------------------------------------------------------------------------- LUKS

# findmnt -rn -o TARGET,SOURCE and lsblk -nrso FSTYPE DEV on a Debian 12 installed with the
# installer's "guided - use entire disk and set up encrypted LVM" (LVM on LUKS), /boot and the
# ESP outside it; /srv is an extra unencrypted disk.
FINDMNT = """/ /dev/mapper/deb--vg-root
/proc proc
/sys sysfs
/run tmpfs
/boot /dev/sda2
/boot/efi /dev/sda1
/home /dev/mapper/deb--vg-home
/srv /dev/sdb1
"""
LVM_ON_LUKS = "ext4\nLVM2_member\ncrypto_LUKS\n\n"


def test_luks_walks_up_the_tree_and_ignores_boot(h: Host) -> None:
    h.out("findmnt", FINDMNT)
    for dev in ("/dev/mapper/deb--vg-root", "/dev/mapper/deb--vg-home"):
        h.out("lsblk", LVM_ON_LUKS, f"-nrso FSTYPE {dev}")
    h.out("lsblk", "ext4\n\n", "-nrso FSTYPE /dev/sdb1")
    h.file("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n"
                         "/dev/dm-2 partition 999420 0 -2\n")  # fmt: skip
    h.out("lsblk", "swap\nLVM2_member\ncrypto_LUKS\n\n", "-nrso FSTYPE /dev/dm-2")
    res = h.run("LIN-LUKS-001")
    assert res["status"] == "drift"
    assert res["observed"]["unencrypted"] == ["/srv"]
    assert sorted(res["observed"]["volumes"]) == ["/", "/home", "/srv", "[SWAP]"]
    assert _rules("LIN-LUKS-001", res) == ["L1-LIN-LUKS-001"]
    h.out("lsblk", LVM_ON_LUKS, "-nrso FSTYPE /dev/sdb1")
    assert h.run("LIN-LUKS-001")["status"] == "compliant"


def test_luks_unseen_device_or_nothing_is_an_error_never_compliant(h: Host) -> None:
    h.out("findmnt", "/ /dev/vda[/var/lib/machines/deb]\n/proc proc\n")  # a container's view
    res = h.run("LIN-LUKS-001")
    assert res["status"] == "error" and res["observed"]["unverified"] == ["/"]
    assert "not a block device" in res["observed"]["error"]
    h.out("findmnt", "/ overlay\n/proc proc\n")
    res = h.run("LIN-LUKS-001")
    assert res["status"] == "error" and res["observed"]["volumes"] == []
