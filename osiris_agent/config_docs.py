"""The agent config's user docs (``docs/agent-config.md``) and its schema as plain data (for
``nix/modules/agent-options.nix``), both rendered from :data:`~osiris_agent.config_schema.OPTIONS`
so neither can drift from what the agent accepts (a test keeps the checked-in files in sync).
"""

from __future__ import annotations

from typing import Any

from osiris_agent.config_schema import OPTIONS, SECTIONS, Derived, Option, toml_value


def _doc_type(opt: Option) -> str:
    base = opt.doc_type or {"str": "string", "int": "integer", "bool": "boolean"}.get(
        opt.kind, "list of strings"
    )
    if opt.lo is not None:
        base += f" {opt.lo}..{opt.hi}"
    if opt.choices:
        base = " \\| ".join(f"`{c}`" for c in opt.choices)
    return base


def _doc_default(opt: Option) -> str:
    if opt.required:
        return "**required**"
    if opt.default is None:
        return "unset"
    if isinstance(opt.default, Derived):
        return f"`<{opt.default.of}>/{opt.default.name}`"
    return f"`{toml_value(opt.default)}`"


def render_docs() -> str:
    """``docs/agent-config.md``: one markdown table per section, straight from :data:`OPTIONS`."""
    out = [
        "# Agent configuration (`/etc/osiris/agent.toml`)",
        "",
        "<!-- Generated from osiris_agent/config.py by `python -m osiris_agent.config --docs`;"
        " do not edit by hand (a test checks it is in sync). -->",
        "",
        "`osiris-agent run --config FILE` reads one TOML file (default",
        "`/etc/osiris/agent.toml`; `osiris-agent enroll` writes it). The NixOS module's options",
        "mirror these keys one to one.",
        "Unknown sections or keys, wrong types, out-of-range values, bad URLs and unknown time",
        "zones are refused at start with `osiris-agent: config error: <key>: <why>` and exit",
        'code 2. Keys that are "unset" by default are simply left out of the file.',
        "",
        "Minimal file:",
        "",
        "```toml",
        "[server]",
        'url = "https://cc.example-msp.com"',
        "```",
    ]
    for section, blurb in SECTIONS.items():
        out += ["", f"## `[{section}]`", "", blurb, ""]
        out += ["| Key | Type | Default | Description |", "|---|---|---|---|"]
        for opt in OPTIONS:
            if opt.section == section:
                doc = opt.doc.replace("|", "\\|")
                row = f"| `{opt.name}` | {_doc_type(opt)} | {_doc_default(opt)} | {doc} |"
                out.append(row)
    return "\n".join(out) + "\n"


def schema() -> list[dict[str, Any]]:
    """The schema as plain data (e.g. for generating the NixOS module's options)."""
    rows = []
    for opt in OPTIONS:
        default: Any = opt.default
        if opt.required:
            default = None
        elif isinstance(default, Derived):
            default = {"derived_from": default.of, "name": default.name}
        rows.append(
            {
                "key": opt.key,
                "type": opt.kind,
                "required": opt.required,
                "default": default,
                "min": opt.lo,
                "max": opt.hi,
                "choices": list(opt.choices) if opt.choices else None,
                "description": opt.doc,
            }
        )
    return rows
