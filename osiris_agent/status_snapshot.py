"""``status.json``: the read-only snapshot the technician's console (`osiris tui --local`) shows.

Why a snapshot and not the state dir: on the appliance the state dir is 0700 ``osiris`` and
holds the evidence key, the cosigning key, the box key, the token and sealed credentials. The
technician (``tech``, group ``osiris-tech``, no sudo) must see the appliance's status and must
not be able to read any of that. So after every cycle the agent writes this one file into
``agent.status_dir`` (mode 0640; on NixOS the dir is 2750 ``osiris:osiris-tech``), built from an
explicit whitelist of fields — public keys and status only, never a secret — and the console
reads nothing else.

The console must never say "reachable" from stale state: the snapshot carries ``written_at`` and
``last_reached_at`` (the last time the server answered), and the console shows their ages.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from osiris_core import canonical
from osiris_core.agent_state import AgentStateError, read_agent_state
from osiris_core.files import write_atomic

log = logging.getLogger("osiris.agent")

NAME = "status.json"
SCHEMA = "osiris.status/1"
MODE = 0o640
EVIDENCE_ROWS = 50
MAX_TEXT = 300

# The only top-level keys a snapshot may have (a test walks the file against this list).
FIELDS = (
    "schema", "written_at", "appliance_id", "site_id", "server_url", "agent_version",
    "last_reached_at", "last_attempt_at", "last_error", "last_attempt_ok", "clock",
    "checkin_interval_s", "outbox_depth", "outbox_rejected", "chain_seq", "chain_head",
    "last_receipt", "witness_size", "witness_cosigned", "witness_distrust", "signing_vkey",
    "cosign_vkey", "log_vkey", "order_vkey", "key_rotations", "decommissioned",
    "policy_version", "ruleset_hash", "results", "evidence", "unsent_incidents",
)  # fmt: skip
RESULT_FIELDS = ("host_id", "check", "status", "since", "observed", "expected", "updated_at")
EVIDENCE_FIELDS = (
    "seq", "bundle_hash", "host_id", "check", "outcome", "created_at", "log_index", "acked",
)  # fmt: skip
RECEIPT_FIELDS = ("seq", "log_index", "tree_size", "at", "bundle_hash")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: Any, depth: int = 0) -> Any:
    """Remote-derived values made safe for a terminal: control characters replaced, text and
    nesting bounded (a clinic host's answer reaches the technician's screen)."""
    if isinstance(value, str):
        text = _CONTROL.sub("\ufffd", value)
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
    if isinstance(value, bool | int | float) or value is None:
        return value
    if depth >= 4:
        return "…"
    if isinstance(value, dict):
        return {clean(str(k)): clean(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [clean(v, depth + 1) for v in list(value)[:50]]
    return clean(str(value))


def _pick(row: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(row, dict):
        return None
    return {k: clean(row.get(k)) for k in names if k in row}


def build(state_dir: str | os.PathLike[str], *, server_url: str, version: str,
          interval_s: int) -> dict[str, Any]:  # fmt: skip
    """The snapshot of ``state_dir`` now, from the whitelist above only."""
    sd = Path(state_dir)
    v = read_agent_state(sd, EVIDENCE_ROWS)
    pins: dict[str, Any] = {}
    try:
        raw = json.loads((sd / "pins.json").read_text())
        pins = raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        pass
    last = v.last_checkin or {}
    contact = v.last_contact or {}
    ok = last.get("ok") if "ok" in last else None
    error = contact.get("error") if (ok is False or contact.get("error")) else None
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "written_at": canonical.utc_now(),
        "appliance_id": v.appliance_id or pins.get("appliance_id"),
        "site_id": v.site_id or pins.get("site_id"),
        "server_url": server_url,
        "agent_version": version,
        "last_reached_at": v.last_checkin_ok_at,
        "last_attempt_at": last.get("at") or contact.get("at"),
        "last_error": clean(str(error)) if error else None,
        "last_attempt_ok": bool(ok) if ok is not None else None,
        "clock": _pick(v.clock, ("ntp_ok", "offset_ms", "source")),
        "checkin_interval_s": interval_s,
        "outbox_depth": v.outbox_depth,
        "outbox_rejected": v.outbox_rejected,
        "chain_seq": v.chain_seq,
        "chain_head": v.chain_head,
        "last_receipt": _pick(v.last_receipt, RECEIPT_FIELDS),
        "witness_size": v.witness_size,
        "witness_cosigned": bool(v.witness_checkpoint),
        "witness_distrust": clean(v.witness_distrust) if v.witness_distrust else None,
        "signing_vkey": v.signing_vkey,
        "cosign_vkey": v.cosign_vkey,
        "log_vkey": pins.get("log_vkey"),
        "order_vkey": pins.get("order_vkey"),
        "key_rotations": len(v.key_history),
        "decommissioned": v.decommissioned,
        "policy_version": v.policy_version,
        "ruleset_hash": v.ruleset_hash,
        "results": [_pick(r, RESULT_FIELDS) for r in v.results],
        "evidence": [_pick(e, EVIDENCE_FIELDS) for e in v.evidence],
        "unsent_incidents": v.unsent_incidents,
    }
    assert tuple(doc) == FIELDS  # the whitelist is the one list of names
    return doc


def publish(status_dir: str | os.PathLike[str], doc: dict[str, Any]) -> Path:
    """Write ``status.json`` atomically with mode 0640 (the unit's umask is 0077)."""
    d = Path(status_dir)
    d.mkdir(mode=0o750, parents=True, exist_ok=True)
    target = d / NAME
    body = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(target, body.encode("utf-8"), mode=MODE)
    return target


def refresh(ctx: Any) -> None:
    """Publish the snapshot of a running agent; a failure is logged, never fatal to a cycle."""
    cfg = ctx.cfg
    try:
        from importlib.metadata import version

        try:
            ver = version("osiris")
        except Exception:  # noqa: BLE001 - an uninstalled tree (tests) has no metadata
            ver = "unknown"
        interval = int(getattr(ctx, "next_checkin_s", 0) or cfg.agent.checkin_interval_s)
        doc = build(ctx.state_dir, server_url=cfg.server.url, version=ver, interval_s=interval)
        publish(cfg.agent.status_dir, doc)
    except (OSError, ValueError, AgentStateError) as e:
        log.warning("cannot publish the status snapshot to %s: %s", cfg.agent.status_dir, e)
