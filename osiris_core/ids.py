"""Every id kind and token format Osiris reads or writes, each defined once.

Why one table: the same id used to be spelled by six regexes in three variants that disagreed on
``/``, so a host the agent accepted could be refused by an order, and a site the evidence verifier
accepted could never have been created by the server. Every validator, spec and OpenAPI schema now
takes its pattern from here (``tests/core/test_ids.py`` fails on a copy elsewhere), and
``docs/api.md`` ("Id grammar") shows this table to API users.

The ``/`` decision, once per kind:

- ``HOST_ID`` allows ``/``: a host id names a machine the clinic already has (``dc01``,
  ``ws01.clinic.local``, ``10.0.0.5``, ``fe80::1``, ``admin@host``, ``CLINIC/dc01``), and it
  is written into signed evidence that must verify forever; the agent and the evidence verifier
  have always accepted ``/`` there, so narrowing it could fail an old packet.
- ``APPLIANCE_ID``, ``BUNDLE_ID`` and ``ORDER_REF`` refuse ``/``: an appliance
  id is part of its key name ``osiris/appliance/<id>`` and of URL paths, where a ``/`` would be
  ambiguous, and the others are minted by Osiris itself (uuids, ``app_<hex>``, labels).
- ``SITE_ID``, ``PARTNER_ID`` and ``RESELLER_ID`` (a partner id as the agent names it) refuse
  ``/``, ``:`` and ``@``: the server creates them (``[A-Za-z0-9][A-Za-z0-9._-]{0,62}``) and they
  appear in URL paths; a document naming any other site cannot be one the server made.

Catalogue authoring (``CATALOG_RUNBOOK_ID``, ``RULE_ID``) is stricter than what a signed document
may carry (``RUNBOOK_ID``): every catalogue id is a valid wire id, not the other way round, so a
newer server's runbook still passes an older agent's shape checks and is skipped by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from osiris_core.errors import SchemaError


@dataclass(frozen=True)
class IdKind:
    """One id kind: its name, its full-match regex (no anchors), its length limit, what it is."""

    name: str
    pattern: str
    max_len: int
    description: str
    example: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def match(self, value: Any) -> bool:
        """True if ``value`` is a string of this kind (never raises: for filters and guards)."""
        return (
            isinstance(value, str)
            and len(value) <= self.max_len
            and self.regex.fullmatch(value) is not None
        )

    def check(self, value: Any, path: str) -> str:
        """``value`` if it is of this kind; ``SchemaError`` naming the caller's dotted path."""
        if not self.match(value):
            raise SchemaError(f"{path} has an invalid format")
        return value


_OPAQUE = r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"  # minted ids: no "/" (key names, URL paths)
_SERVER_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}"  # server-created names: URL-path safe

# ---------------------------------------------------------------- ids of things

HOST_ID = IdKind(
    "host_id",
    r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}",
    128,
    "a managed machine: hostname, FQDN, IP literal, user@host or DOMAIN/host",
    "ws01.clinic.local",
)
APPLIANCE_ID = IdKind(
    "appliance_id",
    _OPAQUE,
    128,
    "an appliance (server-minted app_<hex>)",
    "app_3f9c2e17a0b4d5e6f7a8",
)
SITE_ID = IdKind("site_id", _SERVER_NAME, 63, "a clinic site, created by the server", "site-00")
PARTNER_ID = IdKind("partner_id", _SERVER_NAME, 63, "a partner (reseller account)", "acme-it")
BUNDLE_ID = IdKind(
    "bundle_id",
    _OPAQUE,
    128,
    "an evidence bundle (a uuid4)",
    "5f0c9d2e-8b1a-4c3d-9e7f-0a1b2c3d4e5f",
)
ORDER_REF = IdKind(
    "order_ref", _OPAQUE, 128, "an order id as evidence records it (even a refused one)", "ord-1"
)
# The server's partner id as the agent's config and every bundle name it (osiris_core.partner):
# 64 long, so each id the agent's config ever accepted still verifies; partner ids fit in it.
RESELLER_ID = IdKind(
    "reseller_id",
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    64,
    "the reseller (the server's partner id) named in evidence",
    "acme-it",
)
ORDER_ID = IdKind(
    "order_id",
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    36,
    "an order the server signs (a lowercase uuid4)",
    "0b6f2c1e-6a0d-4e8e-9f5c-2d8a1b7c3e40",
)

