"""The Runbooks tab: each runbook's state on this appliance, and who set it; space / s toggle
it at appliance / site scope (disabling asks first: it names what loses remediation); p edits
the selected runbook's parameters (each with its value, where it is set, its bound and who may
set it), checked as ``osiris runbook set`` checks them, then confirmed old → new."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from ...app import worker_error
from ...fmt import cell, status_cell
from ...form_rules import ParamChange, bound_text, param_changes, shown_value, source_of
from ...widgets.forms import Field, FormFlow, FormScreen
from ...widgets.modals import ConfirmModal
from ...widgets.table import KeyedTable
from .tab import ApplianceContext, ApplianceTab

# Not columns.RUNBOOKS: the console shows the state as a coloured status word, the catalogue's
# severity among the flags, and the name last (the CLI's `runbook list` prints them differently).
COLUMNS = [("id", "RUNBOOK"), ("state", "STATE"), ("by", "SET BY"), ("flags", "FLAGS"),
           ("name", "NAME")]  # fmt: skip


class RunbooksTab(ApplianceTab):
    TITLE = "Runbooks"
    TAB_ID = "runbooks"
    POLLED = True
    BINDINGS = [
        Binding("space", "toggle_appliance", "Toggle (appliance)", id="detail.toggle"),
        Binding("s", "toggle_site", "Toggle (site)", id="detail.toggle_site"),
        Binding("p", "params", "Params", id="detail.params"),
    ]
    MUTATIONS = frozenset({"toggle_appliance", "toggle_site", "params"})

    def __init__(self, ctx: ApplianceContext) -> None:
        super().__init__(ctx)
        self.runbooks: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="rb-table")

    def fetch(self, client: Any) -> list[Any]:
        return client.appliance_runbooks(self.ctx.appliance.id)

    def show(self, data: list[Any]) -> None:
        self.runbooks = {r.id: r for r in data}
        rows = {}
        for r in data:
            rb = self.ctx.catalog.get(r.id)
            flags = []
            if rb is not None:
                if rb.disruptive:
                    flags.append("disruptive")
                if rb.requires_maintenance_window:
                    flags.append("window")
                flags.append(rb.severity)
            by = (
                "appliance"
                if r.appliance is not None
                else "site"
                if r.site is not None
                else "default"
            )
            rows[r.id] = [
                cell(r.id),
                status_cell("on" if r.enabled else "off"),
                cell(by, "dim" if by == "default" else "bold"),
                cell(" ".join(flags), "yellow" if "disruptive" in flags else ""),
                cell(getattr(rb, "name", "")),
            ]
        self.query_one("#rb-table", KeyedTable).sync(rows)

    def action_toggle_appliance(self) -> None:
        self._toggle("appliance")

    def action_toggle_site(self) -> None:
        self._toggle("site")

    def _toggle(self, scope: str) -> None:
        if not self.mutation_allowed():
            return
        rb_id = self.query_one("#rb-table", KeyedTable).cursor_key()
        if rb_id is None or rb_id not in self.runbooks:
            return
        ctx = self.ctx
        new = not self.runbooks[rb_id].enabled
        target = ctx.appliance.id if scope == "appliance" else ctx.site_id

        def go(ok: bool | None) -> None:
            if ok:
                self.set_runbook(scope, target, rb_id, new)

        if new:
            go(True)
            return
        rb = ctx.catalog.get(rb_id)
        self.app.push_screen(
            ConfirmModal(
                f"Disable runbook {rb_id}?",
                [
                    ("site", ctx.site.name if ctx.site else ctx.site_id),
                    ("appliance", ctx.appliance.hostname if scope == "appliance" else "all"),
                    ("action", f"disable {rb_id} at {scope} scope"),
                    ("runbook", getattr(rb, "name", rb_id)),
                ],
                "Impact: drift this runbook heals will be reported but no longer fixed"
                + (f"; controls {', '.join(rb.controls)} lose automatic remediation" if rb else ""),
            ),
            go,
        )

    @work(thread=True, group="mutation")
    def set_runbook(self, scope: str, target: str, rb_id: str, value: bool) -> None:
        what = f"PUT runbooks {scope}={target} {{{rb_id}: {str(value).lower()}}}"
        try:
            if scope == "site":
                self.ctx.client.set_site_runbooks(target, {rb_id: value})
            else:
                self.ctx.client.set_appliance_runbooks(target, {rb_id: value})
        except Exception as e:  # noqa: BLE001
            self.record(what, worker_error(e), False)
            return
        self.record(what, f"{rb_id} {'on' if value else 'off'}")
        self.ctx.load_main()

    # ---- parameters

    def action_params(self) -> None:
        if not self.mutation_allowed():
            return
        rb_id = self.query_one("#rb-table", KeyedTable).cursor_key()
        if rb_id is None or rb_id not in self.runbooks:
            return
        self.load_params(rb_id)

    @work(thread=True, group="params", exclusive=True)
    def load_params(self, rb_id: str) -> None:
        ctx = self.ctx
        try:
            view = ctx.client.runbook_params(ctx.site_id, rb_id, ctx.appliance.id)
        except Exception as e:  # noqa: BLE001
            self.record(f"GET params {rb_id}", worker_error(e), False)
            return
        self.app.call_from_thread(self.params_flow(rb_id, view).start)

    def params_flow(self, rb_id: str, view: dict[str, Any]) -> FormFlow:
        ctx = self.ctx
        rb = ctx.catalog.get(rb_id)
        role = getattr(self.app, "role", None)
        schema = view.get("schema") or {}

        def form(values: dict[str, Any], error: str | None) -> FormScreen:
            fields = [Field("scope", "set at", "select", ("site", "appliance"))]
            for name, spec in sorted(schema.items()):
                value = shown_value(view.get("effective", {}).get(name))
                fields.append(
                    Field(
                        f"p_{name}",
                        f"{name} = {value or '(empty)'}  (set at {source_of(view, name)})",
                        value=value,
                        note=f"{bound_text(spec)} · set by {spec.get('set_by', 'operator')}"
                        f" · default {shown_value(spec.get('default')) or '(empty)'}",
                    )
                )
            intro = [
                f"site {ctx.site.name if ctx.site else ctx.site_id} · appliance "
                f"{ctx.appliance.hostname}",
                "Empty a field to clear the value set at that scope (it inherits again).",
            ]
            if not schema:
                intro.append(f"{rb_id} has no parameters.")

            def check(v: dict[str, Any]) -> tuple[str, list[ParamChange]]:
                scope = v.get("scope") or "site"
                return scope, param_changes(view, scope, v, rb, role)

            return FormScreen(f"Parameters of {rb_id}", fields, check, intro, values, error)

        def confirm(body: tuple[str, list[ParamChange]]) -> ConfirmModal:
            scope, changes = body
            lines = [
                ("site", ctx.site.name if ctx.site else ctx.site_id),
                ("appliance", ctx.appliance.hostname if scope == "appliance" else "all"),
                ("runbook", f"{rb_id} {getattr(rb, 'name', '')}".strip()),
            ]
            for c in changes:
                new = "(inherit)" if c.new is None else shown_value(c.new)
                lines.append((c.name, f"{shown_value(c.old)} → {new}"))
            controls = f" (controls {', '.join(rb.controls)})" if rb is not None else ""
            return ConfirmModal(
                f"Set parameters of {rb_id} at {scope} scope?",
                lines,
                f"Impact: from each appliance's next check-in {rb_id} checks and heals against "
                f"the new values{controls}",
            )

        flow: FormFlow

        def send(body: tuple[str, list[ParamChange]], values: dict[str, Any]) -> None:
            self.set_params(flow, rb_id, body, values)

        flow = FormFlow(self.app, form, confirm, send)
        return flow

    @work(thread=True, group="mutation")
    def set_params(
        self,
        flow: FormFlow,
        rb_id: str,
        body: tuple[str, list[ParamChange]],
        values: dict[str, Any],
    ) -> None:
        scope, changes = body
        ctx = self.ctx
        params = {c.name: c.new for c in changes}
        target = ctx.appliance.id if scope == "appliance" else ctx.site_id
        what = f"PUT params {scope}={target} {rb_id} {params}"
        appliance_id = ctx.appliance.id if scope == "appliance" else None
        try:
            ctx.client.set_runbook_params(ctx.site_id, rb_id, params, appliance_id)
        except Exception as e:  # noqa: BLE001
            msg = worker_error(e)
            self.record(what, msg, False)
            flow.refused(values, msg)
            return
        self.record(what, ", ".join(f"{c.name}={shown_value(c.new)}" for c in changes))
        self.ctx.load_main()
