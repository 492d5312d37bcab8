"""Appliance detail: a title line and six tabs (Drift, Runbooks, Credentials, Evidence,
Incidents, Orders), each a widget of its own module that owns its table, data and keys.

The screen owns what the tabs share (the appliance, its site, the runbook catalogue: see
``tab.ApplianceContext``), the keys that are about the appliance rather than a tab (esc, r,
C to lift a quarantine, 1-6 to switch tabs; it forwards the tabs' keys while focus is on the
tab strip), and the main poll: one worker fetches the
appliance and every polled tab's listing in turn, so a poll either lands whole or turns the
banner red once (the Evidence tab polls on its own; see evidence.py).

Every mutation goes through a confirm modal when it reduces protection, runs in a worker, and
lands in the activity log with what was sent and what came back.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TabbedContent

from ...app import Banner, CommandBar, worker_error
from ...client import Appliance, Site
from ...fmt import safe, status_cell
from ...widgets.footer import OsirisFooter
from ...widgets.modals import ConfirmModal
from ...widgets.polling import Poll
from ...widgets.table import KeyedTable
from .credentials import CredentialsTab
from .drift import DriftTab
from .evidence import EvidenceTab
from .incidents import IncidentsTab
from .orders import OrdersTab
from .runbooks import RunbooksTab
from .tab import ApplianceTab

TABS = ["drift", "runbooks", "credentials", "evidence", "incidents", "orders"]


def _catalog() -> dict[str, Any]:
    try:
        from osiris_core.catalog import load_catalog

        return dict(load_catalog().runbooks)
    except Exception:  # noqa: BLE001 - names and flags are decoration; the server decides
        return {}


def _forwarded(*tabs: type[ApplianceTab]) -> list[Binding]:
    """The tabs' own keys, again on the screen, acting on the tab: for when focus is on the tab
    strip (tab key), outside every pane. The focused pane's binding of the same key wins, so
    these never run twice; ``check_action`` hides each one except on its tab."""
    return [
        Binding(b.key, f"tab_action({t.TAB_ID!r}, {b.action!r})", b.description, b.show, id=b.id)
        for t in tabs
        for b in t.BINDINGS
        if isinstance(b, Binding)
    ]


class ApplianceScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("r", "refresh", "Refresh", id="detail.refresh"),
        *_forwarded(RunbooksTab, CredentialsTab, EvidenceTab, IncidentsTab, OrdersTab),
        Binding("C", "confirm_appliance", "Confirm (admin)", id="detail.confirm"),
        Binding("1,2,3,4,5,6", "tab_number", show=False, id="detail.tabs"),
    ]

    def __init__(self, appliance: Appliance, site: Site | None) -> None:
        super().__init__()
        self.appliance = appliance
        self.site = site
        self.site_id = appliance.site_id
        self.catalog = _catalog()
        self.drift_tab = DriftTab(self)
        self.evidence_tab = EvidenceTab(self)
        self.tabs: list[ApplianceTab] = [
            self.drift_tab,
            RunbooksTab(self),
            CredentialsTab(self),
            self.evidence_tab,
            IncidentsTab(self),
            OrdersTab(self),
        ]
        self.main = Poll(self, "detail-main", self.fetch_main, self.apply_main, name="load_main")

    @property
    def client(self) -> Any:
        return self.app.client  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(self.title_text(), id="title")
        with TabbedContent(id="tabs", initial="drift"):
            yield from self.tabs
        yield CommandBar(placeholder=":command (drift, rb, cred, ev, inc, orders, sites)")
        yield OsirisFooter()

    def title_text(self) -> Text:
        a = self.appliance
        site = self.site.name if self.site else a.site_id
        st = a.state(self.app.clock())  # type: ignore[attr-defined]
        parts = [
            (" ", ""),
            status_cell(st),
            ("  appliance ", "dim"),
            (safe(a.hostname), "bold"),
            (f" ({safe(a.id)})", "dim"),
            ("  site ", "dim"),
            (safe(site), "bold"),
        ]
        if a.is_quarantined:
            parts.append(("  ⚠ QUARANTINED: no credentials until an admin confirms (C)",
                          "bold yellow"))  # fmt: skip
        return Text.assemble(*parts)

    def on_mount(self) -> None:
        self.query_one(CommandBar).display = False
        self.query_one("#drift-table").focus()
        self.refresh_all()
        self.set_interval(self.app.poll_s, self.refresh_all)  # type: ignore[attr-defined]

    # ---- keys: the tabs' own keys live on the tabs (active only on their tab)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "tab_action":
            tab_id, name = (str(p) for p in parameters)
            if self.query_one(TabbedContent).active != tab_id:
                return False
            return self.query_one(f"#{tab_id}", ApplianceTab).check_action(name, ())
        if action == "confirm_appliance":
            if not self.appliance.is_quarantined:
                return False
            if self.app.read_only:  # type: ignore[attr-defined]
                return None  # shown dimmed
        return True

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        pane = event.pane
        if pane is not None:
            tables = pane.query(KeyedTable)
            if tables:
                tables.first().focus()

    def action_tab_action(self, tab_id: str, name: str) -> None:
        getattr(self.query_one(f"#{tab_id}", ApplianceTab), f"action_{name}")()

    def show_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_tab_number(self) -> None:
        pass

    def on_key(self, event: Any) -> None:
        if event.key in "123456" and len(event.key) == 1:
            self.show_tab(TABS[int(event.key) - 1])
            event.stop()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.refresh_all()

    # ---- loading

    def refresh_all(self) -> None:
        self.load_main()
        self.evidence_tab.load()

    def load_main(self) -> None:
        self.main.run()

    def fetch_main(self) -> tuple[Appliance, list[tuple[ApplianceTab, Any]]]:
        """In the worker: the appliance, then each polled tab's listing (in tab order)."""
        c = self.client
        appliance = c.appliance(self.appliance.id)
        return appliance, [(t, t.fetch(c)) for t in self.tabs if t.POLLED]

    def apply_main(self, result: tuple[Appliance, list[tuple[ApplianceTab, Any]]]) -> None:
        appliance, listings = result
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.appliance = appliance
        self.query_one("#title", Static).update(self.title_text())
        self.refresh_bindings()  # the confirm key exists only while quarantined
        self.render_drift()
        for tab, data in listings:
            tab.show(data)

    def render_drift(self) -> None:
        self.drift_tab.render_drift(self.evidence_tab.evidence, self.evidence_tab.window_start)

    def on_evidence_tab_changed(self, _event: EvidenceTab.Changed) -> None:
        self.render_drift()

    # ---- the quarantine (about the appliance, not a tab)

    def action_confirm_appliance(self) -> None:
        """Lift the quarantine, after a dialog naming the box, its site and the impact."""
        if not self.app.mutation_allowed() or not self.appliance.is_quarantined:  # type: ignore[attr-defined]
            return
        a = self.appliance

        def ok(yes: bool | None) -> None:
            if yes:
                self.confirm_call()

        self.app.push_screen(
            ConfirmModal(
                f"Confirm appliance {a.hostname}?",
                [
                    ("appliance", a.id),
                    ("site", self.site_id),
                    ("mac", a.mac or "-"),
                    ("enrolled", a.created_at or "-"),
                ],  # fmt: skip
                "Impact: from its next check-in it receives every credential of this site",
            ),
            ok,
        )

    @work(thread=True, group="mutation")
    def confirm_call(self) -> None:
        what = f"confirm appliance {self.appliance.id}"
        try:
            self.client.confirm_appliance(self.appliance.id)
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self.app.record, what, worker_error(e), False)  # type: ignore[attr-defined]
            return
        self.app.call_from_thread(self.app.record, what, "confirmed: credentials at next check-in")  # type: ignore[attr-defined]
        self.load_main()
