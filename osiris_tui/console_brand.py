"""The console's header for a partner's staff: the partner's display name, with its colour as
an accent bar beside it (never the colour alone: a colour says nothing to a colour-blind
reader or on a 16-colour terminal).

How the console knows who it is: a partner key (``opk_…``) sees exactly one partner in
``GET /partners`` — its own; MSP staff see many (or none), and get no brand. The brand is
fetched once, in a thread worker, after the console is up: a slow or failing server never
delays the first paint, and a failure only leaves the header unbranded.
"""

from __future__ import annotations

from typing import Any

from osiris_core.errors import OsirisError

from .branding import console_brand
from .fmt import safe

NAME_CELLS = 40  # the banner also carries the server, health and data age at 80 columns


def load_brand(app: Any) -> None:
    """Start fetching the brand if the console runs with a partner key."""
    client = app.client
    if not getattr(client, "partner_key", False):
        return

    def work() -> None:
        try:
            brand = console_brand(client)
        except OsirisError:  # the banner shows the server's state; the brand just stays off
            return
        if brand is not None:
            app.call_from_thread(apply_brand, app, brand)

    app.run_worker(work, thread=True, group="brand", exit_on_error=False)


def apply_brand(app: Any, brand: tuple[str, str | None]) -> None:
    app.brand = brand
    app.title = f"Osiris — {safe(brand[0])[:NAME_CELLS]}"
    for banner in app.screen.query("Banner"):
        banner.refresh_banner()


def brand_parts(app: Any) -> list[tuple[str, str]]:
    """The banner's leading cells: ``▌`` in the partner's colour, then its name in bold."""
    brand = getattr(app, "brand", None)
    if not brand:
        return []
    name, colour = brand
    text = safe(name)
    if len(text) > NAME_CELLS:
        text = text[: NAME_CELLS - 1] + "…"
    out = [("▌", f"bold {colour}")] if colour else []
    out.append((f"{text} ", "bold"))
    return out
