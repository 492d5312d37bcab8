"""Parameters can only tighten a control (DESIGN §6 "Nothing weakens a clinic").

The attacks of issue 11 are refused by the one validator (``Runbook.validate_params``), and a
property test generates values for every parameter of every runbook and checks that none the
validator accepts weakens the baseline. What "weakens" means is written down HERE, per
parameter, from what each runbook does — independently of the validator's code and of the
manifests' bound tables (the test reads the manifests only to find every parameter, so a new
parameter without an entry below fails ``test_every_parameter_has_an_oracle``).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_core.catalog import load_catalog, load_from, render
from osiris_core.catalog.bounds import TrustContext
from osiris_core.errors import SchemaError
from osiris_core.keys import Signer
from osiris_core.release import make_release, sign_release

CAT = load_catalog()
RUNBOOKS = Path(str(resources.files("osiris_core.catalog"))) / "runbooks"
STORE_A = "/nix/store/" + "a" * 32 + "-nixos-system-osiris-24.11"
STORE_B = "/nix/store/" + "b" * 32 + "-nixos-system-osiris-24.11"
EVIL_STORE = "/nix/store/" + "e" * 32 + "-nixos-system-evil"

# ---------------------------------------------------------------- the oracle
#
# Each entry: what a value must satisfy for the runbook to leave the host at least as protected
# as the baseline control. Kinds of judgement, written out without the validator:
#   ("max", N)         an integer threshold where lower is stricter: weakens above N
#   ("min", N)         higher is stricter: weakens below N
#   ("any_int", lo, hi) no control depends on it (still must be a sane value)
#   ("bool",)          both values keep the baseline
#   ("mode", BITS)     an octal mode: weakens if it has any permission bit outside BITS
#   ("modes", BITS)    space-separated such modes
#   ("one_of", {...})  the only settings that meet the control
#   ("run"|"stop", ALLOWED, REQUIRED)  space-separated units the runbook keeps running / stops:
#                      only from ALLOWED, all of REQUIRED kept; a stop-list never names a unit
#                      that protects the host (sshd, auditd, journald)
#   ("names", REQUIRED) space-separated names, all of REQUIRED kept
#   ("inside", DIR)    a path that resolves strictly inside DIR
#   ("pin",)           empty or a SHA-256 hex pin (a wrong pin only ever reports drift)
#   ("lan",)           empty or a private (RFC 1918) IPv4 address
#   ("trusted", SEP)   empty, or every item (split on SEP) on the site's allow-list
#   ("release",)       empty, or on the allow-list AND named by a signed release document
#   ("ports",)         empty or PORT[/tcp|/udp] items, 1..65535, none twice (LIN-FW-001 keeps
#                      the agent's own SSH path whatever the list says, so no list weakens it)

PLAINTEXT_LOGIN = {
    "telnet.socket", "telnet", "telnet.service", "telnetd", "telnetd.service", "inetd",
    "inetd.service", "xinetd", "xinetd.service", "openbsd-inetd", "openbsd-inetd.service",
    "inetutils-inetd", "inetutils-inetd.service", "rsh.socket", "rlogin.socket", "rexec.socket",
}  # fmt: skip
ORACLE: dict[tuple[str, str], tuple[Any, ...]] = {
    ("LIN-ACCT-002", "max_days"): ("max", 365),
    ("LIN-AUDIT-002", "auth_log"): ("one_of", {"/var/log/auth.log", "/var/log/secure"}),
    ("LIN-FW-001", "firewall_service"): (
        "one_of",
        {"ufw", "firewalld", "nftables", "ufw.service", "firewalld.service", "nftables.service"},
    ),  # fmt: skip
    ("LIN-FW-001", "allowed_ports"): ("ports",),
    ("LIN-PATCH-001", "max_pending"): ("max", 5),
    ("LIN-PERM-001", "allowed_modes"): ("modes", 0o640),
    ("LIN-PERM-001", "target_mode"): ("mode", 0o640),
    ("LIN-PERM-002", "allowed_modes"): ("modes", 0o600),
    ("LIN-PERM-002", "target_mode"): ("mode", 0o600),
    ("LIN-SSH-001", "value"): ("one_of", {"no", "prohibit-password"}),
    ("LIN-SSH-003", "max_auth_tries"): ("max", 6),
    ("LIN-SVC-002", "service"): ("one_of", {"auditd", "auditd.service"}),
    ("LIN-SVC-003", "service"): (
        "one_of",
        {"rsyslog", "rsyslog.service", "syslog-ng", "syslog-ng.service"},
    ),  # fmt: skip
    ("LIN-SVC-004", "units"): ("stop", PLAINTEXT_LOGIN, {"telnet.socket", "inetd", "xinetd"}),
    # K3 (issue 15 item 6): Linux AV, EDR, backup and time sync
    ("LIN-AV-001", "daemon_service"): ("one_of", {"clamav-daemon", "clamav-daemon.service"}),
    ("LIN-AV-001", "updater_service"): (
        "one_of",
        {"clamav-freshclam", "clamav-freshclam.service"},
    ),  # fmt: skip
    ("LIN-AV-001", "max_signature_age_hours"): ("max", 168),
    ("LIN-EDR-001", "expected"): ("one_of", {"any", "falcon", "sentinelone", "mdatp"}),
    ("LIN-BACKUP-001", "max_age_hours"): ("max", 72),
    ("LIN-TIME-001", "service"): (
        "one_of",
        {"chrony", "chrony.service", "systemd-timesyncd", "systemd-timesyncd.service"},
    ),  # fmt: skip
    ("LIN-TIME-001", "max_offset_ms"): ("max", 1000),
    ("RB-NIX-AV-001", "service"): ("one_of", {"clamav-daemon", "clamav-daemon.service"}),
    ("RB-NIX-AV-001", "binary"): ("inside", "/run/current-system/sw/bin"),
    ("RB-NIX-AV-001", "binary_sha256"): ("pin",),
    ("RB-NIX-BACKUP-001", "status_file"): ("inside", "/var/lib/osiris-backup"),
    ("RB-NIX-BACKUP-001", "max_age_hours"): ("max", 72),
    ("RB-NIX-BACKUP-001", "max_restore_test_age_days"): ("max", 90),
    ("RB-NIX-BACKUP-001", "backup_service"): (
        "one_of",
        {"osiris-backup.service", "osiris-backup"},
    ),  # fmt: skip
    ("RB-NIX-BACKUP-001", "restore_test_service"): (
        "one_of",
        {"osiris-restore-test.service", "osiris-restore-test"},
    ),
    ("RB-NIX-FW-001", "service"): ("one_of", {"nftables", "nftables.service"}),
    ("RB-NIX-FW-001", "baseline_file"): ("inside", "/etc/osiris"),
    ("RB-NIX-FW-001", "baseline_sha256"): ("trusted", None),
    ("RB-NIX-FW-001", "state_file"): ("inside", "/var/lib/osiris/runbook-state"),
    ("RB-NIX-GEN-001", "desired_system"): ("release",),
    ("RB-NIX-GEN-001", "max_generation_age_days"): ("max", 180),
    ("RB-NIX-LOG-001", "services"): (
        "run",
        {"systemd-journald", "rsyslog", "syslog-ng", "auditd"},
        {"systemd-journald"},
    ),  # fmt: skip
    ("RB-NIX-LOG-001", "canary_max_age_hours"): ("max", 24),
    ("RB-NIX-LUKS-001", "volumes"): ("names", {"root"}),
    ("RB-NIX-TIME-001", "service"): (
        "one_of",
        {
            "systemd-timesyncd",
            "chronyd",
            "chrony",
            "systemd-timesyncd.service",
            "chronyd.service",
            "chrony.service",
        },
    ),  # fmt: skip
    ("RB-WIN-AD-001", "max_replication_failures"): ("max", 5),
    ("RB-WIN-AV-001", "max_signature_age_days"): ("max", 7),
    ("RB-WIN-EDR-001", "expected"): ("one_of", {"any", "falcon", "sentinelone", "mde"}),
    ("RB-WIN-TIME-001", "max_offset_ms"): ("max", 5000),
    ("RB-WIN-BACKUP-001", "max_age_hours"): ("max", 72),
    ("RB-WIN-ENCRYPTION-001", "mount_point"): ("one_of", {"C:"}),
    ("RB-WIN-ENCRYPTION-001", "encryption_method"): ("one_of", {"XtsAes128", "XtsAes256"}),
    ("RB-WIN-LOGGING-001", "min_security_log_mb"): ("min", 256),
    ("RB-WIN-NET-001", "dns_servers"): ("trusted", ","),
    ("RB-WIN-NET-002", "ping_target"): ("lan",),
    ("RB-WIN-PATCH-001", "critical_overdue_days"): ("max", 60),
    ("RB-WIN-PATCH-001", "include_important"): ("bool",),
    ("RB-WIN-PATCH-001", "allow_reboot"): ("bool",),
    ("RB-WIN-SEC-003", "lockout_threshold"): ("max", 10),
    ("RB-WIN-SEC-003", "lockout_duration_min"): ("min", 15),
    ("RB-WIN-SEC-004", "min_password_length"): ("min", 8),
    ("RB-WIN-SEC-004", "max_password_age_days"): ("max", 365),
    ("RB-WIN-SEC-005", "mount_point"): ("one_of", {"C:"}),
    ("RB-WIN-STG-001", "min_free_percent"): ("min", 5),
    ("RB-WIN-STG-001", "temp_age_days"): ("any_int", 1, 3650),
    ("RB-WIN-STG-002", "min_shadow_copies"): ("min", 1),
    ("RB-WIN-SVC-003", "disable_everywhere"): ("bool",),
    ("RB-WIN-UPD-001", "max_errors_24h"): ("max", 20),
    ("RB-WIN-UPD-002", "wsus_server"): ("trusted", None),
}
# Never acceptable anywhere, whatever a list says: a root shell, single-user states, a target.
NEVER_UNITS = re.compile(r"^(debug-shell|emergency|rescue)(\.service)?$|\.target$")
PROTECTED = {"ssh", "sshd", "auditd", "systemd-journald", "ssh.service", "sshd.service",
             "auditd.service", "systemd-journald.service"}  # fmt: skip


def _perm_ok(text: str, bits: int) -> bool:
    if not re.fullmatch(r"[0-7]{1,4}", text):
        return False
    return int(text, 8) & ~bits == 0


def weakens(rid: str, name: str, value: Any, ctx: TrustContext) -> str | None:
    """Why ``value`` would leave the host less protected than the baseline, or None."""
    rule = ORACLE[(rid, name)]
    kind = rule[0]
    if kind in ("max", "min", "any_int"):
        if type(value) is not int:
            return "not an integer"
        if kind == "max" and value > rule[1]:
            return f"{value} > {rule[1]}"
        if kind == "min" and value < rule[1]:
            return f"{value} < {rule[1]}"
        if kind == "any_int" and not rule[1] <= value <= rule[2]:
            return "insane value"
        if value < 0:
            return "negative"
        return None
    if kind == "bool":
        return None if type(value) is bool else "not a bool"
    if not isinstance(value, str):
        return "not a string"
    if kind == "mode":
        return None if _perm_ok(value, rule[1]) else f"mode {value} beyond {rule[1]:o}"
    if kind == "modes":
        items = value.split(" ")
        bad = [m for m in items if not _perm_ok(m, rule[1])]
        return f"modes {bad} beyond {rule[1]:o}" if bad or not value else None
    if kind == "one_of":
        return None if value in rule[1] else f"{value!r} is not a setting that meets it"
    if kind in ("run", "stop"):
        items = value.split(" ") if value else []
        if any(NEVER_UNITS.search(u) for u in items):
            return "a root shell, single-user state or target"
        if kind == "stop" and any(u in PROTECTED for u in items):
            return "stops a unit that protects the host"
        norm = {u.removesuffix(".service") for u in items}
        if not {r.removesuffix(".service") for r in rule[2]} <= norm:
            return "dropped a baseline unit"
        return None if set(items) <= rule[1] | {f"{u}.service" for u in rule[1]} else "stray unit"
    if kind == "names":
        return None if rule[1] <= set(value.split(" ")) else "dropped a baseline name"
    if kind == "inside":
        if not value.startswith("/") or ".." in value.split("/"):
            return "escapes"
        real = posixpath.normpath(value)
        if real != value or posixpath.commonpath([real, rule[1]]) != rule[1] or real == rule[1]:
            return f"{value!r} is not inside {rule[1]}"
        if real.startswith("/var/lib/osiris/") and not real.startswith(
            "/var/lib/osiris/runbook-state/"
        ):
            return "the agent's own state (keys, database)"
        return None
    if kind == "ports":
        items = value.split(" ") if value else []
        if len(set(items)) != len(items):
            return "a port twice"
        for item in items:
            num, _, proto = item.partition("/")
            if not re.fullmatch(r"[0-9]{1,5}", num) or not 1 <= int(num) <= 65535:
                return f"{item!r} is not a port"
            if proto not in ("", "tcp", "udp"):
                return f"{item!r}: not tcp or udp"
        return None
    if kind == "pin":
        return None if value == "" or re.fullmatch(r"[0-9a-f]{64}", value) else "not a pin"
    if kind == "lan":
        if value == "":
            return None
        try:
            addr = ipaddress.IPv4Address(value)
        except ValueError:
            return "not an address"
        return None if addr.is_private and not addr.is_loopback else "a public address"
    allowed = set(ctx.allowed(rid, name))
    if kind == "trusted":
        if value == "":
            return None
        items = value.split(rule[1]) if rule[1] else [value]
        return None if set(items) <= allowed else "off the site's allow-list"
    if kind == "release":
        if value == "":
            return None
        if value not in allowed or value not in ctx.releases:
            return "not an allow-listed, signed release"
        return None
    raise AssertionError(kind)


def _manifest_params() -> set[tuple[str, str]]:
    out = set()
    for d in RUNBOOKS.iterdir():
        data = tomllib.loads((d / "manifest.toml").read_text())
        out |= {(d.name, n) for n in data.get("params", {})}
    return out


def test_every_parameter_has_an_oracle() -> None:
    assert _manifest_params() == set(ORACLE)
    assert {(rb.id, n) for rb in CAT.runbooks.values() for n in rb.params} == set(ORACLE)


def test_every_default_keeps_the_baseline() -> None:
    for (rid, name), _ in ORACLE.items():
        rb = CAT.runbook(rid)
        assert weakens(rid, name, rb.params[name].default, TrustContext()) is None, (rid, name)


# ---------------------------------------------------------------- generated values

RELEASE_KEY = Signer.generate("osiris/order/test")
ENVS = {s: sign_release(make_release(s, "osiris"), RELEASE_KEY) for s in (STORE_A, STORE_B)}
POOL = [
    "", "0", "000", "600", "640", "0640", "644", "660", "666", "0666", "777", "0777", "4640",
    "2640", "1640", "7777", "400", "040", "604", "620", "6", "60", "640 600 0", "640 666",
    "debug-shell", "debug-shell.service", "emergency.service", "rescue", "rescue.target",
    "multi-user.target", "reboot.target", "sshd", "ssh.service", "auditd", "auditd.service",
    "rsyslog", "syslog-ng", "systemd-journald", "telnet.socket", "inetd", "xinetd",
    "telnet.socket inetd xinetd", "telnet.socket inetd xinetd sshd", "inetd xinetd",
    "telnet.socket inetd xinetd rsh.socket", "systemd-journald rsyslog", "rsyslog",
    "systemd-journald debug-shell", "clamav-daemon", "nftables", "ufw", "firewalld",
    "osiris-backup.service", "osiris-restore-test.service", "chronyd", "systemd-timesyncd",
    "/var/lib/osiris/appliance.key", "/var/lib/osiris/runbook-state/nft-ruleset.sha256",
    "/var/lib/osiris/runbook-state/../appliance.key", "/var/lib/osiris/runbook-state",
    "/var/lib/osiris-backup/status", "/var/lib/osiris-backup/../osiris/state.db",
    "/etc/osiris/nftables-baseline.nft", "/etc/osiris/../shadow", "/etc/shadow",
    "/run/current-system/sw/bin/clamscan", "/tmp/evil", "//etc/osiris/x",
    "/var/log/auth.log", "/var/log/secure", "/var/log/syslog", "no", "yes", "prohibit-password",
    "C:", "D:", "XtsAes128", "XtsAes256", "Aes128", "10.20.0.53", "10.20.0.53,10.20.0.54",
    "8.8.8.8", "10.20.0.53,8.8.8.8", "192.168.1.1", "127.0.0.1", "172.16.0.1", "1.1.1.1",
    "http://attacker.example", "https://wsus.clinic.example:8531", "http://wsus.clinic.example:8530",
    STORE_A, STORE_B, EVIL_STORE, "a" * 64, "0" * 64, "root", "root data", "data",
    "22/tcp", "443/tcp 5060/udp", "104", "0/tcp", "65536", "22/sctp", "80 80", "22;id",
]  # fmt: skip
TRUST_CANDIDATES = [
    "10.20.0.53",
    "10.20.0.54",
    "https://wsus.clinic.example:8531",
    "a" * 64,
    STORE_A,
    STORE_B,
]


def _mode_text(n: int, width: int) -> str:
    return format(n, "o").zfill(width)


def values_for(rid: str, name: str) -> st.SearchStrategy[Any]:
    p = CAT.runbook(rid).params[name]
    if p.type == "bool":
        return st.booleans()
    if p.type == "int":
        edges = [x for x in (p.min, p.max) if x is not None]
        near = [e + d for e in edges for d in (-2, -1, 0, 1, 2)]
        return st.integers(-(10**6), 10**6) | st.sampled_from(near or [0])
    words = st.sampled_from([w for v in POOL for w in v.split(" ") if w] + [p.default])
    return st.one_of(
        st.sampled_from(POOL + [p.default]),
        st.lists(words, min_size=1, max_size=6).map(" ".join),
        st.lists(words, min_size=1, max_size=4).map(",".join),
        st.integers(0, 0o7777).flatmap(
            lambda n: st.sampled_from([3, 4]).map(lambda w, n=n: _mode_text(n, w))
        ),  # fmt: skip
        st.lists(st.integers(0, 0o777).map(lambda n: _mode_text(n, 3)), min_size=1, max_size=6).map(
            " ".join
        ),  # fmt: skip
        st.text(alphabet="/.-_abcdeiklnorstuvy0123456789", max_size=60).map(
            lambda t: (p.default.rsplit("/", 1)[0] + "/" + t) if p.default.startswith("/") else t
        ),
    )


def contexts() -> st.SearchStrategy[TrustContext]:
    subsets = st.lists(st.sampled_from(TRUST_CANDIDATES), unique=True, max_size=4)

    def build(dns, wsus, pins, systems, signed) -> TrustContext:  # noqa: ANN001
        allow = {
            "RB-WIN-NET-001": {"dns_servers": tuple(x for x in dns if x[0].isdigit())},
            "RB-WIN-UPD-002": {"wsus_server": tuple(x for x in wsus if x.startswith("http"))},
            "RB-NIX-FW-001": {"baseline_sha256": tuple(x for x in pins if len(x) == 64)},
            "RB-NIX-GEN-001": {"desired_system": tuple(x for x in systems if x.startswith("/"))},
        }
        return TrustContext(allow, {s: ENVS[s] for s in signed})

    return st.builds(build, subsets, subsets, subsets, subsets,
                     st.lists(st.sampled_from([STORE_A, STORE_B]), unique=True))  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, Any, TrustContext]:
    rid, name = draw(st.sampled_from(sorted(ORACLE)))
    return rid, name, draw(values_for(rid, name)), draw(contexts())


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_no_value_the_validator_accepts_weakens_the_baseline(case) -> None:  # noqa: ANN001
    rid, name, value, ctx = case
    rb = CAT.runbook(rid)
    try:
        rb.validate_params({name: value}, ctx)
    except SchemaError:
        return  # refused: nothing runs with it
    why = weakens(rid, name, value, ctx)
    assert why is None, f"{rid}.{name}={value!r} accepted but weakens the baseline: {why}"


@settings(max_examples=300, deadline=None)
@given(rid_name=st.sampled_from(sorted(ORACLE)), ctx=contexts())
def test_the_validator_accepts_real_choices(rid_name, ctx) -> None:  # noqa: ANN001
    """Not a validator that refuses everything: each non-trust parameter takes its default and
    at least one other sensible value, and each trust one takes an allow-listed value."""
    rid, name = rid_name
    rb = CAT.runbook(rid)
    rb.validate_params({name: rb.params[name].default}, ctx)
    for v, allowed in ctx.allowlists.get(rid, {}).items():
        if v == name and allowed and rid != "RB-NIX-GEN-001":
            rb.validate_params({name: allowed[0]}, ctx)


# ---------------------------------------------------------------- the issue's attacks

ATTACKS = [
    ("LIN-PERM-001", {"target_mode": "0666", "allowed_modes": "666"}, "adds permission bits"),
    ("LIN-PERM-001", {"target_mode": "0666"}, "adds permission bits"),
    ("LIN-PERM-001", {"allowed_modes": "640 666"}, "adds permission bits"),
    ("LIN-PERM-001", {"target_mode": "4640"}, "adds permission bits"),  # setuid
    ("LIN-PERM-001", {"target_mode": "660"}, "adds permission bits"),  # group-write
    ("LIN-PERM-002", {"target_mode": "644"}, "adds permission bits"),
    ("LIN-SVC-002", {"service": "debug-shell.service"}, "root shell"),
    ("LIN-SVC-002", {"service": "emergency"}, "root shell"),
    ("LIN-SVC-002", {"service": "rescue.target"}, "target"),
    ("LIN-SVC-002", {"service": "multi-user.target"}, "target"),
    ("LIN-SVC-002", {"service": "cron"}, "allow-list"),
    ("LIN-SVC-004", {"units": "sshd auditd"}, "allow-list"),
    ("LIN-SVC-004", {"units": "telnet.socket inetd xinetd sshd"}, "allow-list"),
    ("LIN-SVC-004", {"units": "telnet.socket inetd xinetd auditd.service"}, "allow-list"),
    ("LIN-SVC-004", {"units": "inetd"}, "must keep"),
    ("RB-NIX-LOG-001", {"services": "rsyslog"}, "must keep"),
    ("RB-WIN-UPD-002", {"wsus_server": "http://attacker.example"}, "allow-list"),
    ("RB-WIN-NET-001", {"dns_servers": "8.8.8.8"}, "allow-list"),
    ("RB-WIN-NET-001", {"dns_servers": "10.20.0.53,8.8.8.8"}, "allow-list"),
    ("RB-NIX-FW-001", {"state_file": "/var/lib/osiris/appliance.key"}, "inside"),
    ("RB-NIX-FW-001", {"state_file": "/var/lib/osiris/runbook-state/../appliance.key"}, "inside"),
    ("RB-NIX-FW-001", {"baseline_file": "/tmp/evil.nft"}, "inside"),
    ("RB-NIX-BACKUP-001", {"status_file": "/var/lib/osiris/state.db"}, "inside"),
    ("RB-NIX-AV-001", {"binary": "/var/lib/osiris/clamscan"}, "inside"),
    ("RB-NIX-GEN-001", {"desired_system": EVIL_STORE}, "allow-list"),
    ("RB-NIX-GEN-001", {"desired_system": STORE_B}, "signed release"),  # listed, never signed
    ("RB-WIN-NET-002", {"ping_target": "203.0.113.9"}, "private"),
    ("LIN-PATCH-001", {"max_pending": 1000}, "maximum"),
    ("LIN-SSH-003", {"max_auth_tries": 10}, "maximum"),
    ("RB-WIN-STG-002", {"min_shadow_copies": 0}, "minimum"),
]
ATTACK_CTX = TrustContext(
    {
        "RB-WIN-NET-001": {"dns_servers": ("10.20.0.53", "10.20.0.54")},
        "RB-WIN-UPD-002": {"wsus_server": ("https://wsus.clinic.example:8531",)},
        "RB-NIX-GEN-001": {"desired_system": (STORE_A, STORE_B)},
    },
    {STORE_A: ENVS[STORE_A]},
)


@pytest.mark.parametrize(("rid", "params", "why"), ATTACKS, ids=lambda x: str(x)[:40])
def test_attack_is_refused_naming_the_parameter(rid: str, params: dict, why: str) -> None:
    rb = CAT.runbook(rid)
    with pytest.raises(SchemaError) as e:
        rb.validate_params(params, ATTACK_CTX)
    assert why in str(e.value) and any(n in str(e.value) for n in params), str(e.value)
    with pytest.raises(SchemaError):  # render runs the same validator: nothing is ever sent
        render(rb, "remediate" if "remediate" in rb.phases else "detect", params)


def test_trust_values_need_the_allow_list_and_are_pinned_by_the_policy() -> None:
    net = CAT.runbook("RB-WIN-NET-001")
    ok = {"dns_servers": "10.20.0.53,10.20.0.54"}
    net.validate_params(ok, ATTACK_CTX)
    with pytest.raises(SchemaError, match="allow-list"):
        net.validate_params(ok)  # no context: only the default (not redirected)
    pinned = ATTACK_CTX.pin({"RB-WIN-NET-001": {"dns_servers": "10.20.0.53"}})
    net.validate_params({"dns_servers": "10.20.0.53"}, pinned)
    with pytest.raises(SchemaError, match="only the signed policy"):
        net.validate_params(ok, pinned)  # allow-listed, but not what the policy says
    with pytest.raises(SchemaError, match="only the signed policy"):
        net.validate_params({"dns_servers": ""}, pinned)
    gen = CAT.runbook("RB-NIX-GEN-001")
    gen.validate_params({"desired_system": STORE_A}, ATTACK_CTX)


def test_trusted_params_are_admin_only_and_default_to_not_redirected() -> None:
    trusted = {(rb.id, n) for rb in CAT.runbooks.values() for n, p in rb.params.items()
               if p.set_by == "admin"}  # fmt: skip
    assert trusted == {
        ("RB-WIN-UPD-002", "wsus_server"), ("RB-WIN-NET-001", "dns_servers"),
        ("RB-NIX-GEN-001", "desired_system"), ("RB-NIX-FW-001", "baseline_sha256"),
    }  # fmt: skip
    for rid, name in trusted:
        assert CAT.runbook(rid).params[name].default == ""


# ---------------------------------------------------------------- load-time refusals


def _copy_catalog(tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "catalog"
    shutil.copytree(Path(str(resources.files("osiris_core.catalog"))), dst)
    return dst


def _edit(root: Path, rid: str, old: str, new: str) -> None:
    f = root / "runbooks" / rid / "manifest.toml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("rid", "old", "new", "why"),
    [
        (
            "LIN-SVC-002",
            ', bound = { kind = "unit", action = "run", allow = ["auditd"], '
            'why = "The audit daemon and nothing else." }',
            "",
            "needs a bound",
        ),
        ("LIN-SVC-002", 'allow = ["auditd"]', 'allow = ["auditd", "debug-shell"]', "root shell"),
        ("LIN-SVC-002", 'allow = ["auditd"]', 'allow = ["auditd", "rescue.target"]', "target"),
        (
            "LIN-SVC-004",
            'allow = ["telnet.socket"',
            'allow = ["sshd", "telnet.socket"',
            "never stop sshd",
        ),
        (
            "RB-NIX-FW-001",
            'dir = "/var/lib/osiris/runbook-state"',
            'dir = "/var/lib/osiris"',
            "specific",
        ),
        (
            "LIN-PERM-001",
            'default = "640", description = "Octal mode remediate sets."',
            'default = "666", description = "Octal mode remediate sets."',
            "adds permission",
        ),
        ("RB-WIN-UPD-002", 'default = ""', 'default = "https://wsus.example"', "defaults to"),
        ("LIN-PATCH-001", 'kind = "range"', 'kind = "mode"', "needs a str"),
        ("LIN-PATCH-001", 'tighter = "lower"', 'tighter = "sideways"', "tighter"),
        ("LIN-SVC-002", 'kind = "unit"', 'kind = "nonsense"', "bound.kind"),
    ],
    ids=lambda x: str(x)[:30],
)
def test_catalogue_refuses_a_param_without_a_sound_bound(
    tmp_path: Path, rid: str, old: str, new: str, why: str
) -> None:
    from importlib.resources.abc import Traversable  # noqa: F401 - Path is a Traversable

    root = _copy_catalog(tmp_path)
    _edit(root, rid, old, new)
    with pytest.raises(SchemaError, match=why):
        load_from(root)
