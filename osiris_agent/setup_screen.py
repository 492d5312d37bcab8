"""``osiris-agent setup``: the appliance's first-boot console on tty1, run as the agent user.

Why: the technician at the clinic has a keyboard and a screen, no root and no shell. This
screen shows what they must read to the operator (key fingerprints, the MAC requester
fingerprint, the configured server) and takes a claim code, enrolling the state dir directly
(``enroll()``, the same code as ``osiris-agent enroll``). The code is a password field, cleared
after submission and never shown again; results and errors are one readable line.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, Static

from osiris_core.errors import OsirisError

from . import firstboot, mac_enrol
from .client import AuthRefused, ServerRefused, ServerUnreachable
from .config import AgentConfig
from .enroll import enroll, prepare_keys, read_pins


class SetupApp(App[None]):
    """Fingerprints, a claim-code field, the result."""

    TITLE = "Osiris appliance setup"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+c", "quit", "Quit", priority=True)]

    def __init__(self, cfg: AgentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sd = Path(cfg.agent.state_dir)

    def _info(self) -> str:
        lines = [f"Server: {self.cfg.server.url}", ""]
        try:
            for what, fp in prepare_keys(self.sd).items():
                lines.append(f"{what:22} {fp}")
        except (OsirisError, OSError) as e:
            lines.append(f"keys unavailable: {e}")
        if self.cfg.enrolment.mac_poll:
            try:
                fp = mac_enrol.fingerprint(mac_enrol.load_or_create_secret(self.sd))
                lines.append(f"{'MAC requester':22} {fp}")
            except (OsirisError, OSError) as e:
                lines.append(f"MAC enrolment unavailable: {e}")
        return "\n".join(lines)

    def compose(self) -> ComposeResult:
        yield Static(self._info(), id="info")
        yield Input(placeholder="claim code, then Enter", password=True, id="code")
        yield Static(self._state(), id="result")
        yield Footer()

    def _state(self) -> str:
        if not firstboot.is_enrolled(self.cfg):
            return "Not enrolled. Type the claim code from your operator and press Enter."
        pins = read_pins(self.sd)
        return f"Enrolled as {pins['appliance_id']} (site {pins['site_id']})."

    def on_input_submitted(self, event: Input.Submitted) -> None:
        code = event.value.strip()
        event.input.value = ""  # never echoed back
        result = self.query_one("#result", Static)
        if firstboot.is_enrolled(self.cfg):
            result.update(self._state())
            return
        if not code:
            result.update("Type the claim code first.")
            return
        cfg = firstboot.effective(self.cfg)
        try:
            r = enroll(cfg.server.url, code, self.sd, lab=cfg.agent.lab, ca_file=cfg.server.ca_file)
        except ServerUnreachable as e:
            msg = f"Server unreachable: {e}. Check the network and try again."
        except (AuthRefused, ServerRefused) as e:
            msg = f"Claim refused: {e}. Ask the operator for a new code."
        except (OsirisError, OSError) as e:
            msg = f"Enrolment failed: {e}"
        else:
            msg = f"Enrolled as {r.appliance_id} (site {r.site_id})."
            if r.quarantined:
                msg += " Quarantined: an admin must confirm this appliance."
            event.input.disabled = True
        result.update(msg.replace(code, "…"))