# ---------------------------------------------------------------- ids of catalogue entries

CHECK_ID = IdKind("check_id", r"[a-z][a-z0-9_]{0,63}", 64, "a catalogue check", "linux_ssh")
RUNBOOK_ID = IdKind(
    "runbook_id",
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
    64,
    "a runbook as a signed document names it",
    "RB-WIN-FIREWALL-001",
)
CATALOG_RUNBOOK_ID = IdKind(
    "catalog_runbook_id",
    r"(RB-(WIN|NIX)|LIN)-[A-Z]+-[0-9]{3}",
    64,
    "a runbook the catalogue defines (a strict subset of runbook_id)",
    "LIN-SSH-001",
)
RULE_ID = IdKind("rule_id", r"L1-[A-Z0-9]+(-[A-Z0-9]+)*", 64, "an L1 rule", "L1-WIN-FIREWALL-001")
PARAM_NAME = IdKind("param_name", r"[a-z][a-z0-9_]{0,39}", 40, "a runbook parameter", "port")
ORDER_PARAM_NAME = IdKind(
    "order_param_name",
    r"[A-Za-z][A-Za-z0-9_]{0,63}",
    64,
    "a run_runbook order's script parameter (PowerShell case allowed)",
    "Profile",
)

CITATION = IdKind(
    "citation",
    r"164\.[0-9]{3}(\([0-9a-zA-Z]+\))*",
    64,
    "a HIPAA Security Rule citation as evidence records it",
    "164.312(b)",
)
CATALOG_CITATION = IdKind(
    "catalog_citation",
    r"164\.(308|310|312|316)(\([0-9a-zA-Z]+\))+",
    64,
    "a citation the catalogue maps a check to (a strict subset of citation)",
    "164.312(a)(1)",
)

# ---------------------------------------------------------------- keys, hashes, paths, labels

KEY_ID = IdKind("key_id", r"[0-9a-f]{8}", 8, "a C2SP/note key id (8 hex)", "0a1b2c3d")
HASH = IdKind("hash", r"sha256:[0-9a-f]{64}", 71, "a bundle or rule-set hash", "sha256:" + "0" * 64)
HEX64 = IdKind("hex64", r"[0-9a-f]{64}", 64, "a bare SHA-256 digest (lowercase hex)", "0" * 64)
STORE_PATH = IdKind(
    "store_path",
    r"/nix/store/[0-9a-z]{32}-[A-Za-z0-9+._?=-]{1,180}",
    224,
    "a Nix store path",
    "/nix/store/" + "a" * 32 + "-osiris-system",
)
RELEASE_NAME = IdKind(
    "release_name", r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", 64, "a release label", "2026.12.1"
)
AGENT_VERSION = IdKind(
    "agent_version", r"[0-9A-Za-z][0-9A-Za-z.+-]{0,63}", 64, "an agent version", "0.9.1"
)
RELEASE_VERSION = IdKind(
    "release_version",
    r"[0-9]{1,6}(?:\.[0-9]{1,6}){1,3}(?:[-+][0-9A-Za-z.]{1,32})?",
    64,
    "the agent version an update_agent order names: 1.2.3, optionally -pre or +build",
    "0.2.0",
)
HOSTNAME = IdKind(
    "hostname",
    r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}",
    253,
    "the DNS hostname an appliance reports when it claims its enrolment",
    "osiris-box-1.clinic.local",
)
TRUST_NAME = IdKind(
    "trust_name",
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    64,
    "a label in the user's trust store (osiris trust add --name)",
    "riverside-appliance",
)
MAC = IdKind(
    "mac", r"([0-9a-f]{2}:){5}[0-9a-f]{2}", 17, "a MAC address (lowercase)", "52:54:00:12:34:56"
)

# ---------------------------------------------------------------- times

TIME = IdKind(
    "time",
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z",
    24,
    "an RFC 3339 UTC time with milliseconds (DESIGN §3.1)",
    "2026-01-01T00:00:00.000Z",
)
HHMM = IdKind("hhmm", r"([01][0-9]|2[0-3]):[0-5][0-9]", 5, "a wall-clock time of day", "02:00")

ALL: tuple[IdKind, ...] = tuple(v for v in list(globals().values()) if isinstance(v, IdKind))
