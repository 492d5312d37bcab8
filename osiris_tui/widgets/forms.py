"""Forms that check what is typed before anything is sent, and keep the values on a refusal.

Why not ``FormModal``: a form for a site, a credential or a runbook's parameters must say *in
the form* why input is refused (the CLI's words, ``form_rules``), must not lose what was typed
when the server refuses (its refusal is shown verbatim in the same form), must take a pasted
ssh key without echoing it, and must hide the fields a credential kind does not take.

The flow every such change follows is ``FormFlow``: form → checked body → the confirm dialog
naming target and impact → the request in a worker; a refusal reopens the form with the values
and the server's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ..client import UsageError
from ..fmt import safe


@dataclass(frozen=True)
class Field:
    """One form field. ``kind``: text, password, select (``options``), check (a bool), or key (a
    secret that takes a multi-line paste, shown masked). ``only``: the values of the form's
    ``kind`` select for which the field is shown (empty: always). ``note``: a dim line under the
    label (the parameter's bound and who may set it, say)."""

    name: str
    label: str
    kind: str = "text"
    options: tuple[str, ...] = ()
    value: Any = ""
    only: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Submitted:
    """What a form answers: the checked body (whatever ``check`` returned) and the raw values,
    so a refused request can reopen the form as it was."""

    body: Any
    values: dict[str, Any] = field(default_factory=dict)


class KeyInput(Input):
    """A masked input that keeps a whole multi-line paste (Textual's ``Input`` keeps only the
    first line): the text is held aside, the field shows how much was pasted, never the key."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(password=True, **kw)
        self.pasted = ""

    def _on_paste(self, event: events.Paste) -> None:
        if event.text:
            self.pasted = event.text
            self.value = "*" * min(len(event.text), 24)
            self.placeholder = f"pasted {len(event.text.splitlines())} lines"
        event.stop()

    @property
    def secret(self) -> str:
        return self.pasted or self.value


class FormScreen(ModalScreen[Submitted | None]):
    """Fields, a dim intro, an error line; Save runs ``check(values)`` (``UsageError`` → the
    error line, the form stays), esc cancels."""

    # Compact fields (one line each, no border) and a scrolling field list capped at 60% of the
    # terminal, so title, error line and buttons stay on screen at 80x24 however many fields.
    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen #form-fields { height: auto; max-height: 60vh; }
    FormScreen #form-error { color: $error; }
    FormScreen Input, FormScreen Select { width: 100%; margin-bottom: 1; }
    FormScreen #buttons { height: auto; }
    FormScreen #buttons Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save"),
    ]

    def __init__(
        self,
        title: str,
        fields: list[Field],
        check: Callable[[dict[str, Any]], Any],
        intro: list[str] | None = None,
        values: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.check = check
        self.intro = intro or []
        self.initial = values or {}
        self.error = error or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(safe(self.title_text), style="bold"), id="form-title")
            for line in self.intro:
                yield Static(Text(safe(line), style="dim"))
            yield Static(Text(safe(self.error)), id="form-error")
            with VerticalScroll(id="form-fields"):
                for f in self.fields:
                    yield from self._field(f)
            with Horizontal(id="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _field(self, f: Field) -> ComposeResult:
        v = self.initial.get(f.name, f.value)
        if f.kind != "check":  # a checkbox carries its own label
            yield Label(Text(safe(f.label)), id=f"l-{f.name}", classes=f"fl-{f.name}")
        if f.note:
            yield Static(Text(safe(f.note), style="dim"), classes=f"fl-{f.name}")
        fid = f"f-{f.name}"
        if f.kind == "select":
            opts = [(Text(safe(o)), o) for o in f.options]
            yield Select(opts, value=v or f.options[0], id=fid, allow_blank=False, compact=True)
        elif f.kind == "check":
            yield Checkbox(f.label, value=bool(v), id=fid, compact=True)
        elif f.kind == "key":
            w = KeyInput(placeholder="paste the key here, or give a file path above", id=fid,
                         compact=True)  # fmt: skip
            w.pasted = v if isinstance(v, str) else ""
            yield w
        else:
            yield Input(value=safe(v), placeholder=f.label, password=f.kind == "password",
                        id=fid, compact=True)  # fmt: skip

    def on_mount(self) -> None:
        self._show_for_kind()
        first = next(iter(self.query("#form-fields Input, #form-fields Select")), None)
        if first is not None:
            first.focus()

    def _show_for_kind(self) -> None:
        kind = self.values().get("kind")
        for f in self.fields:
            if f.only:
                shown = kind in f.only
                self.query_one(f"#f-{f.name}").display = shown
                for w in self.query(f".fl-{f.name}"):
                    w.display = shown

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "f-kind":
            self._show_for_kind()

    def values(self) -> dict[str, Any]:
        """The typed values; a field hidden for this kind answers empty (never sent)."""
        out: dict[str, Any] = {}
        for f in self.fields:
            w = self.query_one(f"#f-{f.name}")
            if f.kind == "key":
                v: Any = w.secret  # type: ignore[attr-defined]
            else:
                v = w.value  # type: ignore[attr-defined]
            if f.kind == "select" and v is Select.BLANK:
                v = None
            out[f.name] = v
        if "kind" not in out and "kind" in self.initial:  # a form for one fixed kind
            out["kind"] = self.initial["kind"]
        kind = out.get("kind")
        for f in self.fields:
            if f.only and kind not in f.only:
                out[f.name] = False if f.kind == "check" else ""
        return out

    def show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#form-error", Static).update(Text(safe(message)))

    def action_save(self) -> None:
        values = self.values()
        try:
            body = self.check(values)
        except UsageError as e:
            self.show_error(str(e))
            return
        self.dismiss(Submitted(body, values))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()


@dataclass
class FormFlow:
    """form → confirm → send, and back to the form (values kept) when the server refuses.

    ``form(values, error)`` builds the form; ``confirm(body)`` the dialog naming target and
    impact; ``send(body, values)`` starts the request's worker, which on a refusal calls
    ``refused(values, message)`` from its thread."""

    app: Any
    form: Callable[[dict[str, Any], str | None], FormScreen]
    confirm: Callable[[Any], ModalScreen[bool]]
    send: Callable[[Any, dict[str, Any]], None]

    def start(self, values: dict[str, Any] | None = None, error: str | None = None) -> None:
        def submitted(s: Submitted | None) -> None:
            if s is None:
                return

            def answered(yes: bool | None) -> None:
                if yes:
                    self.send(s.body, s.values)

            self.app.push_screen(self.confirm(s.body), answered)

        self.app.push_screen(self.form(values or {}, error), submitted)

    def refused(self, values: dict[str, Any], message: str) -> None:
        """From the worker thread: reopen the form with the server's refusal, verbatim."""
        self.app.call_from_thread(self.start, values, message)


# ---------------------------------------------------------------- sites (the Fleet's Sites tab)


def _site_worker(app: Any, flow: FormFlow, what: str, call: Callable[[], Any],
                 done: Callable[[Any], str], after: Callable[[], None],
                 values: dict[str, Any]) -> None:  # fmt: skip
    """Run one site request in a thread worker: activity log either way, the form back with
    the server's refusal, ``after`` (a refresh) on success."""

    def run() -> None:
        from ..app import worker_error

        try:
            res = call()
        except Exception as e:  # noqa: BLE001
            msg = worker_error(e)
            app.call_from_thread(app.record, what, msg, False)
            flow.refused(values, msg)
            return
        app.call_from_thread(app.record, what, done(res))
        app.call_from_thread(after)

    app.run_worker(run, thread=True, group="mutation")


def site_add_flow(app: Any, after: Callable[[], None]) -> FormFlow:
    """`osiris site add NAME [--id] [--partner] [--interval]` as a form, confirmed."""
    from ..form_rules import INTERVAL_MAX, INTERVAL_MIN, site_add
    from .modals import ConfirmModal

    fields = [
        Field("name", "site name (e.g. Riverside Family Practice)"),
        Field("site_id", "site id (optional; default: generated)"),
        Field("partner_id", "partner id (optional)"),
        Field(
            "interval", f"check-in interval, seconds ({INTERVAL_MIN}..{INTERVAL_MAX}; optional)"
        ),  # fmt: skip
    ]

    def form(values: dict[str, Any], error: str | None) -> FormScreen:
        return FormScreen("Add a site", fields, site_add, None, values, error)

    def confirm(body: dict[str, Any]) -> ModalScreen[bool]:
        return ConfirmModal(
            f"Add site {body['name']}?",
            [
                ("site", body["name"]),
                ("id", body["site_id"] or "(generated)"),
                ("partner", body["partner_id"] or "-"),
                ("interval", f"{body['checkin_interval_s'] or 'server default'} s"),
                ("action", "create the site"),
            ],
            "Impact: a new site with no appliances; create a claim code (p) to enroll one",
        )

    flow: FormFlow

    def send(body: dict[str, Any], values: dict[str, Any]) -> None:
        what = f"POST sites {body}"
        _site_worker(app, flow, what, lambda: app.client.create_site(**body),
                     lambda s: f"created {s.id}", after, values)  # fmt: skip

    flow = FormFlow(app, form, confirm, send)
    return flow


def site_edit_flow(app: Any, site: Any, after: Callable[[], None]) -> FormFlow:
    """`osiris site rename` (and the check-in interval, which `PATCH /sites/{id}` takes) as a
    form, confirmed old → new."""
    from ..form_rules import INTERVAL_MAX, INTERVAL_MIN, site_edit
    from .modals import ConfirmModal

    fields = [
        Field("name", "site name", value=site.name),
        Field(
            "interval",
            f"check-in interval, seconds ({INTERVAL_MIN}..{INTERVAL_MAX})",
            value=str(site.checkin_interval_s),
        ),  # fmt: skip
    ]

    def form(values: dict[str, Any], error: str | None) -> FormScreen:
        return FormScreen(f"Edit site {site.id}", fields, lambda v: site_edit(site, v),
                          [f"site id {site.id} stays; its evidence keeps it"], values,
                          error)  # fmt: skip

    def confirm(changes: dict[str, Any]) -> ModalScreen[bool]:
        lines = [("site", f"{site.name} ({site.id})")]
        impact = []
        if "name" in changes:
            lines.append(("name", f"{site.name} → {changes['name']}"))
            impact.append("only the name shown changes (the id and evidence stay)")
        if "checkin_interval_s" in changes:
            lines.append(("interval", f"{site.checkin_interval_s} s → "
                                      f"{changes['checkin_interval_s']} s"))  # fmt: skip
            impact.append("appliances check in at the new interval from their next check-in, "
                          "and 'online' is judged against it")  # fmt: skip
        return ConfirmModal(f"Edit site {site.id}?", lines, "Impact: " + "; ".join(impact))

    flow: FormFlow

    def send(changes: dict[str, Any], values: dict[str, Any]) -> None:
        what = f"PATCH sites/{site.id} {changes}"
        _site_worker(app, flow, what, lambda: app.client.update_site(site.id, **changes),
                     lambda s: f"{s.id} now {s.name!r}, {s.checkin_interval_s} s", after,
                     values)  # fmt: skip

    flow = FormFlow(app, form, confirm, send)
    return flow
