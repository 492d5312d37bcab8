"""Turn a runbook phase plus parameters into the exact script text sent to a host.

Why a preamble and not string substitution: parameter values never touch the script body. For bash
they become ``export OSIRIS_P_<NAME>=<shlex.quote(value)>`` lines; for PowerShell a base64 JSON blob
that is decoded into ``$OsirisParams``. Either way a hostile value is data, never code, and values
are validated against the manifest's schema first.

A ``release`` parameter (RB-NIX-GEN-001's ``desired_system``) also exports, for the phases that
act on it, ``OSIRIS_RELEASE_<NAME>``: base64 of the switch request the root unit re-verifies
(``{"action": "switch", "release": <signed osiris.release/1>}``), taken from the trust context the
values were judged in — a value no signed release names never gets that far.

After ``lib/osiris.sh`` comes ``lib/osiris_login.sh``: helpers that read the agent's own login
(``OSIRIS_CTX_*``, which the SSH transport sets from the Target on the command line — no
parameter can set them) so a runbook can refuse a change that would cut the agent off.

The first line identifies the script (``# osiris: runbook=<ID> phase=<phase> sha256=<hex>``, the
hash of the phase script file) so evidence and the lab simulator can name exactly what ran.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections.abc import Mapping
from importlib import resources
from typing import Any

from osiris_core import canonical
from osiris_core.catalog.model import Runbook
from osiris_core.errors import SchemaError

RELEASE_PHASES = ("remediate",)


def _lib(name: str) -> str:
    return resources.files("osiris_core.catalog").joinpath("lib", name).read_text("utf-8")


def script_sha256(runbook: Runbook, phase: str) -> str:
    """Hex sha256 of the phase script file's bytes (UTF-8), as named in the header line."""
    return hashlib.sha256(runbook.script(phase).encode("utf-8")).hexdigest()


def header(runbook: Runbook, phase: str) -> str:
    return f"# osiris: runbook={runbook.id} phase={phase} sha256={script_sha256(runbook, phase)}"


def _sh_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(runbook: Runbook, phase: str, params: Mapping[str, Any] | None = None) -> str:
    """The full script for ``phase`` with validated ``params``; ``SchemaError`` on bad input."""
    values = runbook.validate_params(params)
    body = runbook.script(phase)
    lines = [header(runbook, phase)]
    if runbook.ext == "sh":
        lines.append("set -euo pipefail")
        for name in sorted(values):
            quoted = shlex.quote(_sh_value(values[name]))
            lines.append(f"export OSIRIS_P_{name.upper()}={quoted}")
        for name, spec in sorted(runbook.params.items()):
            if spec.bound is None or spec.bound.kind != "release" or not values[name]:
                continue
            if phase not in RELEASE_PHASES:
                continue
            envelope = values.context.releases.get(values[name])
            if envelope is None:  # validate_params already refused this; defensive
                raise SchemaError(f"param {name!r}: named by no signed release document")
            request = canonical.dumps({"action": "switch", "release": envelope})
            b64 = base64.b64encode(request).decode("ascii")
            lines.append(f"export OSIRIS_RELEASE_{name.upper()}={b64}")
        lines.append(f"export OSIRIS_RUNBOOK={runbook.id} OSIRIS_PHASE={phase}")
        lines.append(_lib("osiris.sh").rstrip("\n"))
        # the agent's own login (OSIRIS_CTX_*, set by the transport, never by a parameter), so
        # the SSH and firewall runbooks can refuse to cut it off
        lines.append(_lib("osiris_login.sh").rstrip("\n"))
    else:
        blob = json.dumps(values, sort_keys=True, separators=(",", ":")).encode("utf-8")
        b64 = base64.b64encode(blob).decode("ascii")
        lines.append("$ErrorActionPreference = 'Stop'")
        lines.append(
            "$OsirisParams = ConvertFrom-Json ([Text.Encoding]::UTF8.GetString("
            f"[Convert]::FromBase64String('{b64}')))"
        )
        lines.append(f"$OsirisRunbook = '{runbook.id}'; $OsirisPhase = '{phase}'")
        lines.append(_lib("osiris.ps1").rstrip("\n"))
    lines.append(body.rstrip("\n"))
    return "\n".join(lines) + "\n"
