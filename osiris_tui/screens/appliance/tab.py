"""What every tab of the appliance screen is: a ``TabPane`` that owns its table, its data and
its keys, and the context (the screen) it reads the appliance from.

Why the tab is the ``TabPane`` itself (not a widget inside one): the DOM, the CSS that applies
and so the rendered screen stay exactly what they were when the screen composed plain panes.

Keys: a tab's bindings are active while focus is inside it, so a tab-specific key exists only
on its tab. Textual's footer lists the focused pane's keys before the screen's; the base
re-declares the screen's esc and r (acting on the screen, same ids) first, so the footer reads
Back, Refresh, then the tab's own keys, as before the split.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from textual.binding import Binding
from textual.widgets import TabPane

from ...client import Appliance, Site
from ...fmt import age, safe


class ApplianceContext(Protocol):
    """What a tab reads from its screen: the appliance (refreshed by the screen's poll), its
    site, the local runbook catalogue, the API client, and the one poll to rerun after a
    mutation (``load_main``: the appliance and every tab's listing, one banner verdict)."""

    appliance: Appliance
    site: Site | None
    site_id: str
    catalog: dict[str, Any]

    @property
    def client(self) -> Any: ...

    def load_main(self) -> None: ...


class ApplianceTab(TabPane):
    """A subclass sets ``TITLE`` and ``TAB_ID``, composes its widgets, and if its data comes
    with the screen's poll implements ``fetch`` (in the poll's worker thread: no widget access)
    and ``show`` (on the UI thread). Actions in ``MUTATIONS`` are shown dimmed when read-only."""

    BINDINGS = [
        Binding("escape", "screen.back", "Back", id="detail.back"),
        Binding("r", "screen.refresh", "Refresh", id="detail.refresh"),
    ]
    TITLE: ClassVar[str]
    TAB_ID: ClassVar[str]
    MUTATIONS: ClassVar[frozenset[str]] = frozenset()
    POLLED: ClassVar[bool] = False  # True: fetch/show run with the screen's main poll

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(self.TITLE, id=self.TAB_ID)
        self.ctx = ctx

    def fetch(self, client: Any) -> Any:
        return None

    def show(self, data: Any) -> None:
        pass

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATIONS and self.app.read_only:  # type: ignore[attr-defined]
            return None  # shown dimmed
        return True

    def mutation_allowed(self) -> bool:
        return self.app.mutation_allowed()  # type: ignore[attr-defined]

    def record(self, what: str, result: str, ok: bool = True) -> None:
        """From a worker thread: the activity log entry (and the error toast when not ok)."""
        self.app.call_from_thread(self.app.record, what, result, ok)  # type: ignore[attr-defined]


def ago(now: float, when: str | None) -> str:
    """Age of an RFC 3339 time ("3m"); the raw text if an old agent sent something odd."""
    if not when:
        return ""
    try:
        from osiris_core.canonical import parse_time

        return age(now - parse_time(when).timestamp())
    except Exception:  # noqa: BLE001 - decoration; never a crash
        return safe(when)
