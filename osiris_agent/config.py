"""AgentConfig: the one schema behind ``/etc/osiris/agent.toml`` and the NixOS module's options.

Why one table-driven schema: an earlier implementation had three config readers that disagreed
(lessons.md A1, A4) — a jitter percent read as a fraction, constructors nobody could call. Here
every key is declared once in :data:`OPTIONS` with its type, bounds, default and description;
parsing, validation, :func:`to_toml`, :func:`schema` (for the NixOS module) and the user docs
(:func:`render_docs` -> ``docs/agent-config.md``) are all derived from that table, and a test
keeps the checked-in docs in sync.

Every problem is a :class:`ConfigError` naming the dotted key, so the CLI can print
``osiris-agent: config error: <key>: <why>`` and exit 2 instead of a stack trace.
"""

from __future__ import annotations

import difflib
import math
import os
import random
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from osiris_agent.ntp import split_server
from osiris_core.errors import ExitCode, OsirisError

DEFAULT_PATH = "/etc/osiris/agent.toml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A clinic host should not be probed more often than once a minute per check; the lab (demo)
# may go down to the schema's lower bound so a short demo sees drift found and healed.
MIN_SCAN_INTERVAL_S = 60


class ConfigError(OsirisError):
    """A config value that is missing, unknown, mistyped or out of range; ``.key`` names it."""

    code = "E_CONFIG"
    exit_code = ExitCode.USAGE  # a local file this binary cannot use (exit 2)

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key
        self.why = why


# --- the schema -------------------------------------------------------------------------------

_REQUIRED = object()


@dataclass(frozen=True)
class Derived:
    """A default computed from another option: ``os.path.join(<of>, name)``."""

    of: str
    name: str


@dataclass(frozen=True)
class Option:
    """One config key. ``kind`` is the TOML type; ``check`` returns an error text or None."""

    section: str
    name: str
    kind: str  # "str" | "int" | "bool" | "list"
    default: Any
    doc: str
    doc_type: str = ""
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def optional(self) -> bool:
        """May be left unset (TOML has no null: the key is simply absent)."""
        return self.default is None


def _check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.scheme not in ("https", "http"):
        return f"must be an https:// URL, got scheme {parts.scheme or 'none'!r}"
    if not parts.hostname:
        return "URL has no host"
    if parts.username is not None or parts.password is not None:
        return "URL must not carry credentials"
    if parts.fragment or parts.query:
        return "URL must not have a query or fragment"
    if port == 0:
        return "URL port must be 1..65535"
    return None


def _check_path(value: str) -> str | None:
    if not value.startswith("/"):
        return f"must be an absolute path, got {value!r}"
    if "\x00" in value:
        return "path contains a NUL byte"
    return None


def _check_hhmm(value: str) -> str | None:
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    return None if m else f"must be HH:MM (24-hour), got {value!r}"


def _check_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown IANA time zone {value!r}"
    return None


def _check_days(value: list[str]) -> str | None:
    for d in value:
        if d not in WEEKDAYS:
            return f"unknown day {d!r}; use {', '.join(WEEKDAYS)}"
    if len(set(value)) != len(value):
        return "a day is listed twice"
    return None


def _check_ntp_servers(value: list[str]) -> str | None:
    if not value:
        return "list at least one NTP server"
    for s in value:
        try:
            host, _port = split_server(s)
        except ValueError as e:
            return str(e)
        if not re.fullmatch(r"[A-Za-z0-9.\-:]+", host):
            return f"bad NTP server host {s!r}"
    return None


def _check_syslog(value: str) -> str | None:
    m = re.fullmatch(r"(udp|tcp)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?", value)
    if not m:
        return f"must be udp://host[:port] or tcp://host[:port], got {value!r}"
    if m.group(3) is not None and not 0 < int(m.group(3)) < 65536:
        return "port must be 1..65535"
    return None


def _check_ident(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value)
    return None if ok else "must be 1-64 letters, digits, '.', '_' or '-'"


