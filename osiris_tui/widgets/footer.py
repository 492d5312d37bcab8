"""The console's footer: `? Keys`, `: Command` and `q Quit` first, then the view's own keys.

Why not Textual's ``Footer``: it lists the focused widget's keys, then the screen's, then the
app's, and cuts what does not fit on the right, so at 80 columns exactly the three keys a
newcomer needs (help, command bar, quit) were the ones that disappeared. Here they are pinned
first on every screen; the view's keys follow in the order they are declared (``?`` lists them
all, with what they do, when the footer is too narrow). The command-palette key is not drawn
(it would take the right-hand end at 80 columns); ``?`` and docs/console.md name it.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ESSENTIALS = ("app.help", "app.command", "app.quit")


def essential_bindings() -> list[Binding]:
    """The three keys again, same ids, acting on the app: for a modal screen, which the app's
    own bindings do not reach (the activity log)."""
    return [
        Binding("question_mark", "app.help", "Keys", id="app.help"),
        Binding("colon", "app.command_bar", "Command", id="app.command"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]


class OsirisFooter(Footer):
    """A compact footer whose first keys are always ``ESSENTIALS`` (by binding id)."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("show_command_palette", False)
        kw.setdefault("compact", True)
        super().__init__(**kw)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        first: dict[str, tuple[Any, bool, str]] = {}
        rest: dict[str, tuple[Any, bool, str]] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show:
                continue
            into = first if binding.id in ESSENTIALS else rest
            into.setdefault(binding.action, (binding, enabled, tooltip))
        pinned = sorted(first.values(), key=lambda t: ESSENTIALS.index(t[0].id))
        for binding, enabled, tooltip in [*pinned, *rest.values()]:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
