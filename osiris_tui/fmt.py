"""Formatting shared by the console and the CLI: status glyphs, ages, safe text, filters.

No Textual import: these are plain functions, tested on their own and used by the benchmark.
Status is always glyph + word, never colour alone (console.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rich.text import Text

STATUS_GLYPH = {
    "online": "●",
    "stale": "◐",
    "offline": "○",
    "never": "◌",
    "revoked": "✕",
    "drift": "▲",
    "compliant": "✓",
    "error": "!",
    "pending": "…",
    "delivered": "→",
    "done": "✓",
    "expired": "⌛",
    "open": "▲",
    "resolved": "✓",
    "claimed": "✓",
    "on": "●",
    "off": "○",
    "healed": "✚",
    "failed": "✕",
    "reverted": "↺",
    "deferred": "⏸",
    "alert": "!",
    "escalated": "⇧",
    "rejected": "✕",
}
STATUS_STYLE = {
    "online": "green",
    "stale": "yellow",
    "offline": "red",
    "never": "dim",
    "revoked": "dim",
    "drift": "yellow",
    "compliant": "green",
    "error": "red",
    "open": "yellow",
    "done": "green",
    "expired": "dim",
    "on": "green",
    "off": "dim",
    "healed": "cyan",
    "failed": "bold red",
    "rejected": "bold red",
    "escalated": "magenta",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(value: Any) -> str:
    """Untrusted text made printable: control characters become visible ``\\xNN`` escapes
    (an ESC from a hostile host must not drive the operator's terminal)."""
    s = "" if value is None else str(value)
    s = s.replace("\n", "⏎").replace("\t", " ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def cell(value: Any, style: str = "") -> Text:
    """A table cell that renders literally: never parsed as markup."""
    return Text(safe(value), style=style, no_wrap=True, overflow="ellipsis")


def status_cell(word: str) -> Text:
    return Text(
        f"{STATUS_GLYPH.get(word, '·')} {word}", style=STATUS_STYLE.get(word, ""), no_wrap=True
    )


def age(seconds: float | None) -> str:
    """Compact relative age: 5s, 3m, 2h, 4d; "never" for None."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def percent(ok: int, total: int) -> str:
    return f"{100 * ok // total}%" if total else "-"


def parse_filter(query: str) -> tuple[list[tuple[str | None, str]], bool]:
    """``text``, ``!text`` (inverse), ``field=value`` terms, space separated, all must match."""
    q = query.strip()
    inverse = q.startswith("!")
    if inverse:
        q = q[1:].strip()
    terms: list[tuple[str | None, str]] = []
    for part in q.split():
        k, sep, v = part.partition("=")
        terms.append((k.lower(), v.lower()) if sep and k else (None, part.lower()))
    return terms, inverse


def matches(row: Mapping[str, str], terms: list[tuple[str | None, str]], inverse: bool) -> bool:
    """``row`` maps lower-case field names to lower-case text."""
    if not terms:
        return True
    hit = True
    for field, value in terms:
        if field is None:
            if not any(value in v for v in row.values()):
                hit = False
                break
        elif value not in row.get(field, ""):
            hit = False
            break
    return hit != inverse
