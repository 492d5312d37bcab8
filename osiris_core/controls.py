"""The HIPAA Security Rule controls Osiris reports against, and which check proves which control.

Every evidence bundle carries a ``controls`` list; the packet builder groups evidence by citation.
This module holds the list of controls (data, not prose). Which check proves which control is
stored once, as ``controls = [...]`` on each ``[[check]]`` of the catalogue
(``osiris_core/catalog/checks.toml``, with the reason for each mapping beside it);
:func:`controls_for` reads it from there. The catalogue loader refuses a citation this list does
not define, so a typo in a mapping fails the load instead of silently dropping a control.

Citations are written as in 45 CFR Part 164, e.g. ``"164.312(b)"``. ``required`` is the rule's
Required/Addressable label; a bare standard (e.g. ``164.312(b)``) is binding as such, so it is
``True``. Source: ``reference/hipaa.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from osiris_core.errors import SchemaError

if TYPE_CHECKING:
    from osiris_core.catalog.loader import Catalog


@dataclass(frozen=True, slots=True)
class Control:
    """One citable HIPAA Security Rule standard or implementation specification."""

    citation: str
    title: str
    required: bool


class UnknownCheckError(SchemaError, KeyError):
    """A check id that no catalogue entry defines.

    A ``SchemaError`` (so callers report it like any bad field) that is also a ``KeyError``, so code
    treating ``controls_for`` like a mapping lookup keeps working.
    """


_R = True  # Required
_A = False  # Addressable

_CONTROL_LIST: tuple[Control, ...] = (
    # 164.308 Administrative safeguards
    Control("164.308(a)(1)(ii)(A)", "Risk analysis", _R),
    Control("164.308(a)(1)(ii)(B)", "Risk management", _R),
    Control("164.308(a)(1)(ii)(D)", "Information system activity review", _R),
    Control("164.308(a)(2)", "Assigned security responsibility", _R),
    Control("164.308(a)(3)(ii)(C)", "Termination procedures", _A),
    Control("164.308(a)(4)", "Information access management", _R),
    Control("164.308(a)(5)(ii)(B)", "Protection from malicious software", _A),
    Control("164.308(a)(5)(ii)(C)", "Log-in monitoring", _A),
    Control("164.308(a)(5)(ii)(D)", "Password management", _A),
    Control("164.308(a)(6)(ii)", "Security incident response and reporting", _R),
    Control("164.308(a)(7)(ii)(A)", "Data backup plan", _R),
    Control("164.308(a)(7)(ii)(B)", "Disaster recovery plan", _R),
    Control("164.308(a)(7)(ii)(C)", "Emergency mode operation plan", _R),
    Control("164.308(a)(7)(ii)(D)", "Testing and revision procedures", _A),
    Control("164.308(a)(7)(ii)(E)", "Applications and data criticality analysis", _A),
    Control("164.308(a)(8)", "Evaluation", _R),
    # 164.310 Physical safeguards
    Control("164.310(d)(2)(iv)", "Data backup and storage", _A),
    # 164.312 Technical safeguards
    Control("164.312(a)(1)", "Access control", _R),
    Control("164.312(a)(2)(i)", "Unique user identification", _R),
    Control("164.312(a)(2)(iii)", "Automatic logoff", _A),
    Control("164.312(a)(2)(iv)", "Encryption and decryption", _A),
    Control("164.312(b)", "Audit controls", _R),
    Control("164.312(c)(1)", "Integrity", _R),
    Control(
        "164.312(c)(2)", "Mechanism to authenticate electronic protected health information", _A
    ),
    Control("164.312(d)", "Person or entity authentication", _R),
    Control("164.312(e)(1)", "Transmission security", _R),
    Control("164.312(e)(2)(i)", "Integrity controls", _A),
    Control("164.312(e)(2)(ii)", "Encryption", _A),
    # 164.316 Policies, procedures and documentation
    Control("164.316(a)", "Policies and procedures", _R),
    Control("164.316(b)(1)(ii)", "Documentation: written record of required actions", _R),
    Control("164.316(b)(2)(i)", "Documentation time limit (retain 6 years)", _R),
)

CONTROLS: dict[str, Control] = {c.citation: c for c in _CONTROL_LIST}


def _catalog() -> Catalog:
    # Imported here, not at the top: the catalogue loader imports CONTROLS from this module to
    # validate every citation, so this module must be importable before the catalogue is.
    from osiris_core.catalog.loader import load_catalog

    return load_catalog()


@functools.cache
def check_controls() -> Mapping[str, tuple[str, ...]]:
    """Every catalogue check id -> the citations its evidence supports (from checks.toml)."""
    return MappingProxyType({cid: chk.controls for cid, chk in _catalog().checks.items()})


def controls_for(check_id: str) -> tuple[str, ...]:
    """Return the citations a check's evidence supports; ``UnknownCheckError`` for unknown ids.

    A former id (a catalogue alias) answers with its check's citations, so old evidence is
    judged like new."""
    cat = _catalog()
    try:
        return cat.checks[cat.aliases.get(check_id, check_id)].controls
    except (KeyError, TypeError):
        raise UnknownCheckError(f"unknown check id: {check_id!r}") from None
