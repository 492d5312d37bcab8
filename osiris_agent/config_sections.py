"""The typed sections of ``agent.toml``, one frozen dataclass per ``[section]``.

Why a module of their own: they are plain data, named field for field after the schema table
(``config_schema.py``); ``config.py`` fills them and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerConfig:
    url: str
    ca_file: str | None
    client_cert: str | None
    client_key: str | None


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
    switch_command: tuple[str, ...]
    update_health_checkins: int
    update_guard_deadline_s: int
    lab: bool
    status_dir: str


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


@dataclass(frozen=True)
class EnrolmentConfig:
    provision_dirs: tuple[str, ...]
    mac_poll: bool
    poll_interval_s: int


@dataclass(frozen=True)
class EgressConfig:
    hosts: tuple[str, ...]
    refresh_interval_s: int
    entry_timeout_s: int
    resolvers: tuple[str, ...]


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
    "enrolment": EnrolmentConfig,
    "egress": EgressConfig,
}
