"""PowerShell we cannot run here, linted over its syntax tree (issue 15 item 7).

PowerShell is not installable on this machine, so the Windows runbooks never run for real in CI;
the tree-sitter parse (test_scripts.py) proves they are PowerShell, and these rules prove a few
things a Windows admin would refuse to sign off, on the parsed commands (never on raw text):

* ``no-iex`` — no ``Invoke-Expression``: a runbook never turns a string into code.
* ``no-alias`` — full cmdlet names only: aliases differ between hosts and editions
  (``curl``/``wget`` are ``Invoke-WebRequest`` on 5.1 and nothing on 7), and they hide intent.
* ``error-action`` — every cmdlet that changes state says what a failure does: ``-ErrorAction
  Stop`` (the script ends with an error, which the executor records as an error — never as a
  heal), or an explicit ``SilentlyContinue``/``Ignore`` where a failure is expected and harmless.
  Without it a failing ``Start-Service`` is a non-terminating error and the script goes on to
  print ``changed: true``.
* ``no-text-parsing`` — no reading of a native tool's human text (``net accounts``,
  ``w32tm /query``…): it is localised and ignores GPO. Machine-readable forms (``auditpol /r``
  CSV) are fine.
* ``no-proxy-reset`` — no ``netsh winhttp reset proxy``: it drops a proxy the clinic may need.
* ``no-wua-in-session`` — no call of the Windows Update Agent's ``CreateUpdateDownloader()`` /
  ``CreateUpdateInstaller()`` in the script's own code: Windows refuses them to a WinRM network
  logon (E_ACCESSDENIED); they belong in a worker here-string run by ``Invoke-OsirisSystemTask``
  (a SYSTEM scheduled task). A here-string is a string node, not code, in the syntax tree.
* ``no-asjob`` — no ``-AsJob``: a job belongs to the WinRM session and dies with it; long work
  runs in a SYSTEM scheduled task (``Invoke-OsirisSystemTask``).

A worker here-string (``@'…'@`` starting with ``param(``: the script a SYSTEM scheduled task runs)
is linted by the same rules as a script of its own, the WUA rule aside (that is where WUA belongs).

Beside the rules: every remediate that saves a pre-change snapshot (``Save-OsirisSnapshot``) has
a ``rollback`` phase that reads it (``Get-OsirisSnapshot``), and the reverse.

Known offenders (issue 15 item 3 rewrote them: SEC-003/004 read secedit, SVC-004 the registry)
would be listed in KNOWN so the list can only shrink; it is empty and must stay empty.

# proves-every: windows
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "osiris_core" / "catalog"

STATE_VERBS = frozenset(
    "set new remove enable disable start stop restart add clear install uninstall register "
    "unregister rename move copy suspend resume update reset initialize grant revoke backup "
    "restore mount dismount lock unlock protect unprotect publish unpublish".split()
)
# in-memory objects or this script's own session only (a task action/principal/settings object is
# nothing until Register-ScheduledTask, which is linted; strict mode and sleeping change no host)
NOT_STATE = frozenset(
    {
        "new-object", "new-timespan", "new-guid", "new-scheduledtaskaction",
        "new-scheduledtaskprincipal", "new-scheduledtasksettingsset", "new-scheduledtasktrigger",
        "set-strictmode", "start-sleep",
    }
)  # fmt: skip
ALIASES = frozenset(
    "% ? select where foreach gci ls dir cat echo gc sc iex gwmi ft fl sort measure cd cls cp "
    "mv rm del ri ni gi gp sp kill ps gsv sasv spsv icm irm iwr curl wget type write gm group "
    "tee diff h r man pwd popd pushd sleep start md rd erase copy move ren clc cli clp cpi "
    "epcsv fc fw gal gcm gdr ghy gl gmo gps gu gv ihy ii ipcsv ipmo iwmi lp mi mp nal ndr nmo "
    "nv ogv oh rbp rdr rjb rni rnp rp rsn rv rvpa rwmi sajb sal saps sbp scb si sl sv swmi "
    "trcm wjb".split()
)
# native tools whose plain output is localised prose; `auditpol ... /r` (CSV) is not
TEXT_TOOLS = frozenset({"net", "net.exe", "w32tm", "w32tm.exe"})


def _reads_prose(name: str, text: str) -> bool:
    """`net accounts` with no switch (it prints the policy as prose; with /switches it sets
    it), or `w32tm /query` (prose too)."""
    args = text.lower().split()[1:]
    if name.startswith("net"):
        return bool(args) and args[0] == "accounts" and not any("/" in a for a in args[1:])
    return "/query" in args


KNOWN: set[tuple[str, str]] = set()
WUA_SESSION_CALLS = frozenset({"createupdatedownloader", "createupdateinstaller"})


@pytest.fixture(scope="module")
def parser():
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_powershell.language()))


def _commands(node) -> Iterator:
    if node.type == "command":
        yield node
    for c in node.children:
        yield from _commands(c)


def lint(parser, src: bytes) -> list[tuple[str, str]]:
    """(rule, command text) for every violation in one script."""
    tree = parser.parse(src)
    out: list[tuple[str, str]] = []
    for node in _walk(tree.root_node):
        if node.type == "invokation_expression":
            member = next((c for c in node.children if c.type == "member_name"), None)
            if member is not None and _text(src, member).lower() in WUA_SESSION_CALLS:
                out.append(("no-wua-in-session", _text(src, node).splitlines()[0][:100]))
    for cmd in _commands(tree.root_node):
        name_node = next((c for c in cmd.children if c.type == "command_name"), None)
        if name_node is None:
            continue
        name = src[name_node.start_byte : name_node.end_byte].decode().lower()
        text = src[cmd.start_byte : cmd.end_byte].decode()
        params = [
            src[n.start_byte : n.end_byte].decode().lower()
            for n in _walk(cmd)
            if n.type == "command_parameter"
        ]
        first = text.splitlines()[0][:100]
        if name == "invoke-expression":
            out.append(("no-iex", first))
        if name in ALIASES:
            out.append(("no-alias", first))
        verb = name.split("-", 1)[0] if "-" in name else ""
        if verb in STATE_VERBS and name not in NOT_STATE:
            ea = re.search(r"-ErrorAction\s+['\"]?(\w+)", text, re.IGNORECASE)
            if "-erroraction" not in params or ea is None or ea.group(1).lower() not in (
                "stop", "silentlycontinue", "ignore",
            ):  # fmt: skip
                out.append(("error-action", first))
        if name in TEXT_TOOLS and _reads_prose(name, text):
            out.append(("no-text-parsing", first))
        if "-asjob" in params:
            out.append(("no-asjob", first))
        if name in ("netsh", "netsh.exe") and re.search(r"winhttp\s+reset\s+proxy", text, re.I):
            out.append(("no-proxy-reset", first))
    return out


def _text(src: bytes, node) -> str:
    return src[node.start_byte : node.end_byte].decode()


def _walk(node) -> Iterator:
    yield node
    for c in node.children:
        yield from _walk(c)


def _scripts() -> list[Path]:
    return sorted(CATALOG.rglob("*.ps1"))


def test_there_are_scripts_to_lint() -> None:
    assert len(_scripts()) > 50


def workers(parser, src: bytes) -> list[bytes]:
    """The worker scripts in ``src``: verbatim here-strings whose first line is ``param(``."""
    out = []
    for n in _walk(parser.parse(src).root_node):
        if n.type == "verbatim_here_string_characters":
            body = _text(src, n)[2:-2].strip("\r\n")  # @' … '@
            if body.lstrip().lower().startswith("param("):
                out.append(body.encode())
    return out


def lint_all(parser, src: bytes) -> list[tuple[str, str]]:
    """The script's own violations, then its workers' (WUA calls belong in a worker)."""
    out = lint(parser, src)
    for w in workers(parser, src):
        out += [(r, f"[worker] {t}") for r, t in lint(parser, w) if r != "no-wua-in-session"]
    return out


def test_powershell_lint(parser) -> None:
    found: set[tuple[str, str]] = set()
    new: list[str] = []
    n_workers = 0
    for path in _scripts():
        rel = (
            path.relative_to(CATALOG / "runbooks").as_posix()
            if "runbooks" in path.parts
            else (path.relative_to(CATALOG).as_posix())
        )
        n_workers += len(workers(parser, path.read_bytes()))
        for rule, text in lint_all(parser, path.read_bytes()):
            found.add((rule, rel))
            if (rule, rel) not in KNOWN:
                new.append(f"{rel}: {rule}: {text}")
    assert n_workers >= 3  # PATCH-001, AV-001, STG-003
    assert new == [], "PowerShell lint:\n" + "\n".join(new)
    fixed = sorted(KNOWN - found)
    assert fixed == [], f"fixed — take them off KNOWN: {fixed}"


@pytest.mark.parametrize(
    ("rule", "snippet"),
    [
        ("no-iex", "Invoke-Expression $code"),
        ("no-alias", "gci C:\\ | % { $_ }"),
        ("no-alias", "curl https://example.invalid/"),
        ("error-action", "Start-Service -Name 'DNS'"),
        ("error-action", "Set-Service -Name 'DNS' -StartupType Automatic -ErrorAction Continue"),
        ("no-text-parsing", "$t = net.exe accounts"),
        ("no-text-parsing", "$s = w32tm.exe /query /source"),
        ("no-proxy-reset", "netsh.exe winhttp reset proxy"),
        ("no-wua-in-session", "$i = $s.CreateUpdateInstaller(); $i.Install()"),
        ("no-wua-in-session", "[void]$session.CreateUpdateDownloader().Download()"),
        ("no-asjob", "Start-MpScan -ScanType QuickScan -AsJob -ErrorAction Stop"),
    ],
)
def test_each_rule_can_fail(parser, rule: str, snippet: str) -> None:
    assert rule in [r for r, _ in lint(parser, snippet.encode())]


@pytest.mark.parametrize(
    "snippet",
    [
        "Start-Service -Name 'DNS' -ErrorAction Stop",
        "Remove-Item -Path $p -Force -ErrorAction SilentlyContinue",
        "$o = New-Object -ComObject 'Microsoft.Update.Session'",
        "auditpol.exe /get '/subcategory:{0CCE9215-69AE-11D9-BED3-505054503030}' /r",
        "net.exe accounts /lockoutthreshold:5",
        "$w = @'\n$i = $s.CreateUpdateInstaller(); $i.Install()\n'@",
        "$a = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -RunLevel Highest",
        "Set-StrictMode -Version 3.0",
        "Get-Service -Name 'DNS' | Select-Object -Property Status",
    ],
)
def test_what_the_rules_accept(parser, snippet: str) -> None:
    assert lint(parser, snippet.encode()) == []


def test_the_old_patch_remediate_fails_the_lint(parser) -> None:
    """RB-WIN-PATCH-001's remediate before issue 15 called WUA from the session."""
    from tests.core.old_windows_scripts import OLD_PATCH_REMEDIATE

    rules = [r for r, _ in lint(parser, OLD_PATCH_REMEDIATE.encode())]
    assert rules.count("no-wua-in-session") == 2


def _calls(parser, src: bytes, name: str) -> bool:
    return any(
        n.type == "command_name" and _text(src, n).lower() == name
        for n in _walk(parser.parse(src).root_node)
    )


def test_every_snapshot_has_its_rollback_and_every_rollback_its_snapshot(parser) -> None:
    from osiris_core.catalog import load_catalog

    bad: list[str] = []
    for rb in load_catalog().runbooks.values():
        if rb.platform != "windows" or "remediate" not in rb.phases:
            continue
        saves = _calls(parser, rb.script("remediate").encode(), "save-osirissnapshot")
        has = "rollback" in rb.phases
        reads = has and _calls(parser, rb.script("rollback").encode(), "get-osirissnapshot")
        if saves != has or has != reads:
            bad.append(f"{rb.id}: snapshot={saves} rollback={has} reads={reads}")
        if has and not rb.rollback_note:
            bad.append(f"{rb.id}: rollback without a rollback_note")
    assert bad == []


def _command_texts(parser, src: bytes, name: str) -> list[str]:
    out = []
    for cmd in _commands(parser.parse(src).root_node):
        n = next((c for c in cmd.children if c.type == "command_name"), None)
        if n is not None and _text(src, n).lower() == name:
            out.append(_text(src, cmd))
    return out


def test_the_system_task_helper_runs_as_system_and_stays_inside_the_phase_timeout(parser):
    """Invoke-OsirisSystemTask (lib/osiris.ps1): the principal is SYSTEM at the highest run
    level, the task is removed after a polled run, and every polled wait in the catalogue is
    below the executor's phase timeout (else the agent gives up on a phase that is still
    legitimately waiting and records an error for an install that succeeds)."""
    import inspect

    from osiris_agent.healing.executor import Executor
    from osiris_core.catalog import load_catalog

    lib = (CATALOG / "lib" / "osiris.ps1").read_bytes()
    principal = _command_texts(parser, lib, "new-scheduledtaskprincipal")
    assert principal and all(
        "-UserId 'SYSTEM'" in p and "-RunLevel Highest" in p for p in principal
    )
    assert _command_texts(parser, lib, "register-scheduledtask")
    assert _command_texts(parser, lib, "unregister-scheduledtask")
    assert _command_texts(parser, lib, "get-scheduledtaskinfo")  # LastTaskResult is read
    phase_timeout = inspect.signature(Executor.__init__).parameters["timeout_s"].default
    default = re.search(r"\[int\]\$TimeoutSec = (\d+)", lib.decode())
    assert default is not None and int(default.group(1)) < phase_timeout
    users = 0
    for rb in load_catalog().runbooks.values():
        if rb.platform != "windows" or "remediate" not in rb.phases:
            continue
        src = rb.script("remediate").encode()
        for call in _command_texts(parser, src, "invoke-osirissystemtask"):
            users += 1
            m = re.search(r"-TimeoutSec (\d+)", call)
            assert "-NoWait" in call or m is None or int(m.group(1)) < phase_timeout, rb.id
    assert users >= 3  # PATCH-001, AV-001, STG-003


def test_private_dirs_are_system_and_administrators_only() -> None:
    lib = (CATALOG / "lib" / "osiris.ps1").read_text(encoding="utf-8")
    assert "SetAccessRuleProtection($true, $false)" in lib  # inheritance cut, nothing copied
    assert "@('S-1-5-18', 'S-1-5-32-544')" in lib  # SYSTEM, BUILTIN\Administrators
    assert "Get-OsirisPrivateDir -Name 'snapshots'" in lib
    assert "Get-OsirisPrivateDir -Name 'tasks'" in lib


def test_a_worker_is_linted_like_a_script(parser) -> None:
    src = b"$w = @'\nparam([string]$A)\nStart-Service -Name 'X'\n$s.CreateUpdateInstaller()\n'@\n"
    assert [r for r, _ in lint_all(parser, src)] == ["error-action"]
    assert lint_all(parser, b"$w = @'\nStart-Service -Name 'X'\n'@\n") == []  # text, no worker
