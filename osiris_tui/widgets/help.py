"""`?`: the current view's own keys first, grouped (Navigate / Act / View) with what they do,
then the keys that work everywhere.

Why our own panel: Textual's key panel lists every binding of every widget in the focus chain,
so on a table it opened with 14 lines of cursor keys and no word about what `space` or `t`
does here. This one reads the screen's active bindings (so it is always the keys that work
*now*, on this tab, with read-only keys marked), keeps only ours (every binding of ours has an
id; Textual's own have none), and says for each what it does.

The grouping is by action (``GROUP_OF``); an action not listed is an "Act" key, the group a
new mutation most likely belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

GROUPS = ("Navigate", "Act", "View")

GROUP_OF = {
    "back": "Navigate",
    "screen.back": "Navigate",
    "switch_tab": "Navigate",
    "tab": "Navigate",
    "tab_number": "Navigate",
    "cursor_down": "Navigate",
    "cursor_up": "Navigate",
    "scroll_top": "Navigate",
    "scroll_bottom": "Navigate",
    "provision": "Navigate",
    "audit": "Navigate",
    "clear_filter": "Navigate",
    "close": "Navigate",
    "filter": "View",
    "sort": "View",
    "refresh": "View",
    "screen.refresh": "View",
    "row_detail": "View",
    "verify": "View",
    "verify_folder": "View",
    "help": "View",
}

# Longer words than the footer's, by binding id (the footer's description is the fallback).
WHAT = {
    "app.help": "this help",
    "app.command": "command bar: sites, app, drift, rb, cred, ev, inc, orders, prov, audit, log, q",
    "app.activity": "activity log: every change this session sent and what came back",
    "app.quit": "quit (asks first while a change is still in flight)",
    "table.down": "next row (also ↓)",
    "table.up": "previous row (also ↑)",
    "table.top": "first row",
    "table.bottom": "last row",
    "table.detail": "the selected row whole: every column, none cut",
    "fleet.filter": "filter: text, !inverse, field=value (site host id status drift)",
    "fleet.clear": "clear the filter",
    "fleet.sort": "cycle the sort: site, status, appliance, drift, incidents",
    "fleet.tab": "switch between the Appliances and Sites tables",
    "detail.tabs": "tabs: 1 Drift 2 Runbooks 3 Credentials 4 Evidence 5 Incidents 6 Orders",
    "detail.params": "the runbook's parameters: value, where set, bound, who may set; edit",
    "detail.inc_ack": "acknowledge the incident (it stays open; audited)",
    "detail.inc_assign": "assign the incident to a person (empty clears; audited)",
    "detail.inc_resolve": "resolve the incident, with an optional note (audited)",
    "prov.withdraw": "withdraw the selected unused claim code (it stops working)",
    "fleet.add_site": "add a site (name, optional id, partner, check-in interval)",
    "fleet.edit_site": "rename the selected site or change its check-in interval",
    "learn.approve": "approve the candidate: canary sites or share, soak; confirmed (admin)",
    "learn.reject": "reject the pattern, with a reason (required; admin)",
}

# A second key of the same command: shown on the line of the first (``q/^c quit``).
SAME_AS = {"app.quit_ctrl_c": "app.quit"}

# Keys without a binding id of ours that a technician still needs to know.
ENTER = ("enter", "open the selected row (an appliance, a site's filter, a record's JSON)")
PALETTE = ("^p", "palette: find a view, site, appliance or host by name and jump there")


@dataclass(frozen=True)
class KeyLine:
    keys: str
    what: str
    group: str
    enabled: bool = True


def group_of(action: str) -> str:
    """``tab_action('runbooks', 'toggle_appliance')`` (a forwarded tab key) is its inner action."""
    if action.startswith("tab_action("):
        action = action.rsplit(",", 1)[-1].strip(" )'\"")
    name = action.split("(", 1)[0]
    return GROUP_OF.get(name, GROUP_OF.get(name.rsplit(".", 1)[-1], "Act"))


def key_lines(active: Iterable[tuple[object, Binding, bool, str]], app: object) -> tuple[
    list[KeyLine], list[KeyLine]
]:  # fmt: skip
    """(the view's keys, the global keys) from ``screen.active_bindings.values()``; ``app`` is
    the App (its bindings are the global ones). One line per binding id, its keys joined."""
    view: dict[str, KeyLine] = {}
    glob: dict[str, KeyLine] = {}
    display = getattr(app, "get_key_display", None)
    app_ids = {b.id for b in getattr(app, "BINDINGS", []) if isinstance(b, Binding)}
    for node, binding, enabled, _tooltip in active:
        if not binding.id:
            continue  # Textual's own (cursor keys, focus, palette): not ours to explain
        key = display(binding) if display else binding.key
        into = glob if node is app or binding.id in app_ids else view
        lid = SAME_AS.get(binding.id, binding.id)
        what = WHAT.get(lid) or binding.description or binding.action
        old = into.get(lid)
        if old is not None:
            if key not in old.keys.split("/"):
                both = [*old.keys.split("/"), key]
                if all(k.isdigit() for k in both):  # one binding, keys "1,2,3": in order
                    keys = "/".join(sorted(both))
                elif lid == binding.id:  # the command's own key first (q/^c)
                    keys = f"{key}/{old.keys}"
                else:
                    keys = f"{old.keys}/{key}"
                into[lid] = KeyLine(keys, what if lid == binding.id else old.what, old.group,
                                    old.enabled)  # fmt: skip
            continue
        into[lid] = KeyLine(key, what, group_of(binding.action), enabled)
    order = {b.id: i for i, b in enumerate(getattr(app, "BINDINGS", [])) if isinstance(b, Binding)}
    ordered = sorted(glob.items(), key=lambda kv: order.get(kv[0], len(order)))
    return list(view.values()), [line for _id, line in ordered]


class HelpModal(ModalScreen[None]):
    """The keys of the screen it was opened on; esc, q or ? closes."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help.close")]

    def __init__(self, view: list[KeyLine], glob: list[KeyLine], title: str, table: bool) -> None:
        super().__init__()
        self.view = view
        self.glob = glob
        self.view_title = title
        self.table = table

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label(Text(f"Keys: {self.view_title} (esc closes)", style="bold"))
            with VerticalScroll():
                # the dialog's border and padding take 4 columns, the scrollbar 2
                yield Static(self.body(self.app.size.width - 6), id="help-body")

    def body(self, columns: int = 200) -> Text:
        """The panel's text; a description longer than the line wraps under itself."""
        out = Text()
        lines = list(self.view)
        if self.table:
            lines.append(KeyLine(*ENTER, "Navigate"))
        width = max((len(x.keys) for x in [*lines, *self.glob]), default=4) + 2
        for group in GROUPS:
            shown = [x for x in lines if x.group == group]
            if not shown:
                continue
            out.append(f"{group}\n", style="bold underline")
            for x in shown:
                self._line(out, x, width, columns)
        out.append("Everywhere\n", style="bold underline")
        for x in [*self.glob, KeyLine(*PALETTE, "Navigate")]:
            self._line(out, x, width, columns)
        return out

    @staticmethod
    def _line(out: Text, x: KeyLine, width: int, columns: int) -> None:
        import textwrap

        out.append(f"  {x.keys:<{width}}", style="bold" if x.enabled else "dim")
        wrapped = textwrap.wrap(x.what, max(20, columns - width - 2)) or [""]
        out.append(("\n" + " " * (width + 2)).join(wrapped), style="" if x.enabled else "dim")
        if not x.enabled:
            out.append("  (disabled here)", style="dim")
        out.append("\n")
