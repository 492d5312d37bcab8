"""The lab's small PowerShell reader (osiris_lab/ps_code.py) agrees with the tree-sitter grammar.

The lab decides from it whether a script calls the Windows Update Agent from the session (and so
fails with E_ACCESSDENIED as Windows would) and which snapshot keys a remediate saves and a
rollback reads. It cannot use tree-sitter (a test dependency; the lab ships for ``osiris
demo``), so here, over every catalogue script and a few hostile shapes, its answers must equal
what the syntax tree says.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from osiris_core.catalog import load_catalog, render
from osiris_lab import ps_code
from osiris_lab.windows import WindowsLabHost
from tests.agent.test_lab_windows import catalog_with
from tests.core.old_windows_scripts import OLD_PATCH_REMEDIATE

PS1 = sorted(Path(str(resources.files("osiris_core.catalog"))).rglob("*.ps1"))
WUA = {"createupdatedownloader", "createupdateinstaller"}


@pytest.fixture(scope="module")
def parser():
    import tree_sitter_powershell
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_powershell.language()))


def _walk(node):
    yield node
    for c in node.children:
        yield from _walk(c)


def _text(src: bytes, node) -> str:
    return src[node.start_byte : node.end_byte].decode()


def by_tree(parser, text: str) -> tuple[list[str], list[str], list[str]]:
    src = text.encode()
    wua: list[str] = []
    saved: list[str] = []
    read: list[str] = []
    for n in _walk(parser.parse(src).root_node):
        kids = n.children
        member = next((c for c in kids if c.type == "member_name"), None)
        var = kids[0] if kids and kids[0].type == "variable" else None
        if n.type == "invokation_expression" and member is not None:
            if _text(src, member).lower() in WUA:
                wua.append(_text(src, member))
        if n.type == "member_access" and var is not None and member is not None:
            name = _text(src, var).lower()
            if name == "$snap":
                read.append(_text(src, member))
            if name == "$before" and n.parent is not None:
                # `$before.key = …`: the member access is the assignment's left side
                anc = n
                while anc is not None and anc.type != "left_assignment_expression":
                    anc = anc.parent
                if anc is not None and anc.start_byte == n.start_byte:
                    saved.append(_text(src, member))
    return wua, list(dict.fromkeys(saved)), list(dict.fromkeys(read))


def by_lab(text: str) -> tuple[list[str], list[str], list[str]]:
    return (
        ps_code.direct_wua_calls(text),
        ps_code.snapshot_keys_saved(text),
        ps_code.snapshot_keys_read(text),
    )


@pytest.mark.parametrize("path", PS1, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_lab_reads_every_catalogue_script_as_the_grammar_does(parser, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert by_lab(text) == by_tree(parser, text)


HOSTILE = [
    OLD_PATCH_REMEDIATE,
    "# $s.CreateUpdateInstaller() in a comment\n<# $s.CreateUpdateDownloader() #>\n$x = 1",
    "$w = 'it''s $s.CreateUpdateInstaller()'",
    '$w = "$($s.CreateUpdateInstaller().Install())"',
    '$w = @"\n$($s.CreateUpdateInstaller())\n"@',
    "$before.a = 1; $before.b = @{ c = $snap.d }; if ($before.a -eq 1) { $snap.e }",
    '$t = "`"$($snap.f)`""; $before.g = \'$snap.h\'',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_comments_strings_and_subexpressions(parser, text: str) -> None:
    assert by_lab(text) == by_tree(parser, text)


def test_the_reader_can_tell_them_apart() -> None:
    assert ps_code.calls_wua_in_session(OLD_PATCH_REMEDIATE) == [
        "CreateUpdateDownloader", "CreateUpdateInstaller",
    ]  # fmt: skip
    handed = "$w = @'\n$s.CreateUpdateInstaller()\n'@\nInvoke-OsirisSystemTask -Worker $w"
    assert ps_code.calls_wua_in_session(handed) == []


WORKER = "$w = @'\n$i = $s.CreateUpdateInstaller(); $i.Install()\n'@\n"


@pytest.mark.parametrize(
    ("tail", "denied"),
    [
        ("$r = Invoke-OsirisSystemTask -Worker $w", False),  # the catalogue's way: a SYSTEM task
        ("& ([scriptblock]::Create($w))", True),  # the same code, in the session
        ("Invoke-Command -ScriptBlock ([scriptblock]::Create($w))", True),
        ("powershell.exe -NoProfile -EncodedCommand $enc", True),
        ("$r = Invoke-OsirisSystemTask -Worker $w; Invoke-Expression $w", True),
        ("Set-Content -Path C:\\w.ps1 -Value $w -ErrorAction Stop", True),  # never handed over
    ],
)
def test_a_worker_counts_as_in_session_unless_a_system_task_runs_it(tail: str, denied: bool):
    assert bool(ps_code.calls_wua_in_session(WORKER + tail)) is denied


def test_the_worker_run_in_the_session_is_refused_by_the_lab(tmp_path: Path) -> None:
    """The new worker here-string, but run in the WinRM session ([scriptblock]::Create) instead
    of a SYSTEM task: still a network logon, still E_ACCESSDENIED."""
    good = load_catalog().runbook("RB-WIN-PATCH-001").script("remediate")
    task = "$r = Invoke-OsirisSystemTask -Worker $worker -TimeoutSec 240"
    assert task in good
    bad = good.replace(task, "$r = & ([scriptblock]::Create($worker))")
    cat = catalog_with(tmp_path, "RB-WIN-PATCH-001", "remediate", bad)
    host = WindowsLabHost(cat)
    host.inject("updates_overdue")
    rb = cat.runbook("RB-WIN-PATCH-001")
    rc, out, _ = host.handle(render(rb, "remediate", rb.validate_params({})))
    assert rc == 1 and "E_ACCESSDENIED" in out
    assert any(u["kb"] == "KB5037771" for u in host.state["updates"])
