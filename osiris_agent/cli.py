"""`osiris-agent`: the appliance agent's command line.

Exit codes (DESIGN §4.2, ``osiris_core.errors.ExitCode``): 0 ok, 1 the thing checked is bad
(``once``: the log check failed; ``outbox flush``: bundles still queued; ``witness status``: the
log is not trusted; ``rotate-key``: the server refused), 2 usage or config error (also: a corrupt
state dir, ``run`` and ``once`` on a decommissioned appliance), 3 server unreachable (``once``,
``enroll``, ``rotate-key``, ``decommission``), 4 authentication refused, 5 an unexpected error (a
bug; ``--debug`` or ``OSIRIS_DEBUG=1`` prints the traceback). Every error is one line
``osiris-agent: error: …`` on stderr (``osiris_core.cli_base``) — never a stack trace; the
cycle's own problems are ``osiris-agent: warning: …`` lines before it.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import click

from osiris_agent.config import DEFAULT_PATH, ConfigError, load_config
from osiris_core.cli_base import OsirisGroup, fail, one_line
from osiris_core.errors import ExitCode, OsirisError

PROG = "osiris-agent"


def _fail(msg: str, code: ExitCode) -> None:
    fail(msg, code, PROG)


def _warn(msg: object) -> None:
    click.echo(f"{PROG}: warning: {one_line(msg)}", err=True)


def _load(config: str | None, state: str | None):  # -> AgentConfig
    path = config or (str(Path(state) / "agent.toml") if state else DEFAULT_PATH)
    try:
        return load_config(path)
    except ConfigError as e:
        _fail(f"config error: {e}", ExitCode.USAGE)


def _agent(config: str | None, state: str | None = None):  # -> Agent
    from osiris_agent.cycle import Agent

    cfg = _load(config, state)
    try:
        return Agent(cfg)
    except (OsirisError, OSError) as e:
        _fail(f"cannot start: {e}", ExitCode.USAGE)


def _refuse_decommissioned(agent: Any) -> None:
    seq = agent.decommissioned
    if seq is not None:
        agent.close()
        _fail(
            f"this appliance was decommissioned (its evidence chain was closed at seq {seq}); "
            "it signs no more evidence. To use this machine again, move the state directory "
            "away and enroll it as a new appliance.",
            ExitCode.USAGE,
        )


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(
    cls=OsirisGroup,
    prog=PROG,
    input_errors=(sqlite3.DatabaseError,),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="osiris")
def main() -> None:
    """The appliance agent: detect drift, heal it, sign the evidence."""


@main.command()
@click.option("--server", required=True, help="Central Command URL, e.g. https://cc.example.com")
@click.option("--claim-code", required=True, help="One-time claim code from the operator.")
@click.option(
    "--state",
    "state",
    default="/var/lib/osiris",
    show_default=True,
    type=click.Path(file_okay=False),
    help="State directory (keys, token, outbox).",
)
@click.option("--hostname", default=None, help="Name to register (default: this host's).")
@click.option(
    "--lab",
    is_flag=True,
    help="Lab/demo appliance: allow plain http:// to non-local hosts and lab targets.",
)
@click.option("--ca-file", default=None, help="PEM CA bundle for the server's TLS certificate.")
def enroll(
    server: str, claim_code: str, state: str, hostname: str | None, lab: bool, ca_file: str | None
) -> None:
    """Generate keys, claim this appliance and write its config (safe to re-run)."""
    from osiris_agent.client import AuthRefused, ServerRefused, ServerUnreachable
    from osiris_agent.enroll import enroll as do_enroll

    try:
        r = do_enroll(server, claim_code, state, hostname=hostname, lab=lab, ca_file=ca_file)
    except ConfigError as e:
        _fail(f"config error: {e}", ExitCode.USAGE)
    except ServerUnreachable as e:
        _fail(str(e), ExitCode.UNREACHABLE)
    except AuthRefused as e:
        _fail(str(e), ExitCode.AUTH)
    except ServerRefused as e:
        refused = e.status in (401, 403, 404, 409, 410)
        _fail(f"claim refused: {e}", ExitCode.AUTH if refused else ExitCode.BAD)
    except OsirisError as e:
        _fail(str(e), e.exit_code)
    except OSError as e:
        _fail(str(e), ExitCode.USAGE)
    if r.already:
        click.echo(
            f"already enrolled as {r.appliance_id} (site {r.site_id}); config {r.config_path}"
        )
    else:
        click.echo(f"enrolled as {r.appliance_id} (site {r.site_id}); config {r.config_path}")
        if r.quarantined:
            click.echo(
                "quarantined: the claim code was not made by an admin, so this appliance "
                "receives no credentials until an admin confirms it "
                f"(osiris appliance confirm {r.appliance_id})"
            )


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("-v", "--verbose", is_flag=True)
def run(config: str | None, verbose: bool) -> None:
    """Run cycles until SIGTERM/SIGINT."""
    _logging(True)
    agent = _agent(config)
    _refuse_decommissioned(agent)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.run(stop)
        closed = agent.decommissioned
    finally:
        agent.close()
    if closed is not None:
        _fail(
            f"stopped: this appliance was decommissioned (chain closed at seq {closed})",
            ExitCode.USAGE,
        )


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("-v", "--verbose", is_flag=True)
def once(config: str | None, verbose: bool) -> None:
    """One cycle; exit 0 if the server was reached and the log trusted, 3 if the server was
    unreachable, 1 if the log is not trusted."""
    _logging(verbose)
    agent = _agent(config)
    _refuse_decommissioned(agent)
    try:
        report = agent.cycle()
        trusted = agent.witness.trusted
        depth = agent.outbox.depth()
    finally:
        agent.close()
    click.echo(
        f"recorded {report.recorded}, acknowledged {report.acked}, queued {depth}"
        + ("" if report.reachable else ", server unreachable")
        + ("" if trusted else ", LOG NOT TRUSTED")
    )
    for e in report.errors:
        _warn(e)
    if not report.reachable:
        _fail(f"server unreachable; {depth} bundle(s) queued for the next cycle",
              ExitCode.UNREACHABLE)  # fmt: skip
    if not trusted:
        _fail("the server's transparency log is not trusted (see `osiris-agent witness status`)",
              ExitCode.BAD)  # fmt: skip
    sys.exit(ExitCode.OK)


def gather_status(state_dir: str | Path) -> dict[str, Any]:
    """Everything a technician needs, read from the state directory only (no network)."""
    from osiris_agent.enroll import read_pins
    from osiris_agent.outbox import Outbox
    from osiris_agent.state import StateDB

    pins = read_pins(state_dir)
    db = StateDB.open_dir(state_dir)
    try:
        ob = Outbox(db)
        seq, head = ob.head()
        contact = db.get_json("last_contact") or {}
        last_ok = db.get("last_checkin_ok_at")
        if last_ok is None:  # state written by an older build: last_checkin was the time
            raw = db.get("last_checkin")
            last_ok = raw if raw and not raw.startswith("{") else None
        return {
            "appliance_id": pins["appliance_id"],
            "site_id": pins["site_id"],
            "server": pins.get("server_url"),
            "last_checkin": last_ok,
            "server_reachable": contact.get("reachable"),
            "last_contact": contact,
            "clock": db.get_json("last_clock"),
            "queue_depth": ob.depth(),
            "queue_bytes": ob.queued_bytes(),
            "chain_head": {"seq": seq, "hash": head},
            "last_receipt": ob.last_receipt(),
            "witness": {
                "checkpoint_size": int(db.get("witness_size", "0") or 0),
                "trusted": db.get("witness_distrust") is None,
                "distrust_reason": db.get("witness_distrust"),
            },
            "rules_version": db.get("rules_version"),
            "policy": db.get_json("policy"),
            "key_rotations": len(db.get_json("key_history") or []),
            "decommissioned": int(db.get("decommissioned")) if db.get("decommissioned") else None,
            "deferred_orders": int(
                db.conn.execute("SELECT COUNT(*) FROM deferred_orders").fetchone()[0]
            ),
            "unsent_incidents": len(db.unsent_incidents()),
            "evidence_refused_full": int(db.get("refused_full", "0") or 0),
            "last_cycle": db.get_json("last_cycle"),
            "last_results": db.results(),
        }
    finally:
        db.close()


@main.command()
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


@main.group()
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


@main.group()
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


def _attest_paths(config: str | None, state: str | None) -> tuple[str, str, str]:
    """(state dir, signing key file, cosigning key file) from --config, or from --state (its
    agent.toml when there is one, else the default file names in it)."""
    if state is not None and config is None:
        toml = Path(state) / "agent.toml"
        if not toml.exists():
            return state, str(Path(state) / "appliance.key"), str(Path(state) / "cosign.key")
    cfg = _load(config, state)
    return cfg.agent.state_dir, cfg.agent.key_file, cfg.agent.cosign_key_file


@main.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the attestation (JSON, public data only).")  # fmt: skip
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--state", "state", default=None, help="State directory (instead of --config).")
def attest(out: str, config: str | None, state: str | None) -> None:
    """Write the clinic's attestation for auditors: this appliance's keys, the log and order
    keys it pinned, its key history, chain head and newest cosigned checkpoint, signed with
    its signing key. Reads state only (no network; fine while the agent runs)."""
    from osiris_agent.attest import build, write

    state_dir, key_file, cosign_file = _attest_paths(config, state)
    try:
        env, summary = build(state_dir, key_file, cosign_file)
        write(out, env)
    except (OsirisError, OSError, ValueError) as e:
        _fail(f"cannot attest: {e}", ExitCode.USAGE)
    click.echo(f"wrote the attestation to {out}; read these to the auditor:", err=True)
    for line in summary.lines():
        click.echo(f"  {line}", err=True)


@main.command("rotate-key")
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
def rotate_key(config: str | None) -> None:
    """Replace the appliance's signing key (the old key signs a statement naming the new one
    and the first seq it signs; the server must accept it first). A running agent picks the
    new key up by itself; no bundle is ever signed with the old key past the rotation."""
    from osiris_agent.client import AuthRefused, ServerRefused, ServerUnreachable
    from osiris_agent.rotate import RotateError, RotationRefused
    from osiris_agent.rotate import rotate_key as do_rotate
    from osiris_core.trust import fingerprint

    _logging(False)
    cfg = _load(config, None)
    try:
        r = do_rotate(cfg)
    except ServerUnreachable as e:
        _fail(f"{e}; nothing changed", ExitCode.UNREACHABLE)
    except AuthRefused as e:
        _fail(f"{e}; nothing changed", ExitCode.AUTH)
    except (ServerRefused, RotationRefused) as e:
        _fail(f"rotation refused: {e}; nothing changed", ExitCode.BAD)
    except (RotateError, OsirisError, OSError) as e:
        _fail(f"cannot rotate: {e}", ExitCode.USAGE)
    click.echo(
        f"rotation {r.number}: bundles from seq {r.effective_seq} on are signed by the new key "
        f"{fingerprint(r.new_vkey)} (was {fingerprint(r.old_vkey)})"
        + (" [resumed an interrupted rotation]" if r.resumed else "")
    )
    click.echo("write a new attestation for the auditor: osiris-agent attest --out FILE")


DECOMMISSION_IMPACT = (
    "decommissioning signs one final bundle (check appliance_decommission) that closes this "
    "appliance's evidence chain, sends the queued evidence to the server, and from then on "
    "this agent signs nothing: `run` and `once` refuse to start. It cannot be undone; a "
    "machine reused later is enrolled as a new appliance."
)


@main.command()
@click.option("--config", "config", default=None, help=f"Config file (default {DEFAULT_PATH}).")
@click.option("--yes", is_flag=True, help="Really close the evidence chain.")
def decommission(config: str | None, yes: bool) -> None:
    """Close this appliance's evidence chain for good (a signed final bundle) and flush it."""
    if not yes:
        _fail(f"{DECOMMISSION_IMPACT} Re-run with --yes to do it.", ExitCode.USAGE)
    from osiris_agent.cycle import CycleReport
    from osiris_agent.outbox import Decommissioned, OutboxFull

    _logging(False)
    agent = _agent(config)
    try:
        closed = agent.decommissioned
        if closed is None:
            try:
                env = agent.decommission()
            except (Decommissioned, OutboxFull) as e:
                _fail(f"not decommissioned: {e}", ExitCode.BAD)
            closed = env["bundle"]["seq"]
            click.echo(f"chain closed at seq {closed} (bundle {env['bundle']['bundle_id']})")
        else:
            click.echo(f"already decommissioned (chain closed at seq {closed}); flushing")
        report = CycleReport()
        agent.flush(report)
        depth = agent.outbox.depth()
        trusted = agent.witness.trusted
    finally:
        agent.close()
    for e in report.errors:
        _warn(e)
    if depth == 0:
        click.echo("all evidence acknowledged by the server; this appliance signs nothing more")
        return
    rerun = "re-run `osiris-agent decommission --yes` (or `osiris-agent outbox flush`)"
    if not report.reachable:
        _fail(
            f"{depth} bundle(s) still queued: server unreachable; {rerun} when it is",
            ExitCode.UNREACHABLE,
        )
    why = "" if trusted else " (the server's log is not trusted: see `osiris-agent witness`)"
    _fail(f"{depth} bundle(s) still queued{why}; {rerun}", ExitCode.BAD)


if __name__ == "__main__":
    main()