def _check_nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


_URL_RULE = "http:// only to 127.0.0.1/localhost or with agent.lab = true."

OPTIONS: tuple[Option, ...] = (
    # [server]
    Option("server", "url", "str", _REQUIRED,
           "Central Command base URL (the agent only ever connects out to it). " + _URL_RULE,
           "https URL", check=_check_url),
    Option("server", "ca_file", "str", None,
           "PEM bundle of CAs trusted for the server's TLS certificate; unset = system CAs.",
           "absolute path", check=_check_path),
    # [agent]
    Option("agent", "state_dir", "str", "/var/lib/osiris",
           "Directory holding keys, token, outbox, evidence chain and receipts (mode 0700).",
           "absolute path", check=_check_path),
    Option("agent", "key_file", "str", Derived("agent.state_dir", "appliance.key"),
           "Ed25519 key that signs evidence (written by `osiris-agent enroll`, mode 0600).",
           "absolute path", check=_check_path),
    Option("agent", "cosign_key_file", "str", Derived("agent.state_dir", "cosign.key"),
           "Separate Ed25519 key with which the appliance cosigns log checkpoints as a witness.",
           "absolute path", check=_check_path),
    Option("agent", "token_file", "str", Derived("agent.state_dir", "token"),
           "Appliance bearer token (`oak_…`) received at enrollment, mode 0600.",
           "absolute path", check=_check_path),
    Option("agent", "checkin_interval_s", "int", 60,
           "Seconds between check-ins (the server may ask for sooner while orders wait).",
           lo=5, hi=86400),
    Option("agent", "jitter_pct", "int", 10,
           "Random spread of each wait, in PERCENT of the interval (10 = ±10 %, so 60 s becomes "
           "54..66 s). Keeps a fleet from checking in in lockstep.",
           lo=0, hi=50),
    Option("agent", "order_ttl_s", "int", 900,
           "Longest order lifetime the agent accepts; older orders are discarded as `expired`.",
           lo=60, hi=86400),
    Option("agent", "scan_interval_s", "int", None,
           "Seconds between drift scans of each check on every target. Unset = the catalogue's "
           "own cadence (300 s per check, 3600 s for patching). At least 60 (at least 5 with "
           "`agent.lab = true`, for demos).", lo=5, hi=86400),
    Option("agent", "lab", "bool", False,
           "Lab/demo mode: allows plain http:// URLs to hosts other than localhost. "
           "Never set on a clinic appliance."),
    # [window]
    Option("window", "days", "list", list(WEEKDAYS),
           "Days on which the maintenance window opens (`mon` … `sun`); empty = never.",
           "list of days", check=_check_days),
    Option("window", "start", "str", "02:00",
           "Local wall-clock time at which the window opens, in `window.timezone`. A start "
           "skipped by a DST jump opens the window by the jump later; a repeated one, at its "
           "first occurrence.", "HH:MM", check=_check_hhmm),
    Option("window", "duration_min", "int", 120,
           "Length of the window in elapsed minutes; it may run past midnight into the next day.",
           lo=1, hi=1440),
    Option("window", "timezone", "str", "UTC",
           "IANA time zone of the clinic, e.g. `America/New_York`.",
           "IANA time zone", check=_check_timezone),
    Option("window", "allow_disruptive_outside", "bool", False,
           "Run disruptive orders and runbooks outside the window instead of deferring them."),
    # [deployment]
    Option("deployment", "mode", "str", "direct",
           "`direct` (the MSP runs the server) or `reseller` (a reseller operates the site).",
           choices=("direct", "reseller")),
    Option("deployment", "reseller_id", "str", None,
           "Reseller identifier recorded in every evidence bundle; required in reseller mode.",
           check=_check_ident),
    # [reseller]
    Option("reseller", "syslog_target", "str", None,
           "Also send alerts as syslog to `udp://host[:port]` or `tcp://host[:port]` "
           "(default port 514).",
           "syslog URL", check=_check_syslog),
    Option("reseller", "webhook_url", "str", None,
           "Also POST alerts to the reseller's RMM webhook. " + _URL_RULE,
           "https URL", check=_check_url),
    # [ntp]
    Option("ntp", "servers", "list", ["time.cloudflare.com", "time.google.com", "pool.ntp.org"],
           "SNTP servers (`host` or `host:port`) queried before signing evidence.",
           "list of strings", check=_check_ntp_servers),
    Option("ntp", "max_skew_ms", "int", 5000,
           "Largest tolerated |median offset| of the local clock, in milliseconds.",
           lo=1, hi=3_600_000),
    Option("ntp", "min_good", "int", 2,
           "How many servers must give a valid answer for the clock to count as checked.",
           lo=1, hi=16),
    Option("ntp", "timeout_ms", "int", 2000,
           "How long to wait for each server's answer, in milliseconds.", lo=100, hi=30_000),
    # [evidence]
    Option("evidence", "keep_last", "int", 200,
           "Local evidence pruning keeps at least this many newest bundles.", lo=1, hi=10_000_000),
    Option("evidence", "min_age_days", "int", 90,
           "…and never prunes a bundle younger than this many days.", lo=0, hi=36_500),
    # [outbox]
    Option("outbox", "max_entries", "int", 100_000,
           "Most bundles the outbox holds while the server is unreachable.",
           lo=100, hi=100_000_000),
    Option("outbox", "max_bytes", "int", 1 << 30,
           "Most bytes of queued bundles (default 1 GiB).", lo=1 << 20, hi=1 << 40),
    # [healing]
    Option("healing", "l2_enabled", "bool", False,
           "Enable the L2 planner (an LLM proposes a catalogue runbook; guarded, never free "
           "shell). Needs `l2_base_url` and `l2_model`."),
    Option("healing", "l2_base_url", "str", None,
           "Base URL of the L2 model API. " + _URL_RULE, "https URL", check=_check_url),
    Option("healing", "l2_model", "str", None, "Model name sent to the L2 API.",
           check=_check_nonempty),
    Option("healing", "l2_key_file", "str", None,
           "File holding the L2 API key (mode 0600); unset for keyless local models.",
           "absolute path", check=_check_path),
    Option("healing", "l2_min_confidence", "int", 70,
           "Least confidence, in PERCENT, for an L2 plan to run; below it the issue escalates "
           "to L3.", lo=0, hi=100),
)  # fmt: skip

