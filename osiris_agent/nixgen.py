"""Generate ``nix/modules/agent-options.nix`` from :func:`osiris_agent.config.schema`.

Why generated: the NixOS module must mirror ``/etc/osiris/agent.toml`` option for option. An
earlier implementation kept a hand-written module beside a hand-written config reader and they
drifted (lessons.md A1, C). Here the module's ``settings`` options are printed from the one schema
table, and ``tests/test_nix.py`` regenerates this file and compares it byte for byte.

Mapping (TOML key ``section.name`` -> ``services.osiris-agent.settings.<section>.<name>``):

- ``str`` -> ``types.str``; with choices -> ``types.enum [...]``
- ``int`` with bounds -> ``types.ints.between lo hi``
- ``bool`` -> ``types.bool``; ``list`` -> ``types.listOf types.str``
- required -> no default (NixOS reports a missing definition at evaluation time)
- optional or derived (computed by the agent, e.g. ``<state_dir>/appliance.key``) ->
  ``types.nullOr T`` with ``default = null``; the module leaves null keys out of the TOML file,
  so the agent applies its own derived default.

Usage: ``python -m osiris_agent.nixgen > nix/modules/agent-options.nix``.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from osiris_agent.config import schema

HEADER = (
    "# Generated from osiris_agent/config.py by `python -m osiris_agent.nixgen`; do not edit by\n"
    "# hand (tests/test_nix.py regenerates it and fails on any difference).\n"
    "#\n"
    "# One option per key of /etc/osiris/agent.toml: settings.<section>.<key>. null = key left\n"
    "# out of the file, so the agent applies its own (possibly derived) default.\n"
)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")


def nix_string(s: str) -> str:
    """A Nix double-quoted string literal for ``s`` (escapes ``\\``, ``"``, ``${`` and controls)."""
    out = ['"']
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "$" and s[i + 1 : i + 2] == "{":
            out.append("\\$")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            raise ValueError(f"cannot put control character {ord(ch):#x} in a Nix string")
        else:
            out.append(ch)
        i += 1
    out.append('"')
    return "".join(out)


def nix_name(name: str) -> str:
    """An attribute name, quoted only when it is not a plain identifier."""
    return name if _IDENT.fullmatch(name) else nix_string(name)


def nix_value(v: Any) -> str:
    """A Nix literal for a schema default (str, int, bool, list of str, None)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return nix_string(v)
    if isinstance(v, list | tuple):
        return "[ " + " ".join(nix_value(x) for x in v) + " ]" if v else "[ ]"
    raise TypeError(f"no Nix literal for {type(v).__name__}")


def nix_type(row: dict[str, Any]) -> str:
    """The ``lib.types`` expression for one schema row (without the nullOr wrapper)."""
    kind = row["type"]
    if kind == "str":
        if row["choices"]:
            return "types.enum " + nix_value(row["choices"])
        return "types.str"
    if kind == "int":
        if row["min"] is not None and row["max"] is not None:
            return f"types.ints.between {row['min']} {row['max']}"
        return "types.int"
    if kind == "bool":
        return "types.bool"
    if kind == "list":
        return "types.listOf types.str"
    raise ValueError(f"{row['key']}: unknown schema type {kind!r}")


def _option(row: dict[str, Any]) -> list[str]:
    typ = nix_type(row)
    default = row["default"]
    description = row["description"]
    lines: list[str]
    if row["required"]:
        lines = [f"type = {typ};"]
        description += " Required."
    elif default is None or isinstance(default, dict):
        lines = [f"type = types.nullOr ({typ});", "default = null;"]
        if isinstance(default, dict):
            description += f" null = `<{default['derived_from']}>/{default['name']}`."
        else:
            description += " null = unset."
    else:
        lines = [f"type = {typ};", f"default = {nix_value(default)};"]
    lines.append(f"description = {nix_string(description)};")
    return lines


def render() -> str:
    """The whole ``agent-options.nix`` text."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for row in schema():
        section, _, _name = row["key"].partition(".")
        sections.setdefault(section, []).append(row)
    out = [HEADER.rstrip("\n"), "{ lib }:", "let", "  inherit (lib) mkOption types;", "in", "{"]
    for section, rows in sections.items():
        out.append(f"  {nix_name(section)} = {{")
        for row in rows:
            name = row["key"].partition(".")[2]
            out.append(f"    {nix_name(name)} = mkOption {{")
            out += [f"      {line}" for line in _option(row)]
            out.append("    };")
        out.append("  };")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        sys.stderr.write("usage: python -m osiris_agent.nixgen > nix/modules/agent-options.nix\n")
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
