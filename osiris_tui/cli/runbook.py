"""`osiris runbook …`: runbooks per site or appliance — toggles (list, enable, disable, reset)
and parameter values (params, set).

The server decides which runbooks exist and what is enabled; the local catalogue only adds
names and flags (disruptive, maintenance window) to what is shown, so a catalogue that cannot
be loaded costs decoration, never a command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from osiris_core.errors import ExitCode

from ..client import UsageError
from ..columns import RUNBOOK_PARAMS, RUNBOOK_TOGGLES, RUNBOOKS
from .base import JSON_OPT, YES_OPT, client_of, confirm, emit_json, fail, listing, table
from .names import appliance_id as resolve_appliance


def catalog_runbooks() -> dict[str, Any]:
    """The local catalogue's runbooks by id; empty when it cannot be loaded."""
    try:
        from osiris_core.catalog import load_catalog

        return dict(load_catalog().runbooks)
    except Exception:  # noqa: BLE001 - names/flags are decoration; the server is the truth
        return {}


def _scope(site_id: str | None, appliance_id: str | None) -> tuple[str, str]:
    if bool(site_id) == bool(appliance_id):
        fail("give exactly one of --site or --appliance", ExitCode.USAGE)
    return ("site", site_id) if site_id else ("appliance", appliance_id)  # type: ignore[return-value]


SCOPE_OPTS = [
    click.option("--site", "site_id", help="Site scope."),
    click.option("--appliance", "appliance_id", help="Appliance scope: its id or hostname."),
]


def scope_opts(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(SCOPE_OPTS):
        f = opt(f)
    return f


@click.group()
def runbook() -> None:
    """Runbooks per site or appliance: toggles (list, enable, disable, reset) and parameter
    values (params, set)."""


@runbook.command("list")
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_list(
    ctx: click.Context, site_id: str | None, appliance_id: str | None, as_json: bool
) -> None:
    """List runbooks with their effective state and where it comes from."""
    kind, sid = _scope(site_id, appliance_id)
    c = client_of(ctx)
    sid = sid if kind == "site" else resolve_appliance(c, sid)
    states = c.site_runbooks(sid) if kind == "site" else c.appliance_runbooks(sid)
    cat = catalog_runbooks()
    listing(states, as_json, RUNBOOKS, view=lambda s: (s, cat.get(s.id)))


def _toggle(
    ctx: click.Context,
    ids: tuple[str, ...],
    value: bool | None,
    site_id,
    appliance_id,
    yes,
    as_json,
) -> None:
    kind, sid = _scope(site_id, appliance_id)
    c = client_of(ctx)
    sid = sid if kind == "site" else resolve_appliance(c, sid)
    if value is False:
        confirm(
            yes,
            f"Disable {', '.join(ids)} at {kind} {sid}; drift these runbooks heal will only be "
            "reported, not fixed",
        )
    changes = {rb: value for rb in ids}
    if kind == "site":
        states = c.set_site_runbooks(sid, changes)
    else:
        states = c.set_appliance_runbooks(sid, changes)
    wanted = set(ids)
    listing([s for s in states if s.id in wanted], as_json, RUNBOOK_TOGGLES)


@runbook.command("enable")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_enable(ctx, runbook_ids, site_id, appliance_id, as_json) -> None:  # noqa: ANN001
    """Enable runbooks at a site or appliance."""
    _toggle(ctx, runbook_ids, True, site_id, appliance_id, True, as_json)


@runbook.command("disable")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@YES_OPT
@JSON_OPT
@click.pass_context
def runbook_disable(ctx, runbook_ids, site_id, appliance_id, yes, as_json) -> None:  # noqa: ANN001
    """Disable runbooks at a site or appliance (confirmation required)."""
    _toggle(ctx, runbook_ids, False, site_id, appliance_id, yes, as_json)


@runbook.command("reset")
@click.argument("runbook_ids", nargs=-1, required=True)
@scope_opts
@JSON_OPT
@click.pass_context
def runbook_reset(ctx, runbook_ids, site_id, appliance_id, as_json) -> None:  # noqa: ANN001
    """Clear overrides so the runbooks inherit from the site or the catalogue default."""
    _toggle(ctx, runbook_ids, None, site_id, appliance_id, True, as_json)


# ---------------------------------------------------------------- runbook parameters

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def convert_param(name: str, spec: dict[str, Any] | None, raw: str) -> Any:
    """``NAME=VALUE`` text → the JSON value the schema's type wants; ``UsageError`` otherwise.

    Why here and not on the server: argv is text, and ``15`` must travel as the integer 15 (the
    server refuses a string for an int parameter, rightly)."""
    if spec is None:
        raise UsageError(f"unknown parameter {name}")
    typ = spec.get("type")
    if typ == "int":
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise UsageError(f"{name} must be an integer, not {raw!r}") from None
    if typ == "bool":
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise UsageError(f"{name} must be true or false, not {raw!r}")
    return raw


def param_rows(view: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any, str]]:
    """(name, spec, effective value, set by) per parameter, sorted: what ``RUNBOOK_PARAMS``
    reads."""
    rows = []
    own = view.get("appliance") or {}
    site = view.get("site") or {}
    for name, spec in sorted((view.get("schema") or {}).items()):
        source = "appliance" if name in own else "site" if name in site else "default"
        rows.append((name, spec, view.get("effective", {}).get(name), source))
    return rows


