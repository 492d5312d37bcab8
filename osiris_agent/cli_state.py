"""``osiris-agent status``, ``outbox …`` and ``witness …``: reading (and, for a technician,
repairing) the appliance's state directory — the queue, the chain, the receipts and the
agent's view of the server's log. ``status`` reads the state dir only, never the network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from osiris_agent.cli_common import (
    _agent,
    _fail,
    _load,
    _refuse_decommissioned,
    _warn,
)
from osiris_agent.config import DEFAULT_PATH
from osiris_core.errors import ExitCode, OsirisError
from osiris_core.evidence import GENESIS_HASH


def gather_status(state_dir: str | Path) -> dict[str, Any]:
    """Everything a technician needs, read from the state directory only (no network), through
    the read-only view with named keys (``osiris_core.agent_state``, which the console reads
    too). A state dir a newer agent wrote is refused (exit 2)."""
    from osiris_agent.enroll import read_pins
    from osiris_core.agent_state import read_agent_state

    pins = read_pins(state_dir)
    v = read_agent_state(state_dir)
    contact = v.last_contact or {}
    return {
        "appliance_id": pins["appliance_id"],
        "site_id": pins["site_id"],
        "server": pins.get("server_url"),
        "last_checkin": v.last_checkin_ok_at,
        "server_reachable": contact.get("reachable"),
        "last_contact": contact,
        "clock": _clock(v.meta.get("last_clock")),
        "queue_depth": v.outbox_depth,
        "queue_bytes": v.outbox_bytes,
        "chain_head": {"seq": v.chain_seq, "hash": v.chain_head or GENESIS_HASH},
        "last_receipt": v.last_receipt,
        "witness": {
            "checkpoint_size": v.witness_size or 0,
            "trusted": v.witness_distrust is None,
            "distrust_reason": v.witness_distrust,
        },
        "rules_version": v.rules_version,
        "policy": v.policy,
        "key_rotations": len(v.key_history),
        "decommissioned": v.decommissioned,
        "deferred_orders": v.deferred_orders,
        "unsent_incidents": v.unsent_incidents,
        "evidence_refused_full": v.refused_full,
        "last_cycle": v.last_cycle,
        "last_results": v.results,
    }


def _clock(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


@click.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--state", "state", default=None, help="State directory (instead of --config).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config: str | None, state: str | None, as_json: bool) -> None:
    """Show last check-in, reachability, clock, queue, chain head, receipts and results."""
    state_dir = state or _load(config, None).agent.state_dir
    try:
        st = gather_status(state_dir)
    except OsirisError as e:
        _fail(str(e), ExitCode.USAGE)
    if as_json:
        click.echo(json.dumps(st, indent=2, sort_keys=True))
        return
    clock = st["clock"] or {}
    w = st["witness"]
    lines = [
        f"appliance      {st['appliance_id']} (site {st['site_id']})",
        f"server         {st['server']}",
        f"last check-in  {st['last_checkin'] or 'never'}",
        f"reachable      {st['server_reachable']}"
        + (f" ({st['last_contact'].get('error')})" if st["last_contact"].get("error") else ""),
        f"clock          ntp_ok={clock.get('ntp_ok')} offset_ms={clock.get('offset_ms')} "
        f"source={clock.get('source')}",
        f"queue          {st['queue_depth']} bundles, {st['queue_bytes']} bytes",
        f"chain head     seq {st['chain_head']['seq']} {st['chain_head']['hash']}",
        f"last receipt   {st['last_receipt']}",
        f"log witness    size {w['checkpoint_size']}, "
        + ("trusted" if w["trusted"] else f"NOT TRUSTED: {w['distrust_reason']}"),
        f"incidents      {st['unsent_incidents']} waiting to be sent",
        f"policy         {(st['policy'] or {}).get('policy_version', 'default')} "
        f"ruleset {(st['policy'] or {}).get('ruleset_hash') or '-'}",
        f"key rotations  {st['key_rotations']}",
    ]
    if st["decommissioned"] is not None:
        lines.append(f"DECOMMISSIONED chain closed at seq {st['decommissioned']}")
    lines.append("results:")
    for r in st["last_results"]:
        lines.append(f"  {r['host_id']:<24} {r['check']:<20} {r['status']:<10} since {r['since']}")
    click.echo("\n".join(lines))


@click.group()
def outbox() -> None:
    """Inspect or flush the evidence outbox."""


@outbox.command("list")
@click.option("--config", "config", default=None)
@click.option("--state", "state", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def outbox_list(config: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """Queued bundles, oldest first."""
    from osiris_agent.outbox import Outbox
    from osiris_agent.state import StateDB

    state_dir = state or _load(config, None).agent.state_dir
    db = StateDB.open_dir(state_dir)
    try:
        rows = Outbox(db).list_entries(limit)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("outbox is empty")
    for r in rows:
        err = f"  last error: {r['last_error']}" if r["last_error"] else ""
        click.echo(
            f"{r['seq']:>8} {r['created_at']} {r['host_id']} {r['check']} {r['outcome']} "
            f"attempts={r['attempts']} {r['state']}{err}"
        )


@outbox.command("flush")
@click.option("--config", "config", default=None)
@click.option("--state", "state", default=None)
@click.option("--retry-rejected", is_flag=True, help="Also resend bundles the server rejected.")
def outbox_flush(config: str | None, state: str | None, retry_rejected: bool) -> None:
    """Send queued bundles now; exit 0 when the queue is empty, 1 otherwise."""
    agent = _agent(config, state)
    try:
        from osiris_agent.cycle import CycleReport

        if retry_rejected:
            agent.outbox.requeue_rejected()
        report = CycleReport()
        agent.flush(report)
        depth = agent.outbox.depth()
    finally:
        agent.close()
    click.echo(f"acknowledged {report.acked}, still queued {depth}")
    for e in report.errors:
        _warn(e)
    if depth:
        _fail(
            f"{depth} bundle(s) still queued"
            + ("" if report.reachable else ": server unreachable"),
            ExitCode.BAD if report.reachable else ExitCode.UNREACHABLE,
        )
    sys.exit(ExitCode.OK)


@click.group()
def witness() -> None:
    """The agent's check of the server's transparency log: show it, or reset a distrust."""


def _witness_state(state_dir: str) -> dict[str, Any]:
    from osiris_agent.state import StateDB

    db = StateDB.open_dir(state_dir)
    try:
        return {
            "trusted": db.get("witness_distrust") is None,
            "distrust_reason": db.get("witness_distrust"),
            "checkpoint_size": int(db.get("witness_size", "0") or 0),
            "checkpoint": db.get("witness_checkpoint"),
        }
    finally:
        db.close()


@witness.command("status")
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--state", "state", default=None, help="State directory (instead of --config).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def witness_status(config: str | None, state: str | None, as_json: bool) -> None:
    """Whether the log is trusted, why not, and the newest checkpoint verified."""
    st = _witness_state(state or _load(config, None).agent.state_dir)
    if as_json:
        click.echo(json.dumps(st, indent=2, sort_keys=True))
        return
    click.echo(
        ("trusted" if st["trusted"] else f"NOT TRUSTED: {st['distrust_reason']}")
        + f"; last verified checkpoint: size {st['checkpoint_size']}"
    )
    sys.exit(ExitCode.OK if st["trusted"] else ExitCode.BAD)


@witness.command("reset")
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--state", "state", default=None, help="State directory (instead of --config).")
@click.option("--yes", is_flag=True, help="Really reset (after investigating the incident).")
@click.option("--note", default="", help="What the technician found (kept in the evidence).")
def witness_reset(config: str | None, state: str | None, yes: bool, note: str) -> None:
    """Trust the server's log again after a log_inconsistent incident was investigated.

    Only the distrust flag is cleared: the last verified checkpoint is kept, so the next
    receipts must still be consistent with it (a log that is still forked fails again at once).
    The reset itself is signed evidence.
    """
    state_dir = state or _load(config, None).agent.state_dir
    before = _witness_state(state_dir)
    if before["trusted"]:
        click.echo("the transparency log is trusted; nothing to reset")
        return
    plan = (
        f"clear the distrust of the server's log (reason: {before['distrust_reason']}); keep "
        f"the last verified checkpoint (size {before['checkpoint_size']}) so the next receipts "
        "are checked for consistency with it; record an evidence bundle saying a technician "
        "reset the trust"
    )
    if not yes:
        _fail(f"this would {plan}. Re-run with --yes to do it.", ExitCode.USAGE)
    agent = _agent(config, state)
    _refuse_decommissioned(agent)
    try:
        from osiris_core import canonical
        from osiris_core.controls import controls_for

        now = canonical.utc_now()
        with agent.db.tx():
            env = agent.record(
                host_id=agent.appliance_id, check="evidence_pipeline",
                controls=list(controls_for("evidence_pipeline")), outcome="alert",
                tier="monitor",
                action_taken=f"transparency-log trust reset by a technician (was distrusted: "
                f"{before['distrust_reason']})" + (f"; note: {note}" if note else ""),
                pre_state={"observed": {"trusted": False,
                                        "distrust_reason": before["distrust_reason"],
                                        "checkpoint_size": before["checkpoint_size"]}},
                post_state={"observed": {"trusted": True,
                                         "checkpoint_size": before["checkpoint_size"]}},
                started_at=now, finished_at=now,
            )  # fmt: skip
            if env is None:
                raise OsirisError("the outbox is full; the reset was not recorded, so not done")
            agent.witness.reset_trust()
    except OsirisError as e:
        _fail(str(e), ExitCode.BAD)
    finally:
        agent.close()
    click.echo(f"did: {plan} (evidence seq {env['bundle']['seq']})")
