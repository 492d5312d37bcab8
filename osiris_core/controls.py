"""The HIPAA Security Rule controls Osiris reports against, and which check proves which control.

Every evidence bundle carries a ``controls`` list; the packet builder groups evidence by citation.
Keeping the catalogue here (data, not prose) means the agent, the server and the packet all cite
the same strings, and a typo in a mapping fails a test instead of silently dropping a control.

Citations are written as in 45 CFR Part 164, e.g. ``"164.312(b)"``. ``required`` is the rule's
Required/Addressable label; a bare standard (e.g. ``164.312(b)``) is binding as such, so it is
``True``. Source: ``reference/hipaa.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from osiris_core.errors import SchemaError


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

# Control sets shared by a generic check and its per-OS variants, so the variants cannot drift.
_PATCHING = (
    "164.308(a)(1)(ii)(A)",
    "164.308(a)(1)(ii)(B)",
    "164.308(a)(5)(ii)(B)",
    "164.308(a)(8)",
)
_AV_EDR = ("164.308(a)(5)(ii)(B)", "164.308(a)(6)(ii)", "164.308(a)(1)(ii)(D)")
_BACKUP = (
    "164.308(a)(7)(ii)(A)",
    "164.308(a)(7)(ii)(B)",
    "164.308(a)(7)(ii)(D)",
    "164.310(d)(2)(iv)",
    "164.312(c)(1)",
)
_LOGGING = ("164.312(b)", "164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)", "164.316(b)(2)(i)")
_FIREWALL = ("164.312(e)(1)", "164.312(a)(1)", "164.308(a)(1)(ii)(B)")
_ENCRYPTION = ("164.312(a)(2)(iv)", "164.312(e)(2)(ii)")
# Time sync is not named in the rule; it makes 164.312(b) records correlatable (cf. NIST AU-8).
_TIMESYNC = ("164.312(b)",)
_ACCOUNTS = (
    "164.312(a)(1)",
    "164.312(a)(2)(i)",
    "164.312(a)(2)(iii)",
    "164.312(d)",
    "164.308(a)(3)(ii)(C)",
    "164.308(a)(4)",
    "164.308(a)(5)(ii)(D)",
)

CHECK_CONTROLS: dict[str, tuple[str, ...]] = {
    "timesync": _TIMESYNC,
    "patching": _PATCHING,
    "av_edr": _AV_EDR,
    "backup": _BACKUP,
    "logging": _LOGGING,
    "firewall": _FIREWALL,
    "encryption": _ENCRYPTION,
    "accounts": _ACCOUNTS,
    # The running NixOS generation is the appliance's baseline configuration: integrity of the
    # system that handles evidence, and risk management by staying on a known configuration.
    "nixos_generation": ("164.312(c)(1)", "164.308(a)(1)(ii)(B)"),
    "windows_defender": _AV_EDR,
    "windows_firewall": _FIREWALL,
    "windows_password_policy": ("164.308(a)(5)(ii)(D)", "164.312(d)"),
    "windows_bitlocker": ("164.312(a)(2)(iv)",),
    "windows_audit_policy": _LOGGING,
    "windows_updates": _PATCHING,
    # Critical services (event log, Defender, firewall) being up is what keeps audit and
    # anti-malware controls working.
    "windows_services": ("164.312(b)", "164.308(a)(5)(ii)(B)", "164.308(a)(1)(ii)(B)"),
    "windows_network": ("164.312(e)(1)", "164.308(a)(1)(ii)(B)"),
    # sshd: who may log in (access control, authentication) and an encrypted channel.
    "linux_ssh": ("164.312(a)(1)", "164.312(d)", "164.312(e)(1)", "164.312(e)(2)(ii)"),
    "linux_firewall": _FIREWALL,
    "linux_patching": _PATCHING,
    "linux_audit": ("164.312(b)", "164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)"),
    "linux_accounts": _ACCOUNTS,
    "linux_timesync": _TIMESYNC,
    "linux_logging": _LOGGING,
    # File permissions guard who can read (access control) and alter (integrity) data.
    "linux_permissions": ("164.312(a)(1)", "164.312(c)(1)"),
    "evidence_pipeline": (
        "164.312(c)(1)",
        "164.316(b)(1)(ii)",
        "164.316(b)(2)(i)",
        "164.308(a)(8)",
    ),
    # A full disk stops logging and backups first.
    "disk_space": ("164.312(b)", "164.308(a)(7)(ii)(A)"),
    # The signed bundle that closes a retired appliance's chain: proves its evidence ends there
    # (integrity: nothing dropped at the end) and that the record is complete for retention.
    "appliance_decommission": ("164.312(c)(1)", "164.316(b)(2)(i)"),
    # The signed policy in force (and every refused one): the appliance runs a known, signed
    # configuration (integrity, risk management) and the record shows every evaluation.
    "policy": ("164.312(c)(1)", "164.308(a)(1)(ii)(B)", "164.308(a)(8)"),
    # A trust-redirecting parameter changed: who changed what, reviewable like any activity.
    "policy_change": ("164.312(b)", "164.308(a)(1)(ii)(D)", "164.312(c)(1)"),
}


def controls_for(check_id: str) -> tuple[str, ...]:
    """Return the citations a check's evidence supports; ``UnknownCheckError`` for unknown ids."""
    try:
        return CHECK_CONTROLS[check_id]
    except (KeyError, TypeError):
        raise UnknownCheckError(f"unknown check id: {check_id!r}") from None