def _show_params(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(view)
    else:
        table(param_rows(view), RUNBOOK_PARAMS)


@runbook.command("params")
@click.argument("site_id")
@click.argument("runbook_id")
@click.option(
    "--appliance", "appliance_id", help="Show one appliance's values (it wins): id or hostname."
)
@JSON_OPT
@click.pass_context
def runbook_params(
    ctx: click.Context, site_id: str, runbook_id: str, appliance_id: str | None, as_json: bool
) -> None:
    """Show a runbook's parameters at a site: value, where it is set, default, meaning."""
    c = client_of(ctx)
    if appliance_id is not None:
        appliance_id = resolve_appliance(c, appliance_id)
    _show_params(c.runbook_params(site_id, runbook_id, appliance_id), as_json)


@runbook.command("set")
@click.argument("site_id")
@click.argument("runbook_id")
@click.argument("assignments", nargs=-1, metavar="NAME=VALUE...")
@click.option(
    "--appliance", "appliance_id", help="Set for one appliance of the site only: id or hostname."
)
@click.option("--clear", "clear", multiple=True, metavar="NAME",
              help="Clear a value set at this scope (it inherits again); repeatable.")  # fmt: skip
@JSON_OPT
@click.pass_context
def runbook_set(
    ctx: click.Context,
    site_id: str,
    runbook_id: str,
    assignments: tuple[str, ...],
    appliance_id: str | None,
    clear: tuple[str, ...],
    as_json: bool,
) -> None:
    """Set runbook parameters (policy thresholds) for a site, e.g.
    `osiris runbook set clinic RB-WIN-PATCH-001 critical_overdue_days=15`."""
    if not assignments and not clear:
        fail("give at least one NAME=VALUE (or --clear NAME)", ExitCode.USAGE)
    c = client_of(ctx)
    if appliance_id is not None:
        appliance_id = resolve_appliance(c, appliance_id)
    schema = c.runbook_params(site_id, runbook_id, appliance_id).get("schema") or {}
    changes: dict[str, Any] = {}
    for a in assignments:
        name, sep, raw = a.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"expected NAME=VALUE, got {a!r}", ExitCode.USAGE)
        if name not in schema:
            known = ", ".join(sorted(schema)) or "none"
            fail(f"{runbook_id} has no parameter {name} (known: {known})", ExitCode.USAGE)
        changes[name] = convert_param(name, schema[name], raw)
    for name in clear:
        if name not in schema:
            fail(f"{runbook_id} has no parameter {name}", ExitCode.USAGE)
        changes[name] = None
    _show_params(c.set_runbook_params(site_id, runbook_id, changes, appliance_id), as_json)