SECTIONS: dict[str, str] = {
    "server": "Where Central Command is and how to trust it.",
    "agent": "The agent's own files and timing.",
    "window": "The maintenance window during which disruptive actions may run.",
    "deployment": "Who operates the site.",
    "reseller": "Extra alert channels for reseller deployments.",
    "ntp": "Clock check before evidence is signed.",
    "evidence": "Local evidence retention (the server and transparency log keep everything).",
    "outbox": "The durable queue of evidence waiting to be sent.",
    "healing": "Optional L2 (LLM-planned) healing.",
}

_BY_KEY = {o.key: o for o in OPTIONS}


# --- the typed config -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    url: str
    ca_file: str | None


@dataclass(frozen=True)
class AgentSection:
    state_dir: str
    key_file: str
    cosign_key_file: str
    token_file: str
    checkin_interval_s: int
    jitter_pct: int
    order_ttl_s: int
    scan_interval_s: int | None
    lab: bool


@dataclass(frozen=True)
class WindowConfig:
    days: tuple[str, ...]
    start: str
    duration_min: int
    timezone: str
    allow_disruptive_outside: bool


@dataclass(frozen=True)
class DeploymentConfig:
    mode: str
    reseller_id: str | None


@dataclass(frozen=True)
class ResellerConfig:
    syslog_target: str | None
    webhook_url: str | None


@dataclass(frozen=True)
class NtpConfig:
    servers: tuple[str, ...]
    max_skew_ms: int
    min_good: int
    timeout_ms: int


