"""``[portal]`` in server.toml: the clinic portal is off until an MSP names its public URL.

Why a URL and not the request's Host header: the sign-in link is mailed, and a link built from
a header the client chose would let anyone make the server mail a link to a host of theirs.
Sign-in also needs ``[smtp]`` (the relay the links go through); without it the portal refuses
to start rather than silently mail nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LINK_TTL_MAX_MIN = 15  # the ceiling: a mailed link is a credential in transit


@dataclass(frozen=True)
class PortalConfig:
    url: str  # public base, e.g. https://cc.example-msp.com/portal (no trailing slash)
    link_ttl_min: int = 15
    session_idle_min: int = 30
    session_max_h: int = 12
    per_address_per_hour: int = 5
    per_source_per_hour: int = 30
    sender_name: str = "Compliance portal"

    @property
    def secure_cookie(self) -> bool:
        return self.url.startswith("https://")


def parse(raw: Any, where: str) -> PortalConfig:
    """The section, or ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: [portal] must be a table")
    known = set(PortalConfig.__dataclass_fields__)
    extra = sorted(set(raw) - known)
    if extra:
        raise ValueError(f"{where}: [portal] has unknown keys: {', '.join(extra)}")
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{where}: [portal] url must be an http(s) URL (the public portal base)")
    if parts.query or parts.fragment or not parts.path.rstrip("/").endswith("/portal"):
        raise ValueError(f"{where}: [portal] url must end in /portal, without query or fragment")
    values: dict[str, Any] = {"url": url.rstrip("/")}
    bounds = {"link_ttl_min": (1, LINK_TTL_MAX_MIN), "session_idle_min": (5, 24 * 60),
              "session_max_h": (1, 7 * 24), "per_address_per_hour": (1, 100),
              "per_source_per_hour": (1, 10_000)}  # fmt: skip
    for key, (lo, hi) in bounds.items():
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{where}: [portal] {key} must be a whole number {lo}..{hi}")
            values[key] = v
    if "sender_name" in raw:
        name = raw["sender_name"]
        if not isinstance(name, str) or not 0 < len(name) <= 80 or not name.isprintable():
            raise ValueError(f"{where}: [portal] sender_name must be 1..80 printable characters")
        values["sender_name"] = name
    cfg = PortalConfig(**values)
    if cfg.session_idle_min > cfg.session_max_h * 60:
        raise ValueError(f"{where}: [portal] session_idle_min exceeds session_max_h")
    return cfg
