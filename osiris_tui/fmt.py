"""Formatting shared by the console and the CLI: status glyphs, ages, safe text, filters.

No Textual import: these are plain functions, tested on their own and used by the benchmark.
Status is always glyph + word, never colour alone (console.md).
"""

from __future__ import annotations

import json
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
# What a terminal acts on rather than prints: C0 controls (ESC starts CSI/OSC sequences: OSC 52
# writes the clipboard, OSC 0/2 the window title, CSI 2J clears the screen; BEL, BS, CR
# overwrite), DEL, C1 controls (0x9b is a one-byte CSI, 0x9d a one-byte OSC), and the Unicode
# format characters that reorder or hide what is shown (bidi embeddings/overrides/isolates,
# LRM/RLM/ALM, line/paragraph separators).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def safe(value: Any) -> str:
    """Untrusted text made printable on one line: control characters become visible ``\\xNN``
    (``\\uNNNN``) escapes, so an ESC, BEL or C1 byte from a hostile appliance or host cannot
    drive the operator's terminal (no sequence survives: its introducer is escaped)."""
    s = "" if value is None else str(value)
    s = s.replace("\n", "⏎").replace("\t", " ")
    return _CONTROL.sub(_visible, s)


def safe_text(value: Any) -> str:
    """Like ``safe`` for text printed as several lines: newlines and tabs stay, every other
    control character (CR included: it would overwrite the line) is escaped."""
    s = "" if value is None else str(value)
    return _CONTROL.sub(_visible, s)


# json.dumps escapes C0 controls (\u001b) but, with ensure_ascii=False, prints DEL, C1 and
# the format characters raw; escaping those too keeps the output valid, equal JSON
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def safe_json_text(text: str) -> str:
    """JSON text (e.g. canonical JSON) with DEL, C1 and format characters written as ``\\u``
    escapes: still valid JSON of the same value, and nothing a terminal acts on."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def safe_json(obj: Any, **kw: Any) -> str:
    """``json.dumps`` whose text carries no raw control character (same value when parsed)."""
    return safe_json_text(json.dumps(obj, **kw))


def cell(value: Any, style: str = "") -> Text:
    """A table cell that renders literally: never parsed as markup."""
    return Text(safe(value), style=style, no_wrap=True, overflow="ellipsis")


def status_cell(word: str) -> Text:
    """Glyph + word; the word may come from an appliance (an outcome), so it is ``safe``."""
    return Text(
        f"{STATUS_GLYPH.get(word, '·')} {safe(word)}",
        style=STATUS_STYLE.get(word, ""),
        no_wrap=True,
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
