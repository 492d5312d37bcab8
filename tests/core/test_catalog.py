"""The catalogue: one set of ids, valid manifests, rules covering every runbook, safe rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osiris_core import controls
from osiris_core.catalog import (
    OPS,
    Param,
    Runbook,
    evaluate_conditions,
    ids_in_use_check,
    load_catalog,
    load_from,
    match_rules,
    render,
    script_sha256,
)
from osiris_core.catalog.bounds import TrustContext
from osiris_core.catalog.docgen import generate
from osiris_core.errors import SchemaError

REPO = Path(__file__).resolve().parents[2]
CATALOG_DIR = Path(str(resources.files("osiris_core.catalog")))

# reference/runbooks.md §6.1 and §6.2, by id.
WINDOWS_IDS = {
    "RB-WIN-PATCH-001", "RB-WIN-AV-001", "RB-WIN-BACKUP-001", "RB-WIN-LOGGING-001",
    "RB-WIN-FIREWALL-001", "RB-WIN-ENCRYPTION-001", "RB-WIN-AD-001", "RB-WIN-SVC-001",
    "RB-WIN-SVC-002", "RB-WIN-SVC-003", "RB-WIN-SVC-004", "RB-WIN-SEC-001", "RB-WIN-SEC-002",
    "RB-WIN-SEC-003", "RB-WIN-SEC-004", "RB-WIN-SEC-005", "RB-WIN-SEC-006", "RB-WIN-NET-001",
    "RB-WIN-NET-002", "RB-WIN-NET-003", "RB-WIN-NET-004", "RB-WIN-STG-001", "RB-WIN-STG-002",
    "RB-WIN-STG-003", "RB-WIN-UPD-001", "RB-WIN-UPD-002", "RB-WIN-AD-002",
}  # fmt: skip
LINUX_IDS = {
    "LIN-SSH-001", "LIN-SSH-002", "LIN-SSH-003", "LIN-FW-001", "LIN-SVC-001", "LIN-SVC-002",
    "LIN-SVC-003", "LIN-SVC-004", "LIN-AUDIT-001", "LIN-AUDIT-002", "LIN-PATCH-001",
    "LIN-PERM-001", "LIN-PERM-002", "LIN-PERM-003", "LIN-ACCT-001", "LIN-ACCT-002", "LIN-MAC-001",
}  # fmt: skip
APPLIANCE_IDS = {
    "RB-NIX-GEN-001", "RB-NIX-AV-001", "RB-NIX-BACKUP-001", "RB-NIX-LOG-001", "RB-NIX-FW-001",
    "RB-NIX-LUKS-001", "RB-NIX-TIME-001",
}  # fmt: skip
# Check ids the brief fixes, plus the one this catalogue adds (listed in the report).
BRIEF_CHECK_IDS = {
    "timesync", "patching", "av_edr", "backup", "logging", "firewall", "encryption", "accounts",
    "nixos_generation", "windows_defender", "windows_firewall", "windows_password_policy",
    "windows_bitlocker", "windows_audit_policy", "windows_updates", "windows_services",
    "linux_ssh", "linux_firewall", "linux_patching", "linux_audit", "linux_accounts",
    "linux_timesync", "linux_logging", "linux_permissions", "evidence_pipeline", "disk_space",
}  # fmt: skip
# appliance_decommission: the bundle `osiris-agent decommission` signs to close a chain.
# policy / policy_change: a refused signed policy, a trust-redirecting parameter change.
# activity_review / risk_acceptance: a person's signed statements (record_attestation orders).
# egress_allowlist: the agent's egress allowlist refresh (osiris_agent/egress_refresh.py).
ADDED_CHECK_IDS = {
    "windows_network",
    "appliance_decommission",
    "policy",
    "policy_change",
    "activity_review",
    "risk_acceptance",
    "egress_allowlist",
}


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_catalogue_has_every_reference_runbook(cat) -> None:
    by_platform = {p: {r.id for r in cat.runbooks.values() if r.platform == p} for p in
                   ("windows", "linux", "nixos")}  # fmt: skip
    assert WINDOWS_IDS <= by_platform["windows"], WINDOWS_IDS - by_platform["windows"]
    assert LINUX_IDS <= by_platform["linux"], LINUX_IDS - by_platform["linux"]
    assert APPLIANCE_IDS <= by_platform["nixos"], APPLIANCE_IDS - by_platform["nixos"]
    assert len(by_platform["windows"]) >= 27 and len(by_platform["linux"]) >= 17


def test_check_ids_are_exactly_the_agreed_set(cat) -> None:
    assert set(cat.checks) == BRIEF_CHECK_IDS | ADDED_CHECK_IDS


def test_load_is_cached(cat) -> None:
    assert load_catalog() is cat


def test_every_runbook_is_complete(cat) -> None:
    for rb in cat.runbooks.values():
        assert rb.check in cat.checks, rb.id
        assert rb.platform in cat.checks[rb.check].platforms, rb.id
        for phase in rb.phases:
            text = rb.script(phase)
            assert text.strip(), (rb.id, phase)
            assert (CATALOG_DIR / "runbooks" / rb.id / f"{phase}.{rb.ext}").is_file()
        # No stray script files that the manifest does not claim.
        files = {p.name for p in (CATALOG_DIR / "runbooks" / rb.id).iterdir()}
        assert files == {"manifest.toml"} | {f"{p}.{rb.ext}" for p in rb.phases}, rb.id
        if rb.reboot:
            assert rb.requires_maintenance_window, rb.id
        assert rb.observed_keys and rb.what_it_changes and rb.description
        rb.validate_params({})  # defaults are valid


def test_each_id_means_one_thing(cat) -> None:
    names = [r.name.lower() for r in cat.runbooks.values()]
    assert len(set(names)) == len(names), "two runbooks share a name"


def test_every_citation_exists(cat) -> None:
    for chk in cat.checks.values():
        for c in chk.controls:
            assert c in controls.CONTROLS, (chk.id, c)
    for rb in cat.runbooks.values():
        for c in rb.controls:
            assert c in controls.CONTROLS, (rb.id, c)
            assert c in cat.checks[rb.check].controls, (rb.id, c)


def _add_check(root: Path, entry: str) -> None:
    checks = root / "checks.toml"
    checks.write_text(checks.read_text() + "\n[[check]]\n" + entry)


def test_a_check_citing_a_control_the_list_lacks_fails_loading(tmp_path: Path) -> None:
    """The map lives only in checks.toml: a well-formed citation the controls list does not
    define (164.312(e)(2)(iii): the rule has no such paragraph) fails the load, so the packet
    can never count evidence under a control it cannot name."""
    root = _copy_catalog(tmp_path)
    assert len(load_from(root).checks) == len(load_catalog().checks)
    _add_check(
        root,
        'id = "usb_ports"\nname = "USB"\ndescription = "d"\nplatforms = ["linux"]\n'
        'controls = ["164.312(b)", "164.312(e)(2)(iii)"]\n',
    )
    with pytest.raises(SchemaError, match=r"usb_ports cites unknown control.*164\.312\(e\)"):
        load_from(root)


def _alias(root: Path, check_id: str, aliases: str) -> None:
    checks = root / "checks.toml"
    text = checks.read_text()
    line = f'id = "{check_id}"\n'
    assert text.count(line) == 1
    checks.write_text(text.replace(line, f"{line}aliases = {aliases}\n"))


def test_a_former_check_id_folds_into_its_check(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path)
    _alias(root, "windows_updates", '["win_updates", "wu_status"]')
    cat = load_from(root)
    assert cat.checks["windows_updates"].aliases == ("win_updates", "wu_status")
    assert dict(cat.aliases) == {"win_updates": "windows_updates", "wu_status": "windows_updates"}
    assert cat.canonical_check("win_updates") == "windows_updates"
    assert cat.canonical_check("windows_updates") == "windows_updates"
    assert cat.canonical_check("never_known") == "never_known"  # old evidence is never dropped
    assert cat.check("wu_status") is cat.checks["windows_updates"]
    # The alias is not a second check: ids the code emits are still only current ids.
    assert "win_updates" not in cat.checks
    assert ids_in_use_check({"win_updates"}, "check", cat) == {"win_updates"}


@pytest.mark.parametrize(
    ("check_id", "aliases", "message"),
    [
        ("windows_updates", '["linux_patching"]', "is a current check id"),
        ("windows_updates", '["windows_updates"]', "is not a former check id"),
        ("windows_updates", '["Win-Updates"]', "is not a former check id"),
        ("windows_updates", '["wu", "wu"]', "lists a value twice"),
        ("windows_updates", '"wu"', "list of non-empty strings|wrong type"),
    ],
)
def test_bad_aliases_fail_loading(
    tmp_path: Path, check_id: str, aliases: str, message: str
) -> None:
    root = _copy_catalog(tmp_path)
    _alias(root, check_id, aliases)
    with pytest.raises(SchemaError, match=message):
        load_from(root)


def test_one_alias_cannot_name_two_checks(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path)
    _alias(root, "windows_updates", '["updates"]')
    _alias(root, "linux_patching", '["updates"]')
    with pytest.raises(SchemaError, match="alias updates names windows_updates and linux_patching"):
        load_from(root)


def test_ids_in_use_check_reports_unknown_ids(cat) -> None:
    assert ids_in_use_check({"LIN-SSH-001", "RB-WIN-AV-001"}, "runbook") == set()
    assert ids_in_use_check({"LIN-SSH-001", "LIN-SVC-005"}, "runbook") == {"LIN-SVC-005"}
    assert ids_in_use_check({"av_edr_health", "av_edr"}, "check") == {"av_edr_health"}
    assert ids_in_use_check({"L1-LIN-SSH-001", "L1-NOPE-001"}, "rule") == {"L1-NOPE-001"}
    assert ids_in_use_check({"linux_ssh", "LIN-SSH-001", "bogus"}) == {"bogus"}
    with pytest.raises(SchemaError):
        ids_in_use_check({"x"}, "colour")


def test_unknown_runbook_id_is_a_schema_error(cat) -> None:
    with pytest.raises(SchemaError):
        cat.runbook("LIN-SVC-999")
    assert cat.runbook("LIN-SSH-001").check == "linux_ssh"
    with pytest.raises(SchemaError):
        cat.runbook("LIN-ACCT-001").script("remediate")


def test_every_runbook_is_covered_by_a_baseline_rule(cat) -> None:
    covered = {r.runbook_id for r in cat.rules}
    assert set(cat.runbooks) <= covered, set(cat.runbooks) - covered
    for r in cat.rules:
        if r.action == "run_runbook":
            rb = cat.runbook(r.runbook_id)
            assert "remediate" in rb.phases and set(r.phases) <= set(rb.phases)
            rb.validate_params(dict(r.params))


def test_baseline_rules_match_real_results(cat) -> None:
    drift = {"check": "linux_ssh", "runbook_id": "LIN-SSH-001", "status": "drift",
             "observed": {"permit_root_login": "yes"}}  # fmt: skip
    assert [r.id for r in match_rules(cat.rules, drift)] == ["L1-LIN-SSH-001"]
    assert match_rules(cat.rules, {**drift, "status": "compliant"}) == []
    # A tampered AV binary escalates and is never "healed" by a restart.
    av = {"check": "av_edr", "runbook_id": "RB-NIX-AV-001", "status": "drift",
          "observed": {"service_active": False, "hash_state": "mismatch"}}  # fmt: skip
    hits = match_rules(cat.rules, av)
    assert [r.action for r in hits] == ["escalate"]
    av["observed"]["hash_state"] = "match"
    assert [r.action for r in match_rules(cat.rules, av)] == ["run_runbook"]
    patch = {"check": "windows_updates", "runbook_id": "RB-WIN-PATCH-001", "status": "drift",
             "observed": {"overdue": 2}}  # fmt: skip
    assert [r.id for r in match_rules(cat.rules, patch)] == ["L1-WIN-PATCH-001"]
    patch["observed"]["overdue"] = 0
    assert match_rules(cat.rules, patch) == []


def _rule(cat, conditions: list[dict]):
    text = (
        '[[rule]]\nid = "L1-TEST-001"\nname = "t"\ncheck = "linux_ssh"\naction = "alert"\n'
        "conditions = [" + ", ".join(conditions) + "]\n"
    )
    return cat.parse_rules_toml(text, "test")[0]


RESULT = {
    "check": "linux_ssh",
    "status": "drift",
    "observed": {"n": 5, "flag": False, "name": "sshd-main", "list": ["a", "b"], "none": None,
                 "nested": {"deep": {"x": 1}}},
}  # fmt: skip


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ('{field = "status", op = "eq", value = "drift"}', True),
        ('{field = "status", op = "eq", value = "compliant"}', False),
        ('{field = "observed.flag", op = "eq", value = false}', True),
        ('{field = "observed.flag", op = "eq", value = 0}', False),  # no bool/int confusion
        ('{field = "observed.n", op = "eq", value = 5.0}', True),
        ('{field = "status", op = "ne", value = "compliant"}', True),
        ('{field = "status", op = "ne", value = "drift"}', False),
        ('{field = "observed.missing", op = "ne", value = "x"}', False),  # absent: never acts
        ('{field = "status", op = "in", value = ["drift", "error"]}', True),
        ('{field = "status", op = "in", value = ["error"]}', False),
        ('{field = "status", op = "not_in", value = ["compliant"]}', True),
        ('{field = "status", op = "not_in", value = ["drift"]}', False),
        ('{field = "observed.n", op = "gt", value = 4}', True),
        ('{field = "observed.n", op = "gt", value = 5}', False),
        ('{field = "observed.n", op = "lt", value = 5.5}', True),
        ('{field = "observed.n", op = "lt", value = 5}', False),
        ('{field = "observed.name", op = "gt", value = 1}', False),  # not a number
        ('{field = "observed.flag", op = "gt", value = -1}', False),  # bools are not numbers
        ('{field = "observed.name", op = "contains", value = "main"}', True),
        ('{field = "observed.name", op = "contains", value = "nope"}', False),
        ('{field = "observed.list", op = "contains", value = "b"}', True),
        ('{field = "observed.list", op = "contains", value = "c"}', False),
        ('{field = "observed.nested", op = "contains", value = "deep"}', True),
        ('{field = "observed.list", op = "eq", value = ["a", "b"]}', True),
        ('{field = "observed.list", op = "ne", value = []}', True),
        ('{field = "observed.name", op = "regex", value = "^sshd-[a-z]+$"}', True),
        ('{field = "observed.name", op = "regex", value = "^main"}', False),
        ('{field = "observed.n", op = "regex", value = "5"}', False),  # not a string
        ('{field = "observed.nested.deep.x", op = "eq", value = 1}', True),
        ('{field = "observed.nested.deep.y", op = "exists", value = false}', True),
        ('{field = "observed.nested.deep.x", op = "exists", value = true}', True),
        ('{field = "observed.none", op = "exists", value = true}', True),
        ('{field = "observed.name.x", op = "exists", value = true}', False),
        ('{field = "nothing", op = "exists", value = false}', True),
    ],
)
def test_condition_operators(cat, cond: str, expected: bool) -> None:
    rule = _rule(cat, [cond])
    assert evaluate_conditions(rule, RESULT) is expected


def test_every_operator_is_exercised() -> None:
    text = Path(__file__).read_text()
    for op in OPS:
        assert f'op = "{op}"' in text, op


def test_conditions_are_anded(cat) -> None:
    both = ['{field = "status", op = "eq", value = "drift"}',
            '{field = "observed.n", op = "gt", value = 10}']  # fmt: skip
    assert evaluate_conditions(_rule(cat, both), RESULT) is False
    assert evaluate_conditions(_rule(cat, both[:1]), RESULT) is True


@pytest.mark.parametrize(
    "bad",
    [
        '{field = "status", op = "startswith", value = "d"}',  # unknown operator
        '{field = "status", op = "in", value = "drift"}',  # in needs a list
        '{field = "observed.n", op = "gt", value = "4"}',  # gt needs a number
        '{field = "status", op = "regex", value = "("}',  # bad regex
        '{field = "status", op = "exists", value = "yes"}',  # exists needs a bool
        '{field = "status..x", op = "eq", value = 1}',  # bad path
        '{field = "status", op = "eq"}',  # no value
    ],
)
def test_bad_conditions_fail_loading(cat, bad: str) -> None:
    with pytest.raises(SchemaError):
        _rule(cat, [bad])


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('action = "run_runbook"\nrunbook_id = "LIN-SSH-009"', "unknown runbook"),
        ('check = "linux_accounts"\naction = "run_runbook"\nrunbook_id = "LIN-ACCT-001"',
         "cannot remediate"),
        ('action = "run_runbook"\nrunbook_id = "RB-WIN-AV-001"', "belongs to check"),
        ('action = "run_runbook"', "needs a runbook_id"),
        ('action = "run_command"', "action must be"),
        ('action = "run_runbook"\nrunbook_id = "LIN-SSH-001"\nparams = { value = "yes" }',
         "pattern"),
        ('action = "run_runbook"\nrunbook_id = "LIN-SSH-001"\nparams = { nope = 1 }', "unknown"),
    ],
)  # fmt: skip
def test_bad_rules_fail_loading(cat, snippet: str, message: str) -> None:
    if "check =" not in snippet:
        snippet = 'check = "linux_ssh"\n' + snippet
    text = (
        f'[[rule]]\nid = "L1-TEST-001"\nname = "t"\n{snippet}\n'
        'conditions = [{ field = "status", op = "eq", value = "drift" }]\n'
    )
    with pytest.raises(SchemaError, match=message):
        cat.parse_rules_toml(text)


def _copy_catalog(tmp_path: Path) -> Path:
    dst = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def test_unknown_operator_in_a_rules_file_fails_the_whole_load(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path)
    assert len(load_from(root).rules) == len(load_catalog().rules)
    baseline = root / "rules" / "baseline.toml"
    text = baseline.read_text()
    baseline.write_text(text.replace('op = "eq"', 'op = "equals"', 1))
    with pytest.raises(SchemaError, match="unknown operator 'equals'"):
        load_from(root)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('check = "linux_ssh"', 'check = "ssh_config"'), "unknown check"),
        (lambda t: t.replace('severity = "high"', 'severity = "urgent"'), "severity"),
        (lambda t: t.replace(', pattern = "^(no|prohibit-password)$"', ""), "need a pattern"),
        (lambda t: t + 'extra_field = 1\n', "unknown field"),
        (lambda t: t.replace('"164.312(a)(1)"', '"164.999(z)"'), "citation"),
    ],
)  # fmt: skip
def test_broken_manifests_fail_loading(tmp_path: Path, edit, message: str) -> None:
    root = _copy_catalog(tmp_path)
    manifest = root / "runbooks" / "LIN-SSH-001" / "manifest.toml"
    text = manifest.read_text()
    new = edit(text)
    assert new != text
    if "extra_field" in new:  # top-level key must precede the [params] table
        new = "extra_field = 1\n" + text
    manifest.write_text(new)
    with pytest.raises(SchemaError, match=message):
        load_from(root)


def test_missing_phase_script_fails_loading(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path)
    (root / "runbooks" / "LIN-PERM-001" / "rollback.sh").unlink()
    with pytest.raises(SchemaError, match="rollback"):
        load_from(root)


def test_rule_for_unknown_check_fails_loading(tmp_path: Path) -> None:
    root = _copy_catalog(tmp_path)
    baseline = root / "rules" / "baseline.toml"
    baseline.write_text(baseline.read_text().replace('check = "linux_ssh"', 'check = "ssh"', 1))
    with pytest.raises(SchemaError, match="unknown check"):
        load_from(root)


# --- parameters -------------------------------------------------------------------------------

HOSTILE = ["; rm -rf /", "$(reboot)", "`id`", "no; rm -rf /", "no\nrm -rf /", "no'", "a b",
           "../../etc/shadow", "no\x00", "'; Remove-Item -Recurse C:\\ ; '"]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE)
def test_validate_params_refuses_shell_metacharacters(cat, value: str) -> None:
    for rid, name in [("LIN-SSH-001", "value"), ("LIN-AUDIT-002", "auth_log"),
                      ("RB-NIX-AV-001", "service"), ("RB-WIN-NET-001", "dns_servers"),
                      ("RB-NIX-GEN-001", "desired_system")]:  # fmt: skip
        with pytest.raises(SchemaError, match=name):
            cat.runbook(rid).validate_params({name: value})


def test_validate_params_types_bounds_and_defaults(cat) -> None:
    rb = cat.runbook("LIN-SSH-003")
    assert rb.validate_params({}) == {"max_auth_tries": 3}
    assert rb.validate_params({"max_auth_tries": 4}) == {"max_auth_tries": 4}
    for bad in (0, 11, "3", True, 3.0):
        with pytest.raises(SchemaError, match="max_auth_tries"):
            rb.validate_params({"max_auth_tries": bad})
    with pytest.raises(SchemaError, match="unknown"):
        rb.validate_params({"max_auth_trys": 3})
    win = cat.runbook("RB-WIN-PATCH-001")
    with pytest.raises(SchemaError, match="include_important"):
        win.validate_params({"include_important": 1})


def _sh_preamble(text: str) -> str:
    """The rendered script up to (not including) the shared helper library."""
    return text.split("\n# shellcheck shell=bash\n", 1)[0]


def test_render_sh_header_and_preamble(cat) -> None:
    rb = cat.runbook("LIN-SSH-003")
    text = render(rb, "remediate", {"max_auth_tries": 4})
    lines = text.splitlines()
    assert (
        lines[0]
        == f"# osiris: runbook=LIN-SSH-003 phase=remediate sha256={script_sha256(rb, 'remediate')}"
    )
    assert lines[1] == "set -euo pipefail"
    assert "export OSIRIS_P_MAX_AUTH_TRIES=4" in lines
    assert text.endswith(rb.script("remediate"))
    with pytest.raises(SchemaError):
        render(rb, "remediate", {"max_auth_tries": "4; reboot"})


def test_render_ps1_carries_params_as_base64_json(cat) -> None:
    import base64
    import json

    rb = cat.runbook("RB-WIN-NET-001")
    ctx = TrustContext({"RB-WIN-NET-001": {"dns_servers": ("10.0.0.2", "10.0.0.3")}})
    text = render(rb, "detect", rb.validate_params({"dns_servers": "10.0.0.2,10.0.0.3"}, ctx))
    lines = text.splitlines()
    assert lines[0].startswith("# osiris: runbook=RB-WIN-NET-001 phase=detect sha256=")
    m = re.search(r"FromBase64String\('([A-Za-z0-9+/=]+)'\)", text)
    assert m and "ConvertFrom-Json ([Text.Encoding]::UTF8.GetString(" in text
    assert json.loads(base64.b64decode(m.group(1))) == {"dns_servers": "10.0.0.2,10.0.0.3"}
    assert "10.0.0.2" not in text.replace(m.group(1), "")  # the value only travels as data


def _permissive_runbook(tmp_path: Path) -> Runbook:
    """A runbook whose str param allows anything, to prove quoting alone keeps values inert."""
    d = tmp_path / "LIN-TEST-001"
    d.mkdir(exist_ok=True)
    (d / "detect.sh").write_text('printf \'%s\' "$OSIRIS_P_VALUE" >"$OSIRIS_OUT"\n')
    return Runbook(
        id="LIN-TEST-001", name="t", description="t", platform="linux", category="t",
        check="linux_ssh", severity="low", controls=("164.312(b)",), disruptive=False,
        requires_maintenance_window=False, reboot=False, phases=("detect",),
        default_enabled=True, what_it_changes="-", observed_keys=("x",), directory=d,
        params={"value": Param("value", "str", "", "any", pattern=r"(?s).*")},
    )  # fmt: skip


hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
) | st.sampled_from([h for h in HOSTILE if "\x00" not in h])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile_text)
def test_rendered_sh_params_round_trip_in_real_bash(tmp_path: Path, value: str) -> None:
    rb = _permissive_runbook(tmp_path)
    text = render(rb, "detect", {"value": value})
    out = tmp_path / "out.bin"
    env = {"PATH": "/usr/bin:/bin", "OSIRIS_OUT": str(out)}
    proc = subprocess.run(["bash", "-c", text], env=env, capture_output=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == value.encode("utf-8")
    assert not (tmp_path / "pwned").exists()


@settings(max_examples=60, deadline=None)
@given(value=hostile_text)
def test_catalogue_patterns_reject_or_render_inert(value: str) -> None:
    """Every str param of every runbook: a hostile value is refused, or only ever quoted."""
    import shlex

    cat = load_catalog()
    for rb in cat.runbooks.values():
        for p in rb.params.values():
            if p.type != "str":
                continue
            try:
                rb.validate_params({p.name: value})
            except SchemaError:
                continue
            assert not re.search(r"[;&|`$<>\\\n'\"(){}*?]", value), (rb.id, p.name, value)
            if rb.ext == "sh":
                pre = _sh_preamble(render(rb, "detect", {p.name: value}))
                assert f"export OSIRIS_P_{p.name.upper()}={shlex.quote(value)}" in pre


# --- docs -------------------------------------------------------------------------------------


def test_docs_are_generated_from_the_catalogue(cat) -> None:
    text = generate(cat)
    committed = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    assert committed == text, "docs/runbooks.md is stale: python -m osiris_core.catalog.docgen"
    for rid in cat.runbooks:
        assert f"### {rid}:" in text
    # The docs name no runbook id the catalogue lacks.
    used = set(re.findall(r"\b(?:RB-(?:WIN|NIX)|LIN)-[A-Z]+-\d{3}\b", committed))
    assert ids_in_use_check(used, "runbook") == set()
