"""The Textual console: `osiris tui` (Central Command) and `osiris tui --local` (the appliance).

Structure (console.md): data layer in client.py/local.py, screens in screens/, modals in
widgets/, styles in osiris.tcss, palette in commands.py. All I/O runs in thread workers; the
first paint never waits for the network; an unreachable server is a banner, not a crash.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input, Static

from .client import Client, ClientError
from .fmt import safe

ALIASES = {
    "sites": "fleet",
    "site": "fleet",
    "fleet": "fleet",
    "app": "fleet",
    "apps": "fleet",
    "appliances": "fleet",
    "drift": "tab:drift",
    "rb": "tab:runbooks",
    "runbooks": "tab:runbooks",
    "cred": "tab:credentials",
    "creds": "tab:credentials",
    "inc": "tab:incidents",
    "ev": "tab:evidence",
    "evidence": "tab:evidence",
    "orders": "tab:orders",
    "prov": "provision",
    "provision": "provision",
    "audit": "audit",
    "log": "activity",
    "activity": "activity",
    "learn": "learn",
    "q": "quit",
    "quit": "quit",
}


@dataclass
class Activity:
    at: float
    what: str
    result: str
    ok: bool


class CommandBar(Input):
    """`:` opens it; enter runs an alias (k9s style); esc closes."""

    BINDINGS = [Binding("escape", "close", "Close", id="commandbar.close")]

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        self.screen.focus_next()


class BaseApp(App[None]):
    """Shared by the fleet console and the local console."""

    CSS_PATH = "osiris.tcss"
    TITLE = "Osiris"
    BINDINGS = [
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("colon", "command_bar", "Command", id="app.command"),
        Binding("L", "activity", "Activity", id="app.activity"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        poll_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.read_only = read_only
        self.clock = clock
        self.poll_s = poll_s
        self.activity: list[Activity] = []
        self.role: str | None = None
        if os.environ.get("SSH_CONNECTION"):
            self.animation_level = "none"

    def on_mount(self) -> None:
        self.theme = "textual-dark"

    # ---- activity log: every mutation, what was sent and what came back

    def record(self, what: str, result: str, ok: bool = True) -> None:
        self.activity.append(Activity(self.clock(), what, result, ok))
        if not ok:
            self.notify(safe(result), title="Failed", severity="error", markup=False)

    def mutation_allowed(self) -> bool:
        if self.read_only:
            self.notify("read-only mode: changes are disabled", severity="warning")
            return False
        return True

    def action_help(self) -> None:
        if self.screen.query("KeyPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_activity(self) -> None:
        from .screens.activity import ActivityScreen

        self.push_screen(ActivityScreen())

    def action_command_bar(self) -> None:
        bars = self.screen.query(CommandBar)
        if not bars:
            return
        bar = bars.first()
        bar.display = True
        bar.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, CommandBar):
            event.stop()
            word = event.value.strip().lstrip(":").lower()
            event.input.action_close()
            self.run_command(word)

    def run_command(self, word: str) -> None:
        target = ALIASES.get(word)
        if target is None:
            self.notify(f"unknown command: {safe(word)}", severity="warning", markup=False)
            return
        self.go(target)

    def go(self, target: str) -> None:
        if target == "quit":
            self.exit()
        elif target == "activity":
            self.action_activity()
        elif target.startswith("missing:"):
            self.notify(f"{target[8:]}: not available in this console yet", severity="warning")
        else:
            self.open_view(target)

    def open_view(self, target: str) -> None:  # overridden
        pass


class OsirisApp(BaseApp):
    """The operator console against Central Command."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        client: Client | None = None,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        poll_s: float = 5.0,
    ) -> None:
        super().__init__(read_only=read_only, clock=clock, poll_s=poll_s)
        if client is None:
            assert server and token
            client = Client(server, token, timeout=5.0, retries=1)
        self.client = client
        self.sub_title = client.server
        self.api_ok: bool | None = None
        self.api_error: str | None = None
        self.last_ok: float | None = None

    def get_default_screen(self) -> Any:
        from .screens.fleet import FleetScreen

        return FleetScreen()

    def on_mount(self) -> None:
        super().on_mount()
        from .commands import OsirisCommands

        self.COMMANDS = self.COMMANDS | {OsirisCommands}

    def api_result(self, ok: bool, error: str | None = None) -> None:
        """Called (on the UI thread) after every poll: drives the banner and data age."""
        self.api_ok = ok
        self.api_error = error
        if ok:
            self.last_ok = self.clock()
        for banner in self.screen.query(Banner):
            banner.refresh_banner()

    def open_view(self, target: str) -> None:
        from .screens.appliance import ApplianceScreen
        from .screens.audit import AuditScreen
        from .screens.fleet import FleetScreen
        from .screens.provision import ProvisionScreen

        if target == "fleet":
            while len(self.screen_stack) > 1:
                self.pop_screen()
            if not isinstance(self.screen, FleetScreen):
                self.push_screen(FleetScreen())
        elif target == "provision":
            self.push_screen(ProvisionScreen())
        elif target == "audit":
            self.push_screen(AuditScreen())
        elif target == "learn":
            from .screens.learn import LearnScreen

            self.push_screen(LearnScreen())
        elif target.startswith("tab:"):
            if isinstance(self.screen, ApplianceScreen):
                self.screen.show_tab(target[4:])
            else:
                self.notify("open an appliance first (enter on a row)", severity="warning")

    def on_unmount(self) -> None:
        self.client.close()


