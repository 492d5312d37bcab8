"""Modal dialogs: confirm with impact, forms, JSON viewer, text prompt."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ..fmt import safe, safe_json


class ConfirmModal(ModalScreen[bool]):
    """Names the site, appliance, action and compliance impact; `y` confirms, `n`/esc cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, lines: list[tuple[str, str]], impact: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.impact = impact

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(safe(self.title_text), style="bold"), id="dialog-title")
            for k, v in self.lines:
                yield Static(Text.assemble((f"{k:>10}: ", "dim"), safe(v)))
            if self.impact:
                yield Static(Text(safe(self.impact), style="yellow"), id="impact")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class JsonModal(ModalScreen[None]):
    """A bundle (or any document) as pretty JSON, rendered literally and scrollable."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close", id="json.close")]

    def __init__(self, title: str, doc: Any) -> None:
        super().__init__()
        self.title_text = title
        self.doc = doc

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label(Text(safe(self.title_text), style="bold"))
            with VerticalScroll():
                text = safe_json(self.doc, indent=2, sort_keys=True, ensure_ascii=True)
                yield Static(Text(text), id="json-body")


class PromptModal(ModalScreen[str | None]):
    """One text (or password) field."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, placeholder: str = "", password: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(safe(self.title_text), style="bold"))
            yield Input(placeholder=self.placeholder, password=self.password, id="prompt")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class FormModal(ModalScreen[dict[str, Any] | None]):
    """A small form: fields are (name, label, kind, options); kind ∈ text, password, select."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="form.cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str, str, list[str] | None]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(safe(self.title_text), style="bold"))
            for name, label, kind, options in self.fields:
                if kind == "select":
                    yield Select(
                        [(Text(safe(o)), o) for o in options or []],
                        prompt=label,
                        id=f"f-{name}",
                        allow_blank=False,
                    )
                else:
                    yield Input(placeholder=label, password=kind == "password", id=f"f-{name}")
            with Horizontal(id="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _label, kind, _o in self.fields:
            w = self.query_one(f"#f-{name}")
            v = w.value  # type: ignore[attr-defined]
            if kind == "select":
                out[name] = None if v is Select.BLANK else v
            else:
                out[name] = v
        return out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.values() if event.button.id == "save" else None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self.values())
