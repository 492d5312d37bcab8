"""AgentConfig: the one schema behind ``/etc/osiris/agent.toml`` and the NixOS module's options.

Why one table-driven schema: an earlier implementation had three config readers that disagreed
(lessons.md A1, A4) — a jitter percent read as a fraction, constructors nobody could call. Here
every key is declared once in :data:`OPTIONS` (``config_schema.py``) with its type, bounds,
default and description; parsing and validation (here), :func:`to_toml`, :func:`schema` (for
the NixOS module) and the user docs (:func:`render_docs` -> ``docs/agent-config.md``, both in
``config_docs.py``) are all derived from that table, and a test keeps the checked-in docs in
sync. This module holds the typed config and reading, validating and writing the file.

Every problem is a :class:`ConfigError` naming the dotted key, so the CLI can print
``osiris-agent: config error: <key>: <why>`` and exit 2 instead of a stack trace.
"""

from __future__ import annotations

import difflib
import math
import os
import random
import sys
import tomllib
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from osiris_agent.config_docs import render_docs, schema
from osiris_agent.config_schema import (
    DEFAULT_PATH,
    LOCAL_HOSTS,
    MIN_SCAN_INTERVAL_S,
    OPTIONS,
    SECTIONS,
    WEEKDAYS,
    ConfigError,
    Derived,
    Option,
    toml_value,
)
from osiris_agent.config_sections import (
    SECTION_TYPES,
    AgentSection,
    DeploymentConfig,
    EgressConfig,
    EnrolmentConfig,
    EvidenceConfig,
    HealingConfig,
    NtpConfig,
    OutboxConfig,
    ResellerConfig,
    ServerConfig,
    WindowConfig,
)

__all__ = [
    "ServerConfig",
    "AgentSection",
    "WindowConfig",
    "DeploymentConfig",
    "ResellerConfig",
    "NtpConfig",
    "EvidenceConfig",
    "OutboxConfig",
    "HealingConfig",
    "EgressConfig",
    "EnrolmentConfig",
    "SECTION_TYPES",
    "DEFAULT_PATH",
    "LOCAL_HOSTS",
    "MIN_SCAN_INTERVAL_S",
    "OPTIONS",
    "SECTIONS",
    "WEEKDAYS",
    "AgentConfig",
    "ConfigError",
    "Derived",
    "Option",
    "load_config",
    "render_docs",
    "schema",
    "to_toml",
]

# --- the typed config: sections in config_sections.py ------------------------------------


@dataclass(frozen=True)
class AgentConfig:
    """A validated agent configuration; build it with :meth:`from_dict` or :func:`load_config`."""

    server: ServerConfig
    agent: AgentSection
    window: WindowConfig
    deployment: DeploymentConfig
    reseller: ResellerConfig
    ntp: NtpConfig
    evidence: EvidenceConfig
    outbox: OutboxConfig
    healing: HealingConfig
    enrolment: EnrolmentConfig
    egress: EgressConfig

    @classmethod
    def from_dict(cls, d: Any) -> AgentConfig:
        """Validate a parsed TOML document (sections of keys) and fill in defaults."""
        if not isinstance(d, dict):
            raise ConfigError("(config)", "expected a table of sections")
        for section, body in d.items():
            if section not in SECTIONS:
                raise ConfigError(str(section), "unknown section" + _hint(section, SECTIONS))
            if not isinstance(body, dict):
                raise ConfigError(section, f"expected a table [{section}], got {_tname(body)}")
            names = [o.name for o in OPTIONS if o.section == section]
            for name in body:
                if name not in names:
                    raise ConfigError(f"{section}.{name}", "unknown key" + _hint(name, names))
        values: dict[str, Any] = {}
        for opt in OPTIONS:
            body = d.get(opt.section, {})
            if opt.name in body:
                values[opt.key] = _validate(opt, body[opt.name])
            elif opt.required:
                raise ConfigError(opt.key, "required")
            elif isinstance(opt.default, Derived):
                values[opt.key] = os.path.join(values[opt.default.of], opt.default.name)
            elif isinstance(opt.default, list):
                values[opt.key] = tuple(opt.default)
            else:
                values[opt.key] = opt.default
        _cross_check(values)
        sections = {
            name: typ(**{f.name: values[f"{name}.{f.name}"] for f in fields(typ)})
            for name, typ in SECTION_TYPES.items()
        }
        return cls(**sections)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Sections of plain TOML values; unset optional keys are left out."""
        out: dict[str, dict[str, Any]] = {}
        for opt in OPTIONS:
            value = getattr(getattr(self, opt.section), opt.name)
            if value is None:
                continue
            out.setdefault(opt.section, {})[opt.name] = (
                list(value) if isinstance(value, tuple) else value
            )
        return out

    def jittered_interval(
        self, rng: random.Random | None = None, base: float | None = None
    ) -> float:
        """The next wait in seconds: ``base`` (default the check-in interval) ± jitter_pct %.

        ``jitter_pct`` is a percent (lessons A4: reading 10 as a fraction gave waits of
        -540..+660 s and a spinning loop). The result always lies in
        ``[base·(1-p/100), base·(1+p/100)]`` and is never negative.
        """
        b = float(self.agent.checkin_interval_s if base is None else base)
        if not math.isfinite(b) or b <= 0:
            return 0.0
        p = self.agent.jitter_pct / 100.0
        r = (rng or random).random()  # [0, 1)
        lo, hi = b * (1.0 - p), b * (1.0 + p)
        return min(max(b * (1.0 + p * (2.0 * r - 1.0)), lo, 0.0), hi)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.window.timezone)

    def in_maintenance_window(self, now: datetime) -> bool:
        """Is the aware instant ``now`` inside the maintenance window?

        The window opens on each listed day at ``start`` local time (in ``window.timezone``) and
        lasts ``duration_min`` elapsed minutes, so a window may run past midnight into a day that
        is not listed. Start inclusive, end exclusive. Lessons A3: an earlier version was called
        with the wrong arguments and always said False — this one takes just the instant.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("in_maintenance_window needs a timezone-aware datetime")
        w = self.window
        if not w.days:
            return False
        tz = self.tz
        hour, minute = (int(x) for x in w.start.split(":"))
        length = timedelta(minutes=w.duration_min)
        instant = now.astimezone(UTC)
        today = now.astimezone(tz).date()
        # A window of at most 24 h (+1 h of DST) can only have opened today, yesterday or the day
        # before.
        for back in range(3):
            day = today - timedelta(days=back)
            if WEEKDAYS[day.weekday()] not in w.days:
                continue
            opens = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
            if opens <= instant < opens + length:
                return True
        return False


