"""CI gates for the catalogue's scripts, plus real runs of Linux/appliance runbooks in a sandbox.

Gates: every .ps1 parses with tree-sitter-powershell without error nodes; every .sh (and every
rendered script) passes ``bash -n`` and ``shellcheck``. Real runs: a drifted sandbox under
OSIRIS_ROOT -> detect says drift -> remediate -> verify says compliant, and stdout is exactly one
JSON object. Service management goes through a labelled stand-in ``systemctl`` on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from osiris_core.catalog import load_catalog, match_rules, render
from osiris_core.catalog.bounds import TrustContext
from osiris_core.keys import Signer
from osiris_core.release import make_release, sign_release

CATALOG_DIR = Path(str(resources.files("osiris_core.catalog")))
PS1 = sorted(CATALOG_DIR.rglob("*.ps1"))
SH = sorted(CATALOG_DIR.rglob("*.sh"))
CAT = load_catalog()
SHELLCHECK = shutil.which("shellcheck")


def _rel(p: Path) -> str:
    return str(p.relative_to(CATALOG_DIR))


# --- gates ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ps_parser():
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_powershell.language()))


def _first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        found = _first_error(child)
        if found is not None:
            return found
    return None


def test_there_are_scripts_to_gate() -> None:
    assert len(PS1) >= 27 * 3 and len(SH) >= 24 * 3


@pytest.mark.parametrize("path", PS1, ids=_rel)
def test_ps1_parses_without_errors(ps_parser, path: Path) -> None:
    tree = ps_parser.parse(path.read_bytes())
    err = _first_error(tree.root_node)
    assert not tree.root_node.has_error, f"{_rel(path)}: parse error at {err and err.start_point}"


def test_ps1_gate_can_fail(ps_parser) -> None:
    assert ps_parser.parse(b"if ($x { Write-Output 1 }").root_node.has_error


def test_rendered_ps1_parse(ps_parser) -> None:
    for rb in CAT.runbooks.values():
        if rb.ext == "ps1":
            for phase in rb.phases:
                tree = ps_parser.parse(render(rb, phase).encode("utf-8"))
                assert not tree.root_node.has_error, (rb.id, phase)


@pytest.mark.parametrize("path", SH, ids=_rel)
def test_sh_passes_bash_n(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _shellcheck(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    if SHELLCHECK is None:
        pytest.skip("shellcheck binary missing (CI installs the Debian package 'shellcheck')")
    return subprocess.run(
        [SHELLCHECK, "-s", "bash", "-S", "style", *args], input=stdin, capture_output=True,
        text=True,
    )  # fmt: skip


def test_sh_files_pass_shellcheck() -> None:
    proc = _shellcheck([str(p) for p in SH])
    assert proc.returncode == 0, proc.stdout


def test_rendered_sh_pass_bash_n_and_shellcheck() -> None:
    for rb in CAT.runbooks.values():
        if rb.ext != "sh":
            continue
        for phase in rb.phases:
            text = render(rb, phase)
            assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
            proc = _shellcheck(["-"], stdin=text)
            assert proc.returncode == 0, (rb.id, phase, proc.stdout)


def test_shellcheck_gate_can_fail() -> None:
    proc = _shellcheck(["-"], stdin="#!/bin/bash\nrm -rf $1/*\n")
    assert proc.returncode != 0


# --- sandbox ----------------------------------------------------------------------------------

FAKE_SYSTEMCTL = r"""#!/bin/bash
# TEST STAND-IN for systemctl (not systemd): unit state is a file in $FAKE_SYSTEMCTL_DIR.
d=${FAKE_SYSTEMCTL_DIR:?}
echo "$*" >>"$d/calls.log"
args=(); now=0; quiet=0
for a in "$@"; do
  case $a in --now) now=1 ;; --quiet | -q) quiet=1 ;; *) args+=("$a") ;; esac
done
cmd=${args[0]}; unit=${args[1]:-}
f="$d/units/$unit"
[ -f "$f" ] || { echo "Unit $unit not found." >&2; exit 5; }
case $cmd in
  is-active) s=$(cat "$f"); [ "$quiet" = 1 ] || echo "$s"; [ "$s" = active ] ;;
  is-enabled) echo enabled ;;
  start | restart) echo active >"$f" ;;
  stop) echo inactive >"$f" ;;
  reload) [ "$(cat "$f")" = active ] ;;
  enable) [ "$now" = 1 ] && echo active >"$f"; true ;;
  disable) [ "$now" = 1 ] && echo inactive >"$f"; true ;;
  *) echo "stand-in systemctl: unsupported $cmd" >&2; exit 1 ;;
