"""Command palette (ctrl+p): every view and alias of the `:` command bar, and every site,
appliance and host the fleet has polled, by name, each jumping there.

Why from the fleet's last poll and not a search request: the palette answers as you type,
and the fleet screen (always at the bottom of the stack) already holds every site and
appliance the token may see, with each appliance's hosts in its check-in status block; a
request per keystroke would be slower and say nothing newer than the next poll.

Jumps: a site opens the fleet filtered to it; an appliance its detail; a host its appliance's
Drift tab with the cursor on the host's first row (once the rows have arrived).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .app import ALIASES

LABELS = {
    "fleet": "Fleet: sites and appliances",
    "provision": "Provisioning: claim codes",
    "audit": "Audit log",
    "learn": "Learning: promotion candidates",
    "settings": "Site settings: window, cadence, allow-lists (site under the cursor)",
    "versions": "Fleet versions: agent versions and updates",
    "activity": "Activity log of this session",
    "tab:drift": "Appliance: drift",
    "tab:runbooks": "Appliance: runbooks",
    "tab:credentials": "Appliance: credentials",
    "tab:evidence": "Appliance: evidence and verify",
    "tab:incidents": "Appliance: incidents",
    "tab:orders": "Appliance: orders",
    "quit": "Quit",
}
HOST_WAIT_S = 15.0  # how long a host jump waits for its appliance's drift rows


def view_items() -> Iterator[tuple[str, str]]:
    for target, label in LABELS.items():
        words = [a for a, t in ALIASES.items() if t == target]
        yield target, (f"{label} (:{', :'.join(words)})" if words else label)


def fleet_screen(app: Any) -> Any:
    from .screens.fleet import FleetScreen

    return next((s for s in app.screen_stack if isinstance(s, FleetScreen)), None)


def named_items(fleet: Any) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(kind, text shown and matched, jump arguments) for each site, appliance and host."""
    if fleet is None:
        return
    data = fleet.data
    names = {s.id: s.name for s in data.sites}
    for s in data.sites:
        yield "site", f"Site: {s.name} ({s.id})", (s.id,)
    for a in data.appliances:
        site = names.get(a.site_id, a.site_id)
        yield "appliance", f"Appliance: {a.hostname} ({a.id}) at {site}", (a.id,)
        for host in sorted({c.host_id for c in a.checks if c.host_id}):
            yield "host", f"Host: {host} on {a.hostname} at {site}", (a.id, host)


class OsirisCommands(Provider):
    async def discover(self) -> Hits:
        for target, text in view_items():
            yield DiscoveryHit(text, lambda t=target: self.app.go(t))  # type: ignore[attr-defined]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for target, text in view_items():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), lambda t=target: self.app.go(t))  # type: ignore[attr-defined]
        for kind, text, args in named_items(fleet_screen(self.app)):
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(text), lambda k=kind, a=args: jump(self.app, k, *a)
                )


def jump(app: Any, kind: str, *args: str) -> None:
    """Go to a site (fleet filtered to it), an appliance (its detail) or a host (its
    appliance's Drift tab, cursor on the host)."""
    from textual.widgets import Input, TabbedContent

    fleet = fleet_screen(app)
    if fleet is None:
        return
    app.open_view("fleet")  # pops back to the fleet
    if kind == "site":
        f = fleet.query_one("#filter", Input)
        f.display = True
        f.value = f"site={args[0]}"
        fleet.query_one(TabbedContent).active = "tab-apps"
        fleet.query_one("#appliances").focus()
        return
    from .screens.appliance import ApplianceScreen

    appliance = next((a for a in fleet.data.appliances if a.id == args[0]), None)
    if appliance is None:
        app.notify("that appliance is no longer in the fleet", severity="warning")
        return
    site = next((s for s in fleet.data.sites if s.id == appliance.site_id), None)
    screen = ApplianceScreen(appliance, site)
    app.push_screen(screen)
    if kind == "host":
        cursor_on_host(app, screen, args[1])


def cursor_on_host(app: Any, screen: Any, host: str) -> None:
    """Put the Drift tab's cursor on ``host``'s first row once the rows have arrived."""
    import time

    from .widgets.table import KeyedTable

    start = time.monotonic()

    def attempt() -> None:
        if not screen.is_attached or time.monotonic() - start > HOST_WAIT_S:
            timer.stop()
            return
        try:
            table = screen.query_one("#drift-table", KeyedTable)
        except Exception:  # noqa: BLE001 - not composed yet
            return
        key = next((k for k in table.row_keys() if k.split("\0", 1)[0] == host), None)
        if key is not None:
            screen.show_tab("drift")
            table.focus()
            table.select_key(key)
            timer.stop()

    timer = app.set_interval(0.1, attempt)
