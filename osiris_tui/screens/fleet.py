"""Fleet: every site and appliance, status glyph + word, live ages, drift, incidents, score."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static, TabbedContent, TabPane

from ..app import Banner, CommandBar
from ..client import Appliance, Site
from ..events import EventFeed, EventPage, fetch_events, ticker
from ..fmt import age, cell, matches, parse_filter, safe, status_cell
from ..records import SCORE_RULE, sum_scores
from ..widgets.footer import OsirisFooter
from ..widgets.forms import site_add_flow, site_edit_flow
from ..widgets.polling import Poll
from ..widgets.table import KeyedTable

APP_COLUMNS = [
    ("status", "STATUS"),
    ("site", "SITE"),
    ("host", "APPLIANCE"),
    ("seen", "SEEN"),
    ("drift", "DRIFT"),
    ("err", "ERR"),  # checks that could not run (records.Appliance.error_count)
    ("inc", "INC"),
    ("score", "SCORE"),  # records.SCORE_RULE: errors and stale results count against
    ("new", "NEW"),  # this session's events on the row (events.EventFeed.counter)
]
SITE_COLUMNS = [
    ("name", "SITE"),
    ("id", "ID"),
    ("apps", "APPS"),
    ("online", "ONLINE"),
    ("drift", "DRIFT"),
    ("err", "ERR"),
    ("inc", "INC"),
    ("score", "SCORE"),
]
# "new": rows with a live problem event first (newest first), then by site (events.py)
SORTS = ["new", "site", "status", "host", "drift", "inc"]
REBUILD_AFTER = 50  # rows gone in one render beyond which a rebuild beats removing them
MAX_ROWS = 1000  # rows in the table; the filter narrows the rest (console.md: keep tables small)


@dataclass
class FleetData:
    sites: list[Site] = field(default_factory=list)
    appliances: list[Appliance] = field(default_factory=list)
    open_incidents: Counter = field(default_factory=Counter)  # appliance id / site id -> n
    stats: dict[str, Any] = field(default_factory=dict)
    events: EventPage | None = None


def fetch_fleet(client: Any) -> FleetData:
    """One poll of everything the Fleet view shows (runs in a worker thread)."""
    d = FleetData()
    d.sites = client.sites()
    d.appliances = client.appliances()
    for inc in client.incidents(status="open", limit=1000):
        d.open_incidents[inc.appliance_id or ""] += 1
        d.open_incidents["site:" + inc.site_id] += 1
    d.stats = client.stats()
    return d


class FleetScreen(Screen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="fleet.filter"),
        Binding("o", "sort", "Sort", id="fleet.sort"),
        Binding("r", "refresh", "Refresh", id="fleet.refresh"),
        Binding("p", "provision", "Provision", id="fleet.provision"),
        Binding("A", "audit", "Audit", id="fleet.audit"),
        Binding("tab", "switch_tab", "Sites/Apps", id="fleet.tab"),
        Binding("a", "add_site", "Add site", id="fleet.add_site"),
        Binding("e", "edit_site", "Edit site", id="fleet.edit_site"),
        Binding("escape", "clear_filter", "Clear", show=False, id="fleet.clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data = FleetData()
        self.filter_text = ""
        self.sort_idx = 0
        self._epoch: dict[str, int | None] = {}
        self._interval: dict[str, int] = {}
        self.matched = 0
        self.feed = EventFeed()
        self.poll = Poll(self, "fleet", self.fetch, self.apply, self.failed, name="refresh_data")

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Static(Text("loading fleet…", style="dim"), id="pulse")
        yield Static(Text.assemble(*ticker(self.feed, {}, self.now()), no_wrap=True), id="ticker")
        yield Input(placeholder="filter: text, !inverse, field=value", id="filter")
        with TabbedContent(id="fleet-tabs"):
            with TabPane("Appliances", id="tab-apps"):
                yield KeyedTable(APP_COLUMNS, id="appliances")
            with TabPane("Sites", id="tab-sites"):
                yield KeyedTable(SITE_COLUMNS, id="sites")
        yield CommandBar(placeholder=":command (sites, prov, audit, log, q)", id="commandbar")
        yield OsirisFooter()

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one(CommandBar).display = False
        self.query_one("#appliances").focus()
        self.refresh_data()
        self.set_interval(self.app.poll_s, self.refresh_data)  # type: ignore[attr-defined]
        self.set_interval(1.0, self.tick)

    # ---- data

    def refresh_data(self) -> None:
        """One poll in a worker; a failure is the banner's error line (widgets/polling.py)."""
        self.poll.run()

    def fetch(self) -> FleetData:
        client = self.app.client  # type: ignore[attr-defined]
        d = fetch_fleet(client)
        d.events = fetch_events(client, self.feed.cursor, self.feed.supported)
        return d

    def failed(self, error: Exception) -> None:
        """The banner says why (``app.api_result``); before any data the pulse line says it
        too, instead of "loading fleet…" forever (a refused token, a server down)."""
        app: Any = self.app
        app.api_result(False, error)
        if app.liveness.last_data is None:
            health = app.liveness.health(self.now())
            self.query_one("#pulse", Static).update(
                Text(f"{health.text} — no fleet data yet", style=health.style)
            )

    def apply(self, data: FleetData) -> None:
        self.data = data
        if data.events is not None:
            self.feed.take_page(data.events)
        self.app.api_result(True)  # type: ignore[attr-defined]
        self.render_all()

    def render_all(self) -> None:
        self.render_appliances()
        self.render_pulse()
        self.render_ticker()
        self.render_sites()

    def now(self) -> float:
        return self.app.clock()  # type: ignore[attr-defined]

    def render_pulse(self) -> None:
        d = self.data
        states = Counter(
            a.state(self.now(), self._interval.get(a.site_id, 60)) for a in d.appliances
        )
        drift = sum(a.drift_count for a in d.appliances)
        sc = sum_scores(a.score(self.now()) for a in d.appliances)
        inc = sum(v for k, v in d.open_incidents.items() if k.startswith("site:"))
        # The score and its rule first, then what is wrong: the one line is cut at the screen's
        # width (height 1), and at 80 columns these are what must survive.
        self.query_one("#pulse", Static).update(
            Text.assemble(
                (f" score {sc.percent}", "bold"),
                (f" ({SCORE_RULE})  ", "dim"),
                (f"▲ {drift} drift  ", "yellow"),
                (f"! {sc.error} error  ", "red" if sc.error else ""),
                (f"◌ {sc.stale} stale checks  ", "yellow" if sc.stale else ""),
                (f"{inc} open incidents  ", ""),
                (f"● {states['online']} online  ", "green"),
                (f"◐ {states['stale']} stale  ", "yellow"),
                (f"○ {states['offline'] + states['never']} offline  ", "red"),
                (f"{len(d.sites)} sites  {len(d.appliances)} appliances", "bold"),
                (
                    f"  (showing {MAX_ROWS} of {self.matched}: filter with /)"
                    if self.matched > MAX_ROWS
                    else "",
                    "dim",
                ),
            )
        )

    def render_ticker(self) -> None:
        """The event line under the pulse (events.ticker), one line cut with … to the width."""
        names = {a.id: a.hostname for a in self.data.appliances}
        segs = ticker(self.feed, names, self.now())
        text = Text.assemble(*((safe(t), st) for t, st in segs), no_wrap=True)
        width = self.size.width or 80
        if len(text.plain) > width:
            text.truncate(width - 1)
            text.append("…")
        self.query_one("#ticker", Static).update(text)

    def appliance_rows(self) -> tuple[dict[str, list[Text]], list[str]]:
        """Match and sort every appliance, then build cells for the first MAX_ROWS only:
        a table stays small (console.md) and a 10,000-appliance fleet still paints fast."""
        d = self.data
        names = {s.id: s.name for s in d.sites}
        self._interval = {s.id: s.checkin_interval_s for s in d.sites}
        terms, inverse = parse_filter(self.filter_text)
        now = self.now()
        picked: list[tuple[tuple, Appliance, str]] = []
        col = self.sort_idx
        site_text = {sid: f"{sid} {name}".lower() for sid, name in names.items()}
        for a in d.appliances:
            st = a.state(now, self._interval.get(a.site_id, 60))
            if terms:
                host = a.hostname.lower()
                fields = {
                    "status": st,
                    "site": site_text.get(a.site_id) or f"{a.site_id} ".lower(),
                    "host": host,
                    "hostname": host,
                    "id": a.id.lower(),
                    "drift": str(a.drift_count),
                    "err": str(a.error_count),
                }
                if not matches(fields, terms, inverse):
                    continue
            inc = d.open_incidents.get(a.id, 0)
            key = (
                self.feed.sort_key(a.id),
                names.get(a.site_id, "").lower(),
                st,
                a.hostname.lower(),
                -a.drift_count,
                -inc,
            )
            picked.append(((key[col], key), a, st))
        picked.sort(key=lambda t: t[0])
        self.matched = len(picked)
        rows: dict[str, list[Text]] = {}
        for _k, a, st in picked[:MAX_ROWS]:
            sc = a.score(now)
            inc = d.open_incidents.get(a.id, 0)
            self._epoch[a.id] = a.last_seen_epoch
            seen = None if a.last_seen_epoch is None else now - a.last_seen_epoch
            rows[a.id] = [
                status_cell(st),
                cell(names.get(a.site_id, a.site_id)),
                cell(a.hostname),
                cell(age(seen)),
                cell(a.drift_count, "yellow" if a.drift_count else ""),
                cell(a.error_count, "red" if a.error_count else ""),
                cell(inc, "yellow" if inc else ""),
                cell(sc.percent),
                cell(self.feed.counter(a.id), "bold yellow" if a.id in self.feed.hot else ""),
            ]
        return rows, list(rows)

    def render_appliances(self) -> None:
        """Few rows gone (a poll, events reordering the new-first sort): sync them, then put
        them in order with DataTable.sort rather than rebuild 1,000 rows per poll. Many gone (a
        filter): rebuild in order — Textual removes a row in O(rows), a clear is one step."""
        table = self.query_one("#appliances", KeyedTable)
        rows, order = self.appliance_rows()
        cur = table.cursor_key()
        gone = sum(1 for k in table.row_keys() if k not in rows)
        if gone > REBUILD_AFTER or "host" not in table.columns:
            table.reset()
            table.sync(rows, order)
        else:
            table.sync(rows, order)  # gone removed, new appended, changed cells updated
            if [r.key.value for r in table.ordered_rows] == order:
                return
            rank = {id(table.get_cell(k, "host")): i for i, k in enumerate(order)}
            table.sort("host", key=lambda c: rank[id(c)])  # each row's own host cell
        if cur:
            table.select_key(cur)

    def render_sites(self) -> None:
        d = self.data
        by_site: dict[str, list[Appliance]] = {}
        for a in d.appliances:
            by_site.setdefault(a.site_id, []).append(a)
        rows: dict[str, list[Text]] = {}
        now = self.now()
        for s in d.sites:
            apps = by_site.get(s.id, [])
            online = sum(1 for a in apps if a.state(now, s.checkin_interval_s) == "online")
            sc = sum_scores(a.score(now) for a in apps)
            drift = sum(a.drift_count for a in apps)
            inc = d.open_incidents.get("site:" + s.id, 0)
            rows[s.id] = [
                cell(s.name, "bold"),
                cell(s.id, "dim"),
                cell(len(apps)),
                cell(f"{online}/{len(apps)}"),
                cell(drift, "yellow" if drift else ""),
                cell(sc.error, "red" if sc.error else ""),
                cell(inc, "yellow" if inc else ""),
                cell(sc.percent),
            ]
        self.query_one("#sites", KeyedTable).sync(rows)

    def tick(self) -> None:
        """Relative times tick without refetching; only rows in the viewport are touched."""
        self.render_ticker()  # its age, and its width after a resize
        table = self.query_one("#appliances", KeyedTable)
        if not table.row_count:
            return
        now = self.now()
        top = int(table.scroll_offset.y)
        for i in range(top, min(table.row_count, top + table.size.height + 1)):
            key = table.ordered_rows[i].key.value
            if key is None:
                continue
            ep = self._epoch.get(key)
            text = age(None if ep is None else now - ep)
            if table.get_cell(key, "seen").plain != text:
                table.update_cell(key, "seen", cell(text))

    # ---- actions

    def action_filter(self) -> None:
        f = self.query_one("#filter", Input)
        f.display = True
        f.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self.render_appliances()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self.query_one("#appliances").focus()

    def action_clear_filter(self) -> None:
        f = self.query_one("#filter", Input)
        if f.value or f.display:
            f.value = ""
            f.display = False
            self.filter_text = ""
            self.render_appliances()
            self.query_one("#appliances").focus()

    def action_sort(self) -> None:
        self.sort_idx = (self.sort_idx + 1) % len(SORTS)
        self.notify(f"sorted by {SORTS[self.sort_idx]}", timeout=1.5)
        self.render_appliances()

    def action_refresh(self) -> None:
        self.refresh_data()

    def action_switch_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-sites" if tabs.active == "tab-apps" else "tab-apps"
        self.query_one("#sites" if tabs.active == "tab-sites" else "#appliances").focus()

    # ---- site add / edit (Sites tab only; the forms are widgets/forms.py's)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("add_site", "edit_site"):
            if self.query_one(TabbedContent).active != "tab-sites":
                return False  # hidden on the Appliances tab
            if self.app.read_only:  # type: ignore[attr-defined]
                return None  # shown dimmed
        return True

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()

    def action_add_site(self) -> None:
        if self.app.mutation_allowed():  # type: ignore[attr-defined]
            site_add_flow(self.app, self.refresh_data).start()

    def action_edit_site(self) -> None:
        key = self.query_one("#sites", KeyedTable).cursor_key()
        site = next((s for s in self.data.sites if s.id == key), None)
        if site is not None and self.app.mutation_allowed():  # type: ignore[attr-defined]
            site_edit_flow(self.app, site, self.refresh_data).start()

    def action_provision(self) -> None:
        self.app.open_view("provision")  # type: ignore[attr-defined]

    def action_audit(self) -> None:
        self.app.open_view("audit")  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        key = event.row_key.value
        if event.data_table.id == "appliances":
            from .appliance import ApplianceScreen

            app = next((a for a in self.data.appliances if a.id == key), None)
            if app is not None:
                site = next((s for s in self.data.sites if s.id == app.site_id), None)
                self.app.push_screen(ApplianceScreen(app, site))
        elif event.data_table.id == "sites":
            f = self.query_one("#filter", Input)
            f.display = True
            f.value = f"site={key}"
            self.query_one(TabbedContent).active = "tab-apps"
            self.query_one("#appliances").focus()