@dataclass(frozen=True)
class EvidenceConfig:
    keep_last: int
    min_age_days: int


@dataclass(frozen=True)
class OutboxConfig:
    max_entries: int
    max_bytes: int


@dataclass(frozen=True)
class HealingConfig:
    l2_enabled: bool
    l2_base_url: str | None
    l2_model: str | None
    l2_key_file: str | None
    l2_min_confidence: int


SECTION_TYPES: dict[str, type] = {
    "server": ServerConfig,
    "agent": AgentSection,
    "window": WindowConfig,
    "deployment": DeploymentConfig,
    "reseller": ResellerConfig,
    "ntp": NtpConfig,
    "evidence": EvidenceConfig,
    "outbox": OutboxConfig,
    "healing": HealingConfig,
}


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


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(cfg: AgentConfig) -> str:
    """The config as a TOML document that :func:`load_config` reads back to an equal config."""
    lines = [
        "# osiris-agent configuration; keys are documented in docs/agent-config.md.",
    ]
    for section, body in cfg.to_dict().items():
        lines.append("")
        lines.append(f"[{section}]")
        for name, value in body.items():
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# --- documentation and the NixOS module ---------------------------------------------------------


def _doc_type(opt: Option) -> str:
    base = opt.doc_type or {"str": "string", "int": "integer", "bool": "boolean"}.get(
        opt.kind, "list of strings"
    )
    if opt.lo is not None:
        base += f" {opt.lo}..{opt.hi}"
    if opt.choices:
        base = " \\| ".join(f"`{c}`" for c in opt.choices)
    return base


def _doc_default(opt: Option) -> str:
    if opt.required:
        return "**required**"
    if opt.default is None:
        return "unset"
    if isinstance(opt.default, Derived):
        return f"`<{opt.default.of}>/{opt.default.name}`"
    return f"`{_toml_value(opt.default)}`"


def render_docs() -> str:
    """``docs/agent-config.md``: one markdown table per section, straight from :data:`OPTIONS`."""
    out = [
        "# Agent configuration (`/etc/osiris/agent.toml`)",
        "",
        "<!-- Generated from osiris_agent/config.py by `python -m osiris_agent.config --docs`;"
        " do not edit by hand (a test checks it is in sync). -->",
        "",
        "`osiris-agent run --config FILE` reads one TOML file (default",
        "`/etc/osiris/agent.toml`; `osiris-agent enroll` writes it). The NixOS module's options",
        "mirror these keys one to one.",
        "Unknown sections or keys, wrong types, out-of-range values, bad URLs and unknown time",
        "zones are refused at start with `osiris-agent: config error: <key>: <why>` and exit",
        'code 2. Keys that are "unset" by default are simply left out of the file.',
        "",
        "Minimal file:",
        "",
        "```toml",
        "[server]",
        'url = "https://cc.example-msp.com"',
        "```",
    ]
    for section, blurb in SECTIONS.items():
        out += ["", f"## `[{section}]`", "", blurb, ""]
        out += ["| Key | Type | Default | Description |", "|---|---|---|---|"]
        for opt in OPTIONS:
            if opt.section == section:
                doc = opt.doc.replace("|", "\\|")
                row = f"| `{opt.name}` | {_doc_type(opt)} | {_doc_default(opt)} | {doc} |"
                out.append(row)
    return "\n".join(out) + "\n"


def schema() -> list[dict[str, Any]]:
    """The schema as plain data (e.g. for generating the NixOS module's options)."""
    rows = []
    for opt in OPTIONS:
        default: Any = opt.default
        if opt.required:
            default = None
        elif isinstance(default, Derived):
            default = {"derived_from": default.of, "name": default.name}
        rows.append(
            {
                "key": opt.key,
                "type": opt.kind,
                "required": opt.required,
                "default": default,
                "min": opt.lo,
                "max": opt.hi,
                "choices": list(opt.choices) if opt.choices else None,
                "description": opt.doc,
            }
        )
    return rows


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