esac
"""

FAKE_NFT = r"""#!/bin/bash
# TEST STAND-IN for nft: the "kernel" ruleset is the file $FAKE_NFT_RULESET.
r=${FAKE_NFT_RULESET:?}
case "$*" in
  "-s list ruleset" | "-s -t list ruleset" | "list ruleset")
    grep -v '^flush ruleset$' "$r" 2>/dev/null || true ;;
  "-c -f "*) grep -q '^flush ruleset$' "${@: -1}" ;;
  "-f "*) cp "${@: -1}" "$r" ;;
  *) echo "stand-in nft: unsupported $*" >&2; exit 1 ;;
esac
"""


class Sandbox:
    """A temp OSIRIS_ROOT with etc files, a stand-in systemctl/nft and a runner for phases."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "root"
        self.bin = tmp / "bin"
        self.state = tmp / "systemctl"
        for d in (self.root / "etc/ssh", self.bin, self.state / "units"):
            d.mkdir(parents=True)
        for name, text in (("systemctl", FAKE_SYSTEMCTL), ("nft", FAKE_NFT)):
            p = self.bin / name
            p.write_text(text)
            p.chmod(0o755)
        self.ruleset = tmp / "ruleset.nft"

    def file(self, rel: str, text: str, mode: int = 0o644) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        return p

    def unit(self, name: str, state: str) -> None:
        (self.state / "units" / name).write_text(state)

    def unit_state(self, name: str) -> str:
        return (self.state / "units" / name).read_text().strip()

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def run(
        self,
        rid: str,
        phase: str,
        params: dict | None = None,
        ok: bool = True,
        ctx: TrustContext | None = None,
    ) -> dict:
        """``ctx``: the site's allow-lists/releases a trust-redirecting value is judged in."""
        rb = CAT.runbook(rid)
        if ctx is not None:
            params = rb.validate_params(params, ctx)
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "OSIRIS_ROOT": str(self.root),
            "FAKE_SYSTEMCTL_DIR": str(self.state),
            "FAKE_NFT_RULESET": str(self.ruleset),
            "LC_ALL": "C",
        }
        proc = subprocess.run(["bash", "-c", render(rb, phase, params)], env=env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        lines = proc.stdout.splitlines()
        assert len(lines) == 1, f"{rid} {phase}: stdout must be one JSON line: {proc.stdout!r}"
        result = json.loads(lines[0])
        assert set(result) == {"status", "observed", "expected"}, result
        assert result["status"] in ("compliant", "drift", "error")
        if ok:
            assert proc.returncode == 0, proc.stderr
            assert result["status"] != "error", (result, proc.stderr)
            if phase in ("detect", "verify"):
                assert set(rb.observed_keys) <= set(result["observed"]), (rid, result)
            else:
                assert set(result["observed"]) == {"changed", "action"}
        return result

    def heal(
        self, rid: str, params: dict | None = None, ctx: TrustContext | None = None
    ) -> tuple[dict, dict]:
        """detect must say drift; then remediate and return (detect, verify) results."""
        before = self.run(rid, "detect", params, ctx=ctx)
        assert before["status"] == "drift", before
        done = self.run(rid, "remediate", params, ctx=ctx)
        assert done["observed"]["changed"] is True
        after = self.run(rid, "verify", params, ctx=ctx)
        assert after["status"] == "compliant", after
        return before, after


@pytest.fixture
def sb(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


SSHD = "# test sshd_config\nPort 22\nPermitRootLogin yes\n#PasswordAuthentication yes\n" \
       "Match User backup\n    X11Forwarding no\n"  # fmt: skip


def test_lin_ssh_001_heals_and_rolls_back(sb: Sandbox) -> None:
    cfg = sb.file("etc/ssh/sshd_config", SSHD, 0o600)
    sb.unit("ssh", "active")
    before, after = sb.heal("LIN-SSH-001")
    assert before["observed"] == {"permit_root_login": "yes"}
    assert after["observed"] == {"permit_root_login": "no"}
    text = cfg.read_text()
    assert "PermitRootLogin no\n" in text and "PermitRootLogin yes" not in text
    assert text.index("PermitRootLogin no") < text.index("Match User")
    assert "reload ssh" in sb.calls()
    sb.run("LIN-SSH-001", "rollback")
    assert cfg.read_text() == SSHD
    assert sb.run("LIN-SSH-001", "detect")["status"] == "drift"


def test_lin_ssh_001_drop_in_wins_and_is_fixed(sb: Sandbox) -> None:
    sb.file("etc/ssh/sshd_config", "PermitRootLogin no\n", 0o600)
    drop = sb.file("etc/ssh/sshd_config.d/50-cloud.conf", "PermitRootLogin yes\n")
    sb.unit("ssh", "active")
    sb.heal("LIN-SSH-001")
    assert drop.read_text() == "PermitRootLogin no\n"


def test_lin_ssh_002_and_003_insert_missing_keys(sb: Sandbox) -> None:
    cfg = sb.file("etc/ssh/sshd_config", SSHD, 0o600)
    sb.unit("sshd", "active")  # RHEL-style unit name: reload falls back to sshd
    before, _ = sb.heal("LIN-SSH-002")
    assert before["observed"]["password_authentication"] == "unset"
    before, after = sb.heal("LIN-SSH-003", {"max_auth_tries": 4})
    assert before["observed"]["max_auth_tries"] == 6  # sshd's default when unset
    assert after["observed"]["max_auth_tries"] == 4
    assert "PasswordAuthentication no\n" in cfg.read_text()
    assert "MaxAuthTries 4\n" in cfg.read_text()


def test_reload_failure_is_an_error_result(sb: Sandbox) -> None:
    sb.file("etc/ssh/sshd_config", SSHD, 0o600)  # no ssh/sshd unit known to systemctl
    res = sb.run("LIN-SSH-001", "remediate", ok=False)
    assert res["status"] == "error" and "command failed" in res["observed"]["error"]


def test_lin_perm_001_heals_and_rolls_back(sb: Sandbox) -> None:
    shadow = sb.file("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o644)
    before, after = sb.heal("LIN-PERM-001")
    assert before["observed"]["mode"] == "644"
    assert stat.S_IMODE(shadow.stat().st_mode) == 0o640
    assert after["observed"]["mode"] == "640"
    sb.run("LIN-PERM-001", "rollback")
    assert stat.S_IMODE(shadow.stat().st_mode) == 0o644


def test_lin_perm_001_missing_file_is_an_error(sb: Sandbox) -> None:
    res = sb.run("LIN-PERM-001", "detect", ok=False)
    assert res["status"] == "error" and "/etc/shadow" in res["observed"]["error"]


def test_lin_perm_002_and_003(sb: Sandbox) -> None:
    sb.file("etc/ssh/sshd_config", SSHD, 0o644)
    sb.heal("LIN-PERM-002")
    bad = sb.file("etc/cron.d/job", "x\n", 0o666)
    sb.file("etc/ok.conf", "x\n", 0o644)
    before, after = sb.heal("LIN-PERM-003")
    assert before["observed"] == {"count": 1, "files": ["/etc/cron.d/job"]}
    assert stat.S_IMODE(bad.stat().st_mode) == 0o664
    assert after["observed"]["count"] == 0


def test_lin_acct_001_detects_extra_uid0(sb: Sandbox) -> None:
    passwd = sb.file("etc/passwd", "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/:/bin/sh\n")
    res = sb.run("LIN-ACCT-001", "detect")
    assert res["status"] == "drift" and res["observed"]["uid0_accounts"] == ["toor"]
    passwd.write_text("root:x:0:0::/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n")
    assert sb.run("LIN-ACCT-001", "detect")["status"] == "compliant"
    hits = match_rules(CAT.rules, {"check": "linux_accounts", "runbook_id": "LIN-ACCT-001", **res})
    assert [r.action for r in hits] == ["escalate"]


def test_lin_acct_002_heals_and_rolls_back(sb: Sandbox) -> None:
    original = "# PASS_MAX_DAYS   Maximum number of days\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 0\n"
    defs = sb.file("etc/login.defs", original)
    before, after = sb.heal("LIN-ACCT-002", {"max_days": 60})
    assert before["observed"]["pass_max_days"] == 99999
    assert after["observed"]["pass_max_days"] == 60
    assert "PASS_MIN_DAYS 0" in defs.read_text()
    sb.run("LIN-ACCT-002", "rollback", {"max_days": 60})
    assert defs.read_text() == original


def test_lin_audit_rules(sb: Sandbox) -> None:
    sb.file("etc/audit/rules.d/audit.rules", "-D\n-w /etc/passwd -p wa -k identity\n")
    before, _ = sb.heal("LIN-AUDIT-001")
    assert before["observed"]["missing_watches"] == ["/etc/shadow", "/etc/group", "/etc/gshadow"]
    before, _ = sb.heal("LIN-AUDIT-002", {"auth_log": "/var/log/secure"})
    assert before["observed"]["missing_watches"] == ["/var/log/secure"]
    rules = (sb.root / "etc/audit/rules.d/osiris-authlog.rules").read_text()
    assert rules == "-w /var/log/secure -p wa -k authlog\n"


def test_lin_services(sb: Sandbox) -> None:
    sb.unit("sshd", "inactive")  # no "ssh" unit: remediate must fall back to sshd
    sb.heal("LIN-SVC-001")
    assert sb.unit_state("sshd") == "active"
    sb.unit("auditd", "inactive")
    sb.heal("LIN-SVC-002")
    sb.unit("rsyslog", "failed")
    sb.heal("LIN-SVC-003")
    sb.unit("telnet.socket", "active")
    sb.unit("xinetd", "inactive")
    before, after = sb.heal("LIN-SVC-004")
    assert before["observed"]["active_units"] == ["telnet.socket"]
    assert sb.unit_state("telnet.socket") == "inactive"
    sb.unit("ufw", "inactive")
    sb.heal("LIN-FW-001")
    assert "enable --now ufw" in sb.calls()


def test_nix_firewall_restores_signed_baseline(sb: Sandbox) -> None:
    base = "flush ruleset\ntable inet filter {\n  chain input { policy drop; }\n}\n"
    sb.file("etc/osiris/nftables-baseline.nft", base)
    pin = hashlib.sha256(base.encode()).hexdigest()
    params = {"baseline_sha256": pin}  # trust-redirecting: on the site's allow-list
    ctx = TrustContext({"RB-NIX-FW-001": {"baseline_sha256": (pin,)}})
    sb.unit("nftables", "inactive")
    sb.ruleset.write_text("table inet filter {\n  chain input { policy accept; }\n}\n")
    before, after = sb.heal("RB-NIX-FW-001", params, ctx)
    assert before["observed"]["ruleset_state"] == "unrecorded"
    assert after["observed"]["ruleset_state"] == "match"
    assert "policy drop" in sb.ruleset.read_text()
    # Someone opens the firewall: detected as changed, and the baseline is loaded again.
    sb.ruleset.write_text("table inet filter {\n  chain input { policy accept; }\n}\n")
    before, _ = sb.heal("RB-NIX-FW-001", params, ctx)
    assert before["observed"]["ruleset_state"] == "changed"
    # A tampered baseline is never loaded, and the rules escalate instead of healing.
    sb.file("etc/osiris/nftables-baseline.nft", base.replace("drop", "accept"))
    res = sb.run("RB-NIX-FW-001", "detect", params, ctx=ctx)
    assert res["observed"]["baseline_state"] == "mismatch"
    hits = match_rules(CAT.rules, {"check": "firewall", "runbook_id": "RB-NIX-FW-001", **res})
    assert [r.action for r in hits] == ["escalate"]
    assert sb.run("RB-NIX-FW-001", "remediate", params, ok=False, ctx=ctx)["status"] == "error"
    assert "policy drop" in sb.ruleset.read_text()


def test_nix_av_service_and_hash(sb: Sandbox) -> None:
    binary = sb.file("run/current-system/sw/bin/clamscan", "#!/bin/sh\necho clam\n", 0o755)
    pinned = hashlib.sha256(binary.read_bytes()).hexdigest()
    params = {"binary_sha256": pinned}
    sb.unit("clamav-daemon", "inactive")
    before, after = sb.heal("RB-NIX-AV-001", params)
    assert before["observed"]["service_active"] is False
    assert after["observed"]["hash_state"] == "match"
    binary.write_text("#!/bin/sh\necho evil\n")
    res = sb.run("RB-NIX-AV-001", "detect", params)
    assert res["status"] == "drift" and res["observed"]["hash_state"] == "mismatch"


def test_nix_backup_freshness_and_checksum(sb: Sandbox) -> None:
    import time

    archive = sb.file("var/backups/latest.tar", "data\n")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    now = int(time.time())
    status = sb.file("var/lib/osiris-backup/status",
                     f"last_backup={now - 3600}\nlast_restore_test={now - 86400}\n"
                     f"archive=/var/backups/latest.tar\nsha256={digest}\n")  # fmt: skip
    res = sb.run("RB-NIX-BACKUP-001", "detect")
    assert res["status"] == "compliant", res
    assert res["observed"] == {
        "backup_age_hours": 1,
        "checksum_ok": True,
        "restore_test_age_days": 1,
    }
    archive.write_text("corrupted\n")
    res = sb.run("RB-NIX-BACKUP-001", "detect")
    assert res["status"] == "drift" and res["observed"]["checksum_ok"] is False
    archive.write_text("data\n")
    res = sb.run("RB-NIX-BACKUP-001", "detect", {"max_age_hours": 1})
    assert res["status"] == "compliant"
    status.write_text(status.read_text().replace(f"={now - 3600}", f"={now - 7 * 3600}"))
    assert sb.run("RB-NIX-BACKUP-001", "detect", {"max_age_hours": 6})["status"] == "drift"


RELEASE_KEY = Signer.generate("osiris/order/test")


def _released(*systems: str) -> TrustContext:
    """The site allow-lists these systems and a signed release document names each."""
    envs = {s: sign_release(make_release(s, "osiris-24.11"), RELEASE_KEY) for s in systems}
    return TrustContext({"RB-NIX-GEN-001": {"desired_system": tuple(systems)}}, envs)


def test_nix_generation_detect(sb: Sandbox) -> None:
    store = "/nix/store/" + "a" * 32 + "-nixos-system-osiris-24.11"
    other = "/nix/store/" + "b" * 32 + "-nixos-system-osiris-24.11"
    ctx = _released(store, other)
    (sb.root / "run").mkdir()
    os.symlink(store, sb.root / "run/current-system")
    got = sb.run("RB-NIX-GEN-001", "detect", {"desired_system": store}, ctx=ctx)
    assert got["status"] == "compliant"
    res = sb.run("RB-NIX-GEN-001", "detect", {"desired_system": other}, ctx=ctx)
    assert res["status"] == "drift" and res["observed"]["current_system"] == store
    res = sb.run("RB-NIX-GEN-001", "detect", ok=False)  # unset desired system: never a pass
    assert res["status"] == "error"
    hits = match_rules(CAT.rules, {"check": "nixos_generation", "runbook_id": "RB-NIX-GEN-001",
                                   **res})  # fmt: skip
    assert [r.id for r in hits] == ["L1-NIX-GEN-002"]


def test_nix_luks_reads_device_mapper_uuid_without_privilege(sb: Sandbox) -> None:
    sb.file("sys/block/dm-0/dm/name", "root\n")
    sb.file("sys/block/dm-0/dm/uuid", "CRYPT-LUKS2-0123abcd-root\n")
    sb.file("sys/block/dm-1/dm/name", "data\n")
    sb.file("sys/block/dm-1/dm/uuid", "LVM-abcdef\n")
    ok = sb.run("RB-NIX-LUKS-001", "detect", {"volumes": "root"})
    assert ok["status"] == "compliant" and ok["observed"]["checked"] == ["root"]
    bad = sb.run("RB-NIX-LUKS-001", "detect", {"volumes": "root data missing"})
    assert bad["status"] == "drift"
    assert bad["observed"]["unencrypted"] == ["data", "missing"]


def test_nix_generation_switch_goes_through_the_root_unit(sb: Sandbox) -> None:
    current = "/nix/store/" + "a" * 32 + "-nixos-system-osiris-24.11"
    desired = "/nix/store/" + "b" * 32 + "-nixos-system-osiris-24.11"
    (sb.root / "run").mkdir()
    os.symlink(current, sb.root / "run/current-system")
    sb.file(desired.lstrip("/") + "/bin/switch-to-configuration", "#!/bin/sh\n", 0o755)
    sb.unit("osiris-switch-system.service", "inactive")
    ctx = _released(desired)
    done = sb.run("RB-NIX-GEN-001", "remediate", {"desired_system": desired}, ctx=ctx)
    assert done["observed"]["changed"] is True
    # the root unit gets the SIGNED release document, which it verifies itself
    req = json.loads((sb.root / "var/lib/osiris/switch/request.json").read_bytes())
    assert req == {"action": "switch", "release": ctx.releases[desired]}
    assert any("start osiris-switch-system.service" in c for c in sb.calls())
    back = sb.run("RB-NIX-GEN-001", "rollback", {"desired_system": desired}, ctx=ctx)
    assert back["observed"]["changed"] is True
    # rollback names no path: the unit switches back to the system it recorded itself
    req = json.loads((sb.root / "var/lib/osiris/switch/request.json").read_bytes())
    assert req == {"action": "rollback"}
    assert current in back["observed"]["action"]
