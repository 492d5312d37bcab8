"""The manifest fields that document a runbook for the people whose hosts it changes.

``refuses`` (what it will not do, escalating instead), ``rollback_note`` (what its rollback
restores, or why it has none) and ``[proven]`` (where each behaviour was proven) are not used by
any code path that runs a script: they feed docs/runbooks.md. They are still validated at load,
because a claim of proof that names no test is worse than no claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from osiris_core.errors import SchemaError

# Each claim starts with the test file that proves it; tests/core/test_runbook_claims.py checks
# the file exists and names the runbook, so the docs cannot claim a proof nobody runs.
PROOF_KINDS = ("realhost", "lab", "sandbox", "lint", "unit")


def opt_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise SchemaError(f"{where}: {key} must be a string")
    return value


def proven(data: Mapping[str, Any], where: str) -> dict[str, str]:
    raw = data.get("proven", {})
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: proven must be a table")
    out: dict[str, str] = {}
    for kind, claim in raw.items():
        if kind not in PROOF_KINDS:
            raise SchemaError(f"{where}: proven.{kind} is not one of {PROOF_KINDS}")
        if not isinstance(claim, str) or not claim.startswith("tests/"):
            raise SchemaError(
                f"{where}: proven.{kind} must start with the test file that proves it"
            )
        out[kind] = claim
    return out
