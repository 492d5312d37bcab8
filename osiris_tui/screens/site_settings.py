"""A site's settings (`:settings`): maintenance window, check-in cadence, watchdog thresholds and
the allow-lists of the trust-redirecting runbook parameters — what `osiris site settings` shows
and edits — and the site's alert routes (``n`` adds one, ``d`` deletes the one under the
cursor: `osiris alerts add-route|rm-route --site`, in ``site_routes``).

Keys: ``e`` edits the schedule (window days, start, length, time zone; check-in interval;
watchdog thresholds),
``a`` (or ``enter`` on an allow-list row) replaces the allow-list under the cursor (admin only:
anyone else gets the API's 403 in the form), ``r`` refresh, ``esc`` back. Each edit is a form →
a confirm naming the site, old → new and the impact → the request in a worker; nothing is judged
here beyond shaping what was typed (``osiris_tui.site_settings``): the API's refusal comes back
verbatim in the form, with what was typed kept, and nothing changes. The server audits each
change and signs it into the appliances' next policy.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen

from .. import site_settings as ss
from ..client import UsageError
from ..fmt import cell
from ..widgets.forms import Field, FormFlow, FormScreen
from ..widgets.modals import ConfirmModal
from ..widgets.polling import PollingTableScreen, back_binding, refresh_binding
from . import site_routes

MUTATIONS = ("edit_schedule", "edit_allowlist", "add_route", "remove_route")
WINDOW_KEY = "window"
CADENCE_KEY = "checkin_interval_s"
WATCHDOG_LABELS = {
    "watchdog_missed_checkins": "watchdog: missed check-ins before appliance_silent",
    "watchdog_host_silent_min": "watchdog: minutes a host may be silent (0: off)",
}


def _number(text: str) -> int | str:
    """An integer if the text is one; otherwise the text itself, for the API to refuse with its
    own message (the console does not keep a second copy of the bounds)."""
    t = text.strip()
    return int(t) if re.fullmatch(r"-?\d{1,12}", t) else t


def schedule_fields(view: dict[str, Any]) -> list[Field]:
    w = view["window"]
    return [
        Field("days", "window days (mon,tue,…; none: never opens)",
              value=",".join(w["days"]) or "none"),
        Field("start", "window start (HH:MM, local time)", value=w["start"]),
        Field("duration_min", "window length, minutes", value=str(w["duration_min"])),
        Field("timezone", "time zone (IANA, e.g. Europe/Berlin)", value=w["timezone"]),
        Field("checkin_interval_s", "check-in interval, seconds",
              value=str(view["checkin_interval_s"])),
    ] + [
        Field(k, WATCHDOG_LABELS[k], value=str(view[k]))
        for k in ss.WATCHDOG if view.get(k) is not None
    ]  # fmt: skip


def schedule_body(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What changed, as the API takes it: ``{window?, checkin_interval_s?}``."""
    win = ss.window_change(
        view["window"], values["days"], values["start"], _number(values["duration_min"]),  # type: ignore[arg-type]
        values["timezone"],
    )  # fmt: skip
    body: dict[str, Any] = {}
    if win is not None and win != view["window"]:
        body["window"] = win
    for key in ("checkin_interval_s", *ss.WATCHDOG):
        if key in values:
            v = _number(values[key])
            if v != view.get(key):
                body[key] = v
    if not body:
        raise UsageError("nothing changed")
    return body


def allow_values(text: str) -> list[str]:
    """Entries separated by commas or white space; none: the list is cleared."""
    return [v for v in re.split(r"[,\s]+", text.strip()) if v]


