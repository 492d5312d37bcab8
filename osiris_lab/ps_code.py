"""LAB SIMULATOR ONLY — what a PowerShell script *does* as code, read structurally.

The Windows lab host (:mod:`osiris_lab.windows`) must refuse what real Windows refuses and keep
snapshots the way the real scripts do, so it needs to know a few things about the script it was
sent — not from its comments or its string literals, only from its code:

* whether it calls the Windows Update Agent's downloader or installer (``.CreateUpdateDownloader(``
  / ``.CreateUpdateInstaller(``) *in the session*. Windows answers ``E_ACCESSDENIED`` to that
  from a WinRM network logon; the same calls inside a here-string that a SYSTEM scheduled task
  runs (``Invoke-OsirisSystemTask``) are not this script's code (they run in the task's local
  logon) — unless the script also runs a string in the session (``[scriptblock]::Create``,
  ``Invoke-Command``, ``powershell -EncodedCommand`` …);
* which snapshot keys a remediate saves (``$before.<key> = …``) and which a rollback reads
  (``$snap.<key>``).

:func:`code_only` blanks every comment and string literal (here-strings included; the code
inside a double-quoted string's ``$( … )`` stays, because PowerShell runs it). It is a small
tokenizer rather than the tree-sitter grammar because the lab ships in the wheel for ``osiris
demo`` and tree-sitter is a test dependency; ``tests/agent/test_lab_ps_code.py`` checks it
against the tree-sitter parse of every catalogue script.
"""

from __future__ import annotations

import re

WUA_CALL_RE = re.compile(r"\.\s*(CreateUpdateDownloader|CreateUpdateInstaller)\s*\(", re.I)
# what runs a string as code in this very session (where WUA refuses): never a SYSTEM task
IN_SESSION_RUNNER_RE = re.compile(
    r"scriptblock\]::create|invoke-command|start-job|invoke-expression|\biex\b|"
    r"powershell(\.exe)?\s+(-\w+\s+)*-(e|ec|enc|encodedcommand|c|command)\b",
    re.I,
)
TASK_RUNNER_RE = re.compile(r"\bInvoke-OsirisSystemTask\b", re.I)
SAVED_RE = re.compile(r"\$before\.(\w+)\s*=(?!=)", re.I)
READ_RE = re.compile(r"\$snap\.(\w+)", re.I)


def code_only(src: str) -> str:
    """``src`` with comments and string literals blanked (lengths are not kept)."""
    out: list[str] = []
    _code(src, 0, out, stop_at_paren=False)
    return "".join(out)


def without_comments(src: str) -> str:
    """``src`` with comments removed and string literals kept as they are."""
    out: list[str] = []
    _code(src, 0, out, stop_at_paren=False, keep_strings=True)
    return "".join(out)


def _code(
    src: str, i: int, out: list[str], *, stop_at_paren: bool, keep_strings: bool = False
) -> int:
    """Copy code from ``i``; return the index after the closing ``)`` when ``stop_at_paren``."""
    depth = 0
    n = len(src)
    while i < n:
        c = src[i]
        two = src[i : i + 2]
        if two == "<#":
            end = src.find("#>", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c == "#":
            end = src.find("\n", i)
            i = n if end < 0 else end
            continue
        if two in ("@'", '@"') and src[i + 2 : i + 4].lstrip(" \t")[:1] in ("\n", "\r"):
            quote = two[1]
            m = re.compile(r"\r?\n" + quote + "@").search(src, i + 2)
            if keep_strings:
                out.append(src[i : n if m is None else m.end()])
                i = n if m is None else m.end()
                continue
            out.append(quote * 2)
            end = n if m is None else m.start()
            if quote == '"':  # an expandable here-string runs its $( … ) as code
                j = i + 2
                while j < end:
                    if src[j : j + 2] == "$(":
                        out.append(" (")
                        j = _code(src, j + 2, out, stop_at_paren=True)
                        out.append(") ")
                    else:
                        j += 1
            i = n if m is None else m.end()
            continue
        if c == "'":
            j = _single(src, i + 1)
            out.append(src[i:j] if keep_strings else "''")
            i = j
            continue
        if c == '"':
            if keep_strings:
                j = _double(src, i + 1, [])
                out.append(src[i:j])
                i = j
                continue
            out.append('""')
            i = _double(src, i + 1, out)
            continue
        if stop_at_paren:
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    return i + 1
                depth -= 1
        out.append(c)
        i += 1
    return i


def _single(src: str, i: int) -> int:
    n = len(src)
    while i < n:
        if src[i] == "'":
            if src[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _double(src: str, i: int, out: list[str]) -> int:
    n = len(src)
    while i < n:
        c = src[i]
        if c == "`":
            i += 2
            continue
        if c == '"':
            if src[i + 1 : i + 2] == '"':
                i += 2
                continue
            return i + 1
        if src[i : i + 2] == "$(":
            out.append(" (")
            i = _code(src, i + 2, out, stop_at_paren=True)
            out.append(") ")
            continue
        i += 1
    return n


def direct_wua_calls(src: str) -> list[str]:
    """The WUA downloader/installer calls in the script's own code (not in a string)."""
    return [m.group(1) for m in WUA_CALL_RE.finditer(code_only(src))]


def calls_wua_in_session(src: str) -> list[str]:
    """The WUA downloader/installer calls that would run in the WinRM session: in the script's
    own code, or in a string the script runs in the session (``[scriptblock]::Create``,
    ``Invoke-Command``, ``powershell -EncodedCommand`` …) or does not hand to
    ``Invoke-OsirisSystemTask`` at all."""
    code = code_only(src)
    direct = direct_wua_calls(src)
    if direct:
        return direct
    quoted = [m.group(1) for m in WUA_CALL_RE.finditer(without_comments(src))]
    if quoted and (IN_SESSION_RUNNER_RE.search(code) or not TASK_RUNNER_RE.search(code)):
        return quoted
    return []


def snapshot_keys_saved(src: str) -> list[str]:
    """Keys a remediate puts in its snapshot (``$before.<key> = …``), in order, once each."""
    return list(dict.fromkeys(SAVED_RE.findall(code_only(src))))


def snapshot_keys_read(src: str) -> list[str]:
    """Keys a rollback reads from the snapshot (``$snap.<key>``), in order, once each."""
    return list(dict.fromkeys(READ_RE.findall(code_only(src))))