class Banner(Static):
    """Scope, API health, data age and READ-ONLY; red when the server is unreachable."""

    def on_mount(self) -> None:
        self.refresh_banner()
        self.set_interval(1.0, self.refresh_banner)

    def refresh_banner(self) -> None:
        app = self.app
        parts: list[tuple[str, str] | str] = []
        if isinstance(app, OsirisApp):
            parts.append((f" {safe(app.client.server)} ", "bold"))
            if app.api_ok is None:
                parts.append(("… connecting", "dim"))
            elif app.api_ok:
                parts.append(("● API ok", "green"))
            else:
                parts.append((f"○ server unreachable: {safe(app.api_error)}", "bold red"))
            if app.last_ok is not None:
                parts.append(f"  data {int(app.clock() - app.last_ok)}s old")
        if getattr(app, "read_only", False):
            parts.append(("  READ-ONLY", "reverse bold"))
        self.set_class(isinstance(app, OsirisApp) and app.api_ok is False, "down")
        self.update(Text.assemble(*parts))


class LocalApp(BaseApp):
    """`osiris tui --local`: the appliance's own state, read-only SQLite, no network."""

    def __init__(
        self,
        state_dir: str,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        poll_s: float = 2.0,
        label: str | None = None,
    ) -> None:
        super().__init__(read_only=read_only, clock=clock, poll_s=poll_s)
        self.state_dir = state_dir
        self.label = label or state_dir
        self.sub_title = f"local {self.label}"

    def get_default_screen(self) -> Any:
        from .screens.local import LocalScreen

        return LocalScreen(self.state_dir)


def from_worker(app: App[Any], fn: Callable[..., Any], *args: Any) -> None:
    """Deliver a poll worker's result: run ``fn(*args)`` on the UI thread, unless a newer run of
    the same exclusive worker group has superseded this one meanwhile.

    Why: an exclusive worker cancels the older worker's *task*, but a thread cannot be stopped,
    so the older thread still finishes its (slower, staler) fetch. Without this check it would
    paint older data over fresher, e.g. an order shown "pending" again after it was "done", or an
    evidence window that loses rows. Cancellation and this check both run on the UI thread, so
    the check is race-free: only the newest run of a group ever applies its result."""
    from textual.worker import get_current_worker

    worker = get_current_worker()

    def deliver() -> None:
        if not worker.is_cancelled:
            fn(*args)

    app.call_from_thread(deliver)


def worker_error(e: Exception) -> str:
    return str(e) if isinstance(e, ClientError) else f"{type(e).__name__}: {e}"
