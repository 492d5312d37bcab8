"""First-boot mode: ``osiris-agent run`` on a state dir that is not enrolled waits for a claim
code instead of exiting, so an appliance nobody can log into as root can still be enrolled.

Why in ``run`` and as the agent's own user: on the appliance the technician has no root and
cannot write the state dir; the agent can. Every ``[enrolment] poll_interval_s`` (and at once
on start) it tries the provisioning file (``provision_file.py``); once enrolled, ``run``
builds the Agent and carries on in the same process. A claim code taken from a file is kept in
memory (never on disk, never in a log) while the server is unreachable, and dropped when the
server refuses it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

from osiris_core.errors import OsirisError
from osiris_core.files import write_private

from . import mac_enrol, provision_file
from .client import AuthRefused, ServerRefused, ServerUnreachable
from .config import AgentConfig
from .enroll import CONFIG_NAME, PINS_NAME, enroll

log = logging.getLogger("osiris_agent.firstboot")
CA_NAME = "server-ca.pem"


def is_enrolled(cfg: AgentConfig) -> bool:
    sd = Path(cfg.agent.state_dir)
    return all((sd / n).exists() for n in (CONFIG_NAME, PINS_NAME, "token"))


def effective(cfg: AgentConfig) -> AgentConfig:
    """The config to run with: the server CA stored from a provisioning file is trusted when
    ``server.ca_file`` is unset."""
    ca = Path(cfg.agent.state_dir) / CA_NAME
    if cfg.server.ca_file is None and ca.is_file():
        return dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, ca_file=str(ca)))
    return cfg


class FirstBoot:
    """One appliance waiting to be enrolled; :meth:`attempt` is one try of every way."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.sd = Path(cfg.agent.state_dir)
        self.pending: tuple[str, str | None] | None = None  # (claim code, ca file)
        self.announced = False

    def _from_file(self) -> None:
        path = provision_file.find(self.cfg.enrolment.provision_dirs)
        if path is None:
            return
        try:
            prov = provision_file.parse(path, provision_file.take(path), self.cfg.server.url)
        except provision_file.ProvisionFileError as e:
            log.error("provisioning file refused (wiped): %s", e)
            return
        ca = self.cfg.server.ca_file
        if ca is None and prov.server_ca is not None:
            write_private(self.sd / CA_NAME, prov.server_ca.encode("utf-8"))
            ca = str(self.sd / CA_NAME)
        log.warning("provisioning file %s read and wiped; enrolling with %s",
                    prov.path, self.cfg.server.url)  # fmt: skip
        self.pending = (prov.claim_code, ca)

    def _from_mac(self) -> None:
        try:
            secret = mac_enrol.load_or_create_secret(self.sd)
        except (OsirisError, OSError) as e:
            log.error("MAC enrolment disabled: %s", e)
            return
        if not self.announced:
            log.warning("MAC enrolment: requester fingerprint %s (an operator approves exactly "
                        "this)", mac_enrol.fingerprint(secret))  # fmt: skip
            self.announced = True
        ca = effective(self.cfg).server.ca_file
        try:
            code = mac_enrol.poll(self.cfg.server.url, ca, secret)
        except (OsirisError, OSError) as e:
            log.warning("MAC enrolment: %s; will retry", e)
            return
        if code is not None:
            self.pending = (code, ca)

    def _enroll_pending(self) -> bool:
        if self.pending is None:
            return False
        code, ca = self.pending
        try:
            r = enroll(self.cfg.server.url, code, self.sd, lab=self.cfg.agent.lab, ca_file=ca)
        except ServerUnreachable as e:
            log.warning("enrolment: server unreachable (%s); will retry", e)
            return False
        except (AuthRefused, ServerRefused) as e:
            log.error("enrolment: the server refused the claim code: %s", e)
        except (OsirisError, OSError) as e:
            log.error("enrolment failed: %s", e)
        else:
            q = "; quarantined until an admin confirms it" if r.quarantined else ""
            log.warning("enrolled as %s (site %s)%s", r.appliance_id, r.site_id, q)
            self.pending = None
            return True
        self.pending = None
        return False

    def attempt(self) -> bool:
        """True once the state dir is enrolled."""
        if is_enrolled(self.cfg):
            return True
        self.sd.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.pending is None:
            self._from_file()
        if self.pending is None and self.cfg.enrolment.mac_poll:
            self._from_mac()
        return self._enroll_pending() or is_enrolled(self.cfg)


def wait_enrolled(cfg: AgentConfig, stop: threading.Event) -> AgentConfig | None:
    """Block until enrolled (the config to run with) or ``stop`` (None)."""
    fb = FirstBoot(cfg)
    log.warning("not enrolled: first-boot mode (provisioning file in %s%s)",
                ", ".join(cfg.enrolment.provision_dirs) or "no directory",
                "; MAC approval" if cfg.enrolment.mac_poll else "")  # fmt: skip
    while not stop.is_set():
        if fb.attempt():
            return effective(cfg)
        stop.wait(cfg.enrolment.poll_interval_s)
    return None