def _hint(word: Any, options: Any) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tname(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _validate(opt: Option, value: Any) -> Any:
    """Type, bounds, choices and the option's own check; returns the value to store."""
    k = opt.kind
    if k == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(opt.key, f"expected an integer, got {_tname(value)}")
    if k == "bool" and not isinstance(value, bool):
        raise ConfigError(opt.key, f"expected true or false, got {_tname(value)}")
    if k == "str" and not isinstance(value, str):
        raise ConfigError(opt.key, f"expected a string, got {_tname(value)}")
    if k == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(opt.key, "expected a list of strings")
        value = tuple(value)
    if (opt.lo is not None and value < opt.lo) or (opt.hi is not None and value > opt.hi):
        raise ConfigError(opt.key, f"must be between {opt.lo} and {opt.hi}, got {value}")
    if opt.choices is not None and value not in opt.choices:
        raise ConfigError(opt.key, f"must be one of {', '.join(opt.choices)}, got {value!r}")
    if opt.check is not None:
        why = opt.check(list(value) if isinstance(value, tuple) else value)
        if why:
            raise ConfigError(opt.key, why)
    return value


def _cross_check(v: dict[str, Any]) -> None:
    """Rules that involve more than one key."""
    for key in ("server.url", "reseller.webhook_url", "healing.l2_base_url"):
        url = v[key]
        if url is None or not url.startswith("http:"):
            continue
        if urlsplit(url).hostname not in LOCAL_HOSTS and not v["agent.lab"]:
            raise ConfigError(
                key, "plain http:// is allowed only to 127.0.0.1/localhost or with agent.lab = true"
            )
    scan = v["agent.scan_interval_s"]
    if scan is not None and scan < MIN_SCAN_INTERVAL_S and not v["agent.lab"]:
        raise ConfigError(
            "agent.scan_interval_s",
            f"must be at least {MIN_SCAN_INTERVAL_S} (shorter only with agent.lab = true), "
            f"got {scan}",
        )
    if v["deployment.mode"] == "reseller" and not v["deployment.reseller_id"]:
        raise ConfigError("deployment.reseller_id", "required when deployment.mode = 'reseller'")
    if v["ntp.min_good"] > len(v["ntp.servers"]):
        raise ConfigError(
            "ntp.min_good",
            f"is {v['ntp.min_good']} but only {len(v['ntp.servers'])} ntp.servers are listed",
        )
    if v["healing.l2_enabled"]:
        for key in ("healing.l2_base_url", "healing.l2_model"):
            if not v[key]:
                raise ConfigError(key, "required when healing.l2_enabled = true")


# --- files ------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] = DEFAULT_PATH) -> AgentConfig:
    """Read and validate a TOML config file; every failure is a :class:`ConfigError`."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(where, "no such file") from None
    except OSError as e:
        raise ConfigError(where, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(where, "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(where, f"invalid TOML: {e}") from None
    return AgentConfig.from_dict(doc)


def to_toml(cfg: AgentConfig) -> str:
    """The config as a TOML document that :func:`load_config` reads back to an equal config."""
    lines = [
        "# osiris-agent configuration; keys are documented in docs/agent-config.md.",
    ]
    for section, body in cfg.to_dict().items():
        lines.append("")
        lines.append(f"[{section}]")
        for name, value in body.items():
            lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m osiris_agent.config --docs`` prints the docs; ``--check FILE`` validates."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--docs"]:
        sys.stdout.write(render_docs())
        return 0
    if len(args) == 2 and args[0] == "--check":
        try:
            load_config(args[1])
        except ConfigError as e:
            sys.stderr.write(f"osiris-agent: config error: {e}\n")
            return 2
        return 0
    sys.stderr.write("usage: python -m osiris_agent.config --docs | --check FILE\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
