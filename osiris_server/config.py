"""Server configuration: the data directory layout and ``server.toml``.

Everything the server needs lives under one data directory so that backup, permissions and
the NixOS module have a single path to care about:

    DATA/osiris.db         tenants, appliances, credentials (vault tokens), orders, audit
                           (the index; on PostgreSQL — ``db = "postgresql://…"`` in
                           server.toml or ``--db`` — it lives in that database instead)
    DATA/log.db            the transparency log (osiris_server.log)
    DATA/keys/log.key      checkpoint signing key (0600)
    DATA/keys/order.key    order and rules signing key (0600)
    DATA/keys/vault.keyring  credential master keys (0600; never inside a backup of the db)
    DATA/server.toml       this configuration (0600; refused when group or others have access:
                           it holds SMTP passwords and webhook secrets)

Every file osiris-server writes here is created 0600 (the database and the log with their
``-wal``/``-shm`` files, which SQLite creates with the database's mode) and backups too.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris_core.errors import ExitCode, OsirisError
from osiris_core.files import create_private
from osiris_server.alerts import SmtpConfig
from osiris_server.portal.config import PortalConfig
from osiris_server.portal.config import parse as parse_portal
from osiris_server.storage.url import is_postgres_url, redact_url
from osiris_server.tsa import TsaConfig, parse_config
from osiris_server.worm_config import WormConfig
from osiris_server.worm_config import parse as parse_worm


class ConfigError(OsirisError):
    code = "E_CONFIG"
    exit_code = ExitCode.USAGE  # a local file this binary cannot use (exit 2)


class ConfigPermissionError(ConfigError):
    """``server.toml`` that users other than its owner could read or change."""

    code = "E_CONFIG_PERMS"


@dataclass
class Webhook:
    url: str
    secret: bytes = field(repr=False)


@dataclass
class ServerConfig:
    data: Path
    origin: str
    order_key_name: str
    checkin_interval_s: int = 60
    order_checkin_s: int = 5
    max_body_bytes: int = 8 * 1024 * 1024
    # a packet zip (POST /sites/{id}/packets) may be far larger than any JSON body: a month of a
    # busy clinic is ~150 MB at 100,000 bundles (bench/packet.py); read into memory, so bounded
    max_packet_bytes: int = 512 * 1024 * 1024
    read_timeout_s: float = 30.0
    checkpoint_interval_s: float = 0.1  # <= 10 signatures/s; bounds receipt latency
    checkpoint_idle_s: float = 300.0
    auth_fail_limit: int = 20  # failures per presented credential (and per claim source)
    auth_fail_source_limit: int = 100  # failures per source address, any credentials
    auth_fail_window_s: float = 60.0
    max_connections: int = 1024
    max_connections_per_source: int = 64
    provision_rate_per_min: int = 30
    max_pending_macs: int = 1000
    smtp: SmtpConfig | None = None
    tsa: TsaConfig | None = None  # [tsa]: RFC 3161 timestamps of checkpoints (osiris_server/tsa.py)
    webhooks: list[Webhook] = field(default_factory=list)
    request_log: bool = True
    # the appliance watchdog's tick (osiris_server/watchdog.py); 0 turns it off in this process
    watchdog_tick_s: float = 30.0
    # alert routes (issue 16): webhooks to private/loopback addresses (SSRF guard off; a lab or
    # a PSA on the LAN on purpose), and the delivery retry schedule (api/alert_fanout.py)
    allow_private_webhooks: bool = False
    alert_retry_base_s: float = 30.0
    alert_retry_cap_s: float = 3600.0
    alert_max_attempts: int = 8
    alert_poll_s: float = 5.0
    # evidence retention (osiris_server/retention.py): nothing is pruned younger than this; HIPAA
    # (45 CFR 164.316(b)(2)(i)) asks for six years, so less is refused at startup
    retention_years: int = 6
    # None: the embedded SQLite index DATA/osiris.db; else a postgresql:// URL (never printed
    # with its password: storage.redact_url)
    db_url: str | None = field(default=None, repr=False)
    # [worm]: the WORM copy to S3 Object Lock (osiris_server/worm.py); None: off
    worm: WormConfig | None = None
    # [portal]: the clinic's read-only web portal (osiris_server/portal/); None: off
    portal: PortalConfig | None = None

    @property
    def db_path(self) -> Path:
        return self.data / "osiris.db"

    @property
    def log_path(self) -> Path:
        return self.data / "log.db"

    @property
    def keys_dir(self) -> Path:
        return self.data / "keys"

    @property
    def log_key_path(self) -> Path:
        return self.keys_dir / "log.key"

    @property
    def order_key_path(self) -> Path:
        return self.keys_dir / "order.key"

    @property
    def vault_path(self) -> Path:
        return self.keys_dir / "vault.keyring"


_SIMPLE = {
    "checkin_interval_s": int,
    "order_checkin_s": int,
    "max_body_bytes": int,
    "max_packet_bytes": int,
    "read_timeout_s": (int, float),
    "checkpoint_interval_s": (int, float),
    "checkpoint_idle_s": (int, float),
    "auth_fail_limit": int,
    "auth_fail_source_limit": int,
    "auth_fail_window_s": (int, float),
    "max_connections": int,
    "max_connections_per_source": int,
    "provision_rate_per_min": int,
    "max_pending_macs": int,
    "request_log": bool,
    "watchdog_tick_s": (int, float),
    "allow_private_webhooks": bool,
    "alert_retry_base_s": (int, float),
    "alert_retry_cap_s": (int, float),
    "alert_max_attempts": int,
    "alert_poll_s": (int, float),
    "retention_years": int,
}


def check_db_url(value: str | None, where: str = "--db") -> str | None:
    """``value`` if it is absent or a PostgreSQL URL; anything else is a usage error (exit 2).

    Why so strict: a typo (``postgress://``, a bare path) must not silently fall back to the
    embedded SQLite file and split one MSP's data over two stores. The message shows the value
    redacted, since a mistyped URL may still carry a password."""
    if value is None:
        return None
    if not isinstance(value, str) or not is_postgres_url(value):
        shown = redact_url(value) if isinstance(value, str) else type(value).__name__
        raise ConfigError(
            f"{where}: expected a postgresql:// or postgres:// URL (or nothing, for the "
            f"embedded SQLite database), got {shown!r}"
        )
    return value


def _read_private(path: Path, data: Path) -> str:
    """The text of ``path``, refused (``ConfigPermissionError``) when group or others have any
    access to it; the check is on the file actually read (fstat of the open descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found; run `osiris-server init --data {data}` first"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigPermissionError(
                f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: other users could read its "
                f"secrets or change it; fix with: chmod 600 {path}"
            )
        raw = f.read(1024 * 1024 + 1)
    if len(raw) > 1024 * 1024:
        raise ConfigError(f"{path} is larger than 1 MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load(data: str | Path, **overrides: Any) -> ServerConfig:
    """Read ``DATA/server.toml``; ``overrides`` (tests, CLI flags) win over the file."""
    data = Path(data)
    path = data / "server.toml"
    try:
        raw = tomllib.loads(_read_private(path, data))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        cfg = ServerConfig(data=data, origin=raw["origin"], order_key_name=raw["order_key_name"])
    except KeyError as exc:
        raise ConfigError(f"{path}: missing {exc.args[0]}") from None
    for key, typ in _SIMPLE.items():
        if key in raw:
            if not isinstance(raw[key], typ) or (typ is int and isinstance(raw[key], bool)):
                raise ConfigError(f"{path}: {key} has the wrong type")
            setattr(cfg, key, raw[key])
    if not 0 <= cfg.checkpoint_interval_s <= 1:
        # the log must publish a checkpoint at least once a second under load
        raise ConfigError(f"{path}: checkpoint_interval_s must be between 0 and 1 second")
    if cfg.checkpoint_idle_s <= 0 or cfg.checkpoint_idle_s > 300:
        raise ConfigError(f"{path}: checkpoint_idle_s must be in (0, 300] seconds")
    for key in (
        "auth_fail_limit",
        "auth_fail_source_limit",
        "max_connections",
        "max_connections_per_source",
    ):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{path}: {key} must be at least 1")
    if cfg.max_connections_per_source > cfg.max_connections:
        raise ConfigError(f"{path}: max_connections_per_source exceeds max_connections")
    if "smtp" in raw:
        s = raw["smtp"]
        try:
            cfg.smtp = SmtpConfig(
                host=s["host"],
                port=int(s.get("port", 587)),
                starttls=bool(s.get("starttls", True)),
                username=s.get("username"),
                password=s.get("password"),
                sender=s.get("sender", "osiris@localhost"),
                recipients=list(s.get("recipients", [])),
                timeout=float(s.get("timeout", 10.0)),
                cafile=s.get("cafile"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: bad [smtp] section ({exc})") from None
    if "tsa" in raw:
        try:
            cfg.tsa = parse_config(raw["tsa"], data)
        except ValueError as exc:
            raise ConfigError(f"{path}: bad [tsa] section ({exc})") from None
    for hook in raw.get("webhooks", []):
        try:
            cfg.webhooks.append(Webhook(url=hook["url"], secret=hook["secret"].encode()))
        except (KeyError, TypeError, AttributeError):
            raise ConfigError(f"{path}: each [[webhooks]] needs url and secret") from None
    if "worm" in raw:
        cfg.worm = parse_worm(raw["worm"], str(path))
    if "portal" in raw:
        try:
            cfg.portal = parse_portal(raw["portal"], str(path))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if cfg.smtp is None:
            raise ConfigError(f"{path}: [portal] needs [smtp]: sign-in links are mailed")
    if "db" in raw:
        cfg.db_url = check_db_url(raw["db"], f"{path}: db")
    for k, v in overrides.items():
        if k == "db_url" and v is None:
            continue  # no --db: server.toml's db (or SQLite) stays
        setattr(cfg, k, check_db_url(v) if k == "db_url" else v)
    if isinstance(cfg.retention_years, bool) or not isinstance(cfg.retention_years, int):
        raise ConfigError(f"{path}: retention_years must be a whole number of years")
    if cfg.retention_years < MIN_RETENTION_YEARS:
        raise ConfigError(
            f"{path}: retention_years = {cfg.retention_years} is below the "
            f"{MIN_RETENTION_YEARS} years HIPAA asks evidence to be kept; refusing to start"
        )
    return cfg


MIN_RETENTION_YEARS = 6


PRIVATE_DATA_FILES = ("osiris.db", "log.db")


def secure_data_files(data: Path, *, index: bool = True) -> list[str]:
    """Before the server opens its databases: create ``osiris.db``/``log.db`` 0600 if they do
    not exist yet, and take group/other access away from those and their ``-wal``/``-shm``
    files if a copy, restore or older version left them looser. Returns what was tightened.
    ``index=False``: the index is on PostgreSQL, so no ``osiris.db`` is created."""
    fixed: list[str] = []
    for name in PRIVATE_DATA_FILES:
        if name == "osiris.db" and not index and not (data / name).exists():
            continue
        main = data / name
        if not main.exists():
            try:
                create_private(main)
            except FileExistsError:  # another worker was first
                pass
        for p in (main, data / f"{name}-wal", data / f"{name}-shm"):
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
                os.chmod(p, 0o600)
                fixed.append(p.name)
    if fixed:
        try:
            sys.stderr.write(json.dumps({"event": "permissions_tightened", "files": fixed}) + "\n")
        except (OSError, ValueError):
            pass
    return fixed


def render(origin: str, order_key_name: str, db_url: str | None = None) -> str:
    """The ``server.toml`` written by ``init`` (comments explain the optional sections).
    ``db_url`` (``init --db``) is recorded so that ``serve --data DIR`` alone finds the
    database; the file is 0600 like every secret the server keeps."""
    db_line = (
        f"db = {json.dumps(check_db_url(db_url))}\n"
        if db_url
        else '# db = "postgresql://osiris:PASSWORD@db.example.com/osiris"  # else DATA/osiris.db\n'
    )
    return f"""# osiris-server configuration (see docs/server.md)
origin = "{origin}"
order_key_name = "{order_key_name}"
{db_line}checkin_interval_s = 60
# max_body_bytes = 8388608
# max_packet_bytes = 536870912   # a packet zip upload (POST /sites/{id}/packets) may be this big
# read_timeout_s = 30
# auth_fail_limit = 20              # failed authentications per presented token per window
# auth_fail_source_limit = 100      # ... and per source address (any tokens) per window
# auth_fail_window_s = 60
# max_connections = 1024
# max_connections_per_source = 64   # behind a reverse proxy, every client is the proxy: raise it
# watchdog_tick_s = 30        # how often the watchdog looks for silent appliances and hosts
# allow_private_webhooks = false   # alert routes may POST to private/loopback addresses
# alert_max_attempts = 8            # route deliveries: tries before a delivery is dead
# alert_retry_base_s = 30           # ... retried after 30 s, 60 s, 120 s, ... capped at
# alert_retry_cap_s = 3600
# retention_years = 6               # evidence kept at least this long (6 = HIPAA's floor)

# [smtp]                      # alert e-mail for critical incidents (STARTTLS by default)
# host = "smtp.example.com"
# port = 587
# username = "osiris"
# password = "..."
# sender = "osiris@example.com"
# recipients = ["noc@example.com"]

# [portal]                    # the clinic's read-only web portal (docs/portal.md); needs [smtp]
# url = "https://cc.example-msp.com/portal"   # public base of the mailed sign-in links
# link_ttl_min = 15           # a link works once, for at most 15 minutes
# session_idle_min = 30
# session_max_h = 12
# per_address_per_hour = 5    # sign-in requests per address, and per source address:
# per_source_per_hour = 30

# [tsa]                       # RFC 3161 timestamps of the log's checkpoints (docs/server.md)
# url = "http://timestamp.digicert.com"
# ca_file = "tsa-ca.pem"      # the TSA's PEM chain, pinned (relative to this data dir)
# cadence_s = 86400           # one token a day (and one at every packet build)

# [[webhooks]]                # signed (HMAC-SHA256) alert webhooks (fallback: sites without routes)
# url = "https://hooks.example.com/osiris"
# secret = "a long random string"
"""
