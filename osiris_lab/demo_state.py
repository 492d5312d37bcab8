"""What one ``osiris demo`` records about itself, and the demo's one error.

``DATA/demo.json`` (0600: it holds the admin token and the lab passwords) names every child the
demo started, so a later ``osiris demo --keep`` or ``osiris demo chaos`` can find them; kept
apart from the orchestration (``demo.py``) because the summary and the console read it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from osiris_core.errors import OsirisError
from osiris_core.files import write_private

MARKER = "demo.json"


class DemoError(OsirisError):
    """Something the operator must fix (a port taken, a child that died); one clear line."""

    code = "E_DEMO"


def write_secret(path: Path, text: str) -> None:
    write_private(path, text.encode("utf-8"))


@dataclass
class DemoState:
    """What the demo records in DATA/demo.json (0600): enough to find and stop everything."""

    data: Path
    server_url: str = ""
    admin_token: str = ""
    control_url: str = ""
    control_token: str = ""
    partner_id: str = ""
    sites: list[str] = field(default_factory=list)
    appliances: dict[str, str] = field(default_factory=dict)  # site -> appliance id
    passwords: dict[str, str] = field(default_factory=dict)  # "site/host" -> lab password
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Path) -> DemoState:
        raw = json.loads((data / MARKER).read_text())
        return cls(data=data, **{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def save(self) -> None:
        body = {k: v for k, v in self.__dict__.items() if k != "data"}
        write_secret(self.data / MARKER, json.dumps(body, indent=2, sort_keys=True) + "\n")


@dataclass
class Options:
    data: Path
    keep: bool = False
    headless: bool = False
    seconds: int = 60
    port: int = 0
    linux: bool = True  # a Linux lab host over a real local sshd, where the machine allows
    chaos: bool = True
    as_json: bool = False
    # HOST:PORT of an SMTP sink (e.g. a local aiosmtpd) the demo's server mails alerts to
    smtp: str = ""