class SiteSettingsScreen(PollingTableScreen):
    BINDINGS = [
        back_binding("settings"),
        Binding("e", "edit_schedule", "Edit window", id="settings.edit"),
        Binding("a", "edit_allowlist", "Allow-list", id="settings.allowlist"),
        Binding("n", "add_route", "Add route", id="settings.add_route"),
        Binding("d", "remove_route", "Delete route", id="settings.remove_route"),
        refresh_binding("settings"),
    ]
    TABLE_ID = "settings-table"
    COLUMNS = [("setting", "SETTING"), ("value", "VALUE")]
    POLL_GROUP = "settings"
    EMPTY_TEXT = "No settings yet."

    def __init__(self, site_id: str) -> None:
        super().__init__()
        self.site_id = site_id
        self.view: dict[str, Any] | None = None

    def title_text(self) -> Text:
        return Text.assemble(
            (f" Site settings: {ss.seg(self.site_id)}", "bold"),
            ("  e window and cadence · a allow-list (admin) · n/d alert route · signed into "
             "the next policy",
             "dim"),
        )  # fmt: skip

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATIONS and self.app.read_only:  # type: ignore[attr-defined]
            return None
        return True

    def fetch(self) -> list[dict[str, Any]]:
        view = ss.settings_view(self.client, self.site_id)
        rows = [
            {"key": WINDOW_KEY, "setting": "maintenance window",
             "value": ss.window_text(view["window"]), "view": view},
            {"key": CADENCE_KEY, "setting": "check-in interval",
             "value": f"{view['checkin_interval_s']} s", "view": view},
        ]  # fmt: skip
        for k in ss.WATCHDOG:
            if view.get(k) is not None:
                rows.append({"key": k, "setting": WATCHDOG_LABELS[k], "value": str(view[k]),
                             "view": view})  # fmt: skip
        for r in view["alert_routes"]:
            rows.append({"key": f"route:{r['id']}", "setting": f"alert route {r['name']}",
                         "value": f"{r['preset']} level {r['level']} ({r['scope']}): "
                         f"{r['target']}", "view": view, "route": r})  # fmt: skip
        for rid, name, values in ss.allowlist_rows(view):
            rows.append({"key": f"allow:{rid}:{name}", "setting": f"allow-list {rid}.{name}",
                         "value": ", ".join(values) or "- (none allowed)", "view": view,
                         "runbook_id": rid, "param": name, "values": values})  # fmt: skip
        return rows

    def key(self, record: Any) -> str:
        return record["key"]

    def cells(self, record: Any) -> list[Text]:
        return [cell(record["setting"]), cell(record["value"])]

    def order(self, keys: list[str]) -> list[str]:
        fixed = [k for k in (WINDOW_KEY, CADENCE_KEY, *ss.WATCHDOG) if k in keys]
        return (
            fixed
            + sorted(k for k in keys if k.startswith("route:"))
            + sorted(k for k in keys if k.startswith("allow:"))
        )

    def apply(self, records: list[dict[str, Any]]) -> None:
        if records:
            self.view = records[0]["view"]
        super().apply(records)

    def on_data_table_row_selected(self, event: Any) -> None:
        key = event.row_key.value or ""
        if key.startswith("allow:"):
            self.action_edit_allowlist()
        elif key.startswith("route:"):
            self.notify("alert route: d deletes it, n adds one", severity="information")
        else:
            self.action_edit_schedule()

    # ---- edits

    def _worker(self, flow: FormFlow, what: str, call: Any, values: dict[str, Any]) -> None:
        app = self.app

        def run() -> None:
            from ..app import worker_error

            try:
                call()
            except Exception as e:  # noqa: BLE001
                msg = worker_error(e)
                app.call_from_thread(app.record, what, msg, False)  # type: ignore[attr-defined]
                flow.refused(values, msg)
                return
            app.call_from_thread(app.record, what, "saved")  # type: ignore[attr-defined]
            app.call_from_thread(self.load)

        app.run_worker(run, thread=True, group="mutation")

    def action_add_route(self) -> None:
        if self.view is not None and self.app.mutation_allowed():  # type: ignore[attr-defined]
            site_routes.add_route_flow(self).start()

    def action_remove_route(self) -> None:
        site_routes.remove_route(self)

    def action_edit_schedule(self) -> None:
        view = self.view
        if view is None or not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        site = self.site_id

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            return FormScreen(f"Window and cadence of {site}", schedule_fields(view),
                              lambda v: schedule_body(view, v),
                              ["the server validates, audits and signs it into the next policy"],
                              values, error)  # fmt: skip

        def confirm(body: dict[str, Any]) -> ModalScreen[bool]:
            lines = [("site", f"{view['name']} ({site})")]
            impact = []
            if "window" in body:
                lines.append(("window", f"{ss.window_text(view['window'])} → "
                                        f"{ss.window_text(body['window'])}"))  # fmt: skip
                impact.append("disruptive runbooks and orders run only in the new window "
                              "from each appliance's next check-in")  # fmt: skip
            for k in ss.WATCHDOG:
                if k in body:
                    lines.append((k.split("_", 1)[1], f"{view[k]} → {body[k]}"))
                    impact.append("the server's watchdog judges this site's silence by it")
            if "checkin_interval_s" in body:
                lines.append(("interval", f"{view['checkin_interval_s']} s → "
                                          f"{body['checkin_interval_s']} s"))  # fmt: skip
                impact.append("appliances check in at the new interval, and 'online' is "
                              "judged against it")  # fmt: skip
            return ConfirmModal(f"Change the settings of {site}?", lines,
                                "Impact: " + "; ".join(impact))  # fmt: skip

        flow: FormFlow

        def send(body: dict[str, Any], values: dict[str, Any]) -> None:
            rest = {k: body.get(k) for k in ss.WATCHDOG}
            call = lambda: ss.apply_settings(  # noqa: E731
                self.client, site, body.get("window"), body.get("checkin_interval_s"), **rest
            )
            self._worker(flow, f"PATCH sites/{site} {body}", call, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()

    def action_edit_allowlist(self) -> None:
        key = self.table.cursor_key()
        row = self.records.get(key) if key else None
        if row is None or "runbook_id" not in row:
            self.notify("put the cursor on an allow-list row", severity="warning")
            return
        if not self.app.mutation_allowed():  # type: ignore[attr-defined]
            return
        site, rid, name, old = self.site_id, row["runbook_id"], row["param"], row["values"]
        fields = [Field("values", f"allowed values of {rid}.{name} (comma or space separated; "
                                  "empty: none allowed)", value=", ".join(old))]  # fmt: skip

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            return FormScreen(f"Allow-list {rid}.{name} at {site}", fields,
                              lambda v: allow_values(v["values"]),
                              ["admin only; the list given replaces the old one"],
                              values, error)  # fmt: skip

        def confirm(new: list[str]) -> ModalScreen[bool]:
            return ConfirmModal(
                f"Replace the allow-list of {rid}.{name} at {site}?",
                [("site", site), ("parameter", f"{rid}.{name}"),
                 ("old", ", ".join(old) or "-"), ("new", ", ".join(new) or "- (none allowed)")],
                "Impact: the site's appliances accept this parameter only with a value on the "
                "new list; a value set today that is no longer on it falls back to the baseline",
            )  # fmt: skip

        flow: FormFlow

        def send(new: list[str], values: dict[str, Any]) -> None:
            what = f"PUT sites/{site}/allowlists/{rid}/{name} {new}"
            call = lambda: ss.set_allowlist(self.client, site, rid, name, new)  # noqa: E731
            self._worker(flow, what, call, values)

        flow = FormFlow(self.app, form, confirm, send)
        flow.start()


def open_for_current(app: Any) -> None:
    """`:settings`: the site of the appliance shown, else the site under the fleet's cursor (the
    Sites tab's row, or the selected appliance's site)."""
    from ..commands import fleet_screen
    from ..widgets.table import KeyedTable
    from .appliance import ApplianceScreen

    site_id = None
    if isinstance(app.screen, ApplianceScreen):
        site_id = getattr(app.screen.appliance, "site_id", None)
    fleet = fleet_screen(app)
    if site_id is None and fleet is not None:
        from textual.widgets import TabbedContent

        if fleet.query_one(TabbedContent).active == "tab-sites":
            site_id = fleet.query_one("#sites", KeyedTable).cursor_key()
        else:
            key = fleet.query_one("#appliances", KeyedTable).cursor_key()
            a = next((x for x in fleet.data.appliances if x.id == key), None)
            site_id = a.site_id if a is not None else None
    if not site_id:
        app.notify("select a site (Sites tab) or an appliance first", severity="warning")
        return
    app.push_screen(SiteSettingsScreen(site_id))
