"""Small helpers shared by the db modules: ids, times, JSON columns."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from osiris_core.canonical import utc_now


def new_id(prefix: str) -> str:
    """``<prefix>_<20 hex>``: 80 random bits, unguessable, safe in key names and URLs."""
    return f"{prefix}_{secrets.token_hex(10)}"


def now() -> str:
    return utc_now()


def epoch() -> int:
    return int(time.time())


def jdump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def jload(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    return json.loads(text)
