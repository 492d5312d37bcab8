"""The one catalogue of checks, runbooks and baseline L1 rules; every layer uses these ids.

Data lives next to this file: ``checks.toml``, ``runbooks/<ID>/manifest.toml`` with real
``detect``/``remediate``/``verify``/``rollback`` scripts (``.ps1`` or ``.sh``), and
``rules/baseline.toml``. Scripts print exactly one JSON object on stdout::

    {"status": "compliant"|"drift"|"error", "observed": {...}, "expected": {...}}

(``remediate``/``rollback`` report ``observed = {"changed": bool, "action": str}``.)
"""

from __future__ import annotations

from osiris_core.catalog.loader import (
    Catalog,
    check_aliases,
    ids_in_use_check,
    load_catalog,
    load_from,
)
from osiris_core.catalog.model import (
    PHASES,
    PLATFORMS,
    SEVERITIES,
    STATUSES,
    Check,
    Param,
    Runbook,
)
from osiris_core.catalog.render import header, render, script_sha256
from osiris_core.catalog.rules import (
    ACTIONS,
    OPS,
    Condition,
    Rule,
    evaluate_conditions,
    match_rules,
)

__all__ = [
    "ACTIONS",
    "OPS",
    "PHASES",
    "PLATFORMS",
    "SEVERITIES",
    "STATUSES",
    "Catalog",
    "Check",
    "Condition",
    "Param",
    "Rule",
    "Runbook",
    "check_aliases",
    "evaluate_conditions",
    "header",
    "ids_in_use_check",
    "load_catalog",
    "load_from",
    "match_rules",
    "render",
    "script_sha256",
]
