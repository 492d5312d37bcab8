"""The agent config schema: every key of ``agent.toml`` declared once, in :data:`OPTIONS`.

Why a table of its own: parsing and validation (``config.py``), :func:`~.config.to_toml`,
the NixOS module's options and the user docs (``config_docs.py``) are all derived from this one
table (lessons.md A1, A4: three readers that disagreed). This module holds only the table, the
per-value checks it names, and how a value is written in TOML; it imports nothing of the agent
but the NTP server syntax.

Why this file is long: the table is the whole schema (one entry per key, its doc text beside
it); splitting it by section would put one contract in several places.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from osiris_agent.ntp import split_server
from osiris_core import ids
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


def _check_ips(value: list[str]) -> str | None:
    import ipaddress

    for v in value:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            return f"not an IP address: {v!r} (resolvers are addresses, never names)"
    return None


def _check_paths(value: list[str]) -> str | None:
    return next((e for e in map(_check_path, value) if e), None)


def _check_hosts(value: list[str]) -> str | None:
    for v in value:
        if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.?)*", v):
            return f"not a host name: {v!r}"
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


def _check_switch_command(value: list[str]) -> str | None:
    if value and not os.path.isabs(value[0]):
        return "the switch command's program must be an absolute path"
    if any(not s or "\x00" in s for s in value):
        return "the switch command holds an empty or NUL argument"
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
    ok = ids.RESELLER_ID.match(value)  # the one grammar (osiris_core.ids)
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
    Option("server", "client_cert", "str", None,
           "PEM client certificate presented to the server (mTLS). Unset: "
           "`<state_dir>/client.pem` if enrolment wrote one, else none.",
           "absolute path", check=_check_path),
    Option("server", "client_key", "str", None,
           "Private key of `client_cert` (mode 0600, checked). Unset: `<state_dir>/client.key`.",
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
    Option("agent", "switch_command", "list", [],
           "How an `update_agent` order switches the appliance. Empty (NixOS): the agent writes "
           "the switch request and starts the root unit `osiris-switch-system.service`, which "
           "re-checks the release signature. Otherwise a program (and its first arguments) "
           "speaking the same protocol: `switch REQUEST`, `current`, `health` — only the lab's "
           "stand-in switch (`python -m osiris_lab.standin_switch`) does, for demos and tests.",
           "list of strings", check=_check_switch_command),
    Option("agent", "update_health_checkins", "int", 3,
           "After an update's switch, this many failed check-ins IN A ROW roll it back (fewer "
           "are tolerated and logged: a network blip must not undo an update). Cycle errors or a "
           "wrong version roll back at once. 1 = roll back at the first failed check-in.",
           lo=1, hi=100),
    Option("agent", "update_guard_deadline_s", "int", 900,
           "Seconds the ROOT update guard (`osiris-update-guard.timer` on NixOS) waits for the "
           "new agent to confirm a healthy cycle after a switch before it rolls back to the "
           "system recorded before it (a build whose agent cannot even start). Keep it above "
           "`update_health_checkins` check-in intervals.", lo=60, hi=86400),
    Option("agent", "lab", "bool", False,
           "Lab/demo mode: allows plain http:// URLs to hosts other than localhost. "
           "Never set on a clinic appliance."),
    Option("agent", "status_dir", "str", Derived("agent.state_dir", "status"),
           "Where the agent publishes `status.json`, the read-only snapshot `osiris tui --local` "
           "shows (no key, token or credential; group-readable).",
           "absolute path", check=_check_path),
    # [enrolment]
    Option("enrolment", "provision_dirs", "list", [],
           "Directories searched for `osiris-provision.toml` (a USB stick) while not enrolled; "
           "the file is read once, then wiped.", "list of absolute paths", check=_check_paths),
    Option("enrolment", "mac_poll", "bool", False,
           "While not enrolled, poll `GET /provision/{mac}` until an operator approves this "
           "appliance's requester fingerprint."),
    Option("enrolment", "poll_interval_s", "int", 60,
           "Seconds between first-boot enrolment attempts.", lo=5, hi=3600),
    # [egress]
    Option("egress", "hosts", "list", [],
           "Host names the agent resolves (through `resolvers` only) into the allowlist's nft "
           "sets; a failed refresh keeps the old set and raises an alert.",
           "list of host names", check=_check_hosts),
    Option("egress", "refresh_interval_s", "int", 900,
           "Seconds between allowlist refreshes.", lo=60, hi=86400),
    Option("egress", "entry_timeout_s", "int", 3600,
           "Lifetime of a resolved address in the allowlist: a DNS outage longer than this "
           "closes the host (fail closed).", lo=300, hi=7 * 86400),
    Option("egress", "resolvers", "list", [],
           "The clinic's DNS resolvers (IP addresses): the only DNS destinations the NixOS "
           "module's egress allowlist permits, and the system's nameservers.",
           "list of IP addresses", check=_check_ips),
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
    "enrolment": "First-boot enrolment (provisioning file, MAC approval) while not enrolled.",
    "egress": "The appliance's egress allowlist (enforced by the NixOS module's nftables table).",
}

_BY_KEY = {o.key: o for o in OPTIONS}


# --- TOML values ------------------------------------------------------------------------------


def toml_str(s: str) -> str:
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


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
