"""The one severity scale: ``low < medium < high < critical``, for agent, server, console, alerts.

Why one module: the agent rated incidents low/medium/high/critical, the server stored
info/warning/critical and mapped ``high`` to ``warning``, and only ``critical`` alerted, so the
escalations of every runbook rated ``high`` reached nobody (issue 16). Every part now compares
severities through :func:`rank` and :func:`at_least`; an alert threshold is a severity on the
same scale (``DEFAULT_ALERT_THRESHOLD``: high and critical alert).

``LEGACY`` maps the server's old words for the one place they may still arrive: an appliance
running an older agent. ``warning`` becomes ``medium`` (the old agent sent ``warning`` for both
medium and high, and put its own word in ``details.agent_severity``, which the server prefers).
"""

from __future__ import annotations

from osiris_core.errors import SchemaError

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
LEGACY: dict[str, str] = {"info": "low", "warning": "medium"}
DEFAULT_ALERT_THRESHOLD = "high"

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def is_severity(value: object) -> bool:
    """True for a word of the scale (not a legacy word)."""
    return isinstance(value, str) and value in _RANK


def check(value: object, what: str = "severity") -> str:
    """``value`` if it is on the scale; else SchemaError naming the allowed words."""
    if not is_severity(value):
        raise SchemaError(f"{what} must be one of {', '.join(SEVERITIES)}, not {value!r}")
    return str(value)


def normalise(value: object, fallback: object = None) -> str:
    """The scale's word for ``value``: itself, its legacy mapping, else ``fallback`` (checked the
    same way), else SchemaError. ``fallback`` is the sender's own word when it gave one."""
    if is_severity(fallback) and not is_severity(value):
        return str(fallback)
    if is_severity(value):
        return str(value)
    if isinstance(value, str) and value in LEGACY:
        return LEGACY[value]
    return check(value)


def rank(value: str) -> int:
    """Position on the scale (low = 0 … critical = 3); SchemaError for anything else."""
    return _RANK[check(value)]


def at_least(value: str, threshold: str) -> bool:
    """True when ``value`` is ``threshold`` or above: the alert rule."""
    return rank(value) >= rank(threshold)


def highest(*values: str) -> str:
    """The highest of ``values`` (at least one)."""
    return max(values, key=rank)


def lower_to(value: str, ceiling: str) -> str:
    """``value``, lowered to ``ceiling`` if it is above it."""
    return value if rank(value) <= rank(ceiling) else ceiling
