"""The Textual console: `osiris tui` (Central Command) and `osiris tui --local` (the appliance).

Structure (console.md): data layer in client.py/local.py, screens in screens/, modals in
widgets/, styles in osiris.tcss, palette in commands.py. All I/O runs in thread workers; the
first paint never waits for the network; an unreachable server is a banner, not a crash. What
the banner may say about the server (``● API ok`` only for a fresh answer) is ``liveness``.
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
from .console_brand import brand_parts, load_brand
from .fmt import safe
from .liveness import CONSOLE_TIMEOUT, SLOW_S, Liveness

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
    "settings": "settings",
    "versions": "versions",
    "deliveries": "deliveries",
    "alerts": "deliveries",
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
        # Textual's ctrl+c only says "press q"; ours quits, with q's question (priority: also
        # while an input has focus, where ctrl+c would copy).
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.quit_ctrl_c"),
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
        """Our key panel (widgets/help.py) for the screen underneath, not Textual's."""
        from textual.widgets import DataTable

        from .widgets.help import HelpModal, key_lines

        if type(self.screen).__name__ == "HelpModal":
            self.screen.dismiss(None)
            return
        view, glob = key_lines(self.screen.active_bindings.values(), self)
        title = self.screen.title or type(self.screen).__name__.removesuffix("Screen")
        self.push_screen(HelpModal(view, glob, title, isinstance(self.focused, DataTable)))

    def in_flight(self) -> list[str]:
        """Changes sent and not yet answered: the workers of group "mutation"."""
        from textual.worker import WorkerState

        busy = (WorkerState.PENDING, WorkerState.RUNNING)
        return [w.name or "a change" for w in self.workers
                if w.group == "mutation" and w.state in busy]  # fmt: skip

    async def action_quit(self) -> None:
        self.request_quit()

    def request_quit(self) -> None:
        """q, ctrl+c and `:q`: quit at once, unless a change is in flight; then ask, naming it."""
        from .widgets.modals import ConfirmModal

        busy = self.in_flight()
        if not busy:
            self.exit()
            return
        if type(self.screen).__name__ == "ConfirmModal":
            return  # the question is already on screen

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(
            ConfirmModal(
                "Quit while a change is in flight?",
                [("in flight", ", ".join(busy))],
                "Its answer will not be shown or logged; the server may still apply it",
            ),
            answer,
        )

    def action_activity(self) -> None:
        from .screens.activity import ActivityScreen

        self.push_screen(ActivityScreen())

    def action_command_bar(self) -> None:
        from textual.screen import ModalScreen

        while (not self.screen.query(CommandBar) and isinstance(self.screen, ModalScreen)
               and len(self.screen_stack) > 1):  # fmt: skip
            self.pop_screen()  # e.g. `:` in the activity log: the bar of the view below it
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
            self.request_quit()
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
        timeout: float = CONSOLE_TIMEOUT,
        slow_s: float = SLOW_S,
        token_fix: str | None = None,
    ) -> None:
        """``timeout``: each request's budget (connect, read and retries) — the header says
        ``○ down: no answer in …`` after it; ``slow_s``: outstanding longer, ``◐ slow``;
        ``token_fix``: how to fix a refused token (``profiles.Config.token_fix``)."""
        super().__init__(read_only=read_only, clock=clock, poll_s=poll_s)
        if client is None:
            assert server and token
            extra = {} if token_fix is None else {"token_fix": token_fix}
            client = Client(server, token, timeout=timeout, retries=1, **extra)
        self.client = client
        self.brand: tuple[str, str | None] | None = None  # a partner's (console_brand.py)
        self.sub_title = client.server
        self.liveness = Liveness(poll_s, slow_s=slow_s, token_fix=client.token_fix)

    @property
    def api_ok(self) -> bool | None:
        """None before any outcome; else whether the last outcome was an answer."""
        return self.liveness.ok

    @property
    def api_error(self) -> str | None:
        return None if self.liveness.ok is not False else self.liveness.reason

    @property
    def last_ok(self) -> float | None:
        """When a view last painted fresh data (the banner's data age)."""
        return self.liveness.last_data

    def get_default_screen(self) -> Any:
        from .screens.fleet import FleetScreen

        return FleetScreen()

    def on_mount(self) -> None:
        super().on_mount()
        from .commands import OsirisCommands

        self.COMMANDS = self.COMMANDS | {OsirisCommands}
        load_brand(self)

    def api_result(self, ok: bool, error: Exception | str | None = None) -> None:
        """Called (on the UI thread) after every poll: ``ok`` — a view painted fresh data;
        else ``error`` is why not. Drives the banner and the data age."""
        if ok:
            self.liveness.painted(self.clock())
        elif error is not None:
            self.liveness.failed(error if isinstance(error, Exception) else ClientError(error))
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
        elif target == "versions":
            from .screens.versions import VersionsScreen

            self.push_screen(VersionsScreen())
        elif target == "deliveries":
            from .screens.deliveries import DeliveriesScreen

            self.push_screen(DeliveriesScreen())
        elif target == "settings":
            from .screens.site_settings import open_for_current

            open_for_current(self)
        elif target.startswith("tab:"):
            if isinstance(self.screen, ApplianceScreen):
                self.screen.show_tab(target[4:])
            else:
                self.notify("open an appliance first (enter on a row)", severity="warning")

    def on_unmount(self) -> None:
        self.client.close()


class Banner(Static):
    """Scope, API health (``liveness.Liveness.health``: glyph + word + reason), data age and
    READ-ONLY; class ``down`` (red) when the server is down or refuses the token. Redrawn every
    second, so ``◐ slow: waiting Ns`` counts up while a request hangs."""

    def on_mount(self) -> None:
        self.refresh_banner()
        self.set_interval(1.0, self.refresh_banner)

    def refresh_banner(self) -> None:
        app = self.app
        parts: list[tuple[str, str] | str] = []
        bad, detail = False, ("", "")
        if isinstance(app, OsirisApp):
            now = app.clock()
            health = app.liveness.health(now)
            bad, detail = health.bad, (health.detail, health.style)
            parts.extend(brand_parts(app))
            parts.append((f" {safe(app.client.server)} ", "bold"))
            parts.append((safe(health.headline), health.style))
            parts.append(f"  {app.liveness.data_age(now)}")
        if getattr(app, "read_only", False):
            parts.append(("  READ-ONLY", "reverse bold"))
        if detail[0]:  # last: at 80 columns a long fix is cut, never the state or the data age
            parts.append((f"  {safe(detail[0])}", detail[1]))
        self.set_class(bad, "down")
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
