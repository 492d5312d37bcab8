"""The interactive demo: the operator console plus a LAB chaos key.

Kept apart from the orchestration (``demo.py``): this is the only part that needs textual, and it
only drives a running :class:`~osiris_lab.demo.Demo` (``demo.chaos``, ``demo.children``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .demo_state import DemoError

if TYPE_CHECKING:
    from .demo import Demo

CONSOLE_FAULTS = (
    "firewall_off",
    "defender_off",
    "spooler_on_dc",
    "audit_policy_gone",
    "service_stopped:DNS",
    "service_stopped:EventLog",
)
LINUX_CONSOLE_FAULTS = ("root_login", "password_auth", "shadow_perms", "audit_rules_gone")


def chaos_choices(hosts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(site, host, fault) offered by the console's chaos key; the spooler fault on DCs only."""
    out = []
    for h in hosts:
        if h["kind"] == "ssh":
            faults: tuple[str, ...] = LINUX_CONSOLE_FAULTS
        else:
            faults = tuple(f for f in CONSOLE_FAULTS if h.get("role") == "dc" or "dc" not in f)
            if h.get("role") != "dc":
                faults = tuple(f for f in faults if f != "service_stopped:DNS")
        out += [(h["site"], h["host"], f) for f in faults]
    return out


def run_console(demo: Demo) -> None:
    """The operator console on the fleet view, plus a LAB chaos key (x, or `:chaos`)."""
    from textual.binding import Binding
    from textual.containers import Vertical
    from textual.screen import ModalScreen
    from textual.widgets import Label, OptionList
    from textual.widgets.option_list import Option

    from osiris_tui.app import OsirisApp

    choices = chaos_choices(demo.farm["hosts"] + demo.farm["linux"])

    class ChaosScreen(ModalScreen[tuple[str, str, str] | None]):
        BINDINGS = [Binding("escape", "close", "Close", id="chaos.close")]
        DEFAULT_CSS = "ChaosScreen { align: center middle; } #chaos { width: 70; height: 24; }"

        def compose(self) -> Any:
            with Vertical(id="chaos"):
                yield Label("LAB CHAOS: drift a simulated host, then watch L1 heal it (esc)")
                yield OptionList(
                    *[Option(f"{si}/{h:<6} {f}", id=str(i)) for i, (si, h, f) in enumerate(choices)]
                )

        def on_mount(self) -> None:
            options = self.query_one(OptionList)
            options.highlighted = 0
            options.focus()

        def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
            self.dismiss(choices[int(event.option.id or 0)])

        def action_close(self) -> None:
            self.dismiss(None)

    class DemoApp(OsirisApp):
        TITLE = "Osiris — LAB DEMO (simulated clinic hosts)"
        BINDINGS = [Binding("x", "chaos", "Chaos (lab)", id="demo.chaos")]

        def on_mount(self) -> None:
            super().on_mount()
            self._reported: set[str] = set()
            self.set_interval(2.0, self._watch_children)
            self.notify("LAB DEMO: press x to inject drift into a simulated host", timeout=8)

        def _watch_children(self) -> None:
            for c in demo.children:
                if not c.alive() and c.name not in self._reported:
                    self._reported.add(c.name)
                    self.notify(f"{c.name} exited ({c.proc.returncode}); see {c.log}",
                                severity="error", timeout=30, markup=False)  # fmt: skip

        def run_command(self, word: str) -> None:
            if word == "chaos":
                self.action_chaos()
            else:
                super().run_command(word)

        def action_chaos(self) -> None:
            if self.mutation_allowed():
                self.push_screen(ChaosScreen(), self._chosen)

        def _chosen(self, choice: tuple[str, str, str] | None) -> None:
            if choice is not None:
                self.run_worker(lambda: self._inject(*choice), thread=True, group="chaos")

        def _inject(self, site: str, host: str, fault: str) -> None:
            what = f"chaos {fault} on {site}/{host}"
            try:
                out = demo.chaos(host, fault, site)
            except DemoError as e:
                self.call_from_thread(self.record, what, str(e), False)
                return
            drifting = ", ".join(out["drifting"]) or "nothing detectable"
            self.call_from_thread(self.record, what, f"drifting: {drifting}", True)
            self.call_from_thread(self.notify, f"{what}: {drifting}", markup=False)

    st = demo.state
    app = DemoApp(st.server_url, st.admin_token)
    demo.app = app  # type: ignore[attr-defined]
    app.run()
